/*
 * ws-poke.c: a test tool that speaks raw WebSocket (subprotocol baton.v1)
 * to a relay and sends it whatever a script says, well-formed or not.
 *
 *   ws-poke PORT|ws://127.0.0.1:PORT[/PATH] < SCRIPT
 *
 * The script has one action per line (blank lines and lines starting with
 * '#' are skipped):
 *
 *   text JSON          a text frame holding the rest of the line
 *   textfile PATH      a text frame holding the file's bytes
 *   texthex HEX        a text frame of those bytes (need not be UTF-8)
 *   binhex HEX         a binary frame of those bytes
 *   big N              a text frame of N bytes of 'x'
 *   wait MS            wait MS milliseconds
 *   until MS TEXT      wait until a received text frame contains TEXT, at
 *                      most MS milliseconds (prints "timeout TEXT" if the
 *                      time runs out)
 *   close              close the connection (normal closure)
 *   key PATH           sign as the machine whose key is in PATH (made
 *                      when missing); later text lines have @PUBKEY@
 *                      replaced by its public key in hex
 *   answer             sign the last challenge received and send the
 *                      challenge.answer (prints "sent answer SIGNATURE")
 *
 * The environment can make the upgrade request look like a browser's:
 * WS_POKE_ORIGIN and WS_POKE_HOST set the Origin and Host headers (default:
 * the address), WS_POKE_COOKIE adds a Cookie header.
 *
 * Every message received, whenever it arrives, is printed as a line:
 *   recv text CONTENT          (newlines, CRs and NULs escaped as \n \r \0)
 *   recv binary HEX            (the first 40 bytes)
 * and a text frame that is not valid UTF-8 is followed by the line
 *   warn text frame is not valid UTF-8
 * A close frame from the peer is printed as "recv close STATUS REASON".
 * Waits end early once the connection is gone. At the end it prints
 * "closed" if the peer closed the connection (or it broke) before the
 * script's own close, else "open". Exit status: 0, or 2 for a bad script
 * or a failed connection.
 */
#define _GNU_SOURCE
#include <libwebsockets.h>
#include <sodium.h>

#include "identity.h"

#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONNECT_TIMEOUT_US (20 * LWS_US_PER_SEC)
#define CLOSE_TIMEOUT_US (10 * LWS_US_PER_SEC)
#define TICK_US (10 * 1000)

enum act_kind { A_TEXT, A_BINARY, A_WAIT, A_UNTIL, A_CLOSE, A_ANSWER };

struct action {
	enum act_kind kind;
	unsigned char *data;	/* frame payload, LWS_PRE bytes before it */
	size_t len;
	long ms;
	char *until;		/* A_UNTIL: the text to wait for */
};

static struct {
	struct action *acts;
	size_t n, cap;
	size_t next;		/* the action being run */

	struct lws_context *ctx;
	struct lws *wsi;
	lws_sorted_usec_list_t tick;

	bool connected;		/* established */
	bool gone;		/* the connection ended, either way */
	bool we_closed;		/* the script's close came first */
	bool peer_closed;	/* it ended before the script's close */
	bool sending;		/* current send waits for writable */
	bool closing;		/* current close waits for writable */
	bool matched;		/* A_UNTIL: seen */
	lws_usec_t deadline;	/* current wait; 0 when not set */
	lws_usec_t started;
	bool done;
	int status;

	struct identity id;	/* the key of `key` */
	bool have_key;
	unsigned char nonce[IDENTITY_NONCE_BYTES];	/* last challenge */
	bool have_nonce;

	unsigned char *rx;	/* a message being reassembled */
	size_t rx_len, rx_cap;
} g;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("ws-poke: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
		die("out of memory");
	return p;
}

/* A frame payload with LWS_PRE bytes of headroom. */
static unsigned char *frame_alloc(size_t len)
{
	unsigned char *p = malloc(LWS_PRE + len + 1);

	if (p == NULL)
		die("out of memory for a frame of %zu bytes", len);
	return p + LWS_PRE;
}

static void frame_free(unsigned char *data)
{
	if (data)
		free(data - LWS_PRE);
}

static struct action *act_add(enum act_kind kind)
{
	if (g.n == g.cap) {
		g.cap = g.cap ? g.cap * 2 : 32;
		g.acts = xrealloc(g.acts, g.cap * sizeof(*g.acts));
	}
	memset(&g.acts[g.n], 0, sizeof(g.acts[0]));
	g.acts[g.n].kind = kind;
	return &g.acts[g.n++];
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void parse_hex(struct action *a, const char *hex, size_t lineno)
{
	size_t n = 0, cap = strlen(hex) / 2;
	int hi = -1;

	a->data = frame_alloc(cap);
	for (const char *p = hex; *p; p++) {
		int v;

		if (isspace((unsigned char)*p))
			continue;
		v = hexval((unsigned char)*p);
		if (v < 0)
			die("line %zu: '%c' is not a hex digit", lineno, *p);
		if (hi < 0) {
			hi = v;
		} else {
			a->data[n++] = (unsigned char)(hi << 4 | v);
			hi = -1;
		}
	}
	if (hi >= 0)
		die("line %zu: odd number of hex digits", lineno);
	a->len = n;
}

static void read_file(struct action *a, const char *path, size_t lineno)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 4096, n = 0, got;
	unsigned char *buf;

	if (f == NULL)
		die("line %zu: cannot open %s: %s", lineno, path,
		    strerror(errno));
	buf = xrealloc(NULL, LWS_PRE + cap);
	while ((got = fread(buf + LWS_PRE + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			cap *= 2;
			buf = xrealloc(buf, LWS_PRE + cap);
		}
	}
	if (ferror(f))
		die("line %zu: cannot read %s", lineno, path);
	fclose(f);
	a->data = buf + LWS_PRE;
	a->len = n;
}

static long parse_num(const char *s, size_t lineno, const char **rest)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || v < 0)
		die("line %zu: expected a non-negative number", lineno);
	if (rest) {
		while (*end == ' ')
			end++;
		*rest = end;
	} else if (*end != '\0') {
		die("line %zu: junk after the number", lineno);
	}
	return v;
}

/* A copy of TEXT with every @PUBKEY@ replaced by the key's hex. */
static char *with_key(const char *text, size_t lineno)
{
	static const char mark[] = "@PUBKEY@";
	size_t n = strlen(text) + 1;
	char *out, *o;

	for (const char *p = text; (p = strstr(p, mark)); p += sizeof(mark) - 1)
		n += IDENTITY_PK_HEX;
	out = o = xrealloc(NULL, n);
	while (*text) {
		if (!strncmp(text, mark, sizeof(mark) - 1)) {
			if (!g.have_key)
				die("line %zu: @PUBKEY@ needs a key first",
				    lineno);
			o = stpcpy(o, g.id.pk_hex);
			text += sizeof(mark) - 1;
		} else {
			*o++ = *text++;
		}
	}
	*o = '\0';
	return out;
}

/* Keeps the nonce of a challenge, for `answer`. */
static void note_challenge(void)
{
	static const char type[] = "\"type\":\"challenge\"";
	static const char key[] = "\"nonce\":\"";
	const char *p;
	size_t got = 0;

	if (!memmem(g.rx, g.rx_len, type, sizeof(type) - 1))
		return;
	p = memmem(g.rx, g.rx_len, key, sizeof(key) - 1);
	if (p == NULL || (size_t)(p - (char *)g.rx) + sizeof(key) - 1 +
				 IDENTITY_NONCE_BYTES * 2 > g.rx_len)
		return;
	p += sizeof(key) - 1;
	g.have_nonce = sodium_hex2bin(g.nonce, sizeof(g.nonce), p,
				      IDENTITY_NONCE_BYTES * 2, NULL, &got,
				      NULL) == 0 && got == sizeof(g.nonce);
}

static void parse_script(FILE *in)
{
	char *line = NULL;
	size_t lcap = 0, lineno = 0;
	ssize_t len;

	while ((len = getline(&line, &lcap, in)) >= 0) {
		char *arg;
		struct action *a;

		lineno++;
		while (len > 0 && (line[len - 1] == '\n' ||
				   line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		arg = strchr(line, ' ');
		if (arg)
			*arg++ = '\0';
		else
			arg = line + len;

		if (!strcmp(line, "text")) {
			char *text = with_key(arg, lineno);

			a = act_add(A_TEXT);
			a->len = strlen(text);
			a->data = frame_alloc(a->len);
			memcpy(a->data, text, a->len);
			free(text);
		} else if (!strcmp(line, "key")) {
			char *cause = NULL;

			if (identity_load(arg, &g.id, &cause) < 0)
				die("line %zu: %s", lineno, cause);
			g.have_key = true;
		} else if (!strcmp(line, "answer")) {
			if (!g.have_key)
				die("line %zu: answer needs a key first",
				    lineno);
			act_add(A_ANSWER);
		} else if (!strcmp(line, "textfile")) {
			read_file(act_add(A_TEXT), arg, lineno);
		} else if (!strcmp(line, "texthex")) {
			parse_hex(act_add(A_TEXT), arg, lineno);
		} else if (!strcmp(line, "binhex")) {
			parse_hex(act_add(A_BINARY), arg, lineno);
		} else if (!strcmp(line, "big")) {
			long n = parse_num(arg, lineno, NULL);

			if (n > 64L * 1024 * 1024)
				die("line %zu: big is limited to 64 MiB",
				    lineno);
			a = act_add(A_TEXT);
			a->len = (size_t)n;
			a->data = frame_alloc(a->len);
			memset(a->data, 'x', a->len);
		} else if (!strcmp(line, "wait")) {
			a = act_add(A_WAIT);
			a->ms = parse_num(arg, lineno, NULL);
		} else if (!strcmp(line, "until")) {
			const char *rest;

			a = act_add(A_UNTIL);
			a->ms = parse_num(arg, lineno, &rest);
			if (*rest == '\0')
				die("line %zu: until needs MS and TEXT",
				    lineno);
			a->until = strdup(rest);
		} else if (!strcmp(line, "close")) {
			act_add(A_CLOSE);
		} else {
			die("line %zu: unknown action '%s'", lineno, line);
		}
	}
	free(line);
}

static bool utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t more;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			more = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			more = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			more = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + more > n - 1)
			return false;
		for (size_t k = 1; k <= more; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += more + 1;
	}
	return true;
}

static void print_message(bool binary)
{
	if (binary) {
		size_t n = g.rx_len < 40 ? g.rx_len : 40;

		fputs("recv binary ", stdout);
		for (size_t i = 0; i < n; i++)
			printf("%02x", g.rx[i]);
		putchar('\n');
		fflush(stdout);
		return;
	}
	fputs("recv text ", stdout);
	for (size_t i = 0; i < g.rx_len; i++) {
		unsigned char c = g.rx[i];

		if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\r')
			fputs("\\r", stdout);
		else if (c == '\0')
			fputs("\\0", stdout);
		else
			putchar(c);
	}
	putchar('\n');
	note_challenge();
	if (!utf8_valid(g.rx, g.rx_len))
		puts("warn text frame is not valid UTF-8");
	fflush(stdout);

	if (g.next < g.n && g.acts[g.next].kind == A_UNTIL &&
	    memmem(g.rx, g.rx_len, g.acts[g.next].until,
		   strlen(g.acts[g.next].until)))
		g.matched = true;
}

static void step(void);

static void on_tick(lws_sorted_usec_list_t *sul)
{
	step();
	/* Always again: lws_service() sleeps until the next scheduled event,
	 * so without one it would not return soon after the script ends. */
	lws_sul_schedule(g.ctx, 0, &g.tick, on_tick, TICK_US);
}

static void connection_gone(void)
{
	if (g.gone)
		return;
	g.gone = true;
	g.wsi = NULL;
	if (!g.we_closed)
		g.peer_closed = true;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason,
		    void *user, void *in, size_t len)
{
	struct action *a;
	int n;

	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		fprintf(stderr, "ws-poke: connection failed: %s\n",
			in ? (const char *)in : "(no reason)");
		if (!g.connected) {
			g.status = 2;
			g.done = true;
		}
		connection_gone();
		break;

	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		g.connected = true;
		break;

	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
		const char *cookie = getenv("WS_POKE_COOKIE");
		unsigned char **p = in, *end = *p + len;

		if (cookie && lws_add_http_header_by_token(wsi,
				WSI_TOKEN_HTTP_COOKIE,
				(const unsigned char *)cookie,
				(int)strlen(cookie), p, end))
			return -1;
		break;
	}

	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (lws_is_first_fragment(wsi))
			g.rx_len = 0;
		if (g.rx_len + len + 1 > g.rx_cap) {
			g.rx_cap = (g.rx_len + len + 1) * 2;
			g.rx = xrealloc(g.rx, g.rx_cap);
		}
		memcpy(g.rx + g.rx_len, in, len);
		g.rx_len += len;
		if (lws_is_final_fragment(wsi) &&
		    !lws_remaining_packet_payload(wsi))
			print_message(lws_frame_is_binary(wsi));
		break;

	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (g.next >= g.n)
			break;
		a = &g.acts[g.next];
		if (g.closing) {
			g.we_closed = true;
			lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
			return -1;
		}
		if (!g.sending)
			break;
		n = lws_write(wsi, a->data, a->len,
			      a->kind == A_BINARY ? LWS_WRITE_BINARY
						  : LWS_WRITE_TEXT);
		if (n < 0) {
			fprintf(stderr, "ws-poke: write failed\n");
			return -1;
		}
		g.sending = false;
		g.next++;
		step();
		break;

	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		/* the peer's close frame: a 2-byte status, then a reason */
		if (len >= 2)
			printf("recv close %u %.*s\n",
			       (unsigned)((const unsigned char *)in)[0] << 8 |
				       ((const unsigned char *)in)[1],
			       (int)(len - 2), (const char *)in + 2);
		else
			puts("recv close");
		if (!g.we_closed)
			g.peer_closed = true;
		break;

	case LWS_CALLBACK_CLIENT_CLOSED:
	case LWS_CALLBACK_CLOSED:
		connection_gone();
		break;

	case LWS_CALLBACK_WSI_DESTROY:
		connection_gone();
		break;

	default:
		break;
	}
	return 0;
}

/* Runs the script as far as it can go now. */
static void step(void)
{
	lws_usec_t now = lws_now_usecs();

	if (g.done)
		return;
	if (!g.connected) {
		if (g.gone) {
			fprintf(stderr, "ws-poke: the connection failed\n");
			g.status = 2;
			g.done = true;
		} else if (now - g.started > CONNECT_TIMEOUT_US) {
			fprintf(stderr, "ws-poke: no connection after %d s\n",
				(int)(CONNECT_TIMEOUT_US / LWS_US_PER_SEC));
			g.status = 2;
			g.done = true;
		}
		return;
	}
	while (g.next < g.n) {
		struct action *a = &g.acts[g.next];

		switch (a->kind) {
		case A_ANSWER:
			if (a->data == NULL) {
				char sig[IDENTITY_SIG_BYTES * 2 + 1];
				char *text;

				if (!g.have_nonce) {
					fprintf(stderr, "ws-poke: answer: no "
						"challenge received\n");
					g.next++;
					continue;
				}
				identity_sign(&g.id, g.nonce, sig);
				printf("sent answer %s\n", sig);
				text = NULL;
				if (asprintf(&text, "{\"type\":"
					     "\"challenge.answer\",\"body\":"
					     "{\"signature\":\"%s\"}}",
					     sig) < 0)
					die("out of memory");
				a->len = strlen(text);
				a->data = frame_alloc(a->len);
				memcpy(a->data, text, a->len);
				free(text);
			}
			/* sent like a text line */
			__attribute__((fallthrough));
		case A_TEXT:
		case A_BINARY:
			if (g.gone) {
				fprintf(stderr, "ws-poke: action %zu not "
					"sent: the connection is closed\n",
					g.next + 1);
				g.next++;
				continue;
			}
			if (!g.sending) {
				g.sending = true;
				lws_callback_on_writable(g.wsi);
			}
			return;
		case A_WAIT:
		case A_UNTIL:
			if (g.deadline == 0) {
				g.deadline = now + a->ms * 1000;
				if (a->kind == A_UNTIL)
					g.matched = false;
			}
			if (a->kind == A_UNTIL && g.matched) {
				g.deadline = 0;
				g.next++;
				continue;
			}
			if (!g.gone && now < g.deadline)
				return;
			if (a->kind == A_UNTIL && !g.gone)
				printf("timeout %s\n", a->until);
			g.deadline = 0;
			g.next++;
			continue;
		case A_CLOSE:
			if (g.gone) {
				g.next++;
				continue;
			}
			if (!g.closing) {
				g.closing = true;
				g.deadline = now + CLOSE_TIMEOUT_US;
				lws_callback_on_writable(g.wsi);
			} else if (now > g.deadline) {
				fprintf(stderr, "ws-poke: the close did not "
					"finish\n");
				g.done = true;
			}
			return;
		}
	}
	g.done = true;
}

int main(int argc, char **argv)
{
	static const struct lws_protocols protocols[] = {
		{ "baton.v1", callback, 0, 65536 + 1024, 0, NULL, 0 },
		{ NULL, NULL, 0, 0, 0, NULL, 0 }
	};
	struct lws_context_creation_info info;
	struct lws_client_connect_info ci;
	char url[512], pathbuf[512], *prot = NULL;
	const char *address = "127.0.0.1", *path = "/";
	int port = 0;

	if (sodium_init() < 0)
		die("libsodium failed to start");
	if (argc != 2 || !strcmp(argv[1], "--help")) {
		fprintf(stderr, "usage: ws-poke PORT|ws://127.0.0.1:PORT "
			"< SCRIPT\n");
		return argc == 2 ? 0 : 2;
	}
	if (strncmp(argv[1], "ws://", 5) == 0) {
		const char *p;

		snprintf(url, sizeof(url), "%s", argv[1]);
		if (lws_parse_uri(url, (const char **)&prot, &address, &port,
				  &p))
			die("cannot parse %s", argv[1]);
		/* lws_parse_uri drops the path's leading '/' */
		snprintf(pathbuf, sizeof(pathbuf), "/%s", p);
		path = pathbuf;
	} else {
		port = atoi(argv[1]);
	}
	if (port <= 0 || port > 65535)
		die("bad port in %s", argv[1]);

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_script(stdin);

	lws_set_log_level(getenv("WS_POKE_LWS_LOG")
				  ? atoi(getenv("WS_POKE_LWS_LOG")) : LLL_ERR,
			  NULL);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.gid = -1;
	info.uid = -1;
	g.ctx = lws_create_context(&info);
	if (g.ctx == NULL)
		die("cannot create the lws context");

	memset(&ci, 0, sizeof(ci));
	ci.context = g.ctx;
	ci.address = address;
	ci.port = port;
	ci.path = path;
	ci.host = getenv("WS_POKE_HOST") ? getenv("WS_POKE_HOST") : address;
	ci.origin = getenv("WS_POKE_ORIGIN") ? getenv("WS_POKE_ORIGIN")
					     : address;
	ci.protocol = "baton.v1";
	ci.pwsi = &g.wsi;
	g.started = lws_now_usecs();
	if (lws_client_connect_via_info(&ci) == NULL) {
		fprintf(stderr, "ws-poke: cannot connect to %s:%d\n", address,
			port);
		lws_context_destroy(g.ctx);
		return 2;
	}
	lws_sul_schedule(g.ctx, 0, &g.tick, on_tick, TICK_US);
	while (!g.done)
		if (lws_service(g.ctx, 0) < 0)
			break;
	lws_sul_cancel(&g.tick);

	if (g.status == 0)
		puts(g.peer_closed ? "closed" : "open");
	lws_context_destroy(g.ctx);
	for (size_t i = 0; i < g.n; i++) {
		frame_free(g.acts[i].data);
		free(g.acts[i].until);
	}
	free(g.acts);
	free(g.rx);
	return g.status;
}
