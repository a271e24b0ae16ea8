/*
 * pty.c: one agent process in a pseudo-terminal, on a libuv loop.
 *
 * The master is read with a uv_poll_t until EAGAIN; EIO means the slave side
 * is closed. Children are reaped by one SIGCHLD handle per loop (struct
 * pty_reaper) that calls waitpid() for each of its unreaped children, so
 * nobody else's children are taken. on_exit comes once the child is reaped
 * and the master is drained: at EIO, or, when a grandchild still holds the
 * terminal open, at the first EAGAIN a short while after the reaping.
 */
#define _GNU_SOURCE
#include "pty.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

#define PTY_CHUNK 65536			/* bytes per read() */
#define PTY_PASS_MAX (1024 * 1024)	/* bytes per pass before yielding */
#define PTY_COMPACT 65536		/* written input kept before moving */
#define PTY_SETTLE_MS 50		/* in-flight output, see pty_pump */

extern char **environ;

/* The SIGCHLD handle of one loop and the children it waits for. */
struct pty_reaper {
	uv_signal_t sig;
	uv_loop_t *loop;
	struct pty_proc *procs;		/* unreaped children on this loop */
	struct pty_reaper *next;	/* in the registry */
};

struct pty_proc {
	uv_loop_t *loop;
	struct pty_reaper *reaper;	/* NULL once reaped */
	struct pty_proc *next;		/* in reaper->procs */
	uv_poll_t poll;			/* on the master */
	uv_timer_t timer;		/* SIGKILL after grace, later drain */
	int handles;			/* initialised handles not yet closed */
	int fd;				/* the master */
	pid_t pid;
	int status;			/* valid once reaped */
	int events;			/* what the poll handle watches */
	uint64_t reaped_at;		/* now_ms() at the reaping */
	bool reaped;
	bool eof;			/* the slave side is closed */
	bool done;			/* on_exit delivered */
	bool paused;
	bool freed;
	struct buf wbuf;		/* input waiting for the terminal */
	size_t woff;			/* bytes of wbuf already written */
	pty_output_cb on_output;
	pty_exit_cb on_exit;
	void *arg;
};

/* Reapers by loop; loops may run in different threads. */
static struct pty_reaper *reapers;
static pthread_mutex_t reapers_lock = PTHREAD_MUTEX_INITIALIZER;

static void pty_on_sigchld(uv_signal_t *h, int signum);
static void pty_on_poll(uv_poll_t *h, int status, int events);
static void pty_pump(struct pty_proc *p);

/* Timer after the reaping: another read pass, maybe the last. */
static void pty_on_drain(uv_timer_t *h)
{
	pty_pump(h->data);
}

/* Frees a reaper once libuv has closed its handle. */
static void pty_reaper_on_close(uv_handle_t *h)
{
	free(h->data);
}

/* Returns the reaper of a loop, creating and starting it if needed. */
static int pty_reaper_get(uv_loop_t *loop, struct pty_reaper **out)
{
	struct pty_reaper *r;
	int err = 0;

	pthread_mutex_lock(&reapers_lock);
	for (r = reapers; r != NULL; r = r->next)
		if (r->loop == loop)
			goto out;

	r = xcalloc(1, sizeof(*r));
	r->loop = loop;
	err = uv_signal_init(loop, &r->sig);
	if (err) {
		free(r);
		goto out;
	}
	r->sig.data = r;
	err = uv_signal_start(&r->sig, pty_on_sigchld, SIGCHLD);
	if (err) {
		uv_close((uv_handle_t *)&r->sig, pty_reaper_on_close);
		goto out;
	}
	r->next = reapers;
	reapers = r;
out:
	pthread_mutex_unlock(&reapers_lock);
	if (err == 0)
		*out = r;
	return err;
}

/* Closes a reaper that has no children left to wait for. */
static void pty_reaper_put(struct pty_reaper *r)
{
	struct pty_reaper **rp;

	if (r->procs != NULL)
		return;
	pthread_mutex_lock(&reapers_lock);
	for (rp = &reapers; *rp != NULL; rp = &(*rp)->next) {
		if (*rp == r) {
			*rp = r->next;
			break;
		}
	}
	pthread_mutex_unlock(&reapers_lock);
	uv_close((uv_handle_t *)&r->sig, pty_reaper_on_close);
}

/* Converts a wait status to an exit code, or 128 + signal number. */
static int pty_status(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 255;
}

/* Signals the child's process group, or the child before its setsid(). */
static void pty_kill(struct pty_proc *p, int sig)
{
	if (kill(-p->pid, sig) < 0 && errno == ESRCH)
		kill(p->pid, sig);
}

/* Frees the object once it is freed, closed and has nothing to reap. */
static void pty_release(struct pty_proc *p)
{
	if (!p->freed || p->handles > 0 || !p->reaped)
		return;
	buf_free(&p->wbuf);
	free(p);
}

/* Counts closed handles; the last one closes the master. */
static void pty_on_close(uv_handle_t *h)
{
	struct pty_proc *p = h->data;

	if (--p->handles > 0)
		return;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	pty_release(p);
}

/* Watches the master for what is wanted now: output, room for input. */
static void pty_update_poll(struct pty_proc *p)
{
	int want = 0;

	if (p->freed)
		return;
	if (!p->eof && !p->done && !p->paused)
		want |= UV_READABLE;
	if (!p->eof && !p->done && p->woff < p->wbuf.len)
		want |= UV_WRITABLE;
	if (want == p->events)
		return;

	p->events = want;
	if (want)
		uv_poll_start(&p->poll, want, pty_on_poll);
	else
		uv_poll_stop(&p->poll);
}

/*
 * Reads until EAGAIN, EOF, PTY_PASS_MAX bytes, a pause or a free. What
 * the reads return (the tty layer hands over at most a few KiB at a time)
 * is passed on in chunks of up to PTY_CHUNK: a fast agent's output then
 * costs the daemon and the relay one message per 64 KiB, not per 4 KiB.
 */
static void pty_read_pass(struct pty_proc *p)
{
	char chunk[PTY_CHUNK];
	size_t total = 0, fill = 0;
	bool eof = false;
	ssize_t n;

	while (!p->paused && !p->freed && total < PTY_PASS_MAX) {
		n = read(p->fd, chunk + fill, sizeof(chunk) - fill);
		if (n > 0) {
			total += (size_t)n;
			fill += (size_t)n;
			if (fill == sizeof(chunk)) {
				if (p->on_output)
					p->on_output(p, chunk, fill, p->arg);
				fill = 0;
			}
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;

		/* EIO (or 0): every holder of the slave side has closed it. */
		eof = true;
		break;
	}
	if (fill > 0 && !p->freed && p->on_output)
		p->on_output(p, chunk, fill, p->arg);
	if (eof && !p->freed)
		p->eof = true;
}

/* Writes queued input until the terminal would block. */
static void pty_flush(struct pty_proc *p)
{
	ssize_t n;

	while (p->woff < p->wbuf.len) {
		n = write(p->fd, p->wbuf.data + p->woff, p->wbuf.len - p->woff);
		if (n > 0) {
			p->woff += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;

		/* EIO: nobody holds the terminal any more; drop the input. */
		p->woff = p->wbuf.len;
	}

	if (p->woff == p->wbuf.len) {
		buf_free(&p->wbuf);
		p->woff = 0;
	} else if (p->woff >= PTY_COMPACT && p->woff * 2 >= p->wbuf.len) {
		memmove(p->wbuf.data, p->wbuf.data + p->woff,
			p->wbuf.len - p->woff);
		p->wbuf.len -= p->woff;
		p->wbuf.data[p->wbuf.len] = '\0';
		p->woff = 0;
	}
}

/* Reports the exit, once: the child is reaped and its output drained. */
static void pty_finish(struct pty_proc *p)
{
	p->done = true;
	uv_timer_stop(&p->timer);
	buf_free(&p->wbuf);
	p->woff = 0;
	pty_update_poll(p);
	if (p->on_exit)
		p->on_exit(p, p->status, p->arg);
}

/*
 * Reads what the master holds, and finishes once the child is reaped and
 * the master drained. EIO says all output is read. When a grandchild keeps
 * the slave open there is no EIO, and the child's last bytes may still be
 * on their way through the kernel's tty buffer: the pass that finishes is
 * then one at least PTY_SETTLE_MS after the reaping.
 */
static void pty_pump(struct pty_proc *p)
{
	uint64_t settled, now;

	if (p->done || p->freed)
		return;
	if (!p->eof && !p->paused)
		pty_read_pass(p);
	if (p->freed)
		return;
	if (!p->reaped || p->paused) {
		pty_update_poll(p);
		return;
	}

	settled = p->reaped_at + PTY_SETTLE_MS;
	now = now_ms();
	if (!p->eof && now < settled) {
		pty_update_poll(p);
		if (!uv_is_active((uv_handle_t *)&p->timer))
			uv_timer_start(&p->timer, pty_on_drain,
				       settled - now, 0);
		return;
	}
	pty_finish(p);
}

/* The master is readable or writable (or in error). */
static void pty_on_poll(uv_poll_t *h, int status, int events)
{
	struct pty_proc *p = h->data;

	if (status < 0) {
		/* libuv stopped the handle (POLLERR): read what is left. */
		p->events = 0;
		if (!p->paused)
			pty_read_pass(p);
		if (p->freed)
			return;
		p->eof = true;
		pty_pump(p);
		return;
	}
	if (events & UV_WRITABLE)
		pty_flush(p);
	if (events & UV_READABLE)
		pty_pump(p);
	else
		pty_update_poll(p);
}

/* Timer after stop(): the grace period is over. */
static void pty_on_grace(uv_timer_t *h)
{
	struct pty_proc *p = h->data;

	if (!p->reaped)
		pty_kill(p, SIGKILL);
}

/* The child is reaped: drain the master and report. */
static void pty_reaped(struct pty_proc *p)
{
	if (p->freed) {
		pty_release(p);
		return;
	}
	uv_timer_stop(&p->timer);
	p->reaped_at = now_ms();
	pty_pump(p);
}

/* SIGCHLD: reaps every child of this loop that has exited, then reports. */
static void pty_on_sigchld(uv_signal_t *h, int signum)
{
	struct pty_reaper *r = h->data;
	struct pty_proc **pp = &r->procs, *p, *exited = NULL;
	pid_t got;
	int st;

	while ((p = *pp) != NULL) {
		do
			got = waitpid(p->pid, &st, WNOHANG);
		while (got < 0 && errno == EINTR);
		if (got == 0) {
			pp = &p->next;
			continue;
		}

		/* got < 0 (ECHILD): someone else reaped it; status unknown. */
		p->status = got > 0 ? pty_status(st) : 255;
		p->reaped = true;
		p->reaper = NULL;
		*pp = p->next;
		p->next = exited;
		exited = p;
	}
	if (r->procs == NULL)
		pty_reaper_put(r);

	while ((p = exited) != NULL) {
		exited = p->next;
		p->next = NULL;
		pty_reaped(p);
	}
}

int pty_env_build(char *const *extra, char ***out, char **cause)
{
	size_t n = 0, m = 0, k = 0;
	bool term = false;
	char **env;

	for (; environ != NULL && environ[n] != NULL; n++)
		;
	for (; extra != NULL && extra[m] != NULL; m++) {
		const char *eq = strchr(extra[m], '=');

		if (eq == NULL || eq == extra[m]) {
			*cause = xasprintf("environment entry \"%s\" is not "
					   "NAME=VALUE", extra[m]);
			return -EINVAL;
		}
	}

	env = xcalloc(n + m + 2, sizeof(*env));
	for (size_t i = 0; i < n + m; i++) {
		char *e = i < n ? environ[i] : extra[i - n];
		size_t len = strcspn(e, "=");
		bool later = false;

		/* An entry is dropped when a later one sets the same name. */
		for (size_t j = i < n ? 0 : i - n + 1; j < m; j++) {
			if (!strncmp(extra[j], e, len) && extra[j][len] == '=')
				later = true;
		}
		if (later)
			continue;
		if (len == 4 && !strncmp(e, "TERM", 4))
			term = true;
		env[k++] = e;
	}
	if (!term)
		env[k++] = (char *)"TERM=xterm-256color";
	env[k] = NULL;
	*out = env;
	return 0;
}

/* Writes "baton: WHAT ARG: strerror" to the terminal and exits 127. */
static void __attribute__((noreturn))
pty_child_fail(const char *what, const char *arg)
{
	const char *reason = strerror(errno);
	char msg[1024];
	int n;

	n = snprintf(msg, sizeof(msg), "baton: %s %s: %s\r\n", what,
		     arg, reason);
	if (n > 0)
		(void)!write(STDERR_FILENO, msg, (size_t)n < sizeof(msg) ?
			     (size_t)n : sizeof(msg) - 1);
	_exit(127);
}

/* In the child: a new session on the terminal, default signals, exec. */
static void __attribute__((noreturn))
pty_child(int slave, const struct pty_proc_opts *opts, char **env)
{
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);

	/* Keep the slave off 0-2, where dup2() would leave it close-on-exec. */
	if (slave <= STDERR_FILENO)
		slave = fcntl(slave, F_DUPFD, STDERR_FILENO + 1);
	if (slave < 0 || setsid() < 0 || ioctl(slave, TIOCSCTTY, 0) < 0 ||
	    dup2(slave, STDIN_FILENO) < 0 || dup2(slave, STDOUT_FILENO) < 0 ||
	    dup2(slave, STDERR_FILENO) < 0)
		_exit(127);
	close_range(3, ~0U, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	if (opts->cwd != NULL && chdir(opts->cwd) < 0)
		pty_child_fail("cannot enter", opts->cwd);
	environ = env;
	execvp(opts->argv[0], opts->argv);
	pty_child_fail("cannot run", opts->argv[0]);
}

/* Opens a terminal pair: the master non-blocking, both close-on-exec. */
static int pty_open(int *master, int *slave, const struct winsize *ws,
		    char **cause)
{
	const char *step = "posix_openpt";
	char name[128];
	int err;

	*slave = -1;
	*master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (*master < 0)
		goto fail;
	step = "unlockpt";
	if (grantpt(*master) < 0 || unlockpt(*master) < 0)
		goto fail;
	step = "ptsname";
	if ((errno = ptsname_r(*master, name, sizeof(name))) != 0)
		goto fail;
	step = name;
	*slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (*slave < 0)
		goto fail;
	step = "TIOCSWINSZ";
	if (ioctl(*slave, TIOCSWINSZ, ws) < 0)
		goto fail;
	return 0;

fail:
	err = -errno;
	*cause = xasprintf("cannot open a terminal: %s: %s", step,
			   strerror(errno));
	if (*slave >= 0)
		close(*slave);
	if (*master >= 0)
		close(*master);
	*master = *slave = -1;
	return err;
}

/* Checks what can be checked before forking, for a clear cause. */
static int pty_check_opts(const struct pty_proc_opts *opts, char **cause)
{
	struct stat st;

	if (opts->argv == NULL || opts->argv[0] == NULL ||
	    opts->argv[0][0] == '\0') {
		*cause = xstrdup("no program to run");
		return -EINVAL;
	}
	if (opts->cwd != NULL && stat(opts->cwd, &st) < 0) {
		int err = -errno;

		*cause = xasprintf("cannot use %s as the working directory: "
				   "%s", opts->cwd, strerror(errno));
		return err;
	}
	if (opts->cwd != NULL && !S_ISDIR(st.st_mode)) {
		*cause = xasprintf("%s is not a directory", opts->cwd);
		return -ENOTDIR;
	}
	return 0;
}

int pty_proc_spawn(uv_loop_t *loop, const struct pty_proc_opts *opts,
		   struct pty_proc **out, char **cause)
{
	struct winsize ws = { .ws_row = 24, .ws_col = 80 };
	struct pty_reaper *r = NULL;
	struct pty_proc *p = NULL;
	sigset_t all, old;
	char **env = NULL;
	int master = -1, slave = -1, err;

	*cause = NULL;
	err = pty_check_opts(opts, cause);
	if (err)
		return err;
	err = pty_env_build(opts->env, &env, cause);
	if (err)
		return err;
	if (opts->cols && opts->rows) {
		ws.ws_col = opts->cols;
		ws.ws_row = opts->rows;
	}

	err = pty_open(&master, &slave, &ws, cause);
	if (err)
		goto fail;
	err = pty_reaper_get(loop, &r);
	if (err) {
		*cause = xasprintf("SIGCHLD handler: %s", uv_strerror(err));
		goto fail;
	}

	p = xcalloc(1, sizeof(*p));
	p->loop = loop;
	p->fd = master;
	p->on_output = opts->on_output;
	p->on_exit = opts->on_exit;
	p->arg = opts->arg;
	err = uv_poll_init(loop, &p->poll, master);
	if (err) {
		*cause = xasprintf("uv_poll_init: %s", uv_strerror(err));
		goto fail;
	}
	p->poll.data = p;
	p->handles++;
	uv_timer_init(loop, &p->timer);
	p->timer.data = p;
	p->handles++;

	/* No libuv signal handler may run in the child before the reset. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	p->pid = fork();
	if (p->pid == 0)
		pty_child(slave, opts, env);
	err = p->pid < 0 ? -errno : 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		*cause = xasprintf("fork: %s", strerror(-err));
		goto fail;
	}

	close(slave);
	free(env);
	p->reaper = r;
	p->next = r->procs;
	r->procs = p;
	uv_poll_start(&p->poll, UV_READABLE, pty_on_poll);
	p->events = UV_READABLE;
	*out = p;
	return 0;

fail:
	if (slave >= 0)
		close(slave);
	if (p != NULL && p->handles > 0) {
		/* The master is closed with the last handle. */
		p->reaped = true;
		p->freed = true;
		uv_close((uv_handle_t *)&p->poll, pty_on_close);
		uv_close((uv_handle_t *)&p->timer, pty_on_close);
	} else {
		free(p);
		if (master >= 0)
			close(master);
	}
	if (r != NULL)
		pty_reaper_put(r);
	free(env);
	return err;
}

int pty_proc_write(struct pty_proc *p, const void *data, size_t len)
{
	assert(!p->freed);
	if (p->eof || p->done)
		return -EPIPE;
	buf_append(&p->wbuf, data, len);
	pty_flush(p);
	pty_update_poll(p);
	return 0;
}

int pty_proc_resize(struct pty_proc *p, unsigned short cols,
		    unsigned short rows)
{
	struct winsize ws = { .ws_row = rows, .ws_col = cols };

	assert(!p->freed);
	if (ioctl(p->fd, TIOCSWINSZ, &ws) < 0)
		return -errno;
	return 0;
}

void pty_proc_pause(struct pty_proc *p)
{
	assert(!p->freed);
	p->paused = true;
	pty_update_poll(p);
}

void pty_proc_resume(struct pty_proc *p)
{
	assert(!p->freed);
	if (!p->paused)
		return;
	p->paused = false;
	pty_update_poll(p);

	/* Once reaped, nothing may become readable: pump on a timer. */
	if (p->reaped && !p->done)
		uv_timer_start(&p->timer, pty_on_drain, 0, 0);
}

void pty_proc_stop(struct pty_proc *p, unsigned grace_ms)
{
	assert(!p->freed);
	if (p->reaped)
		return;
	pty_kill(p, SIGHUP);
	pty_kill(p, SIGTERM);
	uv_timer_start(&p->timer, pty_on_grace, grace_ms, 0);
}

pid_t pty_proc_pid(const struct pty_proc *p)
{
	return p->pid;
}

int pty_proc_running(const struct pty_proc *p)
{
	return !p->reaped;
}

void pty_proc_free(struct pty_proc *p)
{
	if (p == NULL)
		return;
	assert(!p->freed);
	p->freed = true;

	/* Still reaped later by its loop's reaper, so no zombie is left. */
	if (!p->reaped)
		pty_kill(p, SIGKILL);
	uv_close((uv_handle_t *)&p->poll, pty_on_close);
	uv_close((uv_handle_t *)&p->timer, pty_on_close);
}
