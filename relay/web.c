/*
 * web.c: what the relay serves a browser besides the WebSocket: the web
 * app's files, sign-in and sign-out, and the one-time sign-in codes that
 * `baton login --qr` shows.
 *
 * A browser signs in by POSTing a client token or a sign-in code to
 * /api/login. The relay answers with a new client token of its own (same
 * user and scope, 30 days) in an HttpOnly, SameSite=Strict cookie, so no
 * script on the page, ours or anyone's, can read it. The page's WebSocket
 * carries the cookie in its upgrade request; a hello without a token then
 * uses it. /api/logout revokes that token. Both POSTs, and a cookie on an
 * upgrade, count only when the request's Origin is the relay itself.
 *
 * Every HTTP answer carries a content security policy that allows only
 * the relay's own scripts.
 */
#define _GNU_SOURCE
#include "relay.h"
#include "log.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <libwebsockets.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WEB_COOKIE "baton_web"
#define WEB_SESSION_S (30 * 24 * 3600)	/* a browser's sign-in lives */
#define WEB_CODE_TTL_S 300		/* a sign-in code lives */
#define WEB_CODES_MAX 64		/* codes waiting, in all */
#define WEB_BODY_MAX 4096		/* a POST's body */
#define WEB_FILE_MAX (8u << 20)		/* a file of the app */
#define WEB_HDR_LEN 256			/* Origin, Host, Cookie we keep */

static const char csp[] =
	"default-src 'none'; script-src 'self'; "
	"style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
	"connect-src 'self'; manifest-src 'self'; font-src 'self'; "
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

struct web_code {
	char code[AUTH_CODE_LEN + 1];
	char *user;
	bool read_only;
	uint64_t expires_ms;	/* loop time */
	struct web_code *next;
};

/* A POST being read. */
struct web_req {
	char path[32];
	char origin[WEB_HDR_LEN];
	char host[WEB_HDR_LEN];
	char cookie[WEB_HDR_LEN];
	char peer[64];
	struct buf body;
	bool too_large;
};

/* Copies a header, or "" when it is absent or longer than len - 1. */
static void header(struct lws *wsi, enum lws_token_indexes h, char *out,
		   size_t len)
{
	out[0] = '\0';
	if (lws_hdr_total_length(wsi, h) >= (int)len ||
	    lws_hdr_copy(wsi, out, (int)len, h) < 0)
		out[0] = '\0';
}

/* The value of our cookie in a Cookie header, or "". */
static void cookie_value(const char *cookies, char *out, size_t len)
{
	const char *p = cookies;
	size_t n;

	out[0] = '\0';
	while (p && *p) {
		while (*p == ' ' || *p == ';')
			p++;
		if (!strncmp(p, WEB_COOKIE "=", strlen(WEB_COOKIE) + 1)) {
			p += strlen(WEB_COOKIE) + 1;
			n = strcspn(p, ";");
			if (n < len) {
				memcpy(out, p, n);
				out[n] = '\0';
			}
			return;
		}
		p = strchr(p, ';');
	}
}

/* Whether a request comes from a page the relay served. */
static bool same_origin(struct relay *r, const char *origin,
			const char *host)
{
	const char *scheme = r->tls ? "https://" : "http://";
	size_t n = strlen(scheme);

	return *host && !strncmp(origin, scheme, n) &&
	       !strcmp(origin + n, host);
}

int web_reply(struct relay *r, struct lws *wsi, unsigned status,
	      const char *type, const char *const *headers, const void *body,
	      size_t len)
{
	uint8_t hbuf[LWS_PRE + 2048], *start = hbuf + LWS_PRE, *p = start;
	uint8_t *end = hbuf + sizeof(hbuf);
	uint8_t *out;
	int e = 0;

#define ADD(name, value)						  \
	(lws_add_http_header_by_name(wsi, (const uint8_t *)(name),	  \
				     (const uint8_t *)(value),		  \
				     (int)strlen(value), &p, end))
	if (lws_add_http_common_headers(wsi, status, type, len, &p, end) ||
	    ADD("content-security-policy:", csp) ||
	    ADD("x-content-type-options:", "nosniff") ||
	    ADD("x-frame-options:", "DENY") ||
	    ADD("referrer-policy:", "no-referrer") ||
	    ADD("cross-origin-opener-policy:", "same-origin") ||
	    (r->tls && ADD("strict-transport-security:",
			   "max-age=31536000")))
		return -1;
	for (size_t i = 0; headers && headers[i]; i += 2)
		if (ADD(headers[i], headers[i + 1]))
			return -1;
#undef ADD
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	/* lws wants LWS_PRE bytes before what it writes; it keeps what the
	 * socket cannot take now and sends it later */
	out = xmalloc(LWS_PRE + len + 1);
	if (len)
		memcpy(out + LWS_PRE, body, len);
	if (lws_write(wsi, out + LWS_PRE, len, LWS_WRITE_HTTP_FINAL) < 0)
		e = -1;
	free(out);
	if (e < 0)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int reply_json(struct relay *r, struct lws *wsi, unsigned status,
		      const char *set_cookie, cJSON *o)
{
	const char *headers[] = { "cache-control:", "no-store",
				  set_cookie ? "set-cookie:" : NULL,
				  set_cookie, NULL };
	char *text = cJSON_PrintUnformatted(o);
	int e;

	e = web_reply(r, wsi, status, "application/json", headers, text,
		      strlen(text));
	free(text);
	cJSON_Delete(o);
	return e;
}

static int reply_error(struct relay *r, struct lws *wsi, unsigned status,
		       const char *why)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "error", why);
	return reply_json(r, wsi, status, NULL, o);
}

static const char *content_type(const char *name)
{
	static const char *const types[][2] = {
		{ ".html", "text/html; charset=utf-8" },
		{ ".js", "text/javascript; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" },
		{ ".json", "application/json" },
		{ ".webmanifest", "application/manifest+json" },
		{ ".svg", "image/svg+xml" },
		{ ".png", "image/png" },
		{ ".ico", "image/x-icon" },
		{ ".txt", "text/plain; charset=utf-8" },
		{ ".map", "application/json" },
		{ ".woff2", "font/woff2" },
	};
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(dot, types[i][0]))
			return types[i][1];
	return "application/octet-stream";
}

/* A file of the app by its flat name; NULL when there is none. */
static char *read_file(const char *dir, const char *name, const char *ext,
		       size_t *len)
{
	char *path = xasprintf("%s/%s%s", dir, name, ext);
	char *data = NULL;

	if (file_read_all(path, WEB_FILE_MAX, &data, len) < 0)
		data = NULL;
	free(path);
	return data;
}

static bool valid_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 64 || name[0] == '.')
		return false;
	return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		      "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* GET of a file of the app: "/" is index.html. */
static int serve_file(struct relay *r, struct lws *wsi, const char *uri)
{
	static const char none[] =
		"baton-relay speaks WebSocket (subprotocol " PROTO_SUBPROTOCOL
		") here. This relay serves no web app: build it (see the "
		"README) or start the relay with --web DIR.\n";
	const char *name = strcmp(uri, "/") ? uri + 1 : "index.html";
	const char *headers[] = { "cache-control:", "no-cache", NULL, NULL,
				  NULL, NULL, NULL };
	char accept[WEB_HDR_LEN];
	char *data = NULL;
	size_t len = 0;
	int e;

	if (!valid_name(name) || r->web_dir == NULL) {
		bool root = !strcmp(uri, "/");

		return web_reply(r, wsi, HTTP_STATUS_NOT_FOUND, "text/plain",
				 NULL, root ? none : "not found\n",
				 root ? strlen(none) : 10);
	}
	header(wsi, WSI_TOKEN_HTTP_ACCEPT_ENCODING, accept, sizeof(accept));
	if (strstr(accept, "gzip"))
		data = read_file(r->web_dir, name, ".gz", &len);
	if (data) {
		headers[2] = "content-encoding:";
		headers[3] = "gzip";
	} else {
		data = read_file(r->web_dir, name, "", &len);
	}
	if (data == NULL)
		return web_reply(r, wsi, HTTP_STATUS_NOT_FOUND, "text/plain",
				 NULL, "not found\n", 10);
	headers[4] = "vary:";
	headers[5] = "accept-encoding";
	e = web_reply(r, wsi, HTTP_STATUS_OK, content_type(name), headers,
		      data, len);
	free(data);
	return e;
}

int web_http(struct relay *r, struct lws *wsi, struct web_req **req,
	     const char *uri)
{
	struct web_req *q;
	char length[32];

	if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) <= 0) {
		if (!strncmp(uri, "/api/", 5))
			return reply_error(r, wsi, 405, "use POST");
		return serve_file(r, wsi, uri);
	}
	if (strcmp(uri, "/api/login") && strcmp(uri, "/api/logout"))
		return reply_error(r, wsi, HTTP_STATUS_NOT_FOUND,
				   "no such address");

	q = xcalloc(1, sizeof(*q));
	snprintf(q->path, sizeof(q->path), "%s", uri);
	header(wsi, WSI_TOKEN_ORIGIN, q->origin, sizeof(q->origin));
	header(wsi, WSI_TOKEN_HOST, q->host, sizeof(q->host));
	header(wsi, WSI_TOKEN_HTTP_COOKIE, q->cookie, sizeof(q->cookie));
	lws_get_peer_simple(wsi, q->peer, sizeof(q->peer));
	/* lws calls back with the body; with none, answer now */
	header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, length, sizeof(length));
	if (length[0] == '\0' || !strcmp(length, "0")) {
		int e = web_http_done(r, wsi, q);

		web_req_free(&q);
		return e;
	}
	*req = q;
	return 0;
}

int web_http_body(struct relay *r, struct lws *wsi, struct web_req *req,
		  const void *in, size_t len)
{
	if (req == NULL)
		return -1;
	if (req->body.len + len > WEB_BODY_MAX)
		req->too_large = true;
	else
		buf_append(&req->body, in, len);
	return 0;
}

/* A new sign-in for user, as a cookie header value (caller frees). */
static char *sign_in(struct relay *r, const char *user, bool read_only)
{
	char *token = NULL, *cookie;

	if (store_token_create(r->store, user, "client",
			       read_only ? "read" : "steer",
			       (int64_t)time(NULL) + WEB_SESSION_S,
			       &token) < 0)
		return NULL;
	cookie = xasprintf(WEB_COOKIE "=%s; Path=/; Max-Age=%d; HttpOnly; "
			   "SameSite=Strict%s", token, WEB_SESSION_S,
			   r->tls ? "; Secure" : "");
	sodium_memzero(token, strlen(token));
	free(token);
	return cookie;
}

/* Takes a live code out of the list; NULL when there is none. */
static struct web_code *code_take(struct relay *r, const char *typed)
{
	char code[AUTH_CODE_LEN + 1];
	uint64_t now = uv_now(r->loop);

	auth_code_normalize(typed, code);
	if (strlen(code) != AUTH_CODE_LEN)
		return NULL;
	for (struct web_code **p = &r->login_codes; *p; p = &(*p)->next) {
		struct web_code *w = *p;

		if (w->expires_ms >= now &&
		    sodium_memcmp(w->code, code, AUTH_CODE_LEN) == 0) {
			*p = w->next;
			return w;
		}
	}
	return NULL;
}

static void code_free(struct web_code *w)
{
	sodium_memzero(w->code, sizeof(w->code));
	free(w->user);
	free(w);
}

static int login(struct relay *r, struct lws *wsi, struct web_req *q,
		 cJSON *in)
{
	const char *token = proto_str(in, "token");
	const char *code = proto_str(in, "code");
	char *user = NULL, *kind = NULL, *scope = NULL, *cookie;
	struct web_code *w = NULL;
	uint64_t retry_ms;
	bool read_only;
	cJSON *o;
	int e;

	if (!token == !code)
		return reply_error(r, wsi, HTTP_STATUS_BAD_REQUEST, "send "
				   "{\"token\": ...} or {\"code\": ...}");
	if (!auth_rate_take(r, q->peer, &retry_ms) ||
	    !auth_rate_take(r, token ? token : code, &retry_ms)) {
		char why[96];

		snprintf(why, sizeof(why), "too many sign-ins lately; try "
			 "again in %" PRIu64 " s", (retry_ms + 999) / 1000);
		return reply_error(r, wsi, 429, why);
	}
	if (token) {
		e = store_token_check(r->store, token, &user, &kind, &scope);
		if (e < 0 || strcmp(kind, "client")) {
			log_info("web", "sign-in from %s refused: %s", q->peer,
				 e == -EKEYREVOKED ? "revoked token"
				 : e == -EKEYEXPIRED ? "expired token"
				 : e < 0 ? "invalid token" : "machine token");
			free(user);
			free(kind);
			free(scope);
			return reply_error(r, wsi, HTTP_STATUS_UNAUTHORIZED,
					   e == -EKEYREVOKED ? "this token was "
					   "revoked"
					   : e == -EKEYEXPIRED ? "this token "
					   "has expired"
					   : "this is not a client token of "
					   "this relay; make one with "
					   "`baton-relay token create`");
		}
		read_only = scope && !strcmp(scope, "read");
	} else {
		w = code_take(r, code);
		if (w == NULL) {
			log_info("web", "sign-in from %s refused: unknown, used"
				 " or expired code", q->peer);
			return reply_error(r, wsi, HTTP_STATUS_UNAUTHORIZED,
					   "this sign-in code is unknown, used "
					   "or expired; run `baton login --qr`"
					   " again");
		}
		user = xstrdup(w->user);
		read_only = w->read_only;
		code_free(w);
	}
	cookie = sign_in(r, user, read_only);
	if (cookie == NULL) {
		free(user);
		free(kind);
		free(scope);
		return reply_error(r, wsi, HTTP_STATUS_SERVICE_UNAVAILABLE,
				   "the relay cannot record the sign-in; "
				   "try again later");
	}
	log_info("web", "user %s signed in from %s with a %s (%s)", user,
		 q->peer, token ? "token" : "sign-in code",
		 read_only ? "read" : "steer");
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "user", user);
	cJSON_AddStringToObject(o, "scope", read_only ? "read" : "steer");
	e = reply_json(r, wsi, HTTP_STATUS_OK, cookie, o);
	sodium_memzero(cookie, strlen(cookie));
	free(cookie);
	free(user);
	free(kind);
	free(scope);
	return e;
}

/* Revokes the browser's sign-in and closes its WebSockets. */
static int logout(struct relay *r, struct lws *wsi, struct web_req *q)
{
	static const char clear[] = WEB_COOKIE "=; Path=/; Max-Age=0; "
				    "HttpOnly; SameSite=Strict";
	char token[WEB_HDR_LEN];
	size_t n;

	cookie_value(q->cookie, token, sizeof(token));
	n = strlen(token);
	if (n && store_token_revoke_secret(r->store, token) == 0) {
		log_info("web", "a browser at %s signed out", q->peer);
		for (struct conn *c = r->conns; c; c = c->next)
			if (c->web_token && strlen(c->web_token) == n &&
			    !sodium_memcmp(c->web_token, token, n))
				conn_close(c, "signed out");
	}
	sodium_memzero(token, sizeof(token));
	return reply_json(r, wsi, HTTP_STATUS_OK, clear, cJSON_CreateObject());
}

int web_http_done(struct relay *r, struct lws *wsi, struct web_req *q)
{
	cJSON *in;
	int e;

	if (q == NULL)
		return -1;
	if (!same_origin(r, q->origin, q->host)) {
		log_info("web", "%s from %s refused: not from the relay's own "
			 "page", q->path, q->peer);
		return reply_error(r, wsi, HTTP_STATUS_FORBIDDEN, "this "
				   "request must come from the relay's own "
				   "page");
	}
	if (!strcmp(q->path, "/api/logout"))
		return logout(r, wsi, q);
	if (q->too_large)
		return reply_error(r, wsi, 413, "the request is too large");
	in = cJSON_ParseWithLength(q->body.data ? (char *)q->body.data : "",
				   q->body.len);
	if (!cJSON_IsObject(in)) {
		cJSON_Delete(in);
		return reply_error(r, wsi, HTTP_STATUS_BAD_REQUEST,
				   "the body must be a JSON object");
	}
	e = login(r, wsi, q, in);
	cJSON_Delete(in);
	return e;
}

void web_req_free(struct web_req **req)
{
	if (*req == NULL)
		return;
	if ((*req)->body.data)
		sodium_memzero((*req)->body.data, (*req)->body.len);
	buf_free(&(*req)->body);
	free(*req);
	*req = NULL;
}

void web_conn_open(struct relay *r, struct conn *c, struct lws *wsi)
{
	char cookies[WEB_HDR_LEN], origin[WEB_HDR_LEN], host[WEB_HDR_LEN];
	char token[WEB_HDR_LEN];

	header(wsi, WSI_TOKEN_HTTP_COOKIE, cookies, sizeof(cookies));
	cookie_value(cookies, token, sizeof(token));
	if (token[0] == '\0')
		return;
	header(wsi, WSI_TOKEN_ORIGIN, origin, sizeof(origin));
	header(wsi, WSI_TOKEN_HOST, host, sizeof(host));
	if (same_origin(r, origin, host))
		c->web_token = xstrdup(token);
	else
		log_info("web", "connection %" PRIu64 " from %s: sign-in "
			 "cookie ignored, the page (origin \"%.80s\") is not "
			 "the relay's own (host \"%.80s\")", c->id, c->peer,
			 origin, host);
	sodium_memzero(token, sizeof(token));
	sodium_memzero(cookies, sizeof(cookies));
}

/* Forgets codes past their time. */
static unsigned codes_sweep(struct relay *r)
{
	uint64_t now = uv_now(r->loop);
	unsigned n = 0;

	for (struct web_code **p = &r->login_codes; *p;) {
		struct web_code *w = *p;

		if (w->expires_ms < now) {
			*p = w->next;
			code_free(w);
		} else {
			n++;
			p = &w->next;
		}
	}
	return n;
}

void web_login_new(struct relay *r, struct conn *c, const struct proto_msg *m)
{
	struct web_code *w;
	cJSON *body;

	if (codes_sweep(r) >= WEB_CODES_MAX) {
		conn_send_error(c, m->id, NULL, PROTO_E_UNAVAILABLE, "too many "
				"sign-in codes are waiting; try again in a few"
				" minutes");
		return;
	}
	w = xcalloc(1, sizeof(*w));
	auth_code_new(w->code);
	w->user = xstrdup(c->user);
	w->read_only = c->read_only;
	w->expires_ms = uv_now(r->loop) + WEB_CODE_TTL_S * 1000u;
	w->next = r->login_codes;
	r->login_codes = w;

	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "code", w->code);
	cJSON_AddNumberToObject(body, "expires",
				(double)(time(NULL) + WEB_CODE_TTL_S));
	cJSON_AddStringToObject(body, "scope", w->read_only ? "read"
							    : "steer");
	conn_send_owned(c, proto_encode("login.code", m->id, NULL, body));
	log_info("web", "user %s has a sign-in code (%s) for %d s", c->user,
		 w->read_only ? "read" : "steer", WEB_CODE_TTL_S);
}

/*
 * Where the app's files are when no --web says: beside the build's relay
 * (BUILD/relay/../web), where an install under any prefix puts them
 * (PREFIX/bin/../share/baton/web), else where this build's install would
 * put them; NULL when none has an index.html.
 */
char *web_dir_default(void)
{
	static const char *const near[] = { "../web", "../share/baton/web" };
	char exe[PATH_MAX], *bin = NULL, *dir, *path;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n > 0) {
		exe[n] = '\0';
		bin = xstrdup(dirname(exe));
	}
	for (size_t i = 0; bin && i < ARRAY_SIZE(near); i++) {
		dir = xasprintf("%s/%s", bin, near[i]);
		path = xasprintf("%s/index.html", dir);
		if (access(path, R_OK) == 0) {
			free(path);
			free(bin);
			return dir;
		}
		free(path);
		free(dir);
	}
	free(bin);
#ifdef BATON_WEB_INSTALL_DIR
	if (access(BATON_WEB_INSTALL_DIR "/index.html", R_OK) == 0)
		return xstrdup(BATON_WEB_INSTALL_DIR);
#endif
	return NULL;
}

void web_free(struct relay *r)
{
	while (r->login_codes) {
		struct web_code *w = r->login_codes;

		r->login_codes = w->next;
		code_free(w);
	}
	free(r->web_dir);
	r->web_dir = NULL;
}
