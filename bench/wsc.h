/*
 * wsc.h: many WebSocket client connections on one lws context and one
 * libuv loop, for the benchmark programs. Messages go out through the
 * same frame queue the daemons use (common/frames.c), one per writable
 * callback, and come in whole.
 */
#ifndef BATON_BENCH_WSC_H
#define BATON_BENCH_WSC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "frames.h"

struct wsc;

struct wsc_conn {
	struct wsc *owner;
	struct lws *wsi;
	struct frame_queue out;
	struct frame_rx in;
	bool open;
	bool closed;
	void *data;		/* the program's */
};

struct wsc_ops {
	void (*on_open)(struct wsc_conn *c);
	void (*on_text)(struct wsc_conn *c, const char *text, size_t len);
	void (*on_binary)(struct wsc_conn *c, const uint8_t *data,
			  size_t len);
	void (*on_close)(struct wsc_conn *c);
};

/* A client context on loop; subprotocol "baton.v1". NULL on failure. */
struct wsc *wsc_new(uv_loop_t *loop, const struct wsc_ops *ops);
/* Starts a connection to ws://127.0.0.1:port/; NULL when lws refuses. */
struct wsc_conn *wsc_connect(struct wsc *w, int port, void *data);
void wsc_send_text(struct wsc_conn *c, const char *text);
void wsc_send_binary(struct wsc_conn *c, const struct proto_bin *hdr,
		     const void *payload, size_t len);
/* Stops (false) or resumes (true) reading the socket: a stalled peer. */
void wsc_read(struct wsc_conn *c, bool on);
/* Closes every connection; run the loop until it is idle, then free. */
void wsc_shutdown(struct wsc *w);
void wsc_free(struct wsc *w);

/*
 * Attaching to a session through the relay as a client: hello with the
 * token, session.status for the last seq stored, session.attach from
 * there (so nothing is replayed). wsc_attach_start after on_open; feed
 * every text message to wsc_attach_text, which returns 1 once attached
 * (a->from is then the seq after which output is live), 0 while it goes
 * on, -1 when the relay refused (printed).
 */
struct wsc_attach {
	const char *token;
	const char *session;	/* UUID text */
	uint64_t from;
};
void wsc_attach_start(struct wsc_conn *c, const struct wsc_attach *a);
int wsc_attach_text(struct wsc_conn *c, struct wsc_attach *a,
		    const char *text, size_t len);

/* Microseconds on the monotonic clock. */
uint64_t wsc_now_us(void);

#endif
