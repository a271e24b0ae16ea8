/*
 * frames.c: outbound queues and inbound reassembly for lws connections.
 */
#include "frames.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct frame {
	struct frame *next;
	bool binary;
	size_t len;
	uint8_t bytes[];	/* LWS_PRE headroom, then the message */
};

static struct frame *frame_new(struct frame_queue *q, bool binary,
			       size_t len)
{
	struct frame *f = xmalloc(sizeof(*f) + LWS_PRE + len);

	f->next = NULL;
	f->binary = binary;
	f->len = len;
	if (q->tail)
		q->tail->next = f;
	else
		q->head = f;
	q->tail = f;
	q->bytes += len;
	q->count++;
	return f;
}

void frame_queue_text(struct frame_queue *q, const char *text, size_t len)
{
	struct frame *f = frame_new(q, false, len);

	memcpy(f->bytes + LWS_PRE, text, len);
}

void frame_queue_binary(struct frame_queue *q, const struct proto_bin *hdr,
			const void *data, size_t len)
{
	struct frame *f = frame_new(q, true, PROTO_BIN_HEADER + len);

	proto_bin_header(hdr, f->bytes + LWS_PRE);
	if (len)
		memcpy(f->bytes + LWS_PRE + PROTO_BIN_HEADER, data, len);
}

int frame_queue_write(struct frame_queue *q, struct lws *wsi)
{
	struct frame *f = q->head;
	int n;

	if (f == NULL)
		return 0;
	n = lws_write(wsi, f->bytes + LWS_PRE, f->len,
		      f->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
	if (n < 0)
		return -1;

	/* lws keeps any unsent remainder itself and calls us back when the
	 * socket has drained it. */
	q->head = f->next;
	if (q->head == NULL)
		q->tail = NULL;
	q->bytes -= f->len;
	q->count--;
	free(f);
	return q->head ? 1 : 0;
}

void frame_queue_clear(struct frame_queue *q)
{
	struct frame *f = q->head;

	while (f) {
		struct frame *next = f->next;

		free(f);
		f = next;
	}
	memset(q, 0, sizeof(*q));
}

/* Reads one of the liveness variables when it is set. */
static int env_seconds(const char *name, unsigned *out, char **cause)
{
	const char *v = getenv(name);

	if (v == NULL || v[0] == '\0' || parse_seconds(v, out) == 0)
		return 0;
	*cause = xasprintf("%s=%s: expected a number of seconds from 1 to "
			   "65535", name, v);
	return -EINVAL;
}

int frames_liveness_set(struct frames_liveness *l, unsigned ping_s,
			unsigned dead_s, char **cause)
{
	if (ping_s)
		l->ping_s = ping_s;
	if (dead_s)
		l->dead_s = dead_s;
	if (l->ping_s > 65535 || l->dead_s > 65535 || l->dead_s <= l->ping_s) {
		*cause = xasprintf("the dead-peer timeout (%u s) must be "
				   "longer than the ping interval (%u s)",
				   l->dead_s, l->ping_s);
		return -EINVAL;
	}
	memset(&l->policy, 0, sizeof(l->policy));
	l->policy.secs_since_valid_ping = (uint16_t)l->ping_s;
	l->policy.secs_since_valid_hangup = (uint16_t)l->dead_s;
	return 0;
}

int frames_liveness_init(struct frames_liveness *l, char **cause)
{
	unsigned ping = FRAMES_PING_DEFAULT, dead = FRAMES_DEAD_DEFAULT;

	l->ping_s = l->dead_s = 0;
	if (env_seconds("BATON_PING_INTERVAL", &ping, cause) < 0 ||
	    env_seconds("BATON_DEAD_AFTER", &dead, cause) < 0)
		return -EINVAL;
	return frames_liveness_set(l, ping, dead, cause);
}

enum frame_rx_result frame_rx_feed(struct frame_rx *rx, struct lws *wsi,
				   const void *in, size_t len)
{
	if (lws_is_first_fragment(wsi)) {
		rx->len = 0;
		rx->overflow = false;
		rx->binary = lws_frame_is_binary(wsi);
	}
	if (!rx->overflow && rx->len + len > PROTO_MAX_MESSAGE) {
		rx->overflow = true;
		rx->len = 0;
	}
	if (!rx->overflow && len > 0) {
		if (rx->len + len > rx->cap) {
			size_t cap = rx->cap ? rx->cap : 4096;

			while (cap < rx->len + len)
				cap *= 2;
			rx->data = xrealloc(rx->data, cap + 1);
			rx->cap = cap;
		}
		memcpy(rx->data + rx->len, in, len);
		rx->len += len;
	}
	if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
		return FRAME_RX_MORE;
	if (rx->overflow)
		return FRAME_RX_TOO_LARGE;
	if (rx->data == NULL)
		rx->data = xmalloc(1);
	rx->data[rx->len] = '\0';
	return rx->binary ? FRAME_RX_BINARY : FRAME_RX_TEXT;
}

void frame_rx_reset(struct frame_rx *rx)
{
	rx->len = 0;
	rx->overflow = false;

	/* Give back memory a big message took, keeping a small buffer. */
	if (rx->cap > 256 * 1024) {
		free(rx->data);
		rx->data = NULL;
		rx->cap = 0;
	}
}

void frame_rx_free(struct frame_rx *rx)
{
	free(rx->data);
	memset(rx, 0, sizeof(*rx));
}
