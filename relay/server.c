/*
 * server.c: the relay's WebSocket server: lws on the relay's libuv loop,
 * one struct conn per connection, whole messages handed to relay.c. With
 * a certificate and key it serves wss:// only.
 */
#define _GNU_SOURCE
#include "relay.h"
#include "log.h"
#include "ratelimit.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIMIT_LOG_MS 10000	/* refusals logged at info at most this often */

static struct conn *conn_new(struct relay *r, struct lws *wsi)
{
	struct conn *c = xcalloc(1, sizeof(*c));

	c->id = ++r->next_conn_id;
	c->opened_ms = uv_now(r->loop);
	c->relay = r;
	c->wsi = wsi;
	lws_get_peer_simple(wsi, c->peer, sizeof(c->peer));
	c->next = r->conns;
	r->conns = c;
	return c;
}

/*
 * The key an address is limited by: an IPv6 address by its /64, which one
 * host usually holds whole; anything else as it is.
 */
static void addr_key(const char *peer, char *key, size_t len)
{
	struct in6_addr a;
	const uint8_t *b = a.s6_addr;

	if (inet_pton(AF_INET6, peer, &a) == 1 && !IN6_IS_ADDR_V4MAPPED(&a))
		snprintf(key, len, "%x:%x:%x:%x::/64", b[0] << 8 | b[1],
			 b[2] << 8 | b[3], b[4] << 8 | b[5], b[6] << 8 | b[7]);
	else
		snprintf(key, len, "%s", peer);
}

/* Takes a new connection from its address's allowance, or refuses it. */
static void conn_check_rate(struct relay *r, struct conn *c)
{
	char key[sizeof(c->peer)], why[128];
	uint64_t retry_ms = 0;

	if (r->limits.conn_rate == NULL)
		return;
	addr_key(c->peer, key, sizeof(key));
	if (ratelimit_take(r->limits.conn_rate, key, uv_now(r->loop),
			   &retry_ms))
		return;
	snprintf(why, sizeof(why), "too many connections from your address; "
		 "try again in %" PRIu64 " s", (retry_ms + 999) / 1000);
	conn_limited(c, NULL, why, true);
}

static void conn_free(struct relay *r, struct conn *c)
{
	for (struct conn **p = &r->conns; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	frame_queue_clear(&c->out);
	frame_rx_free(&c->in);
	auth_conn_free(c);
	free(c->user);
	free(c->machine_id);
	free(c->machine_name);
	free(c->machine_kind);
	free(c);
}

/*
 * Answers plain HTTP requests: /healthz (the process serves), /readyz (it
 * can serve requests: not stopping, its store answers) and /metrics
 * (Prometheus text format); anything else is the web app's (web.c).
 */
static int serve_http(struct relay *r, struct lws *wsi, const char *uri,
		      struct web_req **req)
{
	const char *type = "text/plain";
	unsigned status = HTTP_STATUS_OK;
	char *body;
	int e;

	if (!strcmp(uri, "/healthz")) {
		body = xstrdup("ok\n");
	} else if (!strcmp(uri, "/readyz")) {
		bool ready = relay_ready(r);

		body = xstrdup(ready ? "ready\n" : "not ready\n");
		status = ready ? HTTP_STATUS_OK
			       : HTTP_STATUS_SERVICE_UNAVAILABLE;
	} else if (!strcmp(uri, "/metrics")) {
		body = relay_metrics(r);
		type = "text/plain; version=0.0.4";
	} else {
		return web_http(r, wsi, req, uri);
	}
	e = web_reply(r, wsi, status, type, NULL, body, strlen(body));
	free(body);
	return e;
}

/* What lws keeps per connection: a WebSocket's conn, or an HTTP POST. */
struct pss {
	struct conn *conn;
	struct web_req *req;
};

/*
 * The connection of a per-connection callback. Others (TLS setup, HTTP)
 * pass something else in user, or nothing.
 */
static struct conn *conn_of(enum lws_callback_reasons reason, void *user)
{
	struct pss *pss = user;

	switch (reason) {
	case LWS_CALLBACK_RECEIVE:
	case LWS_CALLBACK_SERVER_WRITEABLE:
	case LWS_CALLBACK_CLOSED:
		return pss ? pss->conn : NULL;
	default:
		return NULL;
	}
}

static int relay_callback(struct lws *wsi, enum lws_callback_reasons reason,
			  void *user, void *in, size_t len)
{
	struct relay *r = lws_context_user(lws_get_context(wsi));
	struct pss *pss = user;
	struct conn *c = conn_of(reason, user);
	int n;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return serve_http(r, wsi, in ? (const char *)in : "/",
				  &pss->req);
	case LWS_CALLBACK_HTTP_BODY:
		return web_http_body(r, wsi, pss->req, in, len);
	case LWS_CALLBACK_HTTP_BODY_COMPLETION: {
		/* the answer may end the transaction, and lws then frees
		 * pss: take the request out of it first */
		struct web_req *req = pss->req;

		pss->req = NULL;
		n = web_http_done(r, wsi, req);
		web_req_free(&req);
		return n;
	}
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		if (pss)
			web_req_free(&pss->req);
		break;

	case LWS_CALLBACK_ESTABLISHED:
		if (r->stopping)
			return -1;
		pss->conn = conn_new(r, wsi);
		log_debug("server", "connection %llu from %s",
			  (unsigned long long)pss->conn->id, pss->conn->peer);
		web_conn_open(r, pss->conn, wsi);
		conn_check_rate(r, pss->conn);
		break;

	case LWS_CALLBACK_RECEIVE:
		if (c == NULL || c->closing)
			break;
		switch (frame_rx_feed(&c->in, wsi, in, len)) {
		case FRAME_RX_MORE:
			return 0;
		case FRAME_RX_TEXT:
			relay_on_text(r, c, (char *)c->in.data, c->in.len);
			break;
		case FRAME_RX_BINARY:
			relay_on_binary(r, c, c->in.data, c->in.len);
			break;
		case FRAME_RX_TOO_LARGE:
			conn_send_error(c, NULL, NULL, PROTO_E_TOO_LARGE,
					"message over the 1 MiB limit dropped; "
					"split bulk data into binary chunks");
			break;
		}
		frame_rx_reset(&c->in);
		break;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (c == NULL)
			break;
		n = frame_queue_write(&c->out, wsi);
		if (n < 0)
			return -1;
		if (c->out.bytes < CONN_QUEUE_MAX / 2 &&
		    bus_behind(r->bus, c)) {
			relay_on_drain(r, c);
			n = c->out.count > 0;
		}
		if (n > 0) {
			lws_callback_on_writable(wsi);
		} else if (c->closing) {
			lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
					 NULL, 0);
			return -1;
		}
		break;

	case LWS_CALLBACK_CLOSED:
		if (c == NULL)
			break;
		log_debug("server", "connection %llu closed",
			  (unsigned long long)c->id);
		relay_on_close(r, c);
		bus_forget(r->bus, c);
		conn_free(r, c);
		pss->conn = NULL;
		break;

	default:
		break;
	}
	return 0;
}

static const struct lws_protocols relay_protocols[] = {
	{ PROTO_SUBPROTOCOL, relay_callback, sizeof(struct pss),
	  PROTO_CHUNK + 1024, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

int server_start(struct relay *r, const struct server_opts *o,
		 int *bound_port, char **cause)
{
	struct lws_context_creation_info info;
	void *loops[1] = { r->loop };
	struct lws_vhost *vh;

	memset(&info, 0, sizeof(info));
	info.port = o->port;
	info.iface = o->host;
	info.protocols = relay_protocols;
	/* web_reply adds the security headers itself: lws's own policy
	 * would forbid the styles the terminal component sets */
	info.options = LWS_SERVER_OPTION_LIBUV;
	info.foreign_loops = loops;
	info.user = r;
	info.retry_and_idle_policy = &r->live.policy;
	info.gid = -1;
	info.uid = -1;
	info.vhost_name = "baton";
	r->tls = o->tls_cert != NULL;
	if (o->tls_cert) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = o->tls_cert;
		info.ssl_private_key_filepath = o->tls_key;
	}
	r->lws = lws_create_context(&info);
	if (r->lws == NULL) {
		*cause = xasprintf("cannot listen on %s:%d (is the port in "
				   "use, or the address not on this "
				   "machine?); is libwebsockets-evlib-uv "
				   "installed?", o->host, o->port);
		return -EADDRNOTAVAIL;
	}
	vh = lws_get_vhost_by_name(r->lws, "baton");
	*bound_port = vh ? lws_get_vhost_listen_port(vh) : o->port;
	return 0;
}

void server_shutdown(struct relay *r)
{
	r->stopping = true;
	if (r->lws)
		lws_context_destroy(r->lws);
}

void server_free(struct relay *r)
{
	if (r->lws)
		lws_context_destroy(r->lws);
	r->lws = NULL;
	while (r->conns)
		conn_free(r, r->conns);
}

void conn_send_text(struct conn *c, const char *text)
{
	if (c->closing)
		return;
	frame_queue_text(&c->out, text, strlen(text));
	lws_callback_on_writable(c->wsi);
}

void conn_send_owned(struct conn *c, char *text)
{
	conn_send_text(c, text);
	free(text);
}

void conn_send_binary(struct conn *c, const struct proto_bin *hdr,
		      const void *data, size_t len)
{
	if (c->closing)
		return;
	frame_queue_binary(&c->out, hdr, data, len);
	lws_callback_on_writable(c->wsi);
}

#define REFUSALS_LOGGED 20	/* per connection at info, then at debug */

void conn_send_error(struct conn *c, const char *id, const char *session,
		     const char *code, const char *message)
{
	/* Who was refused what, so a refusal can be traced to a user; the
	 * message is the relay's own sentence, never the request's body. */
	c->refusals++;
	LOG_AT(c->refusals <= REFUSALS_LOGGED ? LOG_LEVEL_INFO
					      : LOG_LEVEL_DEBUG,
	       "relay", "refused %s on connection %" PRIu64 " (%s%s%s%s%s, "
	       "%s)%s%s: %s%s", code, c->id,
	       c->user ? "user " : "no hello yet",
	       c->user ? c->user : "",
	       c->machine_name ? ", machine " : "",
	       c->machine_name ? c->machine_name : "",
	       c->read_only ? ", read-only" : "", c->peer,
	       session ? " session " : "", session ? session : "", message,
	       c->refusals == REFUSALS_LOGGED ? " (further refusals on this "
	       "connection are logged at debug)" : "");
	conn_send_owned(c, proto_encode_error(id, session, code, message));
}

void conn_close(struct conn *c, const char *reason)
{
	log_info("server", "closing connection %llu (%s): %s",
		 (unsigned long long)c->id, c->peer, reason);
	c->closing = true;
	lws_callback_on_writable(c->wsi);
}

size_t conn_queued(const struct conn *c)
{
	return c->out.bytes;
}

/* Refuses with `limited`; info lines at most every LIMIT_LOG_MS. */
void conn_limited(struct conn *c, const char *id, const char *why,
		  bool hang_up)
{
	struct relay_limits *l = &c->relay->limits;
	uint64_t now = uv_now(c->relay->loop);
	char more[96] = "";

	if (now >= l->log_next_ms) {
		if (l->log_quiet)
			snprintf(more, sizeof(more), " (%u more refusals since"
				 " the last of these lines, at debug level)",
				 l->log_quiet);
		log_info("server", "connection %llu from %s over a limit: "
			 "%s%s", (unsigned long long)c->id, c->peer, why,
			 more);
		l->log_next_ms = now + LIMIT_LOG_MS;
		l->log_quiet = 0;
	} else {
		l->log_quiet++;
		log_debug("server", "connection %llu from %s over a limit: "
			  "%s", (unsigned long long)c->id, c->peer, why);
	}
	conn_send_error(c, id, NULL, PROTO_E_LIMITED, why);
	if (hang_up) {
		c->closing = true;
		lws_callback_on_writable(c->wsi);
	}
}
