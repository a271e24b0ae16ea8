/*
 * main.c: baton-sandbox, the daemon a sandbox container starts at boot.
 *
 * It reads everything from its environment (a container gets nothing
 * else), registers with the relay as its sandbox machine, restores the
 * sessions the relay moves to it under $BATON_WORKSPACE, runs the
 * repository's .baton/setup once per worktree (stdin closed, time-limited,
 * output kept), and then runs sessions exactly like baton-local.
 */
#define _GNU_SOURCE
#include "checkpoint.h"
#include "daemon.h"
#include "host.h"
#include "log.h"
#include "pty.h"
#include "secrets.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SETUP_TIMEOUT_S 600

static const char usage_text[] =
"usage: baton-sandbox [--log-format json|text]\n"
"       baton-sandbox --help | --version\n"
"\n"
"The Baton sandbox daemon, started by the relay's launcher or a container\n"
"at boot. It takes its settings from the environment, and only the log\n"
"format from its arguments too:\n"
"  BATON_RELAY        the relay URL, e.g. wss://relay.example:8443\n"
"  BATON_CA           a PEM file of the CAs to trust for the relay's\n"
"                     certificate (default: the system's)\n"
"  BATON_INSECURE     1: allow plain ws:// to a relay on another machine\n"
"  BATON_BOOTSTRAP    its one-time bootstrap credential; the first\n"
"                     connection binds this sandbox's own key with it\n"
"  BATON_MACHINE      its machine record id\n"
"  BATON_GENERATION   its generation (a new container is a new one)\n"
"  BATON_WORKSPACE    where worktrees are restored\n"
"  BATON_SETUP_TIMEOUT  seconds the setup script may run (default 600)\n"
"  BATON_LOG          error, warn, info (default) or debug\n"
"  BATON_LOG_FORMAT   text (default) or json: one JSON object a line\n"
"                     (--log-format says the same)\n"
"  BATON_PING_INTERVAL, BATON_DEAD_AFTER  liveness times in seconds\n"
"                     (defaults 20 and 60)\n"
"  HOME               its own home; agent state is restored under it\n"
"\n"
"Exit status: 0 stopped cleanly, 1 cannot start or the relay refused it\n"
"(the message says why), 2 usage.\n";

struct sandbox {
	char *workspace;
	unsigned setup_timeout_s;
};

/* One run of .baton/setup. */
struct setup_run {
	struct host *host;
	host_done_cb done;
	void *ctx;
	uv_process_t proc;
	uv_pipe_t out;
	uv_timer_t timer;
	int handles;
	int status;
	bool timed_out;
	bool exited;
	bool out_closed;
	char *marker;
	char *log_path;
	char *env_path;		/* $BATON_ENV: what the script leaves agents */
	char *worktree;
	FILE *log;
	struct scrub *scrub;	/* hides remote env values in its output */
};

/* The folder for a repository: the last part of its remote URL. */
static char *sandbox_place(struct host *h, const char *session,
			   const char *remote, char **cause)
{
	struct sandbox *sb = host_data(h);
	const char *base = remote ? strrchr(remote, '/') : NULL;
	char *name, *dot, *path;

	name = xstrdup(base && base[1] ? base + 1 : "worktree");
	dot = strstr(name, ".git");
	if (dot && dot[4] == '\0' && dot != name)
		*dot = '\0';
	for (char *p = name; *p; p++)
		if (*p == ':' || *p == '\\')
			*p = '-';
	if (!strcmp(name, ".") || !strcmp(name, "..")) {
		free(name);
		name = xstrdup("worktree");
	}
	path = xasprintf("%s/%s", sb->workspace, name);
	free(name);
	return path;
}

static void setup_finish(struct setup_run *run);

static void setup_closed(uv_handle_t *handle)
{
	struct setup_run *run = handle->data;

	if (--run->handles == 0)
		setup_finish(run);
}

static void setup_alloc(uv_handle_t *handle, size_t size, uv_buf_t *buf)
{
	buf->base = xmalloc(4096);
	buf->len = 4096;
}

static void setup_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
	struct setup_run *run = stream->data;

	struct buf clean = { 0 };

	/* Its log and what the relay shows both get the scrubbed text. */
	if (n > 0)
		scrub_feed(run->scrub, buf->base, (size_t)n, &clean);
	else if (n < 0)
		scrub_flush(run->scrub, &clean);
	if (clean.len > 0) {
		char *text = xstrndup(clean.data, clean.len);

		fwrite(clean.data, 1, clean.len, run->log);
		fflush(run->log);
		host_setup_log(run->host, text, false, 0);
		free(text);
	}
	if (n < 0)
		uv_close((uv_handle_t *)stream, setup_closed);
	buf_free(&clean);
	free(buf->base);
}

static void setup_exit(uv_process_t *proc, int64_t status, int sig)
{
	struct setup_run *run = proc->data;

	run->status = sig ? 128 + sig : (int)status;
	run->exited = true;
	uv_timer_stop(&run->timer);
	uv_close((uv_handle_t *)&run->timer, setup_closed);
	uv_close((uv_handle_t *)proc, setup_closed);
}

static void setup_timeout(uv_timer_t *t)
{
	struct setup_run *run = t->data;

	run->timed_out = true;
	log_warn("sandbox", "setup script still running after its time "
		 "limit; stopping it");
	kill(-run->proc.pid, SIGTERM);
	kill(-run->proc.pid, SIGKILL);
}

/*
 * Hands the agents of a worktree the NAME=VALUE lines the setup script
 * wrote to $BATON_ENV; other lines (blank, comments, not a shell name)
 * are skipped, and the file is read at most 64 KiB.
 */
static void setup_env_load(struct host *h, const char *worktree,
			   const char *path)
{
	char *text = NULL, *line, *save = NULL;
	char **entries = NULL;
	size_t n = 0;

	if (file_read_all(path, 64 * 1024, &text, NULL) < 0)
		return;
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		size_t name = strspn(line, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				     "abcdefghijklmnopqrstuvwxyz0123456789_");

		if (name == 0 || line[name] != '=' ||
		    (line[0] >= '0' && line[0] <= '9'))
			continue;
		entries = xrealloc(entries, (n + 2) * sizeof(*entries));
		entries[n++] = line;
	}
	if (entries) {
		entries[n] = NULL;
		host_set_worktree_env(h, worktree, entries);
		log_info("sandbox", "the setup script left %zu variable(s) for "
			 "the agents in %s", n, worktree);
	}
	free(entries);
	free(text);
}

/* All handles are closed: report how the setup script ended. */
static void setup_finish(struct setup_run *run)
{
	char *why = NULL;
	int status = run->status;

	if (run->timed_out) {
		why = xasprintf("start_timeout: the setup script did not "
				"finish in time; its log is in %s",
				run->log_path);
		status = status ? status : 124;
	} else if (status != 0) {
		why = xasprintf("start_error: the setup script failed with "
				"status %d; its log is in %s", status,
				run->log_path);
	} else {
		int fd = open(run->marker, O_WRONLY | O_CREAT | O_CLOEXEC,
			      0600);

		if (fd >= 0)
			close(fd);
	}
	fprintf(run->log, "[baton] setup finished with status %d%s\n",
		status, run->timed_out ? " (timed out)" : "");
	fclose(run->log);
	if (status == 0)
		setup_env_load(run->host, run->worktree, run->env_path);
	host_setup_log(run->host, why ? why : "setup finished", true, status);
	log_info("sandbox", "setup script ended with status %d", status);
	run->done(run->host, run->ctx, status, why);
	free(why);
	scrub_free(run->scrub);
	free(run->marker);
	free(run->log_path);
	free(run->env_path);
	free(run->worktree);
	free(run);
}

/* The setup script's environment: ours, the remote one, then ONE more. */
static int env_with(char *const *remote, char *one, char ***out,
		    char **why)
{
	size_t n = 0;
	char **extra;
	int e;

	while (remote && remote[n])
		n++;
	extra = xcalloc(n + 2, sizeof(*extra));
	if (n)
		memcpy(extra, remote, n * sizeof(*extra));
	extra[n] = one;
	e = pty_env_build(extra, out, why);
	free(extra);
	return e;
}

/*
 * The file that says a setup has run: one per worktree and script text,
 * so a changed script (or the workspace's own instead of the repository's)
 * runs again.
 */
static char *setup_marker(struct host *h, const char *worktree,
			  const char *script)
{
	crypto_generichash_state st;
	unsigned char hash[8];
	char hex[17], *text = NULL;
	size_t len = 0;

	crypto_generichash_init(&st, NULL, 0, sizeof(hash));
	crypto_generichash_update(&st, (const unsigned char *)worktree,
				  strlen(worktree) + 1);
	if (file_read_all(script, 1024 * 1024, &text, &len) == 0)
		crypto_generichash_update(&st, (unsigned char *)text, len);
	free(text);
	crypto_generichash_final(&st, hash, sizeof(hash));
	sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
	return xasprintf("%s/setup-done-%s", host_state_dir(h), hex);
}

/* Writes the workspace's own setup script where it can be run. */
static char *setup_script_write(struct host *h, const char *hex,
				const char *text, char **why)
{
	char *path = xasprintf("%s/setup-script-%s", host_state_dir(h), hex);
	int e = file_write_atomic(path, text, strlen(text), 0700);

	if (e < 0) {
		*why = xasprintf("start_error: cannot write the workspace's "
				 "setup script to %s: %s", path,
				 strerror(-e));
		free(path);
		return NULL;
	}
	return path;
}

/*
 * Runs the setup once per worktree: the workspace's script from its
 * settings when one is set, else the repository's .baton/setup; then
 * lets the resume go on.
 */
static void sandbox_after_restore(struct host *h, const char *worktree,
				  const struct host_setup *setup,
				  host_done_cb done, void *ctx)
{
	struct sandbox *sb = host_data(h);
	uv_process_options_t po;
	uv_stdio_container_t stdio[3];
	struct setup_run *run;
	char *script = xasprintf("%s/.baton/setup", worktree);
	unsigned char hash[8];
	char hex[17];
	char *args[5], *why = NULL, **env = NULL, *extra[2] = { NULL };
	unsigned timeout_s = setup->timeout_s ? setup->timeout_s
					      : sb->setup_timeout_s;
	uv_file fds[2];
	struct stat st;
	int e;

	crypto_generichash(hash, sizeof(hash), (unsigned char *)worktree,
			   strlen(worktree), NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
	if (setup->script) {
		free(script);
		script = setup_script_write(h, hex, setup->script, &why);
		if (script == NULL) {
			done(h, ctx, 1, why);
			free(why);
			return;
		}
	} else if (lstat(script, &st) < 0 || !S_ISREG(st.st_mode)) {
		free(script);
		done(h, ctx, 0, NULL);
		return;
	}

	run = xcalloc(1, sizeof(*run));
	run->host = h;
	run->done = done;
	run->ctx = ctx;
	run->marker = setup_marker(h, worktree, script);
	run->log_path = xasprintf("%s/setup-%s.log", host_state_dir(h), hex);
	run->env_path = xasprintf("%s/setup-env-%s", host_state_dir(h), hex);
	run->worktree = xstrdup(worktree);
	if (access(run->marker, F_OK) == 0) {
		/* ran before for this worktree: its variables still hold */
		setup_env_load(h, worktree, run->env_path);
		goto skip;
	}
	if (file_write_atomic(run->env_path, "", 0, 0600) < 0) {
		why = xasprintf("start_error: cannot make %s for $BATON_ENV",
				run->env_path);
		goto skip;
	}
	run->log = fopen(run->log_path, "a");
	if (run->log == NULL) {
		why = xasprintf("cannot write the setup log %s: %s",
				run->log_path, strerror(errno));
		goto skip;
	}
	log_info("sandbox", "running %s%s (time limit %u s)", script,
		 setup->script ? ", the workspace's setup script" : "",
		 timeout_s);
	fprintf(run->log, "[baton] running %s\n", setup->script
		? "the workspace's setup script (from its settings)"
		: ".baton/setup");

	/* The remote environment reaches the script, never its output; what
	 * the script writes to $BATON_ENV reaches the agents. */
	extra[0] = xasprintf("BATON_ENV=%s", run->env_path);
	e = env_with(host_env(h), extra[0], &env, &why);
	if (e < 0)
		goto skip;
	run->scrub = host_scrub_new(h);

	/* One pipe for stdout and stderr, so the log keeps their order. */
	e = uv_pipe(fds, 0, 0);
	if (e < 0) {
		why = xasprintf("cannot make a pipe for the setup script: %s",
				uv_strerror(e));
		goto skip;
	}
	uv_pipe_init(host_loop(h), &run->out, 0);
	uv_pipe_open(&run->out, fds[0]);
	uv_timer_init(host_loop(h), &run->timer);
	run->out.data = run->timer.data = run->proc.data = run;
	memset(&po, 0, sizeof(po));
	memset(stdio, 0, sizeof(stdio));
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_INHERIT_FD;
	stdio[1].data.fd = fds[1];
	stdio[2].flags = UV_INHERIT_FD;
	stdio[2].data.fd = fds[1];
	/* As CI runners do: the first failing command ends the script, and
	 * with bash a pipeline fails when any part fails (curl ... | sh). */
	if (access("/bin/bash", X_OK) == 0) {
		args[0] = "/bin/bash";
		args[1] = "-eo";
		args[2] = "pipefail";
		args[3] = script;
		args[4] = NULL;
	} else {
		args[0] = "/bin/sh";
		args[1] = "-e";
		args[2] = script;
		args[3] = NULL;
	}
	po.file = args[0];
	po.args = args;
	po.cwd = worktree;
	po.env = env;
	po.stdio = stdio;
	po.stdio_count = 3;
	po.exit_cb = setup_exit;
	po.flags = UV_PROCESS_DETACHED;
	e = uv_spawn(host_loop(h), &run->proc, &po);
	close(fds[1]);
	free(env);
	free(extra[0]);
	extra[0] = NULL;
	free(script);
	if (e < 0) {
		run->status = 127;
		fprintf(run->log, "[baton] cannot start the setup script: "
			"%s\n", uv_strerror(e));
		run->handles = 3;
		uv_close((uv_handle_t *)&run->proc, setup_closed);
		uv_close((uv_handle_t *)&run->out, setup_closed);
		uv_close((uv_handle_t *)&run->timer, setup_closed);
		return;
	}
	run->handles = 3;
	uv_read_start((uv_stream_t *)&run->out, setup_alloc, setup_read);
	uv_timer_start(&run->timer, setup_timeout, (uint64_t)timeout_s * 1000,
		       0);
	return;

skip:
	if (run->log)
		fclose(run->log);
	done(h, ctx, why ? 1 : 0, why);
	free(why);
	free(env);
	free(extra[0]);
	scrub_free(run->scrub);
	free(script);
	free(run->marker);
	free(run->log_path);
	free(run->env_path);
	free(run->worktree);
	free(run);
}

static const struct host_ops sandbox_ops = {
	sandbox_place,
	sandbox_after_restore,
};

static const char *need_env(const char *name)
{
	const char *v = getenv(name);

	if (v == NULL || v[0] == '\0') {
		fprintf(stderr, "baton-sandbox: %s is not set; the launcher "
			"or the container must provide it (see --help)\n",
			name);
		exit(1);
	}
	return v;
}

int main(int argc, char **argv)
{
	const char *log_env = getenv("BATON_LOG");
	const char *timeout_env = getenv("BATON_SETUP_TIMEOUT");
	const char *ca, *insecure;
	struct sandbox sb = { 0 };
	struct host_opts ho = { 0 };
	struct host *h = NULL;
	char *state, *cause = NULL, *bootstrap = NULL;
	uv_loop_t loop;
	int rc;

	if (argc > 1 && (!strcmp(argv[1], "--help") ||
			 !strcmp(argv[1], "-h"))) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "--version")) {
		printf("baton-sandbox %s\n", BATON_VERSION);
		return 0;
	}
	log_init("baton-sandbox", LOG_LEVEL_INFO);
	if (argc == 3 && !strcmp(argv[1], "--log-format")) {
		if (log_format_set(argv[2]) < 0) {
			fprintf(stderr, "baton-sandbox: --log-format takes "
				"json or text, not '%s'\n", argv[2]);
			return 2;
		}
	} else if (argc > 1) {
		fprintf(stderr, "baton-sandbox: takes no arguments but "
			"--log-format; settings come from the environment "
			"(see --help)\n");
		return 2;
	}
	if (log_env && log_level_parse(log_env) >= 0)
		log_threshold = log_level_parse(log_env);

	ho.relay_url = need_env("BATON_RELAY");
	ca = getenv("BATON_CA");
	ho.ca_file = ca && ca[0] ? ca : NULL;
	insecure = getenv("BATON_INSECURE");
	ho.insecure = insecure && insecure[0] && strcmp(insecure, "0");
	/* Unset so that no agent or setup script inherits it; once spent the
	 * key in the state folder proves who we are. */
	if (getenv("BATON_BOOTSTRAP") && getenv("BATON_BOOTSTRAP")[0]) {
		char *start = getenv("BATON_BOOTSTRAP");

		bootstrap = xstrdup(start);
		/* Wiped where it lies: /proc/PID/environ shows it no more. */
		sodium_memzero(start, strlen(start));
	}
	unsetenv("BATON_BOOTSTRAP");
	ho.token = bootstrap;
	ho.machine = need_env("BATON_MACHINE");
	ho.generation = need_env("BATON_GENERATION");
	sb.workspace = xstrdup(need_env("BATON_WORKSPACE"));
	need_env("HOME");
	sb.setup_timeout_s = timeout_env ? (unsigned)atoi(timeout_env) : 0;
	if (sb.setup_timeout_s == 0)
		sb.setup_timeout_s = SETUP_TIMEOUT_S;
	state = xasprintf("%s/.baton-sandbox", getenv("HOME"));

	if (sodium_init() < 0) {
		fprintf(stderr, "baton-sandbox: libsodium failed to start\n");
		return 1;
	}
	log_route_libraries();
	uv_loop_init(&loop);
	if (mkdir_p(sb.workspace, 0700) < 0) {
		fprintf(stderr, "baton-sandbox: cannot create %s: %s\n",
			sb.workspace, strerror(errno));
		return 1;
	}

	ho.kind = "sandbox";
	ho.state_dir = state;
	ho.ops = &sandbox_ops;
	ho.data = &sb;
	if (host_new(&loop, &ho, &h, &cause) < 0) {
		fprintf(stderr, "baton-sandbox: %s\n", cause);
		free(cause);
		return 1;
	}
	log_info("sandbox", "machine %s generation %s, relay %s%s%s, "
		 "workspace %s", ho.machine, ho.generation, ho.relay_url,
		 ho.ca_file ? ", CAs from " : "",
		 ho.ca_file ? ho.ca_file : "", sb.workspace);
	rc = daemon_run(&loop, h);
	if (bootstrap)
		sodium_memzero(bootstrap, strlen(bootstrap));
	free(bootstrap);
	free(state);
	free(sb.workspace);
	checkpoint_lib_stop();
	return rc;
}
