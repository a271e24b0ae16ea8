/*
 * link.c: the daemons' and client's WebSocket to the relay, over lws on
 * the program's libuv loop, with reconnect and backoff.
 */
#define _GNU_SOURCE
#include "link.h"
#include "frames.h"
#include "log.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 10000

struct link {
	uv_loop_t *loop;
	struct lws_context *ctx;
	struct lws *wsi;
	char *host;
	char *path;
	int port;
	char addr[INET6_ADDRSTRLEN];
	struct link_callbacks cb;
	void *arg;
	struct frame_queue out;
	struct frame_rx in;
	struct frames_liveness live;
	uv_timer_t retry;
	uv_getaddrinfo_t resolve;
	bool resolving;
	bool open;		/* WebSocket established */
	bool reconnect;
	bool stopping;
	bool drop_requested;
	unsigned backoff_ms;
	unsigned backoff_max_ms;
	char *close_reason;
};

static void link_schedule(struct link *l);

int link_parse_url(const char *url, char **host, int *port, char **path,
		   char **cause)
{
	const char *p, *host_end;
	size_t host_len;
	long n = 80;

	if (!strncmp(url, "wss://", 6)) {
		*cause = xasprintf("%s: wss:// needs TLS, which this version "
				   "does not speak yet; use ws:// to a relay "
				   "on this machine", url);
		return -EPROTONOSUPPORT;
	}
	if (strncmp(url, "ws://", 5)) {
		*cause = xasprintf("%s: the relay URL must start with ws://, "
				   "as in ws://127.0.0.1:8080", url);
		return -EINVAL;
	}
	p = url + 5;
	if (*p == '[') {
		host_end = strchr(++p, ']');
		if (host_end == NULL)
			goto bad;
		host_len = (size_t)(host_end - p);
		host_end++;
	} else {
		host_end = p + strcspn(p, ":/");
		host_len = (size_t)(host_end - p);
	}
	if (host_len == 0 ||
	    (*host_end != ':' && *host_end != '/' && *host_end != '\0'))
		goto bad;
	if (*host_end == ':') {
		char *end;

		/* Digits only: strtol alone would take " 80" and "+80". */
		if (!isdigit((unsigned char)host_end[1]))
			goto bad;
		n = strtol(host_end + 1, &end, 10);
		if (n <= 0 || n > 65535 || (*end != '/' && *end != '\0'))
			goto bad;
		host_end = end;
	}
	*host = xstrndup(p, host_len);
	*path = xstrdup(*host_end == '/' ? host_end : "/");
	*port = (int)n;
	return 0;
bad:
	*cause = xasprintf("%s: cannot read host and port; expected "
			   "ws://HOST:PORT, as in ws://127.0.0.1:8080", url);
	return -EINVAL;
}

static void set_reason(struct link *l, const char *why)
{
	free(l->close_reason);
	l->close_reason = xstrdup(why);
}

/* Reports a lost connection once and plans the next attempt. */
static void link_lost(struct link *l, const char *why)
{
	bool was_open = l->open;

	l->wsi = NULL;
	l->open = false;
	frame_queue_clear(&l->out);
	frame_rx_reset(&l->in);
	if (l->stopping)
		return;
	if (l->close_reason)
		why = l->close_reason;
	if (was_open || l->backoff_ms == 0 || l->backoff_ms >= 2000)
		log_debug("link", "connection to %s:%d lost: %s", l->host,
			  l->port, why);
	if (l->cb.on_close)
		l->cb.on_close(l, why, l->arg);
	free(l->close_reason);
	l->close_reason = NULL;
	if (l->reconnect && !l->stopping)
		link_schedule(l);
}

static int link_callback(struct lws *wsi, enum lws_callback_reasons reason,
			 void *user, void *in, size_t len)
{
	struct link *l = lws_context_user(lws_get_context(wsi));
	struct proto_bin frame;
	const char *cause;
	int r;

	if (l == NULL || (l->wsi != wsi && l->wsi != NULL))
		return 0;

	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		l->open = true;
		log_debug("link", "connected to %s:%d", l->host, l->port);
		if (l->cb.on_open)
			l->cb.on_open(l, l->arg);
		break;

	case LWS_CALLBACK_CLIENT_RECEIVE:
		switch (frame_rx_feed(&l->in, wsi, in, len)) {
		case FRAME_RX_MORE:
			return 0;
		case FRAME_RX_TEXT:
			if (l->cb.on_text)
				l->cb.on_text(l, (char *)l->in.data,
					      l->in.len, l->arg);
			break;
		case FRAME_RX_BINARY:
			if (proto_bin_decode(l->in.data, l->in.len, &frame,
					     &cause) < 0)
				log_warn("link", "dropped a binary frame from "
					 "the relay: %s", cause);
			else if (l->cb.on_binary)
				l->cb.on_binary(l, &frame, l->arg);
			break;
		case FRAME_RX_TOO_LARGE:
			log_warn("link", "dropped a message from the relay "
				 "over %d bytes", PROTO_MAX_MESSAGE);
			break;
		}
		frame_rx_reset(&l->in);
		break;

	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (l->drop_requested) {
			l->drop_requested = false;
			lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
			return -1;
		}
		r = frame_queue_write(&l->out, wsi);
		if (r < 0)
			return -1;
		if (r > 0)
			lws_callback_on_writable(wsi);
		break;

	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (l->wsi == wsi || l->wsi == NULL) {
			char why[160];

			snprintf(why, sizeof(why), "cannot connect: %s",
				 in ? (const char *)in : "unknown error");
			link_lost(l, why);
		}
		break;

	case LWS_CALLBACK_CLIENT_CLOSED:
		if (l->wsi == wsi)
			link_lost(l, "closed by the relay");
		break;

	default:
		break;
	}
	return 0;
}

static const struct lws_protocols link_protocols[] = {
	{ PROTO_SUBPROTOCOL, link_callback, 0, PROTO_CHUNK + 1024, 0, NULL,
	  0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* Starts the WebSocket handshake to the resolved address. */
static void link_connect(struct link *l)
{
	struct lws_client_connect_info ci;

	memset(&ci, 0, sizeof(ci));
	ci.context = l->ctx;
	ci.address = l->addr;
	ci.port = l->port;
	ci.path = l->path;
	ci.host = l->host;
	ci.origin = l->host;
	ci.protocol = PROTO_SUBPROTOCOL;
	ci.retry_and_idle_policy = &l->live.policy;
	ci.pwsi = &l->wsi;
	l->wsi = NULL;
	if (lws_client_connect_via_info(&ci) == NULL && !l->stopping) {
		l->wsi = NULL;
		link_lost(l, "cannot start a connection");
	}
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
			struct addrinfo *res)
{
	struct link *l = req->data;

	l->resolving = false;
	if (l->stopping) {
		uv_freeaddrinfo(res);
		return;
	}
	if (status < 0 || res == NULL) {
		char why[200];

		snprintf(why, sizeof(why), "cannot resolve %s: %s", l->host,
			 uv_strerror(status));
		uv_freeaddrinfo(res);
		link_lost(l, why);
		return;
	}
	if (res->ai_family == AF_INET6)
		uv_ip6_name((struct sockaddr_in6 *)res->ai_addr, l->addr,
			    sizeof(l->addr));
	else
		uv_ip4_name((struct sockaddr_in *)res->ai_addr, l->addr,
			    sizeof(l->addr));
	uv_freeaddrinfo(res);
	link_connect(l);
}

/* Resolves the host off the loop thread (lws would block on DNS). */
static void link_start(struct link *l)
{
	struct addrinfo hints;
	int r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	l->resolve.data = l;
	r = uv_getaddrinfo(l->loop, &l->resolve, on_resolved, l->host, NULL,
			   &hints);
	if (r < 0) {
		link_lost(l, uv_strerror(r));
		return;
	}
	l->resolving = true;
}

static void on_retry(uv_timer_t *t)
{
	struct link *l = t->data;

	if (!l->stopping && l->wsi == NULL && !l->resolving)
		link_start(l);
}

/* Waits before the next attempt: doubling, capped, with jitter. */
static void link_schedule(struct link *l)
{
	unsigned delay, half;

	l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (l->backoff_ms > l->backoff_max_ms)
		l->backoff_ms = l->backoff_max_ms;
	half = l->backoff_ms / 2;
	delay = half + (unsigned)rand() % (half + 1);
	uv_timer_start(&l->retry, on_retry, delay, 0);
}

int link_new(uv_loop_t *loop, const struct link_opts *opts,
	     struct link **out, char **cause)
{
	struct lws_context_creation_info info;
	void *loops[1] = { loop };
	struct link *l;
	int r;

	l = xcalloc(1, sizeof(*l));
	if (opts->liveness)
		l->live = *opts->liveness;
	else if ((r = frames_liveness_init(&l->live, cause)) < 0)
		goto fail;
	r = link_parse_url(opts->url, &l->host, &l->port, &l->path, cause);
	if (r < 0)
		goto fail;
	l->loop = loop;
	l->cb = *opts->cb;
	l->arg = opts->arg;
	l->reconnect = opts->reconnect;
	l->backoff_max_ms = opts->backoff_max_ms ? opts->backoff_max_ms
						 : BACKOFF_MAX_MS;

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = link_protocols;
	info.options = LWS_SERVER_OPTION_LIBUV;
	info.foreign_loops = loops;
	info.user = l;
	info.gid = -1;
	info.uid = -1;
	l->ctx = lws_create_context(&info);
	if (l->ctx == NULL) {
		*cause = xstrdup("cannot start libwebsockets on libuv; is "
				 "the libwebsockets-evlib-uv package "
				 "installed?");
		r = -ENOTSUP;
		goto fail;
	}
	uv_timer_init(loop, &l->retry);
	l->retry.data = l;
	link_start(l);
	*out = l;
	return 0;
fail:
	free(l->host);
	free(l->path);
	free(l);
	return r;
}

bool link_connected(const struct link *l)
{
	return l->open;
}

void link_healthy(struct link *l)
{
	l->backoff_ms = 0;
}

int link_send_text(struct link *l, const char *text)
{
	if (!l->open)
		return -ENOTCONN;
	frame_queue_text(&l->out, text, strlen(text));
	lws_callback_on_writable(l->wsi);
	return 0;
}

int link_send_owned(struct link *l, char *text)
{
	int r = link_send_text(l, text);

	free(text);
	return r;
}

int link_send_binary(struct link *l, const struct proto_bin *hdr,
		     const void *data, size_t len)
{
	if (!l->open)
		return -ENOTCONN;
	frame_queue_binary(&l->out, hdr, data, len);
	lws_callback_on_writable(l->wsi);
	return 0;
}

size_t link_queued(const struct link *l)
{
	return l->out.bytes;
}

void link_drop(struct link *l, const char *why)
{
	if (l->wsi == NULL)
		return;
	set_reason(l, why);
	l->drop_requested = true;
	lws_callback_on_writable(l->wsi);
}

static void on_retry_closed(uv_handle_t *h)
{
}

void link_shutdown(struct link *l)
{
	if (l->stopping)
		return;
	l->stopping = true;
	if (l->resolving)
		uv_cancel((uv_req_t *)&l->resolve);
	uv_timer_stop(&l->retry);
	uv_close((uv_handle_t *)&l->retry, on_retry_closed);
	lws_context_destroy(l->ctx);
}

void link_free(struct link *l)
{
	if (l == NULL)
		return;
	if (!l->stopping)
		link_shutdown(l);
	lws_context_destroy(l->ctx);
	frame_queue_clear(&l->out);
	frame_rx_free(&l->in);
	free(l->close_reason);
	free(l->host);
	free(l->path);
	free(l);
}
