/*
 * link.h: one WebSocket connection from a daemon or client to the relay,
 * on a libuv loop, that reconnects by itself.
 *
 * The owner gets callbacks for open, each whole message, and close. After
 * on_open the owner sends its hello; after on_close the link retries with
 * exponential backoff (capped, with jitter) unless it was told to stop.
 * Messages queued while disconnected are dropped: the owner resends what
 * matters after the next hello.
 */
#ifndef BATON_LINK_H
#define BATON_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "frames.h"
#include "proto.h"

struct link;

struct link_callbacks {
	void (*on_open)(struct link *l, void *arg);
	void (*on_text)(struct link *l, const char *text, size_t len,
			void *arg);
	void (*on_binary)(struct link *l, const struct proto_bin *frame,
			  void *arg);
	/* reason says why; the link retries afterwards when it may. */
	void (*on_close)(struct link *l, const char *reason, void *arg);
};

struct link_opts {
	const char *url;		/* ws://HOST:PORT[/PATH] */
	bool reconnect;			/* retry after a close */
	unsigned backoff_max_ms;	/* 0: default (10 s) */
	/* ping and dead-peer times; NULL: defaults and the environment */
	const struct frames_liveness *liveness;
	const struct link_callbacks *cb;
	void *arg;
};

/* Parses the URL and starts connecting; *cause explains a bad URL. */
int link_new(uv_loop_t *loop, const struct link_opts *opts,
	     struct link **out, char **cause);
bool link_connected(const struct link *l);
/*
 * The owner says the connection works (the relay welcomed it): the next
 * retry starts from the shortest delay again. Until then every retry
 * waits longer, so a relay that refuses us is not hammered.
 */
void link_healthy(struct link *l);
/* Queues a message; the text is copied. 0, or -ENOTCONN when closed. */
int link_send_text(struct link *l, const char *text);
/* Sends text and frees it (for proto_encode results). */
int link_send_owned(struct link *l, char *text);
int link_send_binary(struct link *l, const struct proto_bin *hdr,
		     const void *data, size_t len);
/* Bytes waiting to be written (for flow control). */
size_t link_queued(const struct link *l);
/* Drops the current connection; it is retried when reconnect is set. */
void link_drop(struct link *l, const char *why);
/*
 * Stops for good: closes the connection and every handle. Let the loop run
 * until it has no more work, then call link_free.
 */
void link_shutdown(struct link *l);
void link_free(struct link *l);

/* Splits ws://HOST:PORT/PATH; caller frees host and path. */
int link_parse_url(const char *url, char **host, int *port, char **path,
		   char **cause);

#endif
