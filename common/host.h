/*
 * host.h: the session host that both daemons run. It registers the machine
 * with the relay, runs agents in PTYs, numbers and streams their output,
 * applies input once, and carries out the machine's side of a move:
 * suspend (stop, checkpoint, upload) and resume (fetch, restore, start).
 *
 * baton-local and baton-sandbox differ only in how they boot and where a
 * resumed session's worktree goes; they say so through struct host_ops.
 */
#ifndef BATON_HOST_H
#define BATON_HOST_H

#include <stdbool.h>
#include <uv.h>

#include "frames.h"

struct host;

typedef void (*host_done_cb)(struct host *h, void *ctx, int status,
			     const char *why);

/* What the relay says about setup when it resumes a session here. */
struct host_setup {
	const char *script;	/* the workspace's own script, or NULL */
	unsigned timeout_s;	/* 0: the daemon's default */
};

struct host_ops {
	/*
	 * Where a session this machine has never held is restored, given the
	 * workspace's remote URL (may be NULL). Returns a path (caller
	 * frees) or NULL with *cause set. NULL function: such sessions are
	 * refused.
	 */
	char *(*place)(struct host *h, const char *session, const char *remote,
		       char **cause);
	/*
	 * Runs after a restore and before the agent starts (the sandbox's
	 * setup script); calls done(h, ctx, 0, NULL) to go on, or a non-zero
	 * status and a reason to fail the resume. NULL: nothing to run.
	 */
	void (*after_restore)(struct host *h, const char *worktree,
			      const struct host_setup *setup,
			      host_done_cb done, void *ctx);
	/* Runs each time the relay welcomes this machine (every
	 * connection). NULL: nothing to do. */
	void (*connected)(struct host *h);
};

struct host_opts {
	const char *relay_url;
	const char *ca_file;		/* CAs for wss://; NULL: system's */
	bool insecure;			/* allow ws:// beyond loopback */
	/* local: a machine token, needed until the laptop has a record
	 * (state_dir/machine.json); sandbox: its bootstrap credential, spent
	 * by the first connection. NULL: the key in state_dir proves it. */
	const char *token;
	const char *kind;		/* "local" or "sandbox" */
	const char *name;		/* local: the machine's name */
	const char *machine;		/* sandbox: its machine record id */
	const char *generation;		/* sandbox: its generation */
	const char *state_dir;		/* the daemon's own state */
	const char *agents_file;	/* user agent profiles, or NULL */
	const struct host_ops *ops;
	void *data;			/* for the daemon, host_data() */
	const struct frames_liveness *liveness;	/* NULL: defaults */
};

int host_new(uv_loop_t *loop, const struct host_opts *opts,
	     struct host **out, char **cause);
/* Stops every agent (no checkpoint: their files stay) and the link; the
 * loop then runs out of work; then call host_free. */
void host_shutdown(struct host *h);
void host_free(struct host *h);

/*
 * Who stops the daemon when the host must end by itself (the relay refused
 * its token): cb runs from the loop, never inside a socket callback, and
 * should do what a stop signal does. host_exit_status then says 1.
 */
void host_on_stop(struct host *h, void (*cb)(struct host *h, void *arg),
		  void *arg);
int host_exit_status(const struct host *h);

void *host_data(const struct host *h);
const char *host_state_dir(const struct host *h);
uv_loop_t *host_loop(const struct host *h);
struct scrub;
/*
 * The remote environment the relay sent a sandbox (NAME=VALUE entries,
 * NULL-terminated), or NULL when none came. Owned by the host; valid until
 * the next one arrives.
 */
char *const *host_env(const struct host *h);
/*
 * Variables the setup script of a worktree left for its agents (NAME=VALUE
 * entries, copied); agents started in that worktree from now on get them.
 */
void host_set_worktree_env(struct host *h, const char *worktree,
			   char *const *entries);
/* A scrubber that hides the remote environment's values (caller frees). */
struct scrub *host_scrub_new(const struct host *h);

/* Sends setup script output to the relay (kept there and shown to the
 * client that moves the session). */
void host_setup_log(struct host *h, const char *text, bool done,
		    int status);

#endif
