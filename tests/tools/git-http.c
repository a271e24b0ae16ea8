/*
 * git-http.c: a test tool that serves the git repositories under a folder
 * over smart HTTP behind HTTP basic authentication, running
 * `git http-backend` as a CGI program for each request.
 *
 *   git-http --root DIR --user NAME --password SECRET --port-file FILE
 *            [--log FILE]
 *
 * It listens on 127.0.0.1 on a port the kernel picks and writes the port
 * to FILE once it listens. Every request must carry
 * "Authorization: Basic base64(NAME:SECRET)"; without it, or with other
 * credentials, the answer is 401 with a Basic challenge (git and libgit2
 * then ask for credentials and try again). Authorized requests go to
 * http-backend with GIT_PROJECT_ROOT=DIR, every repository exported and
 * REMOTE_USER=NAME, which lets pushes in too.
 *
 * A child process serves each connection, one request per connection (the
 * answers say "Connection: close"). A request body, sent with
 * Content-Length or chunked, is kept in an unlinked temporary file before
 * the backend starts, so neither side waits on the other; the backend's
 * answer is streamed back chunked (to HTTP/1.0, until the close). The
 * request's log line is written before the client can see the answer end,
 * so a test may read the log as soon as git returns. The request
 * line and headers may take 64 KiB, a body 256 MiB; 30 seconds of silence
 * from the client or the backend end the connection.
 *
 * Each request is logged as one line (time, method, target, status, the
 * body's size and encoding, what went wrong and what http-backend said on
 * its stderr), never with the credentials; the log is stderr without
 * --log. SIGTERM or SIGINT stops it with status 0. Exit status 2 for bad
 * arguments or a failed start.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX (64 * 1024)		/* request line and headers */
#define BODY_MAX ((off_t)256 << 20)	/* a request body, decoded */
#define IO_TIMEOUT_MS (30 * 1000)	/* silence that ends a connection */
#define DRAIN_TIMEOUT_MS (5 * 1000)	/* waiting for the client to close */
#define TRAILERS_MAX 64			/* trailer lines of a chunked body */
#define MAX_CONNS 64			/* connections served at once */

static struct {
	char root[PATH_MAX];		/* GIT_PROJECT_ROOT, absolute */
	const char *user;
	char *auth;			/* base64 of NAME:SECRET */
	char backend[PATH_MAX + 32];	/* git-http-backend */
	int log_fd;
	pid_t conns[MAX_CONNS];		/* children serving a connection */
	size_t nconns;
} g;

static volatile sig_atomic_t stopping;

/* A buffered reader of a socket or a pipe, with the silence timeout. */
struct reader {
	int fd;
	const char *why;	/* why the last read failed */
	int status;		/* and the HTTP status that says so */
	size_t pos, len;	/* unread bytes are buf[pos..len) */
	char buf[16 * 1024];
};

/* One request, its lines kept in head. */
struct request {
	char head[HEAD_MAX];	/* the lines, each NUL-terminated */
	char path[HEAD_MAX];	/* the target's path, percent-decoded */
	char *method, *target, *query;
	bool http10;
	const char *auth, *type, *length, *transfer, *encoding, *protocol;
	const char *expect;
	bool chunked;		/* the body came chunked */
	off_t body;		/* the body's length, -1 without one */
	const char *why;	/* what went wrong, for the log */
	bool answered;		/* the backend's answer has begun */
	bool last_chunk_due;	/* all of it sent but the last chunk */
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_line(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* Reports a failed start on stderr and exits with status 2. */
static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("git-http: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* Writes all LEN bytes to a file or pipe: 0, or -1 with errno set. */
static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Appends one timestamped line to the log in a single write. */
static void log_line(const char *fmt, ...)
{
	char line[2048];
	struct tm tm;
	time_t now = time(NULL);
	size_t n;
	va_list ap;

	localtime_r(&now, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S git-http: ",
		     &tm);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	n = strlen(line);
	line[n++] = '\n';
	write_all(g.log_fd, line, n);
}

/* TEXT from a peer made fit for the log: other bytes than printable
 * ASCII as \xNN, cut to fit OUT. */
static const char *printable(const char *text, char *out, size_t cap)
{
	size_t n = 0;

	for (; *text && n + 5 < cap; text++) {
		unsigned char c = (unsigned char)*text;

		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[n++] = (char)c;
		else
			n += (size_t)snprintf(out + n, cap - n, "\\x%02x", c);
	}
	out[n] = '\0';
	return out;
}

/* The base64 of LEN bytes (RFC 4648, padded); the caller frees it. */
static char *base64(const unsigned char *data, size_t len)
{
	static const char digits[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		"0123456789+/";
	char *out = malloc(4 * ((len + 2) / 3) + 1), *o = out;
	size_t i;

	if (out == NULL)
		die("out of memory");
	for (i = 0; i + 2 < len; i += 3) {
		unsigned long v = (unsigned long)data[i] << 16 |
				  (unsigned long)data[i + 1] << 8 |
				  data[i + 2];

		*o++ = digits[v >> 18 & 63];
		*o++ = digits[v >> 12 & 63];
		*o++ = digits[v >> 6 & 63];
		*o++ = digits[v & 63];
	}
	if (i < len) {
		unsigned long v = (unsigned long)data[i] << 16;

		if (i + 1 < len)
			v |= (unsigned long)data[i + 1] << 8;
		*o++ = digits[v >> 18 & 63];
		*o++ = digits[v >> 12 & 63];
		*o++ = i + 1 < len ? digits[v >> 6 & 63] : '=';
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

/* Waits until FD is ready for EVENTS: 1, 0 after MS of nothing, or -1. */
static int wait_fd(int fd, short events, int ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n;

	do
		n = poll(&p, 1, ms);
	while (n < 0 && errno == EINTR);
	return n;
}

/* Sends all LEN bytes to the client: 0, or -1 when it is gone or stuck. */
static int send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n;

		if (wait_fd(fd, POLLOUT, IO_TIMEOUT_MS) <= 0)
			return -1;
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Refills R's buffer once it is empty: 1, 0 at the end of the input, or
 * -1 with why and status set. */
static int reader_fill(struct reader *r)
{
	int ready = wait_fd(r->fd, POLLIN, IO_TIMEOUT_MS);
	ssize_t n;

	if (ready == 0) {
		r->why = "timed out";
		r->status = 408;
		return -1;
	}
	n = -1;
	if (ready > 0) {
		do
			n = read(r->fd, r->buf, sizeof(r->buf));
		while (n < 0 && errno == EINTR);
	}
	if (n < 0) {
		r->why = strerror(errno);
		r->status = 400;
		return -1;
	}
	r->pos = 0;
	r->len = (size_t)n;
	return n > 0;
}

/* Reads a line into OUT without its CR LF: its length, -1 when the input
 * failed or ended (why and status set), -2 when it does not fit. */
static long reader_line(struct reader *r, char *out, size_t cap)
{
	size_t n = 0;

	for (;;) {
		char c;

		if (r->pos == r->len) {
			int got = reader_fill(r);

			if (got == 0) {
				r->why = "the input ended early";
				r->status = 400;
			}
			if (got <= 0)
				return -1;
		}
		c = r->buf[r->pos++];
		if (c == '\n')
			break;
		if (n + 1 >= cap)
			return -2;
		out[n++] = c;
	}
	if (n > 0 && out[n - 1] == '\r')
		n--;
	out[n] = '\0';
	return (long)n;
}

/* Copies N bytes from R to the file OUT: 0, or -1 with why and status. */
static int reader_copy(struct reader *r, off_t n, int out)
{
	while (n > 0) {
		size_t take;

		if (r->pos == r->len) {
			int got = reader_fill(r);

			if (got == 0) {
				r->why = "the body ended early";
				r->status = 400;
			}
			if (got <= 0)
				return -1;
		}
		take = r->len - r->pos;
		if ((off_t)take > n)
			take = (size_t)n;
		if (write_all(out, r->buf + r->pos, take) < 0) {
			r->why = "cannot write the body to a temporary file";
			r->status = 500;
			return -1;
		}
		r->pos += take;
		n -= (off_t)take;
	}
	return 0;
}

/* Takes one header line into REQ: 0, or an HTTP status. */
static int parse_header(struct request *req, char *line)
{
	const struct {
		const char *name;
		const char **field;
	} known[] = {
		{ "Authorization", &req->auth },
		{ "Content-Type", &req->type },
		{ "Content-Length", &req->length },
		{ "Transfer-Encoding", &req->transfer },
		{ "Content-Encoding", &req->encoding },
		{ "Git-Protocol", &req->protocol },
		{ "Expect", &req->expect },
	};
	char *value = strchr(line, ':'), *end;

	if (value == NULL || value == line || isspace((unsigned char)*line)) {
		req->why = "a malformed header";
		return 400;
	}
	*value++ = '\0';
	value += strspn(value, " \t");
	end = value + strlen(value);
	while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (!strcasecmp(line, known[i].name))
			*known[i].field = value;
	return 0;
}

/* The value of the hex digit C. */
static int hexval(char c)
{
	return isdigit((unsigned char)c) ? c - '0'
					 : tolower((unsigned char)c) - 'a' + 10;
}

/* Decodes the target's path (before any '?') into REQ->path: 0, or 400. */
static int decode_path(struct request *req)
{
	const char *s = req->target;
	size_t n = 0;

	for (; *s && *s != '?'; s++) {
		char hi, lo;

		if (*s != '%') {
			req->path[n++] = *s;
			continue;
		}
		hi = isxdigit((unsigned char)s[1]) ? s[1] : '\0';
		lo = hi && isxdigit((unsigned char)s[2]) ? s[2] : '\0';
		if (!lo || (hi == '0' && lo == '0')) {
			req->why = "a bad escape in the path";
			return 400;
		}
		req->path[n++] = (char)(hexval(hi) << 4 | hexval(lo));
		s += 2;
	}
	req->path[n] = '\0';
	req->query = *s == '?' ? (char *)s + 1 : NULL;
	return 0;
}

/* Splits the request line LINE ("GET /path HTTP/1.1") into REQ: 0, or
 * an HTTP status. */
static int parse_request_line(struct request *req, char *line)
{
	char *target = strchr(line, ' ');
	char *version = target ? strchr(target + 1, ' ') : NULL;

	if (version == NULL || strncmp(version + 1, "HTTP/1.", 7) ||
	    version[8] == '\0' || version[9] != '\0') {
		req->why = "a malformed request line";
		return 400;
	}
	*target++ = '\0';
	*version++ = '\0';
	req->method = line;
	req->target = target;
	req->http10 = !strcmp(version, "HTTP/1.0");
	if (target[0] != '/') {
		req->why = "the target is not a path";
		return 400;
	}
	return decode_path(req);
}

/* Reads the request line and headers into REQ: 0, or an HTTP status. */
static int read_request(struct reader *r, struct request *req)
{
	size_t used = 0;

	for (;;) {
		char *line = req->head + used;
		long len = reader_line(r, line, sizeof(req->head) - used);
		int status;

		if (len == -2) {
			req->why = "the headers are too long";
			return 431;
		}
		if (len < 0) {
			req->why = used ? r->why : "no request";
			return r->status;
		}
		used += (size_t)len + 1;
		if (line == req->head)
			status = parse_request_line(req, line);
		else if (len == 0)
			return 0;
		else
			status = parse_header(req, line);
		if (status)
			return status;
	}
}

/* Whether the Authorization header holds the credentials we expect, with
 * REQ->why saying what was wrong. */
static bool authorized(struct request *req)
{
	const char *v = req->auth;

	if (v == NULL) {
		req->why = "no credentials";
		return false;
	}
	if (strncasecmp(v, "Basic", 5) || (v[5] != ' ' && v[5] != '\t')) {
		req->why = "credentials not Basic";
		return false;
	}
	v += 5 + strspn(v + 5, " \t");
	if (strcmp(v, g.auth)) {
		req->why = "wrong credentials";
		return false;
	}
	return true;
}

/* A parsed Content-Length, or -1 when it is not a number. */
static off_t parse_length(const char *s)
{
	off_t n = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		if (n > BODY_MAX)
			return BODY_MAX + 1;
		n = n * 10 + (*s - '0');
	}
	return n;
}

/* Decodes a chunked body from R into the file OUT, its decoded length in
 * REQ->body: 0, or an HTTP status. */
static int read_chunked(struct reader *r, struct request *req, int out)
{
	char line[256];
	long len;

	req->body = 0;
	for (;;) {
		off_t size = 0;
		const char *s = line;

		len = reader_line(r, line, sizeof(line));
		if (len < 0)
			goto bad_line;
		if (!isxdigit((unsigned char)*s))
			goto bad_size;
		for (; isxdigit((unsigned char)*s); s++) {
			if (size > BODY_MAX - req->body) {
				req->why = "the body is too large";
				return 413;
			}
			size = size * 16 + hexval(*s);
		}
		if (*s && *s != ';' && *s != ' ' && *s != '\t')
			goto bad_size;
		if (size > BODY_MAX - req->body) {
			req->why = "the body is too large";
			return 413;
		}
		if (size == 0)
			break;
		if (reader_copy(r, size, out) < 0) {
			req->why = r->why;
			return r->status;
		}
		req->body += size;
		len = reader_line(r, line, sizeof(line));
		if (len < 0)
			goto bad_line;
		if (len > 0)
			goto bad_size;
	}

	for (int i = 0; len != 0; i++) {
		len = reader_line(r, line, sizeof(line));
		if (len < 0 || (len > 0 && i == TRAILERS_MAX))
			goto bad_line;
	}
	return 0;

bad_line:
	if (len == -1) {
		req->why = r->why;
		return r->status;
	}
	req->why = "a chunk line or trailer too long or too many";
	return 400;
bad_size:
	req->why = "a malformed chunk";
	return 400;
}

/* An unlinked temporary file to keep a request body in, or -1. */
static int spool_open(void)
{
	const char *dir = getenv("TMPDIR");
	char path[PATH_MAX];
	int fd;

	if (dir == NULL || *dir == '\0')
		dir = "/tmp";
	if (snprintf(path, sizeof(path), "%s/git-http.XXXXXX", dir) >=
	    (int)sizeof(path))
		return -1;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	return fd;
}

/* Reads the body REQ announces into a temporary file, *SPOOL, rewound
 * (-1 when there is no body): 0, or an HTTP status. */
static int read_body(struct reader *r, struct request *req, int *spool)
{
	int status;

	*spool = -1;
	req->body = -1;
	if (req->transfer && strcasecmp(req->transfer, "chunked")) {
		req->why = "a Transfer-Encoding other than chunked";
		return 501;
	}
	req->chunked = req->transfer != NULL;
	if (req->length && !req->chunked) {
		off_t length = parse_length(req->length);

		if (length < 0) {
			req->why = "a malformed Content-Length";
			return 400;
		}
		if (length > BODY_MAX) {
			req->why = "the body is too large";
			return 413;
		}
		req->body = length;
	}
	if (!req->chunked && req->body < 0)
		return 0;

	*spool = spool_open();
	if (*spool < 0) {
		req->why = "cannot make a temporary file";
		return 500;
	}
	if (req->expect && !strcasecmp(req->expect, "100-continue")) {
		static const char go_on[] = "HTTP/1.1 100 Continue\r\n\r\n";

		if (send_all(r->fd, go_on, sizeof(go_on) - 1) < 0) {
			req->why = "the client is gone";
			return 400;
		}
	}
	if (req->chunked)
		status = read_chunked(r, req, *spool);
	else
		status = reader_copy(r, req->body, *spool) < 0 ? r->status : 0;
	if (status && req->why == NULL)
		req->why = r->why;
	if (status == 0 && lseek(*spool, 0, SEEK_SET) < 0) {
		req->why = "cannot rewind the temporary file";
		status = 500;
	}
	return status;
}

/* The reason phrase of a status this tool answers with itself. */
static const char *reason(int status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 504: return "Gateway Timeout";
	default: return "Internal Server Error";
	}
}

/* Sends a short plain-text answer with STATUS. */
static void reply(int fd, int status)
{
	const char *extra = "";
	char body[128], head[512];
	int blen, hlen;

	if (status == 401)
		extra = "WWW-Authenticate: Basic realm=\"git\"\r\n";
	else if (status == 405)
		extra = "Allow: GET, POST\r\n";
	blen = snprintf(body, sizeof(body), "%d %s\n", status,
			reason(status));
	hlen = snprintf(head, sizeof(head),
			"HTTP/1.1 %d %s\r\n%s"
			"Content-Type: text/plain\r\n"
			"Content-Length: %d\r\n"
			"Connection: close\r\n\r\n",
			status, reason(status), extra, blen);
	if (send_all(fd, head, (size_t)hlen) == 0)
		send_all(fd, body, (size_t)blen);
}

/* Sets NAME to VALUE in the environment, or removes it when VALUE is
 * NULL. */
static void setenv_or_unset(const char *name, const char *value)
{
	if (value)
		setenv(name, value, 1);
	else
		unsetenv(name);
}

/* In the child: becomes http-backend for REQ, its stdin SPOOL (-1: none),
 * its stdout OUT, its stderr ERR. */
static void backend_exec(const struct request *req, int spool, int out,
			 int err, const char *addr)
{
	char length[32];
	int in = spool >= 0 ? spool : open("/dev/null", O_RDONLY);

	if (in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
	    dup2(err, 2) < 0)
		_exit(127);
	snprintf(length, sizeof(length), "%lld", (long long)req->body);
	setenv("GIT_PROJECT_ROOT", g.root, 1);
	setenv("GIT_HTTP_EXPORT_ALL", "1", 1);
	setenv("REQUEST_METHOD", req->method, 1);
	setenv("PATH_INFO", req->path, 1);
	setenv("QUERY_STRING", req->query ? req->query : "", 1);
	setenv("REMOTE_USER", g.user, 1);
	setenv("REMOTE_ADDR", addr, 1);
	setenv_or_unset("CONTENT_TYPE", req->type);
	setenv_or_unset("CONTENT_LENGTH", req->body >= 0 ? length : NULL);
	setenv_or_unset("HTTP_CONTENT_ENCODING", req->encoding);
	setenv_or_unset("HTTP_GIT_PROTOCOL", req->protocol);
	unsetenv("GIT_HTTP_MAX_REQUEST_BUFFER");
	execl(g.backend, "git-http-backend", (char *)NULL);
	dprintf(2, "git-http: cannot run %s: %s\n", g.backend,
		strerror(errno));
	_exit(127);
}

/* Sends LEN bytes of the answer's body, as a chunk when CHUNKED: 0 or
 * -1. */
static int send_body(int fd, const char *data, size_t len, bool chunked)
{
	char size[32];

	if (!chunked)
		return send_all(fd, data, len);
	snprintf(size, sizeof(size), "%zx\r\n", len);
	if (send_all(fd, size, strlen(size)) < 0 ||
	    send_all(fd, data, len) < 0 || send_all(fd, "\r\n", 2) < 0)
		return -1;
	return 0;
}

/* Turns the CGI output in OUT into the HTTP answer on FD, all but its
 * last chunk, its status in *STATUS: 0, or -1 when the backend or the
 * client failed (REQ->why). Until REQ->answered, nothing is sent. */
static int relay_answer(int fd, struct reader *out, struct request *req,
			int *status)
{
	static char head[HEAD_MAX], line[HEAD_MAX], answer[HEAD_MAX + 512];
	char status_line[128] = "200 OK";
	size_t used = 0;

	for (;;) {
		long len = reader_line(out, line, sizeof(line));

		if (len == -1) {
			req->why = out->status == 408
					   ? "the backend timed out"
					   : "the backend gave no answer";
			*status = out->status == 408 ? 504 : 502;
			return -1;
		}
		if (len == -2 || used + (size_t)len + 2 > HEAD_MAX) {
			req->why = "the backend's headers are too long";
			*status = 502;
			return -1;
		}
		if (len == 0)
			break;
		if (!strncasecmp(line, "Status:", 7)) {
			const char *v = line + 7 + strspn(line + 7, " \t");

			snprintf(status_line, sizeof(status_line), "%s", v);
			continue;
		}
		if (!req->http10 && !strncasecmp(line, "Content-Length:", 15))
			continue;
		used += (size_t)snprintf(head + used, sizeof(head) - used,
					 "%s\r\n", line);
	}

	if (!isdigit((unsigned char)status_line[0]) ||
	    !isdigit((unsigned char)status_line[1]) ||
	    !isdigit((unsigned char)status_line[2]) ||
	    (status_line[3] && status_line[3] != ' ')) {
		req->why = "the backend gave a bad Status";
		*status = 502;
		return -1;
	}
	*status = atoi(status_line);
	snprintf(answer, sizeof(answer), "HTTP/1.1 %s%s\r\n%s%s"
		 "Connection: close\r\n\r\n",
		 status_line, status_line[3] ? "" : " ", head,
		 req->http10 ? "" : "Transfer-Encoding: chunked\r\n");
	req->answered = true;
	if (send_all(fd, answer, strlen(answer)) < 0)
		goto client_gone;

	for (;;) {
		int got = out->pos < out->len ? 1 : reader_fill(out);

		if (got < 0) {
			req->why = "the backend timed out or failed";
			return -1;
		}
		if (got == 0)
			break;
		if (send_body(fd, out->buf + out->pos, out->len - out->pos,
			      !req->http10) < 0)
			goto client_gone;
		out->pos = out->len;
	}
	req->last_chunk_due = !req->http10;
	return 0;

client_gone:
	req->why = "the client is gone or stuck";
	return -1;
}

/* Adds what the backend wrote to its stderr, the file ERR, to REQ->why:
 * escaped and cut short, for the request's one log line. */
static void note_stderr(struct request *req, int err)
{
	static char why[1024];
	char text[512], shown[600];
	ssize_t n = pread(err, text, sizeof(text) - 1, 0);

	while (n > 0 && isspace((unsigned char)text[n - 1]))
		n--;
	if (n <= 0)
		return;
	text[n] = '\0';
	snprintf(why, sizeof(why), "%s%sbackend: %s",
		 req->why ? req->why : "", req->why ? "; " : "",
		 printable(text, shown, sizeof(shown)));
	req->why = why;
}

/* Runs http-backend for REQ with its body in SPOOL (-1: none) and sends
 * its answer to FD, all but the last chunk: the status. Nothing is sent
 * unless REQ->answered. */
static int run_backend(int fd, struct request *req, int spool)
{
	static struct reader out;
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	char addr[INET_ADDRSTRLEN] = "127.0.0.1";
	int pipefd[2], err, status = 502, ws = 0;
	pid_t pid;

	if (getpeername(fd, (struct sockaddr *)&peer, &plen) == 0)
		inet_ntop(AF_INET, &peer.sin_addr, addr, sizeof(addr));
	err = spool_open();
	if (err < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
		if (err >= 0)
			close(err);
		req->why = "cannot make a pipe or a temporary file";
		return 500;
	}
	pid = fork();
	if (pid == 0)
		backend_exec(req, spool, pipefd[1], err, addr);
	close(pipefd[1]);
	if (pid < 0) {
		close(pipefd[0]);
		close(err);
		req->why = "cannot fork";
		return 500;
	}

	out.fd = pipefd[0];
	out.pos = out.len = 0;
	if (relay_answer(fd, &out, req, &status) < 0)
		kill(pid, SIGKILL);
	close(pipefd[0]);
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	if (req->why == NULL && !(WIFEXITED(ws) && WEXITSTATUS(ws) == 0))
		req->why = "the backend failed";
	note_stderr(req, err);
	close(err);
	return status;
}

/* Lets the client read the answer and close first: closing with unread
 * input would reset the connection and could lose the answer. */
static void linger_close(int fd)
{
	char buf[16 * 1024];
	off_t seen = 0;

	shutdown(fd, SHUT_WR);
	while (seen < BODY_MAX && wait_fd(fd, POLLIN, DRAIN_TIMEOUT_MS) > 0) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n <= 0)
			break;
		seen += n;
	}
	close(fd);
}

/* Logs the request REQ and its STATUS in one line, without credentials. */
static void log_request(const struct request *req, int status)
{
	char method[64], target[1024], body[64] = "";

	if (req->body >= 0)
		snprintf(body, sizeof(body), " body %lld%s%s",
			 (long long)req->body, req->chunked ? " chunked" : "",
			 req->encoding && strstr(req->encoding, "gzip")
				 ? " gzip" : "");
	log_line("%s %s %d%s%s%s%s",
		 req->method ? printable(req->method, method, sizeof(method))
			     : "-",
		 req->target ? printable(req->target, target, sizeof(target))
			     : "-",
		 status, body, req->why ? " (" : "",
		 req->why ? req->why : "", req->why ? ")" : "");
}

/* Serves the one request of the connection on FD; logs it before the
 * client can see the answer end. */
static void serve(int fd)
{
	static struct reader r;
	static struct request req;
	int spool = -1, status;

	r.fd = fd;
	req.body = -1;
	status = read_request(&r, &req);
	if (status == 0 && !authorized(&req))
		status = 401;
	if (status == 0 && strcmp(req.method, "GET") &&
	    strcmp(req.method, "POST")) {
		req.why = "only GET and POST";
		status = 405;
	}
	if (status == 0)
		status = read_body(&r, &req, &spool);
	if (status == 0)
		status = run_backend(fd, &req, spool);

	log_request(&req, status);
	if (!req.answered)
		reply(fd, status);
	else if (req.last_chunk_due)
		send_all(fd, "0\r\n\r\n", 5);
	if (spool >= 0)
		close(spool);
	linger_close(fd);
}

/* Writes PORT to PATH through a temporary file, so that a reader never
 * sees it half written. */
static void write_port_file(const char *path, int port)
{
	char tmp[PATH_MAX], text[16];
	int fd, n = snprintf(text, sizeof(text), "%d\n", port);

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		die("the port file's name is too long");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, text, (size_t)n) < 0 || close(fd) < 0 ||
	    rename(tmp, path) < 0)
		die("cannot write %s: %s", path, strerror(errno));
}

/* Finds git-http-backend in `git --exec-path`. */
static void find_backend(void)
{
	char dir[PATH_MAX];
	FILE *p = popen("git --exec-path", "r");

	if (p == NULL || fgets(dir, sizeof(dir), p) == NULL) {
		if (p)
			pclose(p);
		die("cannot run git --exec-path");
	}
	if (pclose(p) != 0)
		die("git --exec-path failed");
	dir[strcspn(dir, "\n")] = '\0';
	snprintf(g.backend, sizeof(g.backend), "%s/git-http-backend", dir);
	if (access(g.backend, X_OK) < 0)
		die("cannot run %s: %s", g.backend, strerror(errno));
}

/* A socket listening on 127.0.0.1 on a port the kernel picks; the port
 * in *PORT. */
static int listen_loopback(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		die("cannot listen on 127.0.0.1: %s", strerror(errno));
	*port = ntohs(sa.sin_port);
	return fd;
}

/* SIGTERM and SIGINT: stop serving. */
static void on_stop(int sig)
{
	stopping = 1;
}

/* SIGCHLD: only wakes the main loop, which reaps. */
static void on_child(int sig)
{
}

/* Forgets the connection child PID, which has ended. */
static void forget(pid_t pid)
{
	for (size_t i = 0; i < g.nconns; i++) {
		if (g.conns[i] == pid) {
			g.conns[i] = g.conns[--g.nconns];
			return;
		}
	}
}

/* Starts a child that serves the connection FD. */
static void spawn(int lfd, int fd, const sigset_t *unblocked)
{
	pid_t pid = fork();

	if (pid == 0) {
		close(lfd);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		sigprocmask(SIG_SETMASK, unblocked, NULL);
		serve(fd);
		exit(0);
	}
	if (pid < 0)
		log_line("cannot fork: %s", strerror(errno));
	else
		g.conns[g.nconns++] = pid;
	close(fd);
}

/* Prints the usage to F. */
static void usage(FILE *f)
{
	fputs("usage: git-http --root DIR --user NAME --password SECRET "
	      "--port-file FILE\n"
	      "                [--log FILE]\n", f);
}

/* Parses the options, listens, and serves until SIGTERM or SIGINT. */
int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "root", required_argument, NULL, 'r' },
		{ "user", required_argument, NULL, 'u' },
		{ "password", required_argument, NULL, 'p' },
		{ "port-file", required_argument, NULL, 'f' },
		{ "log", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *root = NULL, *password = NULL, *port_file = NULL;
	const char *log_path = NULL;
	char *pair;
	struct sigaction sa = { .sa_handler = on_stop };
	sigset_t blocked, unblocked;
	int c, lfd, port;
	pid_t pid;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': root = optarg; break;
		case 'u': g.user = optarg; break;
		case 'p': password = optarg; break;
		case 'f': port_file = optarg; break;
		case 'l': log_path = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !root || !g.user || !password || !port_file) {
		usage(stderr);
		return 2;
	}
	if (realpath(root, g.root) == NULL)
		die("cannot use %s: %s", root, strerror(errno));
	if (asprintf(&pair, "%s:%s", g.user, password) < 0)
		die("out of memory");
	g.auth = base64((const unsigned char *)pair, strlen(pair));
	free(pair);
	find_backend();
	g.log_fd = STDERR_FILENO;
	if (log_path) {
		g.log_fd = open(log_path,
				O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
				0644);
		if (g.log_fd < 0)
			die("cannot open %s: %s", log_path, strerror(errno));
	}

	sigemptyset(&blocked);
	sigaddset(&blocked, SIGTERM);
	sigaddset(&blocked, SIGINT);
	sigaddset(&blocked, SIGCHLD);
	sigprocmask(SIG_BLOCK, &blocked, &unblocked);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_child;
	sigaction(SIGCHLD, &sa, NULL);
	lfd = listen_loopback(&port);
	write_port_file(port_file, port);
	log_line("serving %s on http://127.0.0.1:%d", g.root, port);

	while (!stopping) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		int fd;

		while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
			forget(pid);
		if (ppoll(&p, g.nconns < MAX_CONNS, NULL, &unblocked) <= 0)
			continue;
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			spawn(lfd, fd, &unblocked);
	}

	log_line("stopping");
	for (size_t i = 0; i < g.nconns; i++)
		kill(g.conns[i], SIGTERM);
	while (g.nconns > 0 && (pid = waitpid(-1, NULL, 0)) > 0)
		forget(pid);
	close(lfd);
	free(g.auth);
	return 0;
}
