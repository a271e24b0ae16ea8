/*
 * link.c: the daemons' and client's WebSocket to the relay, over lws on
 * the program's libuv loop, with reconnect and backoff.
 */
#define _GNU_SOURCE
#include "link.h"
#include "frames.h"
#include "log.h"
#include "tls.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
	bool tls;		/* wss:// */
	bool insecure;		/* ws:// beyond loopback allowed */
	char *ca_file;		/* CAs to trust instead of the system's */
	bool cert_refused;	/* the last attempt refused the certificate */
	char *cert_why;		/* why, and what to do */
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

bool link_url_tls(const char *url)
{
	return !strncmp(url, "wss://", 6);
}

int link_parse_url(const char *url, char **host, int *port, char **path,
		   char **cause)
{
	bool tls = link_url_tls(url);
	const char *p, *host_end;
	size_t host_len;
	long n = tls ? 443 : 80;

	if (!tls && strncmp(url, "ws://", 5)) {
		*cause = xasprintf("%s: the relay URL must start with ws:// or "
				   "wss://, as in ws://127.0.0.1:8080 or "
				   "wss://relay.example:8443", url);
		return -EINVAL;
	}
	p = url + (tls ? 6 : 5);
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
			   "%s://HOST:PORT, as in %s", url, tls ? "wss" : "ws",
			   tls ? "wss://relay.example:8443"
			       : "ws://127.0.0.1:8080");
	return -EINVAL;
}

bool link_host_is_loopback(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (!strcasecmp(host, "localhost"))
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		       (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return false;
}

int link_check_url(const char *url, bool insecure, char **cause)
{
	char *host = NULL, *path = NULL;
	int port, r;

	r = link_parse_url(url, &host, &port, &path, cause);
	if (r == 0 && !link_url_tls(url) && !insecure &&
	    !link_host_is_loopback(host)) {
		*cause = xasprintf("%s: plain ws:// would carry the token and "
				   "the sessions in clear text to another "
				   "machine; use wss:// (the relay serves it "
				   "with --tls-cert and --tls-key), or pass "
				   "--insecure (baton-sandbox: "
				   "BATON_INSECURE=1) if every network on "
				   "the way is trusted", url);
		r = -EPERM;
	}
	free(host);
	free(path);
	return r;
}

/* Remembers why the relay's certificate was refused, in words that say
 * what would mend it. */
static void note_refusal(struct link *l, void *x509_store_ctx)
{
	char what[128];

	l->cert_refused = true;
	free(l->cert_why);
	switch (tls_refusal_of(x509_store_ctx, what, sizeof(what))) {
	case TLS_REFUSED_UNTRUSTED:
		l->cert_why = xasprintf("the relay's certificate is not "
					"trusted (%s); if the relay's own CA "
					"signed it, give that CA's certificate "
					"with --ca FILE (or BATON_CA)", what);
		break;
	case TLS_REFUSED_NAME:
		l->cert_why = xasprintf("the relay's certificate is not made "
					"out for %s (%s); connect with a name "
					"or address the certificate lists, or "
					"give the relay a certificate for %s",
					l->host, what, l->host);
		break;
	case TLS_REFUSED_DATES:
		l->cert_why = xasprintf("the relay's certificate is outside "
					"its validity dates (%s); check this "
					"machine's clock, or renew the "
					"certificate", what);
		break;
	default:
		l->cert_why = xasprintf("the relay's certificate was refused "
					"(%s)", what);
		break;
	}
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

	case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
		/* user is OpenSSL's X509_STORE_CTX, len its preverify_ok */
		if (len != 0 && tls_check_peer_name(user, l->host) < 0) {
			note_refusal(l, user);
			return 1;	/* fail the handshake */
		}
		if (len == 0 && !l->cert_refused)
			note_refusal(l, user);
		break;

	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (l->wsi == wsi || l->wsi == NULL) {
			char why[640];

			if (l->cert_refused)
				snprintf(why, sizeof(why), "cannot connect: %s",
					 l->cert_why);
			else if (l->tls && in &&
				 !strncmp(in, "connect SSL", 11))
				/* lws's words for it name no reason */
				snprintf(why, sizeof(why), "cannot connect: "
					 "the TLS handshake failed; does the "
					 "relay at %s:%d serve wss:// (it "
					 "needs --tls-cert and --tls-key)?",
					 l->host, l->port);
			else
				snprintf(why, sizeof(why), "cannot connect: %s",
					 in ? (const char *)in
					    : "unknown error");
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
	if (l->tls)
		ci.ssl_connection = LCCSCF_USE_SSL;
	l->wsi = NULL;
	l->cert_refused = false;
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
	if (!l->tls && !l->insecure && !link_host_is_loopback(l->addr)) {
		char why[200];

		snprintf(why, sizeof(why), "%s is %s, not this machine: plain "
			 "ws:// is only for loopback; use wss:// or "
			 "--insecure", l->host, l->addr);
		link_lost(l, why);
		return;
	}
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
	r = link_check_url(opts->url, opts->insecure, cause);
	if (r < 0)
		goto fail;
	r = link_parse_url(opts->url, &l->host, &l->port, &l->path, cause);
	if (r < 0)
		goto fail;
	l->tls = link_url_tls(opts->url);
	l->insecure = opts->insecure;
	if (l->tls && opts->ca_file) {
		r = tls_check_ca(opts->ca_file, cause);
		if (r < 0)
			goto fail;
		l->ca_file = xstrdup(opts->ca_file);
	}
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
	if (l->tls) {
		/* with a CA file, trust only its CAs (as curl --cacert) */
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.client_ssl_ca_filepath = l->ca_file;
		if (l->ca_file)
			info.options |= LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
	}
	l->ctx = lws_create_context(&info);
	if (l->ctx == NULL) {
		*cause = xasprintf("cannot start libwebsockets on libuv%s; is "
				   "the libwebsockets-evlib-uv package "
				   "installed?", l->tls ? " with TLS" : "");
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
	free(l->ca_file);
	free(l);
	return r;
}

bool link_connected(const struct link *l)
{
	return l->open;
}

bool link_cert_refused(const struct link *l)
{
	return l->cert_refused;
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
	free(l->cert_why);
	free(l->ca_file);
	free(l->host);
	free(l->path);
	free(l);
}
