/*
 * frames.h: the byte plumbing under every Baton WebSocket: an outbound queue
 * written one whole message per writable callback, and reassembly of
 * inbound messages from lws fragments with the protocol's size limit.
 * Shared by the relay's server connections and the daemons' and client's
 * link.
 */
#ifndef BATON_FRAMES_H
#define BATON_FRAMES_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct frame;

struct frame_queue {
	struct frame *head;
	struct frame *tail;
	size_t bytes;		/* payload bytes queued */
	size_t count;
};

/* Queues a text message (copied). */
void frame_queue_text(struct frame_queue *q, const char *text, size_t len);
/* Queues a binary frame: header of `hdr` followed by data (copied). */
void frame_queue_binary(struct frame_queue *q, const struct proto_bin *hdr,
			const void *data, size_t len);
/*
 * Writes the oldest message to wsi. Returns 1 when more remain (the caller
 * asks for another writable callback), 0 when the queue is empty, and -1
 * when the write failed (close the connection).
 */
int frame_queue_write(struct frame_queue *q, struct lws *wsi);
void frame_queue_clear(struct frame_queue *q);

/*
 * Liveness: lws pings a connection that has been idle for ping_s seconds
 * and closes one that has shown no sign of life for dead_s seconds. The
 * defaults can be changed with BATON_PING_INTERVAL and BATON_DEAD_AFTER
 * (seconds) in the environment, for every program.
 */
#define FRAMES_PING_DEFAULT 20
#define FRAMES_DEAD_DEFAULT 60

struct frames_liveness {
	unsigned ping_s;
	unsigned dead_s;
	lws_retry_bo_t policy;	/* handed to lws */
};

/* Fills the defaults, then the environment's values; 0 or -EINVAL with a
 * cause naming the bad variable. */
int frames_liveness_init(struct frames_liveness *l, char **cause);
/* Sets both times (0 keeps a value); dead must exceed ping. */
int frames_liveness_set(struct frames_liveness *l, unsigned ping_s,
			unsigned dead_s, char **cause);

/* Inbound reassembly. */
struct frame_rx {
	uint8_t *data;
	size_t len;
	size_t cap;
	bool binary;
	bool overflow;		/* current message exceeds the limit */
};

enum frame_rx_result {
	FRAME_RX_MORE = 0,	/* message incomplete */
	FRAME_RX_TEXT,		/* a whole text message is in rx->data */
	FRAME_RX_BINARY,	/* a whole binary message is in rx->data */
	FRAME_RX_TOO_LARGE,	/* a whole message was dropped: over limit */
};

/* Feeds one lws receive callback's bytes; after a complete result the
 * caller uses rx->data/len and then calls frame_rx_reset. */
enum frame_rx_result frame_rx_feed(struct frame_rx *rx, struct lws *wsi,
				   const void *in, size_t len);
void frame_rx_reset(struct frame_rx *rx);
void frame_rx_free(struct frame_rx *rx);

#endif
