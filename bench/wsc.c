/*
 * wsc.c: a client lws context holding many connections, for the
 * benchmark programs (see wsc.h).
 */
#define _GNU_SOURCE
#include "wsc.h"
#include "util.h"

#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct wsc {
	uv_loop_t *loop;
	struct lws_context *ctx;
	struct wsc_ops ops;
};

uint64_t wsc_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

static int wsc_callback(struct lws *wsi, enum lws_callback_reasons reason,
			void *user, void *in, size_t len)
{
	struct wsc_conn *c = lws_get_opaque_user_data(wsi);
	int r;

	if (c == NULL)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		c->open = true;
		if (c->owner->ops.on_open)
			c->owner->ops.on_open(c);
		break;

	case LWS_CALLBACK_CLIENT_RECEIVE:
		switch (frame_rx_feed(&c->in, wsi, in, len)) {
		case FRAME_RX_MORE:
			return 0;
		case FRAME_RX_TEXT:
			if (c->owner->ops.on_text)
				c->owner->ops.on_text(c, (char *)c->in.data,
						      c->in.len);
			break;
		case FRAME_RX_BINARY:
			if (c->owner->ops.on_binary)
				c->owner->ops.on_binary(c, c->in.data,
							c->in.len);
			break;
		default:
			break;
		}
		frame_rx_reset(&c->in);
		break;

	case LWS_CALLBACK_CLIENT_WRITEABLE:
		r = frame_queue_write(&c->out, wsi);
		if (r < 0)
			return -1;
		if (r > 0)
			lws_callback_on_writable(wsi);
		break;

	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
	case LWS_CALLBACK_CLIENT_CLOSED:
		c->open = false;
		c->closed = true;
		c->wsi = NULL;
		lws_set_opaque_user_data(wsi, NULL);
		if (c->owner->ops.on_close)
			c->owner->ops.on_close(c);
		break;

	default:
		break;
	}
	return 0;
}

static const struct lws_protocols wsc_protocols[] = {
	{ PROTO_SUBPROTOCOL, wsc_callback, 0, PROTO_CHUNK + 1024, 0, NULL,
	  0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

struct wsc *wsc_new(uv_loop_t *loop, const struct wsc_ops *ops)
{
	struct lws_context_creation_info info;
	void *loops[1] = { loop };
	struct wsc *w = xcalloc(1, sizeof(*w));

	w->loop = loop;
	w->ops = *ops;
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = wsc_protocols;
	info.options = LWS_SERVER_OPTION_LIBUV;
	info.foreign_loops = loops;
	info.user = w;
	info.gid = -1;
	info.uid = -1;
	/* room for the idle-connection benchmark's thousands of sockets */
	info.fd_limit_per_thread = 0;
	w->ctx = lws_create_context(&info);
	if (w->ctx == NULL) {
		free(w);
		return NULL;
	}
	return w;
}

struct wsc_conn *wsc_connect(struct wsc *w, int port, void *data)
{
	struct lws_client_connect_info ci;
	struct wsc_conn *c = xcalloc(1, sizeof(*c));

	c->owner = w;
	c->data = data;
	memset(&ci, 0, sizeof(ci));
	ci.context = w->ctx;
	ci.address = "127.0.0.1";
	ci.port = port;
	ci.path = "/";
	ci.host = "127.0.0.1";
	ci.origin = "127.0.0.1";
	ci.protocol = PROTO_SUBPROTOCOL;
	ci.opaque_user_data = c;
	ci.pwsi = &c->wsi;
	if (lws_client_connect_via_info(&ci) == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

void wsc_send_text(struct wsc_conn *c, const char *text)
{
	if (!c->open)
		return;
	frame_queue_text(&c->out, text, strlen(text));
	lws_callback_on_writable(c->wsi);
}

void wsc_send_binary(struct wsc_conn *c, const struct proto_bin *hdr,
		     const void *payload, size_t len)
{
	if (!c->open)
		return;
	frame_queue_binary(&c->out, hdr, payload, len);
	lws_callback_on_writable(c->wsi);
}

void wsc_read(struct wsc_conn *c, bool on)
{
	if (c->wsi)
		lws_rx_flow_control(c->wsi, on ? 1 : 0);
}

void wsc_shutdown(struct wsc *w)
{
	lws_context_destroy(w->ctx);
}

void wsc_free(struct wsc *w)
{
	lws_context_destroy(w->ctx);
	free(w);
}

void wsc_attach_start(struct wsc_conn *c, const struct wsc_attach *a)
{
	cJSON *body = cJSON_CreateObject();
	char *text;

	cJSON_AddNumberToObject(body, "version", PROTO_VERSION);
	cJSON_AddStringToObject(body, "role", "client");
	cJSON_AddStringToObject(body, "token", a->token);
	text = proto_encode("hello", "h", NULL, body);
	wsc_send_text(c, text);
	free(text);
}

int wsc_attach_text(struct wsc_conn *c, struct wsc_attach *a,
		    const char *text, size_t len)
{
	struct proto_msg m;
	const char *code;
	char cause[200], *out = NULL;
	cJSON *body;
	int r = 0;

	if (proto_msg_decode(text, len, PROTO_FROM_RELAY, &m, &code, cause,
			     sizeof(cause)) < 0) {
		fprintf(stderr, "bench: a bad message from the relay: %s\n",
			cause);
		proto_msg_free(&m);
		return -1;
	}
	if (!strcmp(m.type, "welcome")) {
		out = proto_encode("session.status", "s", a->session, NULL);
	} else if (!strcmp(m.type, "session") && !strcmp(m.id, "s")) {
		if (proto_u64(m.body, "seq", &a->from) < 0)
			a->from = 0;
		body = cJSON_CreateObject();
		proto_add_u64(body, "from", a->from);
		out = proto_encode("session.attach", "a", a->session, body);
	} else if (!strcmp(m.type, "attached")) {
		r = 1;
	} else if (!strcmp(m.type, "error")) {
		fprintf(stderr, "bench: the relay says %s: %s\n",
			proto_str(m.body, "code"),
			proto_str(m.body, "message"));
		r = -1;
	}
	if (out) {
		wsc_send_text(c, out);
		free(out);
	}
	proto_msg_free(&m);
	return r;
}
