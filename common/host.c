/*
 * host.c: the session host shared by baton-local and baton-sandbox.
 *
 * One link to the relay; a list of live sessions, each an agent in a PTY;
 * and a small record per session this machine has held (sessions.json in
 * the state folder): its worktree, epoch, the checkpoint it left with, and
 * the checkpoints known here, so a move back can tell whether the worktree
 * changed meanwhile and which objects it need not fetch.
 */
#define _GNU_SOURCE
#include "host.h"
#include "agent.h"
#include "checkpoint.h"
#include "crash.h"
#include "identity.h"
#include "link.h"
#include "log.h"
#include "outbox.h"
#include "proto.h"
#include "pty.h"
#include "secrets.h"
#include "statefile.h"
#include "util.h"
#include "watch.h"
#include "workspace.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RECENT_INPUTS 256
#define KNOWN_CHECKPOINTS 16
#define QUEUE_HIGH (4u << 20)	/* pause agents above this much queued */
#define OUTBOX_MEMORY (8u << 20)	/* unacknowledged output in memory */
#define OUTBOX_DISK (1ull << 30)	/* and in the spill file */
#define STOP_GRACE_MS 5000

struct resume;

struct hsession {
	char id[PROTO_UUID_LEN + 1];
	struct host *host;
	struct pty_proc *proc;
	struct agent_profile *profile;	/* owned */
	char *worktree;
	uint64_t epoch;
	uint64_t seq;		/* last output seq numbered */
	uint64_t inputs[RECENT_INPUTS];
	size_t input_next;
	bool suspending;	/* stopping the agent for a checkpoint */
	cJSON *suspend_haves;
	struct resume *resume;	/* restore in progress */
	struct scrub *scrub;	/* hides remote env values in its output */
	struct sync *sync;	/* uploads checkpoints while it works */
	struct hsession *next;
};

/*
 * Workspace sync of one session: file events (debounced) and a slow
 * periodic check compare a cheap signature of the worktree and the agent's
 * state (git status with its stat cache, plus sizes and times), and only
 * when it changed is a checkpoint made and the objects the relay lacks
 * uploaded.
 */
struct sync {
	struct hsession *s;
	struct watch *watch;
	uv_timer_t *tick;	/* heap: closes after the sync is freed */
	cJSON *haves;		/* checkpoint oids the relay holds */
	git_repository *repo;	/* the worktree's, for ignores and status */
	uint64_t signature;	/* of the state last uploaded (or tried) */
	uint64_t last_ms;	/* when the last upload started */
	char pending[GIT_OID_HEXSZ + 1];	/* uploaded, not yet kept */
	char request[24];	/* id of its session.synced */
};

/* A resume in progress (session.resume until session.resumed). */
struct resume {
	char *checkpoint;
	char *remote;
	cJSON *profile;
	char *agent;
	uint64_t epoch;
	uint64_t seq;
	char *worktree;		/* where the session will live */
	bool created;		/* its repository is new: restore in place */
	git_repository *repo;
	struct checkpoint_unpack *unpack;
	char *note;
	char *set_aside;
	char *setup;		/* the workspace's setup script, or NULL */
	unsigned setup_timeout_s;
};

struct host {
	uv_loop_t *loop;
	struct link *link;
	struct host_ops ops;
	void *data;
	char *kind;
	char *name;
	char *machine;
	char *generation;
	char *token;		/* machine token or bootstrap credential */
	struct identity id;	/* the key pair this machine proves */
	char *relay_url;
	char *machine_file;	/* local: which machine record we are */
	char **env;		/* sandbox: remote env, NAME=VALUE, NULL end */
	size_t env_count;
	cJSON *worktree_env;	/* {WORKTREE: [NAME=VALUE...]} from setup */
	char *state_dir;
	char *records_path;
	char *home;
	struct agent_profiles *profiles;
	struct hsession *sessions;
	cJSON *records;		/* {"sessions": {ID: {...}}} */
	struct outbox *out;	/* output until the relay has stored it */
	struct buf scratch;	/* a chunk read back from the outbox */
	bool out_full;		/* the outbox refused a chunk */
	bool welcomed;
	bool cert_warned;	/* a refused certificate was logged as such */
	bool stopping;
	bool paused;
	uv_timer_t flow;
	uv_timer_t stop_timer;	/* stops the daemon outside lws callbacks */
	void (*stop_cb)(struct host *h, void *arg);
	void *stop_arg;
	int exit_status;
};

static void session_free(struct hsession *s);
static void sync_stop(struct hsession *s);
static void send_pack(struct host *h, const char *session, uint64_t epoch,
		      uint16_t flags, const struct buf *pack);
static void resume_fail(struct hsession *s, const char *why);
static void resume_objects_ready(struct hsession *s);

/* ---- records ---- */

static cJSON *records_sessions(struct host *h)
{
	cJSON *all = cJSON_GetObjectItemCaseSensitive(h->records,
						      "sessions");

	if (!cJSON_IsObject(all)) {
		cJSON_DeleteItemFromObjectCaseSensitive(h->records,
							"sessions");
		all = cJSON_AddObjectToObject(h->records, "sessions");
	}
	return all;
}

static cJSON *record_get(struct host *h, const char *id, bool create)
{
	cJSON *all = records_sessions(h);
	cJSON *rec = cJSON_GetObjectItemCaseSensitive(all, id);

	if (rec == NULL && create)
		rec = cJSON_AddObjectToObject(all, id);
	return rec;
}

static void record_set(cJSON *rec, const char *name, const char *value)
{
	cJSON_DeleteItemFromObjectCaseSensitive(rec, name);
	if (value)
		cJSON_AddStringToObject(rec, name, value);
}

/* Remembers a checkpoint as present here (newest first, bounded). */
static void record_add_checkpoint(cJSON *rec, const char *oid)
{
	cJSON *list = cJSON_GetObjectItemCaseSensitive(rec, "checkpoints");

	if (!cJSON_IsArray(list)) {
		cJSON_DeleteItemFromObjectCaseSensitive(rec, "checkpoints");
		list = cJSON_AddArrayToObject(rec, "checkpoints");
	}
	for (int i = cJSON_GetArraySize(list) - 1; i >= 0; i--) {
		cJSON *item = cJSON_GetArrayItem(list, i);

		if (cJSON_IsString(item) && !strcmp(item->valuestring, oid))
			cJSON_DeleteItemFromArray(list, i);
	}
	cJSON_InsertItemInArray(list, 0, cJSON_CreateString(oid));
	while (cJSON_GetArraySize(list) > KNOWN_CHECKPOINTS)
		cJSON_DeleteItemFromArray(list, KNOWN_CHECKPOINTS);
}

/* Remembers which agent profile a session runs here. */
static void record_set_profile(cJSON *rec, const struct agent_profile *p)
{
	cJSON_DeleteItemFromObjectCaseSensitive(rec, "profile");
	cJSON_AddItemToObject(rec, "profile", agent_profile_to_json(p));
}

static void records_save(struct host *h)
{
	int e = statefile_save(h->records_path, h->records);

	if (e < 0)
		log_error("host", "cannot save %s: %s; the next move back "
			  "to this machine may restore beside the worktree",
			  h->records_path, strerror(-e));
}

/*
 * Reads the session records (a versioned state file: statefile.h). A
 * file that is not a JSON object is ignored with a warning (the next save
 * replaces it); one from a newer program, or one that cannot be read or
 * upgraded, stops the daemon.
 * 0 or -errno with *cause.
 */
static int records_load(struct host *h, char **cause)
{
	bool sandbox = !strcmp(h->kind, "sandbox");
	int e = statefile_load(h->records_path,
			       sandbox ? "baton-sandbox" : "baton-local",
			       sandbox ? "HOME" : "--state", &h->records,
			       cause);

	if (e == -EINVAL) {
		log_warn("host", "%s; starting without session records",
			 *cause);
		free(*cause);
		*cause = NULL;
	} else if (e < 0 && e != -ENOENT) {
		return e;
	}
	if (h->records == NULL)
		h->records = cJSON_CreateObject();
	return 0;
}

/* ---- sending ---- */

static void send_msg(struct host *h, const char *type, const char *id,
		     const char *session, cJSON *body)
{
	char *text = proto_encode(type, id, session, body);

	if (link_send_owned(h->link, text) < 0)
		log_debug("host", "not connected; %s not sent", type);
}

static void send_error(struct host *h, const char *id, const char *session,
		       const char *code, const char *message)
{
	if (link_send_owned(h->link, proto_encode_error(id, session, code,
						       message)) < 0)
		log_debug("host", "not connected; error not sent");
}

static void flow_check(uv_timer_t *t);

/*
 * Pauses the agents when their output cannot go anywhere: the relay link
 * is behind, or the outbox is full. While the relay is away the agents run
 * on and their output waits in the outbox. The timer pumps the outbox as
 * the link drains.
 */
static void flow_control(struct host *h)
{
	bool behind = h->welcomed && link_queued(h->link) > QUEUE_HIGH;
	bool pause = behind || h->out_full;

	if (pause != h->paused) {
		h->paused = pause;
		for (struct hsession *s = h->sessions; s; s = s->next) {
			if (s->proc == NULL)
				continue;
			if (pause)
				pty_proc_pause(s->proc);
			else
				pty_proc_resume(s->proc);
		}
	}
	if (pause || (h->welcomed && outbox_unsent(h->out) > 0)) {
		if (!uv_is_active((uv_handle_t *)&h->flow))
			uv_timer_start(&h->flow, flow_check, 20, 20);
	} else {
		uv_timer_stop(&h->flow);
	}
}

/* Sends kept output while the link has room (all of it when `all`). */
static void pump(struct host *h, bool all)
{
	struct proto_bin hdr;
	int e;

	while (h->welcomed && (all || link_queued(h->link) < QUEUE_HIGH)) {
		e = outbox_next(h->out, &hdr, &h->scratch);
		if (e == -ENOENT)
			break;
		if (e < 0) {
			log_error("host", "cannot read back kept output: %s",
				  strerror(-e));
			break;
		}
		if (link_send_binary(h->link, &hdr, h->scratch.data,
				     h->scratch.len) < 0)
			break;
	}
	flow_control(h);
}

static void flow_check(uv_timer_t *t)
{
	pump(t->data, false);
}

/* Keeps an output chunk until the relay acknowledges it, and sends it. */
static void send_output(struct host *h, const struct proto_bin *hdr,
			const void *data, size_t len)
{
	if (outbox_push(h->out, hdr, data, len) < 0 && !h->out_full) {
		h->out_full = true;
		log_warn("host", "cannot keep more output for the relay "
			 "(%zu chunks waiting); pausing the agents until it "
			 "takes them", outbox_count(h->out));
	}
	pump(h, false);
}

static void handle_ack(struct host *h, const struct proto_msg *m)
{
	uint8_t session[16];
	uint64_t seq;

	if (proto_uuid_parse(m->session, session) < 0 ||
	    proto_u64(m->body, "seq", &seq) < 0)
		return;
	outbox_ack(h->out, session, seq);
	h->out_full = false;
	flow_control(h);
}

/* ---- agents ---- */

static struct hsession *session_find(struct host *h, const char *id)
{
	for (struct hsession *s = h->sessions; s; s = s->next)
		if (!strcmp(s->id, id))
			return s;
	return NULL;
}

static void on_agent_output(struct pty_proc *p, const char *data,
			    size_t len, void *arg)
{
	struct hsession *s = arg;
	struct proto_bin hdr = { .kind = PROTO_BIN_OUTPUT };
	struct buf clean = { 0 };

	if (s->scrub) {
		scrub_feed(s->scrub, data, len, &clean);
		data = clean.data;
		len = clean.len;
	}
	proto_uuid_parse(s->id, hdr.session);
	hdr.epoch = (uint32_t)s->epoch;
	while (len > 0) {
		size_t n = len > PROTO_CHUNK ? PROTO_CHUNK : len;

		hdr.seq = ++s->seq;
		send_output(s->host, &hdr, data, n);
		data += n;
		len -= n;
	}
	buf_free(&clean);
}

/* Sends what the scrubber still holds back (the agent stopped). */
static void scrub_release(struct hsession *s)
{
	struct buf rest = { 0 };

	if (s->scrub == NULL)
		return;
	scrub_flush(s->scrub, &rest);
	if (rest.len) {
		scrub_free(s->scrub);
		s->scrub = NULL;
		on_agent_output(s->proc, rest.data, rest.len, s);
	}
	buf_free(&rest);
}

static void suspend_finish(struct hsession *s);

static void on_agent_exit(struct pty_proc *p, int status, void *arg)
{
	struct hsession *s = arg;
	struct host *h = s->host;
	cJSON *body;

	log_info("host", "session %s: agent exited with status %d", s->id,
		 status);
	scrub_release(s);
	if (s->suspending) {
		suspend_finish(s);
		return;
	}
	if (!h->stopping) {
		body = cJSON_CreateObject();
		cJSON_AddNumberToObject(body, "status", status);
		send_msg(h, "session.exited", NULL, s->id, body);
	}
	session_free(s);
}

/* Starts the agent of s with argv templates `tmpl` in s->worktree. */
static int agent_start(struct hsession *s, char *const *tmpl,
		       unsigned short cols, unsigned short rows, char **cause)
{
	struct host *h = s->host;
	struct agent_vars vars = { s->id, h->home, s->worktree };
	struct pty_proc_opts po;
	char **argv = agent_expand_all(tmpl, &vars);
	const cJSON *mine = cJSON_GetObjectItemCaseSensitive(h->worktree_env,
							     s->worktree);
	size_t n = 0, extra = (size_t)cJSON_GetArraySize(mine);
	char **env = xcalloc(h->env_count + extra + 3, sizeof(*env));
	const cJSON *item;
	char *own[2];
	int e;

	/* The remote environment, then what the setup script left, then
	 * Baton's own names: a later entry wins. */
	for (size_t i = 0; i < h->env_count; i++)
		env[n++] = h->env[i];
	cJSON_ArrayForEach(item, mine)
		env[n++] = item->valuestring;
	env[n++] = own[0] = xasprintf("BATON_SESSION=%s", s->id);
	env[n++] = own[1] = xasprintf("BATON_WORKTREE=%s", s->worktree);
	if (h->env_count) {
		scrub_free(s->scrub);
		s->scrub = host_scrub_new(h);
	}
	memset(&po, 0, sizeof(po));
	po.argv = argv;
	po.env = env;
	po.cwd = s->worktree;
	po.cols = cols ? cols : 120;
	po.rows = rows ? rows : 40;
	po.on_output = on_agent_output;
	po.on_exit = on_agent_exit;
	po.arg = s;
	e = pty_proc_spawn(h->loop, &po, &s->proc, cause);
	if (e == 0)
		log_info("host", "session %s: started %s in %s (pid %d)",
			 s->id, argv[0], s->worktree,
			 (int)pty_proc_pid(s->proc));
	agent_strv_free(argv);
	free(own[0]);
	free(own[1]);
	free(env);
	return e;
}

static struct hsession *session_new(struct host *h, const char *id)
{
	struct hsession *s = xcalloc(1, sizeof(*s));

	snprintf(s->id, sizeof(s->id), "%s", id);
	s->host = h;
	s->next = h->sessions;
	h->sessions = s;
	return s;
}

static void resume_free(struct resume *r)
{
	if (r == NULL)
		return;
	free(r->checkpoint);
	free(r->remote);
	cJSON_Delete(r->profile);
	free(r->agent);
	free(r->worktree);
	git_repository_free(r->repo);
	checkpoint_unpack_free(r->unpack);
	free(r->note);
	free(r->set_aside);
	free(r->setup);
	free(r);
}

static void session_free(struct hsession *s)
{
	struct host *h = s->host;

	for (struct hsession **p = &h->sessions; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			break;
		}
	}
	if (s->proc)
		pty_proc_free(s->proc);
	agent_profile_free(s->profile);
	resume_free(s->resume);
	cJSON_Delete(s->suspend_haves);
	sync_stop(s);
	scrub_free(s->scrub);
	free(s->worktree);
	free(s);
}

static void handle_spawn(struct host *h, const struct proto_msg *m)
{
	const char *dir = proto_str(m->body, "dir");
	const char *agent = proto_str(m->body, "agent");
	const struct agent_profile *profile;
	git_repository *repo = NULL;
	struct hsession *s;
	char real[PATH_MAX];
	char *cause = NULL, *key = NULL, *remote = NULL;
	int64_t cols = 0, rows = 0;
	uint64_t epoch = 1, seq = 0;
	cJSON *body, *rec, *pj;

	if (session_find(h, m->session)) {
		send_error(h, m->id, m->session, PROTO_E_CONFLICT,
			   "that session already runs here");
		return;
	}
	profile = agent_profile_find(h->profiles, agent);
	if (profile == NULL) {
		cause = xasprintf("no agent profile \"%s\" on this machine; "
				  "built-ins are shell, claude and codex",
				  agent);
		goto fail;
	}
	if (realpath(dir, real) == NULL) {
		cause = xasprintf("cannot use %s on this machine: %s", dir,
				  strerror(errno));
		goto fail;
	}
	if (git_repository_open_ext(&repo, real, 0, NULL) < 0 ||
	    git_repository_is_bare(repo)) {
		cause = xasprintf("%s is not in a git worktree; sessions run "
				  "in git worktrees so they can move", real);
		goto fail;
	}
	snprintf(real, sizeof(real), "%s", git_repository_workdir(repo));
	if (strlen(real) > 1 && real[strlen(real) - 1] == '/')
		real[strlen(real) - 1] = '\0';
	key = workspace_key(repo, h->name ? h->name : h->machine, &remote);
	proto_int(m->body, "cols", &cols);
	proto_int(m->body, "rows", &rows);
	proto_u64(m->body, "epoch", &epoch);
	proto_u64(m->body, "seq", &seq);

	s = session_new(h, m->session);
	s->worktree = xstrdup(real);
	s->epoch = epoch;
	s->seq = seq;
	pj = agent_profile_to_json(profile);
	agent_profile_from_json(pj, &s->profile, &cause);
	cJSON_Delete(pj);
	if (s->profile == NULL ||
	    agent_start(s, s->profile->start, (unsigned short)cols,
			(unsigned short)rows, &cause) < 0) {
		session_free(s);
		goto fail;
	}

	rec = record_get(h, s->id, true);
	record_set(rec, "worktree", s->worktree);
	record_set(rec, "agent", agent);
	record_set(rec, "left", NULL);
	record_set_profile(rec, s->profile);
	records_save(h);

	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "worktree", s->worktree);
	cJSON_AddStringToObject(body, "workspace", key);
	if (remote)
		cJSON_AddStringToObject(body, "remote", remote);
	cJSON_AddItemToObject(body, "profile",
			      agent_profile_to_json(s->profile));
	send_msg(h, "session.spawned", m->id, s->id, body);
	goto out;
fail:
	log_warn("host", "session %s: cannot start: %s", m->session, cause);
	send_error(h, m->id, m->session, PROTO_E_FAILED, cause);
out:
	git_repository_free(repo);
	free(cause);
	free(key);
	free(remote);
}

/* ---- cloud starts: clone, set up, start ---- */

/* A remote environment variable's value, or NULL. */
static const char *env_value(const struct host *h, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < h->env_count; i++)
		if (!strncmp(h->env[i], name, n) && h->env[i][n] == '=')
			return h->env[i] + n + 1;
	return NULL;
}

/* What a clone's credential callback needs: one try, then give up. */
struct clone_auth {
	const struct host *host;
	bool asked;		/* the server wanted a login */
	int tries;		/* logins given */
};

/* libgit2 asks for credentials: GIT_USERNAME and GIT_PASSWORD from the
 * workspace's remote environment, once. */
static int clone_credentials(git_credential **out, const char *url,
			     const char *user_from_url, unsigned int allowed,
			     void *payload)
{
	struct clone_auth *a = payload;
	const char *user = env_value(a->host, "GIT_USERNAME");
	const char *password = env_value(a->host, "GIT_PASSWORD");

	a->asked = true;
	if (password == NULL || !(allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT))
		return GIT_EAUTH;
	if (a->tries++ > 0)
		return GIT_EAUTH;	/* they were refused once */
	return git_credential_userpass_plaintext_new(
		out, user ? user : (user_from_url ? user_from_url : "git"),
		password);
}

/*
 * Puts the worktree on REF: a branch of the remote (made local, tracking
 * it), else a tag or commit (detached).
 */
static int clone_checkout(git_repository *repo, const char *ref,
			  char **cause)
{
	git_checkout_options co = GIT_CHECKOUT_OPTIONS_INIT;
	git_reference *remote_ref = NULL, *branch = NULL;
	git_object *target = NULL;
	char *name = xasprintf("refs/remotes/origin/%s", ref);
	int e;

	co.checkout_strategy = GIT_CHECKOUT_SAFE;
	if (git_branch_lookup(&branch, repo, ref, GIT_BRANCH_LOCAL) == 0 &&
	    git_branch_is_head(branch) == 1) {
		e = 0;	/* the clone is on it already */
	} else if (git_reference_lookup(&remote_ref, repo, name) == 0) {
		git_reference_free(branch);
		branch = NULL;
		e = git_reference_peel(&target, remote_ref, GIT_OBJECT_COMMIT);
		if (e == 0)
			e = git_branch_create(&branch, repo, ref,
					      (git_commit *)target, 1);
		if (e == 0)
			e = git_branch_set_upstream(branch, name + 13);
		if (e == 0)
			e = git_checkout_tree(repo, target, &co);
		if (e == 0)
			e = git_repository_set_head(repo,
						    git_reference_name(branch));
	} else {
		e = git_revparse_single(&target, repo, ref);
		if (e == 0)
			e = git_checkout_tree(repo, target, &co);
		if (e == 0)
			e = git_repository_set_head_detached(
				repo, git_object_id(target));
	}
	if (e < 0)
		*cause = xasprintf("the repository has no branch, tag or "
				   "commit \"%s\": %s", ref, git_error_last()
				   ? git_error_last()->message : "unknown");
	git_reference_free(branch);
	git_reference_free(remote_ref);
	git_object_free(target);
	free(name);
	return e < 0 ? -EINVAL : 0;
}

/* The setup after a clone is done: start the agent and report it. */
static void clone_setup_done(struct host *h, void *ctx, int status,
			     const char *why)
{
	struct hsession *s = ctx;
	struct resume *r = s->resume;
	char *cause = NULL;
	cJSON *body, *rec;

	if (status != 0) {
		send_error(h, NULL, s->id, PROTO_E_FAILED,
			   why ? why : "the setup script failed");
		session_free(s);
		return;
	}
	if (agent_start(s, s->profile->start, 0, 0, &cause) < 0) {
		send_error(h, NULL, s->id, PROTO_E_FAILED, cause);
		free(cause);
		session_free(s);
		return;
	}
	rec = record_get(h, s->id, true);
	record_set(rec, "worktree", s->worktree);
	record_set(rec, "agent", r->agent);
	record_set_profile(rec, s->profile);
	records_save(h);
	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "worktree", s->worktree);
	cJSON_AddStringToObject(body, "workspace", r->remote);
	cJSON_AddStringToObject(body, "remote", r->remote);
	cJSON_AddItemToObject(body, "profile",
			      agent_profile_to_json(s->profile));
	send_msg(h, "session.spawned", NULL, s->id, body);
	resume_free(s->resume);
	s->resume = NULL;
}

/*
 * session.clone: a session with no laptop. Clones the repository with the
 * workspace's git credentials into a new folder, checks out the ref, lets
 * later pushes use the same credentials (a helper that reads them from
 * the agent's environment: nothing is written to disk), runs the setup,
 * then starts the agent.
 */
static void handle_clone(struct host *h, const struct proto_msg *m)
{
	const char *url = proto_str(m->body, "git");
	const char *ref = proto_str(m->body, "ref");
	const struct agent_profile *profile;
	git_clone_options co = GIT_CLONE_OPTIONS_INIT;
	struct clone_auth auth = { h, false, 0 };
	git_repository *repo = NULL;
	git_config *cfg = NULL;
	struct hsession *s;
	struct stat st;
	char *cause = NULL, *dir = NULL;
	int64_t timeout = 0;
	cJSON *pj;

	if (session_find(h, m->session) || h->ops.place == NULL) {
		send_error(h, m->id, m->session, PROTO_E_CONFLICT,
			   "this machine cannot take that session");
		return;
	}
	profile = agent_profile_find(h->profiles, proto_str(m->body, "agent"));
	if (profile == NULL) {
		cause = xasprintf("no agent profile \"%s\" here; a sandbox "
				  "has shell, claude and codex",
				  proto_str(m->body, "agent"));
		goto fail;
	}
	dir = h->ops.place(h, m->session, url, &cause);
	if (dir == NULL)
		goto fail;
	if (stat(dir, &st) == 0) {
		/* another session of the workspace has that folder */
		char *own = xasprintf("%s-%.8s", dir, m->session);

		free(dir);
		dir = own;
	}
	if (stat(dir, &st) == 0) {
		cause = xasprintf("%s exists already; stop the session there "
				  "first", dir);
		goto fail;
	}
	co.fetch_opts.callbacks.credentials = clone_credentials;
	co.fetch_opts.callbacks.payload = &auth;
	co.checkout_opts.checkout_strategy = GIT_CHECKOUT_SAFE;
	log_info("host", "session %s: cloning %s into %s", m->session, url,
		 dir);
	if (git_clone(&repo, url, dir, &co) < 0) {
		const git_error *ge = git_error_last();

		/* After a refused login libgit2's last error is not about
		 * it: say what happened in our words. */
		if (auth.tries)
			cause = xasprintf("cannot clone %s: the server refused "
					  "the login; check GIT_USERNAME and "
					  "GIT_PASSWORD (baton env set)", url);
		else if (auth.asked)
			cause = xasprintf("cannot clone %s: it needs a login; "
					  "set GIT_USERNAME and GIT_PASSWORD "
					  "with baton env set", url);
		else
			cause = xasprintf("cannot clone %s: %s", url,
					  ge ? ge->message : "unknown error");
		rm_rf(dir);
		goto fail;
	}
	if (ref && clone_checkout(repo, ref, &cause) < 0) {
		rm_rf(dir);
		goto fail;
	}
	if (git_repository_config(&cfg, repo) == 0)
		git_config_set_string(cfg, "credential.helper",
				      "!f() { test \"$1\" = get || exit 0; "
				      "echo \"username=${GIT_USERNAME:-git}\"; "
				      "echo \"password=$GIT_PASSWORD\"; }; f");
	git_config_free(cfg);

	s = session_new(h, m->session);
	s->worktree = dir;
	dir = NULL;
	proto_u64(m->body, "epoch", &s->epoch);
	pj = agent_profile_to_json(profile);
	agent_profile_from_json(pj, &s->profile, &cause);
	cJSON_Delete(pj);
	s->resume = xcalloc(1, sizeof(*s->resume));
	s->resume->agent = xstrdup(proto_str(m->body, "agent"));
	s->resume->remote = xstrdup(url);
	if (proto_int(m->body, "setup_timeout", &timeout) == 0 &&
	    timeout > 0 && timeout < 86400 * 7)
		s->resume->setup_timeout_s = (unsigned)timeout;
	if (proto_str(m->body, "setup"))
		s->resume->setup = xstrdup(proto_str(m->body, "setup"));
	if (h->ops.after_restore) {
		struct host_setup setup = { s->resume->setup,
					    s->resume->setup_timeout_s };

		h->ops.after_restore(h, s->worktree, &setup, clone_setup_done,
				     s);
	} else {
		clone_setup_done(h, s, 0, NULL);
	}
	git_repository_free(repo);
	return;
fail:
	log_warn("host", "session %s: cannot start: %s", m->session, cause);
	send_error(h, m->id, m->session, PROTO_E_FAILED, cause);
	git_repository_free(repo);
	free(cause);
	free(dir);
}

/* ---- suspend: stop, checkpoint, upload ---- */

static char **state_paths(struct hsession *s, const char *worktree)
{
	struct agent_vars vars = { s->id, s->host->home, worktree };

	return agent_expand_all(s->profile->state, &vars);
}

/* ---- workspace sync ---- */

#define SYNC_DEBOUNCE_MS 1500	/* quiet time after file events */
#define SYNC_PERIOD_S 60	/* the slow check; BATON_SYNC_INTERVAL */
#define SYNC_GAP_MS 5000	/* at most one upload this often */

static void sync_check_timer(uv_timer_t *t);

static void sync_tick_closed(uv_handle_t *h)
{
	free(h);
}

/* Adds a file's or a folder's (and its entries') sizes and times. */
static void sig_stat(crypto_generichash_state *st, const char *path,
		     int depth)
{
	struct stat sb;
	struct dirent *e;
	DIR *dir;

	crypto_generichash_update(st, (const unsigned char *)path,
				  strlen(path) + 1);
	if (lstat(path, &sb) < 0)
		return;
	crypto_generichash_update(st, (const unsigned char *)&sb.st_size,
				  sizeof(sb.st_size));
	crypto_generichash_update(st, (const unsigned char *)&sb.st_mtim,
				  sizeof(sb.st_mtim));
	crypto_generichash_update(st, (const unsigned char *)&sb.st_mode,
				  sizeof(sb.st_mode));
	if (!S_ISDIR(sb.st_mode) || depth == 0 || (dir = opendir(path)) == NULL)
		return;
	while ((e = readdir(dir)) != NULL) {
		char *child;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		child = xasprintf("%s/%s", path, e->d_name);
		sig_stat(st, child, depth - 1);
		free(child);
	}
	closedir(dir);
}

/*
 * A cheap signature of what a checkpoint would hold: HEAD, what git status
 * reports (its stat cache spares unchanged files a read), the sizes and
 * times of the changed and untracked files, and the agent's state. No file
 * is read whole.
 */
static int sync_signature(struct sync *y, uint64_t *out)
{
	struct hsession *s = y->s;
	git_status_options opts = GIT_STATUS_OPTIONS_INIT;
	git_status_list *list = NULL;
	crypto_generichash_state st;
	unsigned char hash[8];
	char **paths;
	git_oid head;

	opts.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED |
		     GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS |
		     GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
	if (git_status_list_new(&list, y->repo, &opts) < 0)
		return -EIO;
	crypto_generichash_init(&st, NULL, 0, sizeof(hash));
	if (git_reference_name_to_id(&head, y->repo, "HEAD") == 0)
		crypto_generichash_update(&st, head.id, sizeof(head.id));
	for (size_t i = 0; i < git_status_list_entrycount(list); i++) {
		const git_status_entry *e = git_status_byindex(list, i);
		const git_diff_delta *d = e->index_to_workdir
					  ? e->index_to_workdir
					  : e->head_to_index;
		char *path;

		crypto_generichash_update(&st, (const unsigned char *)
					  &e->status, sizeof(e->status));
		if (d == NULL)
			continue;
		path = xasprintf("%s/%s", s->worktree, d->new_file.path);
		sig_stat(&st, path, 0);
		free(path);
	}
	git_status_list_free(list);
	paths = state_paths(s, s->worktree);
	for (size_t i = 0; paths[i]; i++)
		sig_stat(&st, paths[i], 2);
	agent_strv_free(paths);
	crypto_generichash_final(&st, hash, sizeof(hash));
	memcpy(out, hash, sizeof(*out));
	return 0;
}

/* Makes a checkpoint while the agent runs and uploads what is missing. */
static void sync_upload(struct sync *y, uint64_t signature)
{
	struct hsession *s = y->s;
	struct host *h = s->host;
	char **paths = state_paths(s, s->worktree);
	size_t npaths = 0, nhaves = 0;
	struct buf pack = BUF_INIT;
	git_oid id, *haves;
	char *cause = NULL;
	const cJSON *item;
	cJSON *body;
	uint64_t t0 = now_ms();

	while (paths[npaths])
		npaths++;
	haves = xcalloc((size_t)cJSON_GetArraySize(y->haves) + 1,
			sizeof(*haves));
	cJSON_ArrayForEach(item, y->haves) {
		if (cJSON_IsString(item) &&
		    git_oid_fromstr(&haves[nhaves], item->valuestring) == 0)
			nhaves++;
	}
	if (checkpoint_create(y->repo, s->id, (const char *const *)paths,
			      npaths, &id, &cause) < 0 ||
	    checkpoint_pack(y->repo, &id, haves, nhaves, &pack, &cause) < 0) {
		log_warn("host", "session %s: sync skipped: %s", s->id, cause);
		goto out;
	}
	y->signature = signature;
	y->last_ms = t0;
	git_oid_tostr(y->pending, sizeof(y->pending), &id);
	send_pack(h, s->id, s->epoch, PROTO_BIN_SYNC, &pack);
	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "checkpoint", y->pending);
	proto_add_u64(body, "pack_bytes", pack.len);
	cJSON_AddItemToObject(body, "profile",
			      agent_profile_to_json(s->profile));
	snprintf(y->request, sizeof(y->request), "sync-%.12s", y->pending);
	send_msg(h, "session.synced", y->request, s->id, body);
	log_info("host", "session %s: synced checkpoint %.12s, %zu bytes of "
		 "objects in %" PRIu64 " ms", s->id, y->pending, pack.len,
		 now_ms() - t0);
out:
	agent_strv_free(paths);
	free(haves);
	free(cause);
	buf_free(&pack);
}

/* Uploads when the signature moved, at most once per SYNC_GAP_MS. */
static void sync_check(struct sync *y)
{
	uint64_t signature = 0;

	if (!y->s->host->welcomed || y->s->proc == NULL || y->s->suspending)
		return;
	if (sync_signature(y, &signature) < 0) {
		log_warn("host", "session %s: cannot read the worktree's "
			 "status for sync", y->s->id);
		return;
	}
	if (signature == y->signature)
		return;	/* nothing changed since the last upload */
	if (now_ms() - y->last_ms < SYNC_GAP_MS) {
		uv_timer_start(y->tick, sync_check_timer,
			       SYNC_GAP_MS - (now_ms() - y->last_ms),
			       uv_timer_get_repeat(y->tick));
		return;
	}
	sync_upload(y, signature);
}

static void sync_check_timer(uv_timer_t *t)
{
	sync_check(t->data);
}

static void sync_on_change(struct watch *w, void *arg)
{
	struct sync *y = arg;

	watch_refresh(w);	/* folders may have come or gone */
	sync_check(y);
}

/* Leaves out folders git ignores (build output, dependencies). */
static bool sync_skip(const char *rel, void *arg)
{
	struct sync *y = arg;
	int ignored = 0;

	return git_ignore_path_is_ignored(&ignored, y->repo, rel) == 0 &&
	       ignored;
}

/* Starts (or updates) the sync of s with the relay's haves. */
static void sync_start(struct hsession *s, const cJSON *haves)
{
	struct sync *y = s->sync;
	const char *env = getenv("BATON_SYNC_INTERVAL");
	unsigned period_s = SYNC_PERIOD_S;

	if (y) {
		cJSON_Delete(y->haves);
		y->haves = cJSON_Duplicate(haves, 1);
		return;
	}
	if (env && parse_seconds(env, &period_s) < 0)
		period_s = SYNC_PERIOD_S;
	y = xcalloc(1, sizeof(*y));
	y->s = s;
	y->haves = haves ? cJSON_Duplicate(haves, 1) : cJSON_CreateArray();
	if (git_repository_open(&y->repo, s->worktree) < 0) {
		log_warn("host", "session %s: cannot sync: %s is not a git "
			 "repository", s->id, s->worktree);
		cJSON_Delete(y->haves);
		free(y);
		return;
	}
	s->sync = y;
	y->tick = xcalloc(1, sizeof(*y->tick));
	uv_timer_init(s->host->loop, y->tick);
	y->tick->data = y;
	uv_timer_start(y->tick, sync_check_timer, 0,
		       (uint64_t)(period_s ? period_s : 1) * 1000);
	y->watch = watch_new(s->host->loop, s->worktree, SYNC_DEBOUNCE_MS,
			     sync_skip, sync_on_change, y);
	log_info("host", "session %s: sync on (%zu folders watched%s, a "
		 "check every %u s)", s->id,
		 y->watch ? watch_count(y->watch) : 0,
		 y->watch && watch_truncated(y->watch) ? ", more left to the "
		 "check" : "", period_s);
}

static void sync_stop(struct hsession *s)
{
	struct sync *y = s->sync;

	if (y == NULL)
		return;
	s->sync = NULL;
	watch_free(y->watch);
	uv_timer_stop(y->tick);
	uv_close((uv_handle_t *)y->tick, sync_tick_closed);
	git_repository_free(y->repo);
	cJSON_Delete(y->haves);
	free(y);
}

/* session.sync: the relay turns this session's sync on or off. */
static void handle_sync(struct hsession *s, const struct proto_msg *m)
{
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m->body, "on"))) {
		sync_start(s, cJSON_GetObjectItemCaseSensitive(m->body,
							       "have"));
	} else if (s->sync) {
		log_info("host", "session %s: sync off", s->id);
		sync_stop(s);
	}
}

/* The relay kept (or refused) an upload. */
static void sync_answered(struct hsession *s, const struct proto_msg *m)
{
	struct sync *y = s->sync;

	if (!strcmp(m->type, "ok")) {
		cJSON *rec = record_get(s->host, s->id, true);

		cJSON_AddItemToArray(y->haves, cJSON_CreateString(y->pending));
		/* If the relay moves the session on from this upload while we
		 * are away, a move back finds the worktree as it left. */
		record_set(rec, "synced", y->pending);
		records_save(s->host);
	} else {
		log_warn("host", "session %s: the relay did not keep the "
			 "sync: %s", s->id, proto_str(m->body, "message"));
		y->signature = 0;	/* try again at the next check */
	}
	y->request[0] = '\0';
}

static void handle_suspend(struct host *h, const struct proto_msg *m,
			   struct hsession *s)
{
	if (s->suspending || s->proc == NULL) {
		send_error(h, m->id, s->id, PROTO_E_CONFLICT,
			   "the session is not running here");
		return;
	}
	crash_point("source:suspend");
	sync_stop(s);	/* the move's own checkpoint follows */
	s->suspending = true;
	cJSON_Delete(s->suspend_haves);
	s->suspend_haves = cJSON_Duplicate(
		cJSON_GetObjectItemCaseSensitive(m->body, "have"), 1);
	log_info("host", "session %s: suspending for a move", s->id);
	pty_proc_stop(s->proc, STOP_GRACE_MS);
}

/* Starts the agent again after a failed suspend, so nothing is lost. */
static void suspend_abort(struct hsession *s, const char *why)
{
	char *cause = NULL;

	log_warn("host", "session %s: cannot suspend: %s", s->id, why);
	send_error(s->host, NULL, s->id, PROTO_E_FAILED, why);
	s->suspending = false;
	if (s->proc) {
		pty_proc_free(s->proc);
		s->proc = NULL;
	}
	if (agent_start(s, s->profile->resume, 0, 0, &cause) < 0) {
		log_error("host", "session %s: cannot restart the agent: %s",
			  s->id, cause);
		free(cause);
		session_free(s);
	}
}

static void send_pack(struct host *h, const char *session, uint64_t epoch,
		      uint16_t flags, const struct buf *pack)
{
	struct proto_bin hdr = { .kind = PROTO_BIN_PACK };
	size_t off = 0;

	proto_uuid_parse(session, hdr.session);
	hdr.epoch = (uint32_t)epoch;
	do {
		size_t n = pack->len - off > PROTO_CHUNK ? PROTO_CHUNK
							 : pack->len - off;

		hdr.flags = flags | (off + n == pack->len ? PROTO_BIN_LAST : 0);
		link_send_binary(h->link, &hdr, pack->data + off, n);
		hdr.seq++;
		off += n;
	} while (off < pack->len);
}

/* The agent has stopped: checkpoint the worktree and upload it. */
static void suspend_finish(struct hsession *s)
{
	struct host *h = s->host;
	char **paths = state_paths(s, s->worktree);
	size_t npaths = 0;
	git_repository *repo = NULL;
	struct buf pack = BUF_INIT;
	git_oid id, *haves = NULL;
	size_t nhaves = 0;
	char hex[GIT_OID_HEXSZ + 1];
	char *cause = NULL;
	const cJSON *item;
	cJSON *body, *rec;
	uint64_t t0 = now_ms();

	while (paths[npaths])
		npaths++;
	if (git_repository_open(&repo, s->worktree) < 0) {
		cause = xasprintf("cannot open the worktree %s: %s",
				  s->worktree, git_error_last()
				  ? git_error_last()->message : "unknown");
		goto fail;
	}
	if (checkpoint_create(repo, s->id, (const char *const *)paths,
			      npaths, &id, &cause) < 0)
		goto fail;
	crash_point("source:checkpoint");
	haves = xcalloc((size_t)cJSON_GetArraySize(s->suspend_haves) + 1,
			sizeof(*haves));
	cJSON_ArrayForEach(item, s->suspend_haves) {
		if (cJSON_IsString(item) &&
		    git_oid_fromstr(&haves[nhaves], item->valuestring) == 0)
			nhaves++;
	}
	if (checkpoint_pack(repo, &id, haves, nhaves, &pack, &cause) < 0)
		goto fail;
	git_oid_tostr(hex, sizeof(hex), &id);
	log_info("host", "session %s: checkpoint %.12s, pack of %zu bytes "
		 "in %" PRIu64 " ms", s->id, hex, pack.len, now_ms() - t0);

	/* Every output chunk goes before the checkpoint's report, so the
	 * relay has the whole transcript when it fences. */
	pump(h, true);
	send_pack(h, s->id, s->epoch, 0, &pack);
	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "checkpoint", hex);
	proto_add_u64(body, "seq", s->seq);
	proto_add_u64(body, "pack_bytes", pack.len);
	cJSON_AddItemToObject(body, "profile",
			      agent_profile_to_json(s->profile));
	send_msg(h, "session.suspended", NULL, s->id, body);

	rec = record_get(h, s->id, true);
	record_set(rec, "worktree", s->worktree);
	record_set(rec, "left", hex);
	record_add_checkpoint(rec, hex);
	records_save(h);
	session_free(s);
	goto out;
fail:
	suspend_abort(s, cause);
out:
	agent_strv_free(paths);
	free(haves);
	free(cause);
	buf_free(&pack);
	git_repository_free(repo);
}

/* ---- resume: fetch, restore, start ---- */

/* Whether a worktree folder holds a repository (.git, a folder or file). */
static bool has_repository(const char *path)
{
	struct stat st;
	char *git = xasprintf("%s/.git", path);
	bool found = stat(git, &st) == 0;

	free(git);
	return found;
}

/* Chooses the worktree and opens (or creates) its repository. */
static int resume_open(struct hsession *s, cJSON *rec, char **cause)
{
	struct host *h = s->host;
	struct resume *r = s->resume;
	const char *known = rec ? proto_str(rec, "worktree") : NULL;

	if (known) {
		r->worktree = xstrdup(known);
	} else if (h->ops.place) {
		r->worktree = h->ops.place(h, s->id, r->remote, cause);
		if (r->worktree == NULL)
			return -EINVAL;
	} else {
		*cause = xasprintf("this machine has never held session %s, "
				   "so it has no worktree for it", s->id);
		return -ENOENT;
	}
	if (!has_repository(r->worktree)) {
		r->created = true;
		return checkpoint_repo_init(r->worktree, r->remote, NULL,
					    &r->repo, cause);
	}
	if (git_repository_open(&r->repo, r->worktree) < 0) {
		*cause = xasprintf("cannot open the worktree %s: %s",
				   r->worktree, git_error_last()
				   ? git_error_last()->message : "unknown");
		return -EIO;
	}
	return 0;
}

static bool odb_has(git_repository *repo, const char *hex)
{
	git_odb *odb = NULL;
	git_oid oid;
	bool has;

	if (git_oid_fromstr(&oid, hex) < 0 || git_repository_odb(&odb, repo))
		return false;
	has = git_odb_exists(odb, &oid);
	git_odb_free(odb);
	return has;
}

static void handle_resume(struct host *h, const struct proto_msg *m)
{
	struct hsession *s;
	struct resume *r;
	char *cause = NULL;
	cJSON *rec, *body, *have;
	const cJSON *profile;
	int64_t timeout = 0;

	if (session_find(h, m->session)) {
		send_error(h, m->id, m->session, PROTO_E_CONFLICT,
			   "that session is already here");
		return;
	}
	s = session_new(h, m->session);
	s->resume = r = xcalloc(1, sizeof(*r));
	r->checkpoint = xstrdup(proto_str(m->body, "checkpoint"));
	r->agent = xstrdup(proto_str(m->body, "agent"));
	if (proto_str(m->body, "remote"))
		r->remote = xstrdup(proto_str(m->body, "remote"));
	profile = cJSON_GetObjectItemCaseSensitive(m->body, "profile");
	if (cJSON_IsObject(profile))
		r->profile = cJSON_Duplicate(profile, 1);
	if (proto_str(m->body, "setup"))
		r->setup = xstrdup(proto_str(m->body, "setup"));
	if (proto_int(m->body, "setup_timeout", &timeout) == 0 &&
	    timeout > 0 && timeout < 86400 * 7)
		r->setup_timeout_s = (unsigned)timeout;
	proto_u64(m->body, "epoch", &r->epoch);
	proto_u64(m->body, "seq", &r->seq);
	s->epoch = r->epoch;
	s->seq = r->seq;
	log_info("host", "session %s: resuming checkpoint %.12s", s->id,
		 r->checkpoint);

	rec = record_get(h, s->id, false);
	if (resume_open(s, rec, &cause) < 0) {
		resume_fail(s, cause);
		free(cause);
		return;
	}
	if (odb_has(r->repo, r->checkpoint)) {
		resume_objects_ready(s);
		return;
	}

	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "checkpoint", r->checkpoint);
	have = cJSON_AddArrayToObject(body, "have");
	if (rec) {
		const cJSON *item;

		cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(
					  rec, "checkpoints"))
			if (cJSON_IsString(item) &&
			    odb_has(r->repo, item->valuestring))
				cJSON_AddItemToArray(have, cJSON_CreateString(
						     item->valuestring));
	}
	send_msg(h, "objects.want", NULL, s->id, body);
}

static void handle_pack(struct host *h, const struct proto_bin *b)
{
	char id[PROTO_UUID_LEN + 1];
	struct hsession *s;
	char *cause = NULL;

	proto_uuid_format(b->session, id);
	s = session_find(h, id);
	if (s == NULL || s->resume == NULL)
		return;
	if (s->resume->unpack == NULL &&
	    checkpoint_unpack_new(s->resume->repo, &s->resume->unpack,
				  &cause) < 0)
		goto fail;
	if (checkpoint_unpack_append(s->resume->unpack, b->data, b->len,
				     &cause) < 0)
		goto fail;
	return;
fail:
	resume_fail(s, cause);
	free(cause);
}

static void handle_objects_sent(struct host *h, struct hsession *s)
{
	struct resume *r = s->resume;
	char *cause = NULL;

	if (r == NULL)
		return;
	if (r->unpack && checkpoint_unpack_commit(r->unpack, &cause) < 0) {
		resume_fail(s, cause);
		free(cause);
		return;
	}
	checkpoint_unpack_free(r->unpack);
	r->unpack = NULL;
	crash_point("target:objects");
	if (!odb_has(r->repo, r->checkpoint)) {
		resume_fail(s, "the relay's objects did not hold the "
			    "checkpoint");
		return;
	}
	resume_objects_ready(s);
}

/* A folder name beside `worktree` that does not exist yet. */
static char *beside_path(const char *worktree, const char *session)
{
	struct stat st;

	for (int n = 1; n < 1000; n++) {
		char *p = n == 1 ? xasprintf("%s-baton-%.8s", worktree,
					     session)
				 : xasprintf("%s-baton-%.8s-%d", worktree,
					     session, n);

		if (lstat(p, &st) < 0)
			return p;
		free(p);
	}
	return xasprintf("%s-baton-%s", worktree, session);
}

static void resume_started(struct hsession *s);
static void after_restore_done(struct host *h, void *ctx, int status,
			       const char *why);

/* The checkpoint's objects are here: restore it and start the agent. */
static void resume_objects_ready(struct hsession *s)
{
	struct host *h = s->host;
	struct resume *r = s->resume;
	struct checkpoint_restore_opts ro;
	struct checkpoint_restore_result res = { 0 };
	struct checkpoint_info info = { 0 };
	cJSON *rec = record_get(h, s->id, false);
	const char *left = rec ? proto_str(rec, "left") : NULL;
	const char *synced = rec ? proto_str(rec, "synced") : NULL;
	const struct agent_profile *local;
	char *cause = NULL, *aside_dir = NULL;
	char **paths = NULL;
	size_t npaths = 0;
	git_oid want, left_oid, synced_oid;
	int same = 0;

	git_oid_fromstr(&want, r->checkpoint);
	if (checkpoint_read(r->repo, &want, &info, &cause) < 0)
		goto fail;

	/*
	 * Profile: ours of that name. Only a sandbox, which has no profiles
	 * of its own, takes the one the source ran: a laptop never runs a
	 * command line it did not configure itself.
	 */
	local = agent_profile_find(h->profiles, r->agent);
	if (local) {
		cJSON *pj = agent_profile_to_json(local);

		agent_profile_from_json(pj, &s->profile, &cause);
		cJSON_Delete(pj);
	} else if (r->profile && !strcmp(h->kind, "sandbox")) {
		agent_profile_from_json(r->profile, &s->profile, &cause);
	} else {
		cause = xasprintf("no agent profile \"%s\" on this machine; "
				  "add it with --agents FILE", r->agent);
	}
	if (s->profile == NULL)
		goto fail;

	/* Has the worktree changed since the session left it? */
	if (r->created) {
		same = 1;	/* nothing of anyone's is there */
	} else if (left && git_oid_fromstr(&left_oid, left) == 0 &&
		   odb_has(r->repo, left)) {
		if (checkpoint_matches(r->repo, &left_oid, &same, &cause) < 0)
			goto fail;
	}
	/* It left from a sync while this machine was away (offline move). */
	if (!same && synced && git_oid_fromstr(&synced_oid, synced) == 0 &&
	    odb_has(r->repo, synced) &&
	    checkpoint_matches(r->repo, &synced_oid, &same, &cause) < 0)
		goto fail;
	if (!same && checkpoint_matches(r->repo, &want, &same, &cause) < 0)
		goto fail;
	if (!same) {
		git_repository *beside = NULL;
		char *dir = beside_path(r->worktree, s->id);

		if (checkpoint_repo_init(dir, r->remote, r->repo, &beside,
					 &cause) < 0) {
			free(dir);
			goto fail;
		}
		r->note = xasprintf("the worktree %s changed since the "
				    "session left it, so nothing there was "
				    "touched; the session was restored beside "
				    "it in %s", r->worktree, dir);
		log_warn("host", "session %s: %s", s->id, r->note);
		git_repository_free(r->repo);
		r->repo = beside;
		free(r->worktree);
		r->worktree = dir;
	}

	s->worktree = xstrdup(r->worktree);
	paths = state_paths(s, s->worktree);
	while (paths[npaths])
		npaths++;
	aside_dir = xasprintf("%s/set-aside/%s-%lld", h->state_dir, s->id,
			      (long long)time(NULL));
	memset(&ro, 0, sizeof(ro));
	ro.agent_paths = (const char *const *)paths;
	ro.agent_count = npaths;
	ro.set_aside_dir = aside_dir;
	if (s->profile->rewrite_cwd && info.worktree &&
	    strcmp(info.worktree, s->worktree)) {
		ro.rewrite_from = info.worktree;
		ro.rewrite_to = s->worktree;
	}
	if (checkpoint_restore(r->repo, &want, &ro, &res, &cause) < 0)
		goto fail;
	crash_point("target:restored");
	if (res.set_aside) {
		r->set_aside = xstrdup(res.set_aside);
		log_info("host", "session %s: %zu files the restore replaced "
			 "were kept in %s", s->id, res.files_set_aside,
			 res.set_aside);
	}
	if (res.set_aside_ref) {
		char *note = xasprintf("%s%scommits the restore moved a branch "
				       "away from are kept as %s",
				       r->note ? r->note : "",
				       r->note ? "; " : "", res.set_aside_ref);

		free(r->note);
		r->note = note;
		log_info("host", "session %s: %s", s->id, note);
	}
	checkpoint_restore_result_clear(&res);
	checkpoint_info_clear(&info);
	agent_strv_free(paths);
	free(aside_dir);

	if (h->ops.after_restore) {
		struct host_setup setup = { r->setup, r->setup_timeout_s };

		h->ops.after_restore(h, s->worktree, &setup,
				     after_restore_done, s);
	} else
		resume_started(s);
	return;
fail:
	checkpoint_restore_result_clear(&res);
	checkpoint_info_clear(&info);
	agent_strv_free(paths);
	free(aside_dir);
	resume_fail(s, cause);
	free(cause);
}

static void after_restore_done(struct host *h, void *ctx, int status,
			       const char *why)
{
	struct hsession *s = ctx;

	if (status != 0) {
		resume_fail(s, why ? why : "the setup script failed");
		return;
	}
	resume_started(s);
}

/* Starts the agent with its resume command and reports the move done. */
static void resume_started(struct hsession *s)
{
	struct host *h = s->host;
	struct resume *r = s->resume;
	char *cause = NULL;
	cJSON *rec, *body;

	if (agent_start(s, s->profile->resume, 0, 0, &cause) < 0) {
		resume_fail(s, cause);
		free(cause);
		return;
	}
	rec = record_get(h, s->id, true);
	record_set(rec, "worktree", s->worktree);
	record_set(rec, "agent", r->agent);
	record_set(rec, "left", NULL);
	record_set(rec, "synced", NULL);
	record_set_profile(rec, s->profile);
	record_add_checkpoint(rec, r->checkpoint);
	records_save(h);

	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "worktree", s->worktree);
	cJSON_AddStringToObject(body, "checkpoint", r->checkpoint);
	if (r->set_aside)
		cJSON_AddStringToObject(body, "set_aside", r->set_aside);
	if (r->note)
		cJSON_AddStringToObject(body, "note", r->note);
	send_msg(h, "session.resumed", NULL, s->id, body);
	log_info("host", "session %s: resumed in %s", s->id, s->worktree);
	crash_point("target:resumed");
	resume_free(r);
	s->resume = NULL;
}

static void resume_fail(struct hsession *s, const char *why)
{
	log_warn("host", "session %s: cannot resume: %s", s->id, why);
	send_error(s->host, NULL, s->id, PROTO_E_FAILED, why);
	session_free(s);
}

/*
 * The relay asks for a session this machine should be running: its agent
 * died with the daemon, or a move stopped half-way. The worktree here has
 * everything since the last checkpoint, so the agent just starts again.
 */
static void handle_restart(struct host *h, const struct proto_msg *m)
{
	cJSON *rec = record_get(h, m->session, false);
	const char *worktree = rec ? proto_str(rec, "worktree") : NULL;
	const cJSON *pj = rec ? cJSON_GetObjectItemCaseSensitive(rec, "profile")
			      : NULL;
	struct hsession *s = session_find(h, m->session);
	char *cause = NULL;
	cJSON *body;

	if (s == NULL) {
		if (worktree == NULL || pj == NULL) {
			send_error(h, m->id, m->session, PROTO_E_NOT_FOUND,
				   "this machine has no worktree for that "
				   "session");
			return;
		}
		s = session_new(h, m->session);
		s->worktree = xstrdup(worktree);
		proto_u64(m->body, "epoch", &s->epoch);
		proto_u64(m->body, "seq", &s->seq);
		if (agent_profile_from_json(pj, &s->profile, &cause) < 0 ||
		    agent_start(s, s->profile->resume, 0, 0, &cause) < 0) {
			log_warn("host", "session %s: cannot restart: %s",
				 s->id, cause);
			send_error(h, m->id, s->id, PROTO_E_FAILED, cause);
			free(cause);
			session_free(s);
			return;
		}
		record_set(rec, "left", NULL);
		records_save(h);
		log_info("host", "session %s: restarted in %s", s->id,
			 s->worktree);
	}
	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "worktree", s->worktree);
	send_msg(h, "session.restarted", m->id, s->id, body);
}

/* ---- messages from the relay ---- */

static void handle_input(struct host *h, const struct proto_bin *b)
{
	char id[PROTO_UUID_LEN + 1];
	struct hsession *s;

	proto_uuid_format(b->session, id);
	s = session_find(h, id);
	if (s == NULL || s->proc == NULL || s->suspending)
		return;
	for (size_t i = 0; i < RECENT_INPUTS; i++)
		if (s->inputs[i] == b->seq)
			return;
	s->inputs[s->input_next] = b->seq;
	s->input_next = (s->input_next + 1) % RECENT_INPUTS;
	pty_proc_write(s->proc, b->data, b->len);
}

/* Another machine owns the session now: end the agent, keep the files. */
static void handle_stand_down(struct host *h, const char *id,
			      struct hsession *s)
{
	uint8_t session[16];

	/* Its output is the new owner's business now. */
	if (proto_uuid_parse(id, session) == 0)
		outbox_ack(h->out, session, UINT64_MAX);
	if (s == NULL)
		return;
	log_warn("host", "session %s: the relay says another machine owns "
		 "it now; stopping the agent here and keeping the files in %s",
		 s->id, s->worktree ? s->worktree : "?");
	session_free(s);
}

static void handle_welcome(struct host *h, const struct proto_msg *m)
{
	const char *machine = proto_str(m->body, "machine");
	int e;

	if (machine && h->machine_file &&
	    (h->machine == NULL || strcmp(h->machine, machine))) {
		free(h->machine);
		h->machine = xstrdup(machine);
		e = identity_machine_save(h->machine_file, h->relay_url,
					  machine, h->name,
					  proto_str(m->body, "user"));
		if (e < 0)
			log_warn("host", "cannot write %s: %s; the next start "
				 "needs the token again", h->machine_file,
				 strerror(-e));
	}
	if (h->token && !strcmp(h->kind, "sandbox")) {
		/* The bootstrap credential is spent; the key does from now. */
		sodium_memzero(h->token, strlen(h->token));
		free(h->token);
		h->token = NULL;
	}
	log_info("host", "registered with the relay as %s %s",
		 h->kind, h->name ? h->name : h->machine);
	if (h->ops.connected)
		h->ops.connected(h);
	h->welcomed = true;
	h->cert_warned = false;
	link_healthy(h->link);
	outbox_rewind(h->out);
	pump(h, false);
}

static void on_stop_timer(uv_timer_t *t)
{
	struct host *h = t->data;

	if (h->stop_cb)
		h->stop_cb(h, h->stop_arg);
	else
		host_shutdown(h);
}

/* Wipes and frees the remote environment. */
static void env_free(struct host *h)
{
	for (size_t i = 0; i < h->env_count; i++) {
		sodium_memzero(h->env[i], strlen(h->env[i]));
		free(h->env[i]);
	}
	free(h->env);
	h->env = NULL;
	h->env_count = 0;
}

/*
 * Takes the workspace's remote environment, sealed to this machine's key:
 * agents and the setup script started from now get it, and its values are
 * hidden from our logs and from every session's output.
 */
static void handle_env(struct host *h, const struct proto_msg *m)
{
	const char *b64 = proto_str(m->body, "sealed");
	size_t len = strlen(b64), bin_len = 0, plain_len = 0, n = 0;
	unsigned char *bin = xmalloc(len), *plain = NULL;
	cJSON *o = NULL;

	if (strcmp(h->kind, "sandbox")) {
		log_warn("host", "ignored a remote environment: only "
			 "sandboxes take one");
		goto out;
	}
	if (sodium_base642bin(bin, len, b64, len, NULL, &bin_len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) < 0 ||
	    secrets_open_from(h->id.pk, h->id.sk, bin, bin_len, &plain,
			      &plain_len) < 0 ||
	    !cJSON_IsObject(o = cJSON_Parse((char *)plain))) {
		log_error("host", "the remote environment does not open with "
			  "this sandbox's key; setup and agents run without "
			  "it");
		goto out;
	}
	env_free(h);
	h->env = xcalloc((size_t)cJSON_GetArraySize(o) + 1, sizeof(char *));
	for (cJSON *v = o->child; v; v = v->next) {
		if (!cJSON_IsString(v) || v->string == NULL)
			continue;
		log_redact_add(v->valuestring);
		for (struct hsession *s = h->sessions; s; s = s->next)
			if (s->scrub)
				scrub_add(s->scrub, v->valuestring);
		h->env[n++] = xasprintf("%s=%s", v->string, v->valuestring);
		sodium_memzero(v->valuestring, strlen(v->valuestring));
	}
	h->env_count = n;
	log_info("host", "took %zu remote environment variable(s)", n);
out:
	if (plain) {
		sodium_memzero(plain, plain_len);
		free(plain);
	}
	cJSON_Delete(o);
	free(bin);
}

char *const *host_env(const struct host *h)
{
	return h->env;
}

void host_set_worktree_env(struct host *h, const char *worktree,
			   char *const *entries)
{
	cJSON *arr = cJSON_CreateArray();

	for (size_t i = 0; entries && entries[i]; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(entries[i]));
	if (h->worktree_env == NULL)
		h->worktree_env = cJSON_CreateObject();
	cJSON_DeleteItemFromObjectCaseSensitive(h->worktree_env, worktree);
	cJSON_AddItemToObject(h->worktree_env, worktree, arr);
}

struct scrub *host_scrub_new(const struct host *h)
{
	struct scrub *sc = scrub_new();

	for (size_t i = 0; i < h->env_count; i++)
		scrub_add(sc, strchr(h->env[i], '=') + 1);
	return sc;
}

/* Proves this machine's key by signing the relay's fresh nonce. */
static void handle_challenge(struct host *h, const struct proto_msg *m)
{
	unsigned char nonce[IDENTITY_NONCE_BYTES];
	char sig[IDENTITY_SIG_BYTES * 2 + 1];
	const char *hex = proto_str(m->body, "nonce");
	size_t got = 0;
	cJSON *body;

	if (h->welcomed || strlen(hex) != sizeof(nonce) * 2 ||
	    sodium_hex2bin(nonce, sizeof(nonce), hex, strlen(hex), NULL,
			   &got, NULL) < 0 || got != sizeof(nonce)) {
		log_warn("host", "ignored a malformed challenge");
		return;
	}
	identity_sign(&h->id, nonce, sig);
	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "signature", sig);
	send_msg(h, "challenge.answer", m->id, NULL, body);
}

/* The relay stops an idle sandbox: it exits, unless a session came. */
static void handle_machine_stop(struct host *h, const struct proto_msg *m)
{
	for (struct hsession *s = h->sessions; s; s = s->next) {
		if (s->proc || s->resume) {
			send_error(h, m->id, NULL, PROTO_E_CONFLICT, "a "
				   "session runs here; not stopping");
			return;
		}
	}
	log_info("host", "the relay stops this idle machine");
	h->exit_status = 0;
	uv_timer_start(&h->stop_timer, on_stop_timer, 0, 0);
}

/* The relay refused our hello: retrying would not help, so stop. */
static void refused(struct host *h, const char *code)
{
	if ((!strcmp(code, PROTO_E_UNAUTHORIZED) ||
	     !strcmp(code, PROTO_E_FORBIDDEN)) && h->machine_file)
		log_error("host", "the relay refused this machine (its "
			  "reason is above); pair it with `baton-local pair "
			  "--relay %s` and start again", h->relay_url);
	else if (!strcmp(code, PROTO_E_UNAUTHORIZED) ||
		 !strcmp(code, PROTO_E_FORBIDDEN))
		log_error("host", "the relay refused this sandbox (its reason "
			  "is above); stopping");
	else if (!strcmp(code, PROTO_E_VERSION))
		log_error("host", "the relay speaks another protocol "
			  "version; update this program");
	else if (!strcmp(code, PROTO_E_STALE))
		log_error("host", "the relay has replaced this sandbox with a "
			  "newer generation; stopping");
	else
		return;
	h->exit_status = 1;
	uv_timer_start(&h->stop_timer, on_stop_timer, 0, 0);
}

/*
 * Whether a message from the relay may lead to libgit2: all but those
 * about the link itself, so that an idle daemon never starts it.
 */
static bool needs_git(const char *type)
{
	static const char *const link_only[] = {
		"challenge", "welcome", "env.sealed", "machine.stop", "ping",
		"pong", "output.ack",
	};

	for (size_t i = 0; i < ARRAY_SIZE(link_only); i++)
		if (!strcmp(type, link_only[i]))
			return false;
	return true;
}

static void on_text(struct link *l, const char *text, size_t len, void *arg)
{
	struct host *h = arg;
	struct hsession *s = NULL;
	struct proto_msg m;
	const char *code;
	char cause[256];

	if (proto_msg_decode(text, len, PROTO_FROM_RELAY, &m, &code, cause,
			     sizeof(cause)) < 0) {
		log_warn("host", "bad message from the relay: %s", cause);
		proto_msg_free(&m);
		return;
	}
	if (m.session)
		s = session_find(h, m.session);
	if (needs_git(m.type))
		checkpoint_lib_start();

	if (!strcmp(m.type, "challenge")) {
		handle_challenge(h, &m);
	} else if (!strcmp(m.type, "env.sealed")) {
		handle_env(h, &m);
	} else if (!strcmp(m.type, "machine.stop")) {
		handle_machine_stop(h, &m);
	} else if (!strcmp(m.type, "welcome")) {
		handle_welcome(h, &m);
	} else if (!strcmp(m.type, "error")) {
		log_warn("host", "the relay says: %s (%s)",
			 proto_str(m.body, "message"),
			 proto_str(m.body, "code"));
		if (!h->welcomed)
			refused(h, proto_str(m.body, "code"));
		if (s && s->sync && s->sync->request[0] && m.id &&
		    !strcmp(m.id, s->sync->request))
			sync_answered(s, &m);
		if (s && s->resume)
			resume_fail(s, proto_str(m.body, "message"));
	} else if (!strcmp(m.type, "session.spawn")) {
		handle_spawn(h, &m);
	} else if (!strcmp(m.type, "session.clone")) {
		handle_clone(h, &m);
	} else if (!strcmp(m.type, "session.resume")) {
		handle_resume(h, &m);
	} else if (!strcmp(m.type, "session.restart")) {
		handle_restart(h, &m);
	} else if (!strcmp(m.type, "ping")) {
		send_msg(h, "pong", m.id, NULL, NULL);
	} else if (!strcmp(m.type, "output.ack")) {
		handle_ack(h, &m);
	} else if (!strcmp(m.type, "session.stand_down")) {
		handle_stand_down(h, m.session, s);
	} else if (s == NULL) {
		log_debug("host", "%s for a session not here", m.type);
	} else if (!strcmp(m.type, "session.sync")) {
		handle_sync(s, &m);
	} else if (s->sync && s->sync->request[0] && m.id &&
		   !strcmp(m.id, s->sync->request)) {
		sync_answered(s, &m);
	} else if (!strcmp(m.type, "session.suspend")) {
		handle_suspend(h, &m, s);
	} else if (!strcmp(m.type, "objects.sent")) {
		handle_objects_sent(h, s);
	} else if (!strcmp(m.type, "session.stop") && s->proc) {
		pty_proc_stop(s->proc, STOP_GRACE_MS);
	} else if (!strcmp(m.type, "session.resize") && s->proc) {
		int64_t cols = 0, rows = 0;

		proto_int(m.body, "cols", &cols);
		proto_int(m.body, "rows", &rows);
		if (cols > 0 && rows > 0 && cols < 10000 && rows < 10000)
			pty_proc_resize(s->proc, (unsigned short)cols,
					(unsigned short)rows);
	}
	proto_msg_free(&m);
}

static void on_binary(struct link *l, const struct proto_bin *b, void *arg)
{
	struct host *h = arg;

	if (b->kind == PROTO_BIN_INPUT)
		handle_input(h, b);
	else if (b->kind == PROTO_BIN_PACK) {
		checkpoint_lib_start();
		handle_pack(h, b);
	}
}

static void on_open(struct link *l, void *arg)
{
	struct host *h = arg;
	cJSON *body = cJSON_CreateObject();
	cJSON *held;

	cJSON_AddNumberToObject(body, "version", PROTO_VERSION);
	cJSON_AddStringToObject(body, "role", "machine");
	cJSON_AddStringToObject(body, "key", h->id.pk_hex);
	if (h->token)
		cJSON_AddStringToObject(body, "token", h->token);
	cJSON_AddStringToObject(body, "kind", h->kind);
	if (h->name)
		cJSON_AddStringToObject(body, "name", h->name);
	if (h->machine)
		cJSON_AddStringToObject(body, "machine", h->machine);
	if (h->generation)
		cJSON_AddStringToObject(body, "generation", h->generation);
	held = cJSON_AddArrayToObject(body, "sessions");
	for (struct hsession *s = h->sessions; s; s = s->next) {
		cJSON *o;

		if (s->proc == NULL)
			continue;
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "id", s->id);
		proto_add_u64(o, "epoch", s->epoch);
		cJSON_AddItemToArray(held, o);
	}
	send_msg(h, "hello", NULL, NULL, body);
}

static void on_close(struct link *l, const char *reason, void *arg)
{
	struct host *h = arg;

	if (h->welcomed) {
		log_warn("host", "lost the relay (%s); reconnecting", reason);
	} else if (link_cert_refused(l) && !h->cert_warned) {
		/* a warning once; every retry after it is only info */
		log_warn("host", "cannot reach the relay (%s); retrying",
			 reason);
		h->cert_warned = true;
	} else {
		log_info("host", "cannot reach the relay (%s); retrying",
			 reason);
	}
	h->welcomed = false;

	/* A restore waiting for objects cannot finish on this link. */
	for (struct hsession *s = h->sessions, *next; s; s = next) {
		next = s->next;
		if (s->resume)
			resume_fail(s, "lost the relay during the restore");
	}
}

static const struct link_callbacks host_link_cb = {
	on_open, on_text, on_binary, on_close,
};

int host_new(uv_loop_t *loop, const struct host_opts *opts,
	     struct host **out, char **cause)
{
	struct link_opts lo = { 0 };
	struct host *h = xcalloc(1, sizeof(*h));
	const char *home = getenv("HOME");
	char *spill, *key_path;
	int e;

	h->loop = loop;
	if (opts->ops)
		h->ops = *opts->ops;
	h->data = opts->data;
	h->kind = xstrdup(opts->kind);
	h->name = opts->name ? xstrdup(opts->name) : NULL;
	h->machine = opts->machine ? xstrdup(opts->machine) : NULL;
	h->generation = opts->generation ? xstrdup(opts->generation) : NULL;
	h->token = opts->token ? xstrdup(opts->token) : NULL;
	h->relay_url = xstrdup(opts->relay_url);
	h->state_dir = xstrdup(opts->state_dir);
	h->home = xstrdup(home ? home : "/");
	h->records_path = xasprintf("%s/sessions.json", h->state_dir);
	spill = xasprintf("%s/output.spill", h->state_dir);
	h->out = outbox_new(spill, OUTBOX_MEMORY, OUTBOX_DISK);
	free(spill);
	if (h->token)
		log_redact_add(h->token);

	e = mkdir_p(h->state_dir, 0700);
	if (e < 0) {
		*cause = xasprintf("cannot create the state folder %s: %s",
				   h->state_dir, strerror(-e));
		goto fail;
	}
	key_path = xasprintf("%s/machine.key", h->state_dir);
	e = identity_load(key_path, &h->id, cause);
	free(key_path);
	if (e < 0)
		goto fail;
	if (!strcmp(h->kind, "local")) {
		h->machine_file = xasprintf("%s/machine.json", h->state_dir);
		if (h->machine == NULL) {
			e = identity_machine_load(h->machine_file,
						  h->relay_url, &h->machine,
						  cause);
			if (e < 0)
				goto fail;
		}
		/* Paired: the key proves this laptop, and a token in the
		 * environment (perhaps a client's, set for `baton`) must
		 * not take its place. */
		if (h->machine && h->token) {
			log_info("host", "this laptop is paired with %s; "
				 "the token given is not used",
				 h->relay_url);
			sodium_memzero(h->token, strlen(h->token));
			free(h->token);
			h->token = NULL;
		}
		if (h->machine == NULL && h->token == NULL) {
			e = -ENOKEY;
			*cause = xasprintf("this laptop is not paired with %s;"
					   " run `baton-local pair --relay %s`"
					   " (or give a machine token)",
					   h->relay_url, h->relay_url);
			goto fail;
		}
	}
	e = agent_profiles_load(opts->agents_file, &h->profiles, cause);
	if (e < 0)
		goto fail;
	e = records_load(h, cause);
	if (e < 0)
		goto fail;

	lo.url = opts->relay_url;
	lo.ca_file = opts->ca_file;
	lo.insecure = opts->insecure;
	lo.liveness = opts->liveness;
	lo.reconnect = true;
	lo.cb = &host_link_cb;
	lo.arg = h;
	e = link_new(loop, &lo, &h->link, cause);
	if (e < 0)
		goto fail;
	uv_timer_init(loop, &h->flow);
	h->flow.data = h;
	uv_timer_init(loop, &h->stop_timer);
	h->stop_timer.data = h;
	*out = h;
	return 0;
fail:
	host_free(h);
	return e;
}

static void on_flow_closed(uv_handle_t *handle)
{
}

void host_shutdown(struct host *h)
{
	h->stopping = true;
	while (h->sessions) {
		struct hsession *s = h->sessions;

		if (s->proc && pty_proc_running(s->proc))
			log_info("host", "session %s: stopping the agent; "
				 "its files stay in %s", s->id,
				 s->worktree ? s->worktree : "?");
		session_free(s);
	}
	uv_timer_stop(&h->flow);
	uv_close((uv_handle_t *)&h->flow, on_flow_closed);
	uv_timer_stop(&h->stop_timer);
	uv_close((uv_handle_t *)&h->stop_timer, on_flow_closed);
	link_shutdown(h->link);
}

void host_free(struct host *h)
{
	if (h == NULL)
		return;
	while (h->sessions)
		session_free(h->sessions);
	outbox_free(h->out);
	buf_free(&h->scratch);
	if (h->link)
		link_free(h->link);
	agent_profiles_free(h->profiles);
	cJSON_Delete(h->records);
	log_redact_clear();
	free(h->kind);
	free(h->name);
	free(h->machine);
	free(h->generation);
	if (h->token)
		sodium_memzero(h->token, strlen(h->token));
	free(h->token);
	identity_clear(&h->id);
	env_free(h);
	cJSON_Delete(h->worktree_env);
	free(h->relay_url);
	free(h->machine_file);
	free(h->state_dir);
	free(h->records_path);
	free(h->home);
	free(h);
}

void host_on_stop(struct host *h, void (*cb)(struct host *h, void *arg),
		  void *arg)
{
	h->stop_cb = cb;
	h->stop_arg = arg;
}

int host_exit_status(const struct host *h)
{
	return h->exit_status;
}

void *host_data(const struct host *h)
{
	return h->data;
}

const char *host_state_dir(const struct host *h)
{
	return h->state_dir;
}

uv_loop_t *host_loop(const struct host *h)
{
	return h->loop;
}

void host_setup_log(struct host *h, const char *text, bool done, int status)
{
	cJSON *body = cJSON_CreateObject();

	cJSON_AddStringToObject(body, "text", text);
	cJSON_AddBoolToObject(body, "done", done);
	if (done)
		cJSON_AddNumberToObject(body, "status", status);
	send_msg(h, "setup.log", NULL, NULL, body);
}
