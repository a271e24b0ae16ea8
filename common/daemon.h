/*
 * daemon.h: what baton-local and baton-sandbox share around the session
 * host: running the loop until SIGINT or SIGTERM and shutting down in the
 * order libwebsockets on a foreign loop needs.
 */
#ifndef BATON_DAEMON_H
#define BATON_DAEMON_H

#include "host.h"

/* Runs the host until a stop signal, or until it stops by itself; returns
 * the exit status (0 after a signal, 1 when the relay refused us). */
int daemon_run(uv_loop_t *loop, struct host *h);

#endif
