/*
 * launcher.c: starts a sandbox for each machine record. The embedded
 * process launcher (the default) runs baton-sandbox as a local process in
 * its own home and workspace folders under the relay's data directory. The
 * command launcher runs the operator's command instead (a container
 * runtime, a cluster job), which starts baton-sandbox wherever it likes.
 * Either way the credentials go in the environment only, the way a
 * container receives them, and nothing of the relay's user's home is
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

#define COMMAND_PREFIX "command:"
#define TEMPLATE_BLANKS " \t\n"	/* between the words of a template */

/* The placeholders of a command template, in var_names order. */
enum launch_var {
	VAR_MACHINE,		/* the machine record's id */
	VAR_GENERATION,
	VAR_WORKSPACE,		/* the workspace id */
	VAR_USER,
	VAR_RELAY,		/* the URL sandboxes connect to */
	VAR_HOME,		/* the folders the process launcher uses */
	VAR_WORKDIR,
	VAR_COUNT
};

static const char *const var_names[VAR_COUNT] = {
	"machine", "generation", "workspace", "user", "relay", "home",
	"workdir",
};

/* A command line from --sandbox-launcher or --sandbox-stop. */
struct launcher_template {
	char **words;		/* NULL-terminated; placeholders checked */
};

/* A program the launcher runs and waits for. */
struct sandbox_proc {
	uv_process_t proc;
	uv_timer_t kill_timer;
	struct launcher *owner;
	char *machine_id;
	char **stop_args;	/* its --sandbox-stop command, or NULL */
	bool stopper;		/* it is a --sandbox-stop command */
	bool exited;
	int handles;		/* open libuv handles */
	struct sandbox_proc *next;
};

/* A sandbox whose command exited 0: it runs on by itself. */
struct sandbox_away {
	char *machine_id;
	char **stop_args;	/* how to stop it with the relay */
	struct sandbox_away *next;
};

/* The launcher: how it starts sandboxes, and what it started. */
struct launcher {
	uv_loop_t *loop;
	char *bin;
	char *data_dir;
	char *ca_file;		/* BATON_CA for sandboxes, or NULL */
	bool insecure;		/* BATON_INSECURE=1 for sandboxes */
	struct launcher_template *start;	/* NULL: the process launcher */
	struct launcher_template *stop;		/* NULL: SIGTERM */
	bool stopping;		/* launcher_stop_all was called */
	launcher_exit_cb on_exit;
	void *arg;
	struct sandbox_proc *procs;	/* running, stop commands too */
	struct sandbox_away *away;
};

/* Frees a NULL-terminated array of strings. */
static void args_free(char **args)
{
	if (args == NULL)
		return;
	for (size_t i = 0; args[i]; i++)
		free(args[i]);
	free(args);
}

/* Whether two NULL-terminated arrays of strings hold the same words. */
static bool args_equal(char **a, char **b)
{
	size_t i;

	for (i = 0; a[i] && b[i]; i++)
		if (strcmp(a[i], b[i]))
			return false;
	return a[i] == NULL && b[i] == NULL;
}

/* The placeholder named by the len bytes at name, or -1. */
static int var_find(const char *name, size_t len)
{
	for (int i = 0; i < VAR_COUNT; i++)
		if (strlen(var_names[i]) == len &&
		    !strncmp(var_names[i], name, len))
			return i;
	return -1;
}

/* Checks that every '{' in word opens a known placeholder. */
static int template_check_word(const char *word, char **cause)
{
	for (const char *p = strchr(word, '{'); p; p = strchr(p, '{')) {
		const char *end = strchr(p, '}');

		if (end == NULL) {
			*cause = xasprintf("'{' without '}' in '%s'", word);
			return -EINVAL;
		}
		if (var_find(p + 1, (size_t)(end - p - 1)) < 0) {
			*cause = xasprintf("unknown placeholder %.*s in '%s'; "
					   "the template may use {machine}, "
					   "{generation}, {workspace}, "
					   "{user}, {relay}, {home} and "
					   "{workdir}", (int)(end - p + 1), p,
					   word);
			return -EINVAL;
		}
		p = end + 1;
	}
	return 0;
}

/* Parses a --sandbox-launcher or --sandbox-stop command template. */
int launcher_template_parse(const char *spec,
			    struct launcher_template **out, char **cause)
{
	struct launcher_template *t;
	const char *p;
	size_t n = 0;
	int e = 0;

	*out = NULL;
	if (strncmp(spec, COMMAND_PREFIX, strlen(COMMAND_PREFIX))) {
		*cause = xasprintf("'%s' is not command:TEMPLATE", spec);
		return -EINVAL;
	}
	p = spec + strlen(COMMAND_PREFIX);
	t = xcalloc(1, sizeof(*t));
	/* at most one word in every two bytes, and the NULL */
	t->words = xcalloc(strlen(p) / 2 + 2, sizeof(*t->words));
	while (*p && e == 0) {
		size_t len = strcspn(p, TEMPLATE_BLANKS);

		if (len == 0) {
			p++;
			continue;
		}
		t->words[n] = xstrndup(p, len);
		e = template_check_word(t->words[n++], cause);
		p += len;
	}
	if (e == 0 && n == 0) {
		*cause = xstrdup("the command template is empty; give the "
				 "program and its arguments after command:, "
				 "e.g. command:docker run ... IMAGE");
		e = -EINVAL;
	}
	if (e < 0) {
		launcher_template_free(t);
		return e;
	}
	*out = t;
	return 0;
}

/* Frees a template from launcher_template_parse. */
void launcher_template_free(struct launcher_template *t)
{
	if (t == NULL)
		return;
	args_free(t->words);
	free(t);
}

/* The template's words with the placeholders replaced by vals. */
static char **template_expand(const struct launcher_template *t,
			      const char *const vals[VAR_COUNT])
{
	size_t n = 0;
	char **args;

	while (t->words[n])
		n++;
	args = xcalloc(n + 1, sizeof(*args));
	for (size_t i = 0; i < n; i++) {
		struct buf b = BUF_INIT;
		const char *p = t->words[i], *open, *end;

		/* template_check_word made sure every '{' is closed. */
		while ((open = strchr(p, '{')) != NULL) {
			end = strchr(open, '}');
			buf_append(&b, p, (size_t)(open - p));
			buf_puts(&b, vals[var_find(open + 1,
						   (size_t)(end - open - 1))]);
			p = end + 1;
		}
		buf_puts(&b, p);
		args[i] = buf_detach(&b, NULL);
	}
	return args;
}

/* A process launcher until launcher_set_command says otherwise. */
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

/* Sets the CA file and BATON_INSECURE the sandboxes get. */
void launcher_set_trust(struct launcher *l, const char *ca_file,
			bool insecure)
{
	free(l->ca_file);
	l->ca_file = ca_file ? xstrdup(ca_file) : NULL;
	l->insecure = insecure;
}

/* Starts sandboxes with start, and stops them with stop, from now on. */
void launcher_set_command(struct launcher *l,
			  struct launcher_template *start,
			  struct launcher_template *stop)
{
	launcher_template_free(l->start);
	launcher_template_free(l->stop);
	l->start = start;
	l->stop = stop;
}

/* Takes sp off the list of running programs. */
static void unlink_proc(struct launcher *l, struct sandbox_proc *sp)
{
	for (struct sandbox_proc **p = &l->procs; *p; p = &(*p)->next) {
		if (*p == sp) {
			*p = sp->next;
			return;
		}
	}
}

/* Frees sp once its last libuv handle is closed. */
static void on_handle_closed(uv_handle_t *h)
{
	struct sandbox_proc *sp = h->data;

	if (--sp->handles > 0)
		return;
	free(sp->machine_id);
	args_free(sp->stop_args);
	free(sp);
}

/*
 * A command that exited 0 has started the sandbox somewhere else (docker
 * run -d): the relay follows it by its connection from now on, and its
 * stop command, if any, is kept for when the relay stops.
 */
static void sandbox_went_away(struct launcher *l, struct sandbox_proc *sp)
{
	struct sandbox_away *a;

	log_info("launcher", "the command of sandbox %s exited with status 0: "
		 "the sandbox runs on by itself%s", sp->machine_id,
		 sp->stop_args ? "" : " (without --sandbox-stop, nothing "
		 "stops it when the relay stops)");
	if (sp->stop_args == NULL)
		return;
	for (a = l->away; a; a = a->next)
		if (args_equal(a->stop_args, sp->stop_args))
			return;	/* one stop command serves both */
	a = xcalloc(1, sizeof(*a));
	a->machine_id = xstrdup(sp->machine_id);
	a->stop_args = sp->stop_args;
	sp->stop_args = NULL;
	a->next = l->away;
	l->away = a;
}

/*
 * A program ended. A sandbox's end is reported to the relay; so is a
 * command's when it failed (not 0), which is how a start failure shows.
 */
static void on_proc_exit(uv_process_t *proc, int64_t status, int sig)
{
	struct sandbox_proc *sp = proc->data;
	struct launcher *l = sp->owner;
	int code = sig ? 128 + sig : (int)status;

	sp->exited = true;
	unlink_proc(l, sp);
	uv_timer_stop(&sp->kill_timer);
	if (sp->stopper) {
		LOG_AT(code ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, "launcher",
		       "the stop command of sandbox %s exited with status %d",
		       sp->machine_id, code);
	} else if (l->start && code == 0 && !l->stopping) {
		sandbox_went_away(l, sp);
	} else {
		log_info("launcher", "%s %s exited with status %d",
			 l->start ? "the command of sandbox" : "sandbox",
			 sp->machine_id, code);
		if (l->on_exit)
			l->on_exit(sp->machine_id, code, l->arg);
	}
	uv_close((uv_handle_t *)&sp->kill_timer, on_handle_closed);
	uv_close((uv_handle_t *)&sp->proc, on_handle_closed);
}

/* "NAME=value", for an environment. */
static char *env_entry(const char *name, const char *value)
{
	return xasprintf("%s=%s", name, value);
}

/*
 * Runs args with env in cwd, its output appended to log_path, as sp (which
 * it takes), and adds it to the running programs; *cause says why not,
 * with hint when the program cannot start.
 */
static int proc_spawn(struct launcher *l, char **args, char **env,
		      const char *cwd, const char *log_path,
		      struct sandbox_proc *sp, const char *hint, char **cause)
{
	uv_process_options_t opts;
	uv_stdio_container_t stdio[3];
	int logfd, r;

	logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		     0600);
	if (logfd < 0) {
		r = -errno;
		*cause = xasprintf("cannot open %s: %s", log_path,
				   strerror(errno));
		goto fail;
	}

	memset(&opts, 0, sizeof(opts));
	memset(stdio, 0, sizeof(stdio));
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_INHERIT_FD;
	stdio[1].data.fd = logfd;
	stdio[2].flags = UV_INHERIT_FD;
	stdio[2].data.fd = logfd;
	opts.file = args[0];
	opts.args = args;
	opts.env = env;
	opts.cwd = cwd;
	opts.stdio = stdio;
	opts.stdio_count = 3;
	opts.exit_cb = on_proc_exit;
	opts.flags = UV_PROCESS_DETACHED;

	sp->owner = l;
	sp->proc.data = sp;
	sp->kill_timer.data = sp;
	r = uv_spawn(l->loop, &sp->proc, &opts);
	close(logfd);
	if (r < 0) {
		*cause = xasprintf("cannot start %s: %s (%s)", args[0],
				   uv_strerror(r), hint);
		sp->handles = 1;
		uv_close((uv_handle_t *)&sp->proc, on_handle_closed);
		return r;
	}
	uv_timer_init(l->loop, &sp->kill_timer);
	sp->handles = 2;
	sp->next = l->procs;
	l->procs = sp;
	return 0;

fail:
	free(sp->machine_id);
	args_free(sp->stop_args);
	free(sp);
	return r;
}

/* Starts machine m's sandbox in its folders under the data directory. */
int launcher_start(struct launcher *l, const struct store_machine *m,
		   const char *relay_url, const char *token, char **cause)
{
	struct sandbox_proc *sp;
	char *root, *home, *workspace, *log_path, *gen;
	char *env[20];
	char *bin_args[2] = { l->bin, NULL };
	char **args = bin_args;
	size_t n = 0;
	int r;

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
	if (log_format_get() == LOG_FORMAT_JSON)
		env[n++] = env_entry("BATON_LOG_FORMAT", "json");
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

	sp = xcalloc(1, sizeof(*sp));
	sp->machine_id = xstrdup(m->id);
	/* The credential is in env only: never an argument, never logged. */
	if (l->start) {
		const char *vals[VAR_COUNT] = {
			[VAR_MACHINE] = m->id,
			[VAR_GENERATION] = gen,
			[VAR_WORKSPACE] = m->workspace,
			[VAR_USER] = m->user,
			[VAR_RELAY] = relay_url,
			[VAR_HOME] = home,
			[VAR_WORKDIR] = workspace,
		};

		args = template_expand(l->start, vals);
		if (l->stop)
			sp->stop_args = template_expand(l->stop, vals);
	}
	r = proc_spawn(l, args, env, workspace, log_path, sp,
		       l->start ? "the --sandbox-launcher command"
				: "use --sandbox-bin to name the baton-sandbox "
				  "program", cause);
	for (size_t i = 0; i < n; i++)
		free(env[i]);
	if (r == 0)
		log_info("launcher", "started sandbox %s (generation %s) with "
			 "%s, pid %d, log in %s", m->id, gen, args[0],
			 sp->proc.pid, log_path);
	if (args != bin_args)
		args_free(args);
out:
	free(root);
	free(home);
	free(workspace);
	free(log_path);
	free(gen);
	return r < 0 ? r : 0;
}

/* Whether the sandbox's process or start command still runs. */
bool launcher_running(const struct launcher *l, const char *machine_id)
{
	for (struct sandbox_proc *sp = l->procs; sp; sp = sp->next)
		if (!sp->stopper && !strcmp(sp->machine_id, machine_id))
			return true;
	return false;
}

/* SIGKILLs a program still running after its grace time. */
static void on_kill_timer(uv_timer_t *t)
{
	struct sandbox_proc *sp = t->data;

	if (!sp->exited) {
		log_warn("launcher", "%s %s did not stop; killing it",
			 sp->stopper ? "the stop command of sandbox"
				     : "sandbox", sp->machine_id);
		uv_process_kill(&sp->proc, SIGKILL);
	}
}

/* Runs a sandbox's --sandbox-stop command, killed after grace_ms. */
static void stop_run(struct launcher *l, const char *machine_id,
		     char **stop_args, unsigned grace_ms)
{
	struct sandbox_proc *sp = xcalloc(1, sizeof(*sp));
	char *root = xasprintf("%s/sandboxes/%s", l->data_dir, machine_id);
	char *log_path = xasprintf("%s/sandbox.log", root);
	char *env[4], *cause = NULL;

	env[0] = env_entry("PATH", getenv("PATH") ? getenv("PATH")
					  : "/usr/bin:/bin");
	env[1] = xasprintf("HOME=%s/home", root);
	env[2] = env_entry("LANG", "C.UTF-8");
	env[3] = NULL;
	sp->machine_id = xstrdup(machine_id);
	sp->stopper = true;
	if (proc_spawn(l, stop_args, env, root, log_path, sp,
		       "the --sandbox-stop command", &cause) < 0) {
		log_warn("launcher", "cannot stop sandbox %s: %s", machine_id,
			 cause);
	} else {
		log_info("launcher", "stopping sandbox %s with %s, pid %d",
			 machine_id, stop_args[0], sp->proc.pid);
		uv_timer_start(&sp->kill_timer, on_kill_timer, grace_ms, 0);
	}
	for (size_t i = 0; env[i]; i++)
		free(env[i]);
	free(cause);
	free(log_path);
	free(root);
}

/* Stops every sandbox started: stop command, else SIGTERM, then SIGKILL. */
void launcher_stop_all(struct launcher *l, unsigned grace_ms)
{
	struct sandbox_proc *running = l->procs;

	/* Stop commands go to the front of l->procs, out of this walk. */
	l->stopping = true;
	for (struct sandbox_proc *sp = running; sp; sp = sp->next) {
		if (sp->stop_args)
			stop_run(l, sp->machine_id, sp->stop_args, grace_ms);
		else
			uv_process_kill(&sp->proc, SIGTERM);
		uv_timer_start(&sp->kill_timer, on_kill_timer, grace_ms, 0);
	}
	for (struct sandbox_away *a = l->away; a; a = a->next)
		stop_run(l, a->machine_id, a->stop_args, grace_ms);
}

/* Frees the launcher once its programs have ended. */
void launcher_free(struct launcher *l)
{
	struct sandbox_away *a;

	if (l == NULL)
		return;
	while ((a = l->away) != NULL) {
		l->away = a->next;
		free(a->machine_id);
		args_free(a->stop_args);
		free(a);
	}
	launcher_template_free(l->start);
	launcher_template_free(l->stop);
	free(l->bin);
	free(l->data_dir);
	free(l->ca_file);
	free(l);
}
