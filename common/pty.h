/*
 * pty.h: one agent process in a pseudo-terminal, on a libuv loop.
 *
 * The master is read directly (non-blocking, uv_poll, read until EAGAIN,
 * finish on EIO) because libuv's stream can report EOF while output is still
 * buffered. Children are reaped with SIGCHLD and waitpid(pid). Output and
 * exit are reported through callbacks; on_exit comes after the last output.
 */
#ifndef BATON_PTY_H
#define BATON_PTY_H

#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

struct pty_proc;

typedef void (*pty_output_cb)(struct pty_proc *p, const char *data,
			      size_t len, void *arg);
/* status: the exit code, or 128 + signal number when killed by a signal. */
typedef void (*pty_exit_cb)(struct pty_proc *p, int status, void *arg);

struct pty_proc_opts {
	char *const *argv;	/* argv[0] searched in PATH */
	char *const *env;	/* extra NAME=VALUE entries added, or NULL */
	const char *cwd;
	unsigned short cols, rows;
	pty_output_cb on_output;
	pty_exit_cb on_exit;
	void *arg;
};

/* Starts the process. Signals are reset to default in the child. */
int pty_proc_spawn(uv_loop_t *loop, const struct pty_proc_opts *opts,
		   struct pty_proc **out, char **cause);
/* Queues bytes for the agent's terminal; 0, or -EPIPE once it is gone. */
int pty_proc_write(struct pty_proc *p, const void *data, size_t len);
int pty_proc_resize(struct pty_proc *p, unsigned short cols,
		    unsigned short rows);
/* Flow control: stop and restart reading the agent's output. */
void pty_proc_pause(struct pty_proc *p);
void pty_proc_resume(struct pty_proc *p);
/*
 * Ends the process gracefully: SIGHUP and SIGTERM to its process group, then
 * SIGKILL after grace_ms. on_exit is called as usual. Does nothing once the
 * process has been reaped.
 */
void pty_proc_stop(struct pty_proc *p, unsigned grace_ms);
pid_t pty_proc_pid(const struct pty_proc *p);
/* 1 until the process has been reaped (on_exit may still be pending). */
int pty_proc_running(const struct pty_proc *p);
/*
 * Releases the process object; safe at any time (a running process is
 * killed first). No callback fires after this returns; memory is freed when
 * libuv has closed the handles.
 */
void pty_proc_free(struct pty_proc *p);

/*
 * A child's environment: ours, less the names EXTRA sets again, then EXTRA,
 * then TERM when unset. The array is malloc'd (free it alone); the strings
 * are ours and EXTRA's. -EINVAL with *cause for an entry without '='.
 */
int pty_env_build(char *const *extra, char ***out, char **cause);

#endif
