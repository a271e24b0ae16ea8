/*
 * test_pty.c: unit tests for common/pty.c (processes in a pseudo-terminal
 * on a libuv loop), ending with the test agent driven through a terminal.
 *
 * Each test runs its own loop and closes it at the end: uv_loop_close()
 * returning 0 shows that no handle was left behind. Time limits are upper
 * bounds for a busy machine, never expectations.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent.h"
#include "pty.h"
#include "util.h"

#define WAIT_MS 20000		/* longest wait for anything */
#define MB (1024 * 1024)

struct run;

/* When `expect` shows up in the output, send `send` and call `act`. */
struct step {
	const char *expect;
	const char *send;
	void (*act)(struct run *r);
};

/* One process under test, its loop and what it printed. */
struct run {
	uv_loop_t loop;
	uv_timer_t watchdog;
	struct pty_proc *p;
	struct buf out;
	int status;		/* -1 until on_exit */
	size_t out_at_exit;	/* output length when on_exit came */
	int exits;		/* on_exit calls */
	const struct step *steps;
	size_t nsteps, step;
	size_t from;		/* output searched for the next step */
	bool timed_out;
};

/* Sends the inputs of every step whose expected text has arrived. */
static void run_steps(struct run *r)
{
	while (r->step < r->nsteps) {
		const struct step *s = &r->steps[r->step];
		const char *at = memmem(r->out.data + r->from,
					r->out.len - r->from, s->expect,
					strlen(s->expect));

		if (at == NULL)
			return;
		r->from = (size_t)(at - r->out.data) + strlen(s->expect);
		r->step++;
		if (s->send != NULL)
			assert_int_equal(pty_proc_write(r->p, s->send,
							strlen(s->send)), 0);
		if (s->act != NULL)
			s->act(r);
	}
}

/* pty on_output: keeps the bytes and moves the script on. */
static void run_on_output(struct pty_proc *p, const char *data, size_t len,
			  void *arg)
{
	struct run *r = arg;

	assert_ptr_equal(p, r->p);
	assert_int_equal(r->exits, 0);
	buf_append(&r->out, data, len);
	run_steps(r);
}

/* pty on_exit: records the status and how much output came before. */
static void run_on_exit(struct pty_proc *p, int status, void *arg)
{
	struct run *r = arg;

	r->exits++;
	r->status = status;
	r->out_at_exit = r->out.len;

	/* From a timer callback, UV_RUN_ONCE would otherwise go on to wait
	 * for I/O. */
	uv_stop(&r->loop);
}

/* The watchdog: a test that waits this long has failed. */
static void run_on_watchdog(uv_timer_t *h)
{
	struct run *r = h->data;

	r->timed_out = true;
	uv_stop(&r->loop);
}

/*
 * Makes a loop and its watchdog. On the heap: a failed test leaves its run
 * behind, still valid for libuv, so the next tests are not disturbed.
 */
static struct run *run_new(void)
{
	struct run *r = xcalloc(1, sizeof(*r));

	r->status = -1;
	assert_int_equal(uv_loop_init(&r->loop), 0);
	uv_timer_init(&r->loop, &r->watchdog);
	r->watchdog.data = r;
	return r;
}

/* Spawns argv with optional cwd and env extras; the spawn must work. */
static void run_spawn(struct run *r, char *const *argv, const char *cwd,
		      char *const *env)
{
	struct pty_proc_opts o = {
		.argv = argv, .env = env, .cwd = cwd, .cols = 80, .rows = 24,
		.on_output = run_on_output, .on_exit = run_on_exit, .arg = r,
	};
	char *cause = NULL;
	int err;

	err = pty_proc_spawn(&r->loop, &o, &r->p, &cause);
	if (err)
		fail_msg("spawn %s: %d %s", argv[0], err, cause);
	assert_null(cause);
	assert_true(pty_proc_pid(r->p) > 0);
}

/* Runs the loop until `done` says so, or fails at WAIT_MS. */
static void run_until(struct run *r, bool (*done)(struct run *r))
{
	uv_timer_start(&r->watchdog, run_on_watchdog, WAIT_MS, 0);
	while (!done(r) && !r->timed_out)
		uv_run(&r->loop, UV_RUN_ONCE);
	uv_timer_stop(&r->watchdog);
	if (r->timed_out)
		fail_msg("timed out at step %zu; output so far:\n%s",
			 r->step, r->out.data ? r->out.data : "");
}

/* run_until condition: on_exit has come. */
static bool run_exited(struct run *r)
{
	return r->exits > 0;
}

/* run_until condition: the child has been reaped. */
static bool run_reaped(struct run *r)
{
	return !pty_proc_running(r->p);
}

/* Frees the process and checks that the loop closes with no handle. */
static void run_close(struct run *r)
{
	pty_proc_free(r->p);
	r->p = NULL;
	uv_close((uv_handle_t *)&r->watchdog, NULL);
	uv_run(&r->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&r->loop), 0);
	buf_free(&r->out);
	free(r);
}

/* Runs argv to its end, with every step done and exactly one on_exit. */
static void run_to_exit(struct run *r, char *const *argv, const char *cwd,
			char *const *env)
{
	run_spawn(r, argv, cwd, env);
	run_until(r, run_exited);
	assert_int_equal(r->exits, 1);
	assert_int_equal(r->step, r->nsteps);
	assert_false(pty_proc_running(r->p));
}

/* Makes a temporary directory; the caller removes it with rm_rf. */
static char *temp_dir(void)
{
	char *dir = xstrdup("/tmp/baton-test-pty-XXXXXX");
	char *real;

	assert_non_null(mkdtemp(dir));
	real = realpath(dir, NULL);
	assert_non_null(real);
	free(dir);
	return real;
}

/* Output and exit code of a short command. */
static void test_exit_status(void **state)
{
	char *argv[] = { "/bin/sh", "-c", "printf hello; exit 3", NULL };
	struct run *r;

	r = run_new();
	run_to_exit(r, argv, NULL, NULL);
	assert_int_equal(r->status, 3);
	assert_string_equal(r->out.data, "hello");
	run_close(r);
}

/* 1 MB arrives whole, all of it before on_exit. */
static void test_big_output(void **state)
{
	char *argv[] = { "/bin/sh", "-c",
			 "head -c 1048576 /dev/zero | tr '\\000' a", NULL };

	for (int round = 0; round < 3; round++) {
		struct run *r;

		r = run_new();
		run_to_exit(r, argv, NULL, NULL);
		assert_int_equal(r->status, 0);
		assert_int_equal(r->out_at_exit, MB);
		assert_int_equal(r->out.len, MB);
		for (size_t i = 0; i < r->out.len; i++)
			if (r->out.data[i] != 'a')
				fail_msg("byte %zu is 0x%02x", i,
					 (unsigned char)r->out.data[i]);
		run_close(r);
	}
}

/* Input reaches the program; the terminal echoes it and cat repeats it. */
static void test_write_cat(void **state)
{
	char *argv[] = { "cat", NULL };
	static const struct step steps[] = {
		{ "ping\r\nping\r\n", "\x04", NULL },
	};
	struct run *r;

	r = run_new();
	r->steps = steps;
	r->nsteps = ARRAY_SIZE(steps);
	run_spawn(r, argv, NULL, NULL);
	assert_int_equal(pty_proc_write(r->p, "ping\n", 5), 0);
	run_until(r, run_exited);
	assert_int_equal(r->status, 0);
	assert_int_equal(pty_proc_write(r->p, "x", 1), -EPIPE);
	run_close(r);
}

/* Sends 200 KB in one write: far more than the terminal takes at once. */
static void send_lines(struct run *r)
{
	struct buf b = BUF_INIT;

	for (int i = 0; i < 20000; i++)
		buf_printf(&b, "line%05d\n", i);
	buf_puts(&b, "\x04");
	assert_int_equal(pty_proc_write(r->p, b.data, b.len), 0);
	buf_free(&b);
}

/* Queued input is written in order as the terminal makes room. */
static void test_write_queue(void **state)
{
	char *argv[] = { "/bin/sh", "-c", "stty -echo; echo ready; exec cat",
			 NULL };
	static const struct step steps[] = {
		{ "ready\r\n", NULL, send_lines },
	};
	struct buf want = BUF_INIT;
	struct run *r;

	r = run_new();
	r->steps = steps;
	r->nsteps = ARRAY_SIZE(steps);
	run_to_exit(r, argv, NULL, NULL);
	assert_int_equal(r->status, 0);

	buf_puts(&want, "ready\r\n");
	for (int i = 0; i < 20000; i++)
		buf_printf(&want, "line%05d\r\n", i);
	assert_int_equal(r->out.len, want.len);
	assert_memory_equal(r->out.data, want.data, want.len);
	buf_free(&want);
	run_close(r);
}

/* Step action: a new window size, then the line the shell waits for. */
static void resize_and_go(struct run *r)
{
	assert_int_equal(pty_proc_resize(r->p, 100, 40), 0);
	assert_int_equal(pty_proc_write(r->p, "\n", 1), 0);
}

/* The window size is set at spawn and by resize, as stty sees it. */
static void test_resize(void **state)
{
	char *argv[] = { "/bin/sh", "-c", "stty size; read x; stty size",
			 NULL };
	static const struct step steps[] = {
		{ "24 80\r\n", NULL, resize_and_go },
		{ "40 100\r\n", NULL, NULL },
	};
	struct run *r;

	r = run_new();
	r->steps = steps;
	r->nsteps = ARRAY_SIZE(steps);
	run_to_exit(r, argv, NULL, NULL);
	assert_int_equal(r->status, 0);
	run_close(r);
}

/* Step action: a graceful stop with a long grace. */
static void stop_long(struct run *r)
{
	pty_proc_stop(r->p, WAIT_MS * 2);
}

/* stop() ends a program by SIGHUP or SIGTERM, soon after spawn or later. */
static void test_stop(void **state)
{
	char *sleeper[] = { "sleep", "100", NULL };
	char *shell[] = { "/bin/sh", "-c", "echo up; exec sleep 100", NULL };
	static const struct step steps[] = {
		{ "up\r\n", NULL, stop_long },
	};
	struct run *r;

	/* Right after spawn, perhaps before the child's setsid(). */
	r = run_new();
	run_spawn(r, sleeper, NULL, NULL);
	pty_proc_stop(r->p, WAIT_MS * 2);
	run_until(r, run_exited);
	assert_true(r->status == 128 + SIGHUP || r->status == 128 + SIGTERM);
	run_close(r);

	r = run_new();
	r->steps = steps;
	r->nsteps = ARRAY_SIZE(steps);
	run_to_exit(r, shell, NULL, NULL);
	assert_true(r->status == 128 + SIGHUP || r->status == 128 + SIGTERM);
	run_close(r);
}

/* Step action: a graceful stop with a short grace. */
static void stop_short(struct run *r)
{
	pty_proc_stop(r->p, 300);
}

/* A program that ignores SIGHUP and SIGTERM is killed after the grace. */
static void test_stop_kill(void **state)
{
	char *argv[] = { "/bin/sh", "-c",
			 "trap '' TERM HUP; echo ready; sleep 100", NULL };
	static const struct step steps[] = {
		{ "ready\r\n", NULL, stop_short },
	};
	struct run *r;

	r = run_new();
	r->steps = steps;
	r->nsteps = ARRAY_SIZE(steps);
	run_to_exit(r, argv, NULL, NULL);
	assert_int_equal(r->status, 128 + SIGKILL);
	run_close(r);
}

/* The working directory and the extra environment reach the program. */
static void test_cwd_env(void **state)
{
	char *argv[] = { "/bin/sh", "-c",
			 "pwd; echo \"[$FOO]\"; echo \"[$TERM]\"", NULL };
	char *env[] = { "FOO=one", "FOO=bar baz", NULL };
	char *env_term[] = { "TERM=vt100", NULL };
	char *dir = temp_dir(), *want;
	char *old_term = getenv("TERM");
	struct run *r;

	old_term = old_term != NULL ? xstrdup(old_term) : NULL;
	unsetenv("TERM");

	/* TERM defaults to xterm-256color; a later extra wins. */
	r = run_new();
	run_to_exit(r, argv, dir, env);
	want = xasprintf("%s\r\n[bar baz]\r\n[xterm-256color]\r\n", dir);
	assert_int_equal(r->status, 0);
	assert_string_equal(r->out.data, want);
	free(want);
	run_close(r);

	/* An extra TERM replaces the default. */
	r = run_new();
	run_to_exit(r, argv, dir, env_term);
	want = xasprintf("%s\r\n[]\r\n[vt100]\r\n", dir);
	assert_string_equal(r->out.data, want);
	free(want);
	run_close(r);

	if (old_term != NULL)
		setenv("TERM", old_term, 1);
	free(old_term);
	assert_int_equal(rm_rf(dir), 0);
	free(dir);
}

/* A program that cannot be run exits 127 with a message on the terminal. */
static void test_exec_fails(void **state)
{
	char *missing[] = { "baton-no-such-program", NULL };
	char *path[] = { "/nonexistent/program", NULL };
	char *const *cases[] = { missing, path };

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct run *r;

		r = run_new();
		run_to_exit(r, cases[i], NULL, NULL);
		assert_int_equal(r->status, 127);
		assert_non_null(strstr(r->out.data, "cannot run"));
		assert_non_null(strstr(r->out.data, cases[i][0]));
		run_close(r);
	}
}

/* Errors found before forking come back with a cause. */
static void test_spawn_errors(void **state)
{
	char *argv[] = { "true", NULL };
	char *empty[] = { NULL };
	char *bad_env[] = { "NOEQUALS", NULL };
	struct pty_proc_opts o = { .argv = argv };
	struct pty_proc *p = NULL;
	char *cause = NULL;
	uv_loop_t loop;

	assert_int_equal(uv_loop_init(&loop), 0);

	o.cwd = "/nonexistent/dir";
	assert_int_equal(pty_proc_spawn(&loop, &o, &p, &cause), -ENOENT);
	assert_non_null(strstr(cause, "/nonexistent/dir"));
	free(cause);

	o.cwd = "/dev/null";
	assert_int_equal(pty_proc_spawn(&loop, &o, &p, &cause), -ENOTDIR);
	free(cause);

	o.cwd = NULL;
	o.env = bad_env;
	assert_int_equal(pty_proc_spawn(&loop, &o, &p, &cause), -EINVAL);
	assert_non_null(strstr(cause, "NOEQUALS"));
	free(cause);

	o.env = NULL;
	o.argv = empty;
	assert_int_equal(pty_proc_spawn(&loop, &o, &p, &cause), -EINVAL);
	free(cause);
	assert_null(p);

	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/*
 * While paused nothing is read and on_exit waits; resume delivers both.
 * The 8 KB wait in the kernel's terminal buffers (about 15 KB on Linux 6)
 * while the child exits.
 */
static void test_pause(void **state)
{
	char *argv[] = { "/bin/sh", "-c",
			 "head -c 8192 /dev/zero | tr '\\000' p; exit 5",
			 NULL };
	struct run *r;

	r = run_new();
	run_spawn(r, argv, NULL, NULL);
	pty_proc_pause(r->p);
	run_until(r, run_reaped);
	assert_int_equal(r->out.len, 0);
	assert_int_equal(r->exits, 0);

	pty_proc_resume(r->p);
	run_until(r, run_exited);
	assert_int_equal(r->status, 5);
	assert_int_equal(r->out_at_exit, 8192);
	assert_int_equal(strspn(r->out.data, "p"), 8192);
	run_close(r);
}

/* A grandchild holding the terminal open does not hold on_exit back. */
static void test_grandchild(void **state)
{
	/* Ignoring SIGHUP, sleep outlives the terminal's session leader. */
	char *argv[] = { "/bin/sh", "-c",
			 "trap '' HUP; sleep 60 & printf bye; exit 0", NULL };
	char *quiet[] = { "/bin/sh", "-c", "trap '' HUP; sleep 60 & exit 4",
			  NULL };
	struct run *r;
	pid_t pid;

	r = run_new();
	run_to_exit(r, argv, NULL, NULL);
	assert_int_equal(r->status, 0);
	assert_string_equal(r->out.data, "bye");
	pid = pty_proc_pid(r->p);
	run_close(r);
	kill(-pid, SIGKILL);

	/* Reaped while paused, with nothing left to read: resume ends it. */
	r = run_new();
	run_spawn(r, quiet, NULL, NULL);
	pty_proc_pause(r->p);
	run_until(r, run_reaped);
	assert_int_equal(r->exits, 0);
	pty_proc_resume(r->p);
	run_until(r, run_exited);
	assert_int_equal(r->status, 4);
	assert_int_equal(r->out.len, 0);
	pid = pty_proc_pid(r->p);
	run_close(r);
	kill(-pid, SIGKILL);
}

/* Freeing a running process kills and reaps it, with no callback. */
static void test_free_running(void **state)
{
	char *argv[] = { "sleep", "100", NULL };
	struct run *r;
	pid_t pid;

	r = run_new();
	run_spawn(r, argv, NULL, NULL);
	pid = pty_proc_pid(r->p);
	pty_proc_free(r->p);
	r->p = NULL;
	uv_run(&r->loop, UV_RUN_DEFAULT);
	assert_int_equal(r->exits, 0);
	run_close(r);

	/* Reaped: the pid is no longer our child. */
	assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

/* on_output that frees the process at its first output. */
static void free_on_output(struct pty_proc *p, const char *data, size_t len,
			   void *arg)
{
	struct run *r = arg;

	assert_non_null(r->p);
	buf_append(&r->out, data, len);
	pty_proc_free(r->p);
	r->p = NULL;
}

/* on_exit that frees the process from inside the callback. */
static void free_on_exit(struct pty_proc *p, int status, void *arg)
{
	struct run *r = arg;

	r->exits++;
	r->status = status;
	pty_proc_free(p);
	r->p = NULL;
}

/* Runs the loop until nothing but the watchdog is left, then closes it. */
static void run_out(struct run *r)
{
	uv_timer_start(&r->watchdog, run_on_watchdog, WAIT_MS, 0);
	uv_unref((uv_handle_t *)&r->watchdog);
	uv_run(&r->loop, UV_RUN_DEFAULT);
	assert_false(r->timed_out);
	uv_close((uv_handle_t *)&r->watchdog, NULL);
	uv_run(&r->loop, UV_RUN_DEFAULT);
}

/* A process may be freed from inside its own callbacks. */
static void test_free_in_callback(void **state)
{
	char *big[] = { "/bin/sh", "-c",
			"head -c 1048576 /dev/zero | tr '\\000' a", NULL };
	char *small[] = { "/bin/sh", "-c", "printf x; exit 7", NULL };
	struct pty_proc_opts o = {
		.argv = big, .on_output = free_on_output,
		.on_exit = run_on_exit,
	};
	char *cause = NULL;
	struct run *r;

	/* Freed at the first output: nothing more is delivered. */
	r = run_new();
	o.arg = r;
	assert_int_equal(pty_proc_spawn(&r->loop, &o, &r->p, &cause), 0);
	run_out(r);
	assert_null(r->p);
	assert_true(r->out.len > 0 && r->out.len <= 65536);
	assert_int_equal(r->exits, 0);
	assert_int_equal(uv_loop_close(&r->loop), 0);
	buf_free(&r->out);
	free(r);

	/* Freed in on_exit. */
	r = run_new();
	o.argv = small;
	o.on_output = run_on_output;
	o.on_exit = free_on_exit;
	o.arg = r;
	assert_int_equal(pty_proc_spawn(&r->loop, &o, &r->p, &cause), 0);
	run_out(r);
	assert_null(r->p);
	assert_int_equal(r->exits, 1);
	assert_int_equal(r->status, 7);
	assert_string_equal(r->out.data, "x");
	assert_int_equal(uv_loop_close(&r->loop), 0);
	buf_free(&r->out);
	free(r);
}

/* on_exit for the shared-loop test: records the status by index. */
static void many_on_exit(struct pty_proc *p, int status, void *arg)
{
	int *slot = arg;

	*slot = status;
}

/* Several processes on one loop share its reaper; each gets its status. */
static void test_many(void **state)
{
	enum { N = 4 };
	struct pty_proc *p[N];
	int status[N];
	uv_loop_t loop;

	assert_int_equal(uv_loop_init(&loop), 0);
	for (int i = 0; i < N; i++) {
		char *script = xasprintf("sleep 0.%d; exit %d", N - i, 10 + i);
		char *argv[] = { "/bin/sh", "-c", script, NULL };
		struct pty_proc_opts o = {
			.argv = argv, .on_exit = many_on_exit,
			.arg = &status[i],
		};
		char *cause = NULL;

		status[i] = -1;
		assert_int_equal(pty_proc_spawn(&loop, &o, &p[i], &cause), 0);
		free(script);
	}

	/* Every process ends, so the loop runs out of active handles. */
	uv_run(&loop, UV_RUN_DEFAULT);
	for (int i = 0; i < N; i++) {
		assert_int_equal(status[i], 10 + i);
		pty_proc_free(p[i]);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

#ifdef TEST_AGENT_BIN
/* Runs the test agent in `cwd` with HOME=home, through the steps. */
static struct run *agent_run(const char *home, const char *cwd, bool resume,
			     const struct step *steps, size_t nsteps)
{
	char *argv[] = { TEST_AGENT_BIN, "--session", "s1",
			 resume ? "--resume" : NULL, NULL };
	char *env_home = xasprintf("HOME=%s", home);
	char *env[] = { env_home, NULL };
	struct run *r = run_new();

	r->steps = steps;
	r->nsteps = nsteps;
	run_to_exit(r, argv, cwd, env);
	free(env_home);
	return r;
}

/* The test agent remembers across a resume, in its own directory only. */
static void test_test_agent(void **state)
{
	static const struct step first[] = {
		{ "> ", "remember a\n", NULL },
		{ "noted: a\r\n", NULL, NULL },
		{ "> ", "recall\n", NULL },
		{ "turn 1: remember a\r\nend of recall\r\n", NULL, NULL },
		{ "> ", "burst 100000\n", NULL },
		{ "00099968 ", NULL, NULL },
		{ "burst done\r\n> ", "exit\n", NULL },
	};
	static const struct step again[] = {
		{ "resumed session s1 with 3 turns\r\n> ", "recall\n", NULL },
		{ "turn 1: remember a\r\nturn 2: recall\r\n"
		  "turn 3: burst 100000\r\nend of recall\r\n", NULL, NULL },
		{ "> ", "exit\n", NULL },
	};
	static const struct step stopped[] = {
		{ "> ", "hello\n", NULL },
		{ "agent heard: hello (turn 5)\r\n> ", NULL, stop_long },
	};
	static const struct step kept[] = {
		{ "resumed session s1 with 5 turns\r\n> ", "exit\n", NULL },
	};
	char *home = temp_dir();
	char *work = xasprintf("%s/work tree", home);
	char *other = xasprintf("%s/other", home);
	char *slug, *file;
	struct stat st;
	struct run *r;

	assert_int_equal(mkdir(work, 0700), 0);
	assert_int_equal(mkdir(other, 0700), 0);

	r = agent_run(home, work, false, first, ARRAY_SIZE(first));
	assert_int_equal(r->status, 0);
	run_close(r);

	/* Filed under the same slug as agent_cwd_slug() gives. */
	slug = agent_cwd_slug(work);
	file = xasprintf("%s/.baton-test-agent/projects/%s/s1.jsonl", home,
			 slug);
	assert_int_equal(stat(file, &st), 0);

	r = agent_run(home, work, true, again, ARRAY_SIZE(again));
	assert_int_equal(r->status, 0);
	run_close(r);

	/* SIGHUP and SIGTERM end it cleanly, the conversation kept. */
	r = agent_run(home, work, true, stopped, ARRAY_SIZE(stopped));
	assert_int_equal(r->status, 0);
	run_close(r);
	r = agent_run(home, work, true, kept, ARRAY_SIZE(kept));
	assert_int_equal(r->status, 0);
	run_close(r);

	/* Starting it again is refused; so is resuming elsewhere. */
	r = agent_run(home, work, false, NULL, 0);
	assert_int_equal(r->status, 2);
	run_close(r);
	r = agent_run(home, other, true, NULL, 0);
	assert_int_equal(r->status, 4);
	assert_non_null(strstr(r->out.data, "another directory"));
	run_close(r);

	/* Under another home there is nothing to resume. */
	r = agent_run(other, work, true, NULL, 0);
	assert_int_equal(r->status, 3);
	run_close(r);

	free(slug);
	free(file);
	free(work);
	free(other);
	assert_int_equal(rm_rf(home), 0);
	free(home);
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exit_status),
		cmocka_unit_test(test_big_output),
		cmocka_unit_test(test_write_cat),
		cmocka_unit_test(test_write_queue),
		cmocka_unit_test(test_resize),
		cmocka_unit_test(test_stop),
		cmocka_unit_test(test_stop_kill),
		cmocka_unit_test(test_cwd_env),
		cmocka_unit_test(test_exec_fails),
		cmocka_unit_test(test_spawn_errors),
		cmocka_unit_test(test_pause),
		cmocka_unit_test(test_grandchild),
		cmocka_unit_test(test_free_running),
		cmocka_unit_test(test_free_in_callback),
		cmocka_unit_test(test_many),
#ifdef TEST_AGENT_BIN
		cmocka_unit_test(test_test_agent),
#endif
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
