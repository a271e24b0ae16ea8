/*
 * daemon.c: the run loop shared by both daemons.
 */
#define _GNU_SOURCE
#include "daemon.h"
#include "log.h"

#include <signal.h>
#include <string.h>

struct daemon_signals {
	uv_signal_t sigint;
	uv_signal_t sigterm;
	struct host *host;
	bool stopping;
};

static void on_closed(uv_handle_t *h)
{
}

/* Stops everything: the signal handles and the host. */
static void daemon_stop(struct host *h, void *arg)
{
	struct daemon_signals *ds = arg;

	if (ds->stopping)
		return;
	ds->stopping = true;
	uv_close((uv_handle_t *)&ds->sigint, on_closed);
	uv_close((uv_handle_t *)&ds->sigterm, on_closed);
	host_shutdown(ds->host);
}

static void on_stop(uv_signal_t *sig, int signum)
{
	struct daemon_signals *ds = sig->data;

	if (!ds->stopping)
		log_info("daemon", "stopping on %s", strsignal(signum));
	daemon_stop(ds->host, ds);
}

int daemon_run(uv_loop_t *loop, struct host *h)
{
	struct daemon_signals ds = { .host = h };
	int status;

	uv_signal_init(loop, &ds.sigint);
	uv_signal_init(loop, &ds.sigterm);
	ds.sigint.data = ds.sigterm.data = &ds;
	uv_signal_start(&ds.sigint, on_stop, SIGINT);
	uv_signal_start(&ds.sigterm, on_stop, SIGTERM);
	host_on_stop(h, daemon_stop, &ds);
	uv_run(loop, UV_RUN_DEFAULT);
	status = host_exit_status(h);
	host_free(h);
	uv_run(loop, UV_RUN_DEFAULT);
	if (uv_loop_close(loop) != 0)
		log_warn("daemon", "event loop closed with handles open");
	return status;
}
