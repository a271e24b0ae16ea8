/*
 * launcher.c: the embedded sandbox launcher. It starts baton-sandbox as a
 * local process in its own home and workspace folders under the relay's
 * data directory, with its credentials in the environment, the way a
 * container would receive them; nothing of the relay's user's home is
 * passed on.
 */
#define _GNU_SOURCE
#include "relay.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sandbox_proc {
	uv_process_t proc;
	uv_timer_t kill_timer;
	struct launcher *owner;
	char *machine_id;
	bool exited;
	int handles;		/* open libuv handles */
	struct sandbox_proc *next;
};

struct launcher {
	uv_loop_t *loop;
	char *bin;
	char *data_dir;
	char *ca_file;		/* BATON_CA for sandboxes, or NULL */
	bool insecure;		/* BATON_INSECURE=1 for sandboxes */
	launcher_exit_cb on_exit;
	void *arg;
	struct sandbox_proc *procs;
};

struct launcher *launcher_new(uv_loop_t *loop, const char *sandbox_bin,
			      const char *data_dir, launcher_exit_cb on_exit,
			      void *arg)
{
	struct launcher *l = xcalloc(1, sizeof(*l));

	l->loop = loop;
	l->bin = xstrdup(sandbox_bin);
	l->data_dir = xstrdup(data_dir);
	l->on_exit = on_exit;
	l->arg = arg;
	return l;
}

void launcher_set_trust(struct launcher *l, const char *ca_file,
			bool insecure)
{
	free(l->ca_file);
	l->ca_file = ca_file ? xstrdup(ca_file) : NULL;
	l->insecure = insecure;
}

static void unlink_proc(struct launcher *l, struct sandbox_proc *sp)
{
	for (struct sandbox_proc **p = &l->procs; *p; p = &(*p)->next) {
		if (*p == sp) {
			*p = sp->next;
			return;
		}
	}
}

static void on_handle_closed(uv_handle_t *h)
{
	struct sandbox_proc *sp = h->data;

	if (--sp->handles > 0)
		return;
	free(sp->machine_id);
	free(sp);
}

static void on_proc_exit(uv_process_t *proc, int64_t status, int sig)
{
	struct sandbox_proc *sp = proc->data;
	struct launcher *l = sp->owner;
	int code = sig ? 128 + sig : (int)status;

	log_info("launcher", "sandbox %s exited with status %d",
		 sp->machine_id, code);
	sp->exited = true;
	unlink_proc(l, sp);
	if (l->on_exit)
		l->on_exit(sp->machine_id, code, l->arg);
	uv_timer_stop(&sp->kill_timer);
	uv_close((uv_handle_t *)&sp->kill_timer, on_handle_closed);
	uv_close((uv_handle_t *)&sp->proc, on_handle_closed);
}

static char *env_entry(const char *name, const char *value)
{
	return xasprintf("%s=%s", name, value);
}

int launcher_start(struct launcher *l, const struct store_machine *m,
		   const char *relay_url, const char *token, char **cause)
{
	uv_process_options_t opts;
	uv_stdio_container_t stdio[3];
	struct sandbox_proc *sp;
	char *root, *home, *workspace, *log_path, *gen;
	char *env[20];
	char *args[2];
	size_t n = 0;
	int logfd, r;

	root = xasprintf("%s/sandboxes/%s", l->data_dir, m->id);
	home = xasprintf("%s/home", root);
	workspace = xasprintf("%s/workspace", root);
	log_path = xasprintf("%s/sandbox.log", root);
	gen = xasprintf("%lld", (long long)m->generation);
	if ((r = mkdir_p(home, 0700)) < 0 ||
	    (r = mkdir_p(workspace, 0700)) < 0) {
		*cause = xasprintf("cannot create the sandbox folders under "
				   "%s: %s", root, strerror(-r));
		goto out;
	}
	logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		     0600);
	if (logfd < 0) {
		r = -errno;
		*cause = xasprintf("cannot open %s: %s", log_path,
				   strerror(errno));
		goto out;
	}

	env[n++] = env_entry("PATH", getenv("PATH") ? getenv("PATH")
					    : "/usr/bin:/bin");
	env[n++] = env_entry("HOME", home);
	env[n++] = env_entry("LANG", "C.UTF-8");
	env[n++] = env_entry("TERM", "xterm-256color");
	env[n++] = env_entry("BATON_RELAY", relay_url);
	env[n++] = env_entry("BATON_BOOTSTRAP", token);
	env[n++] = env_entry("BATON_MACHINE", m->id);
	env[n++] = env_entry("BATON_GENERATION", gen);
	env[n++] = env_entry("BATON_WORKSPACE", workspace);
	if (l->ca_file)
		env[n++] = env_entry("BATON_CA", l->ca_file);
	if (l->insecure)
		env[n++] = env_entry("BATON_INSECURE", "1");
	if (getenv("BATON_LOG"))
		env[n++] = env_entry("BATON_LOG", getenv("BATON_LOG"));
	/* fault injection for the crash tests (common/crash.h) */
	if (getenv("BATON_CRASH_AT"))
		env[n++] = env_entry("BATON_CRASH_AT",
				     getenv("BATON_CRASH_AT"));
	if (getenv("BATON_CRASH_ONCE"))
		env[n++] = env_entry("BATON_CRASH_ONCE",
				     getenv("BATON_CRASH_ONCE"));
	if (getenv("BATON_PING_INTERVAL"))
		env[n++] = env_entry("BATON_PING_INTERVAL",
				     getenv("BATON_PING_INTERVAL"));
	if (getenv("BATON_DEAD_AFTER"))
		env[n++] = env_entry("BATON_DEAD_AFTER",
				     getenv("BATON_DEAD_AFTER"));
	env[n] = NULL;
	args[0] = l->bin;
	args[1] = NULL;

	memset(&opts, 0, sizeof(opts));
	memset(stdio, 0, sizeof(stdio));
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_INHERIT_FD;
	stdio[1].data.fd = logfd;
	stdio[2].flags = UV_INHERIT_FD;
	stdio[2].data.fd = logfd;
	opts.file = l->bin;
	opts.args = args;
	opts.env = env;
	opts.cwd = workspace;
	opts.stdio = stdio;
	opts.stdio_count = 3;
	opts.exit_cb = on_proc_exit;
	opts.flags = UV_PROCESS_DETACHED;

	sp = xcalloc(1, sizeof(*sp));
	sp->owner = l;
	sp->machine_id = xstrdup(m->id);
	sp->proc.data = sp;
	sp->kill_timer.data = sp;
	r = uv_spawn(l->loop, &sp->proc, &opts);
	close(logfd);
	for (size_t i = 0; i < n; i++)
		free(env[i]);
	if (r < 0) {
		*cause = xasprintf("cannot start %s: %s (use --sandbox-bin "
				   "to name the baton-sandbox program)",
				   l->bin, uv_strerror(r));
		sp->handles = 1;
		uv_close((uv_handle_t *)&sp->proc, on_handle_closed);
		goto out;
	}
	uv_timer_init(l->loop, &sp->kill_timer);
	sp->handles = 2;
	sp->next = l->procs;
	l->procs = sp;
	log_info("launcher", "started sandbox %s (generation %s, pid %d), "
		 "log in %s", m->id, gen, sp->proc.pid, log_path);
out:
	free(root);
	free(home);
	free(workspace);
	free(log_path);
	free(gen);
	return r < 0 ? r : 0;
}

bool launcher_running(const struct launcher *l, const char *machine_id)
{
	for (struct sandbox_proc *sp = l->procs; sp; sp = sp->next)
		if (!strcmp(sp->machine_id, machine_id))
			return true;
	return false;
}

static void on_kill_timer(uv_timer_t *t)
{
	struct sandbox_proc *sp = t->data;

	if (!sp->exited) {
		log_warn("launcher", "sandbox %s did not stop; killing it",
			 sp->machine_id);
		uv_process_kill(&sp->proc, SIGKILL);
	}
}

void launcher_stop_all(struct launcher *l, unsigned grace_ms)
{
	for (struct sandbox_proc *sp = l->procs; sp; sp = sp->next) {
		uv_process_kill(&sp->proc, SIGTERM);
		uv_timer_start(&sp->kill_timer, on_kill_timer, grace_ms, 0);
	}
}

size_t launcher_count(const struct launcher *l)
{
	size_t n = 0;

	for (struct sandbox_proc *sp = l->procs; sp; sp = sp->next)
		n++;
	return n;
}

void launcher_free(struct launcher *l)
{
	if (l == NULL)
		return;
	free(l->bin);
	free(l->data_dir);
	free(l->ca_file);
	free(l);
}
