/*
 * idle.c: bench-idle, holds idle client connections open on the relay.
 *
 *   bench-idle PORT TOKEN
 *
 * Reads numbers from stdin, one a line: for each, opens connections until
 * that many are open, each welcomed after its hello (an authenticated
 * client that then sends nothing), and prints "ready N". At most 200
 * handshakes are in flight at once. Exits at the end of stdin, closing
 * every connection.
 */
#define _GNU_SOURCE
#include "wsc.h"
#include "proto.h"
#include "util.h"

#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IN_FLIGHT 200

struct idle_conn {
	struct wsc_conn *conn;
	struct wsc_attach attach;	/* for its hello */
};

static struct {
	uv_loop_t *loop;
	struct wsc *wsc;
	uv_pipe_t in;
	int port;
	const char *token;
	struct idle_conn **conns;
	size_t count;		/* started */
	size_t welcomed;
	size_t target;
	char line[64];
	size_t line_len;
	int status;
} I;

static void fill(void)
{
	while (I.count < I.target && I.count - I.welcomed < IN_FLIGHT) {
		struct idle_conn *ic = xcalloc(1, sizeof(*ic));

		ic->attach.token = I.token;
		ic->conn = wsc_connect(I.wsc, I.port, ic);
		if (ic->conn == NULL) {
			fprintf(stderr, "bench-idle: cannot connect after "
				"%zu\n", I.count);
			free(ic);
			I.status = 1;
			return;
		}
		I.conns = xrealloc(I.conns, (I.count + 1) * sizeof(*I.conns));
		I.conns[I.count++] = ic;
	}
	if (I.target && I.welcomed == I.target) {
		printf("ready %zu\n", I.welcomed);
		fflush(stdout);
		I.target = 0;
	}
}

static void on_open(struct wsc_conn *c)
{
	struct idle_conn *ic = c->data;

	wsc_attach_start(c, &ic->attach);
}

static void on_text(struct wsc_conn *c, const char *text, size_t len)
{
	struct proto_msg m;
	const char *code;
	char cause[200];

	if (proto_msg_decode(text, len, PROTO_FROM_RELAY, &m, &code, cause,
			     sizeof(cause)) == 0 &&
	    !strcmp(m.type, "welcome")) {
		I.welcomed++;
		fill();
	} else {
		fprintf(stderr, "bench-idle: %.*s\n", (int)len, text);
	}
	proto_msg_free(&m);
}

static void on_close(struct wsc_conn *c)
{
	if (I.status == 0 && !uv_is_closing((uv_handle_t *)&I.in)) {
		fprintf(stderr, "bench-idle: a connection closed (%zu open, "
			"%zu welcomed)\n", I.count, I.welcomed);
		I.status = 1;
	}
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
	static char b[256];

	buf->base = b;
	buf->len = sizeof(b);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	if (n < 0) {
		uv_close((uv_handle_t *)&I.in, NULL);
		wsc_shutdown(I.wsc);
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		char ch = buf->base[i];

		if (ch != '\n') {
			if (I.line_len < sizeof(I.line) - 1)
				I.line[I.line_len++] = ch;
			continue;
		}
		I.line[I.line_len] = '\0';
		I.line_len = 0;
		I.target = strtoul(I.line, NULL, 10);
		fill();
	}
}

int main(int argc, char **argv)
{
	static const struct wsc_ops ops = { on_open, on_text, NULL,
					    on_close };

	if (argc != 3) {
		fprintf(stderr, "usage: bench-idle PORT TOKEN\n");
		return 64;
	}
	lws_set_log_level(LLL_ERR, NULL);
	I.port = atoi(argv[1]);
	I.token = argv[2];
	I.loop = uv_default_loop();
	I.wsc = wsc_new(I.loop, &ops);
	if (I.wsc == NULL)
		return 1;
	uv_pipe_init(I.loop, &I.in, 0);
	uv_pipe_open(&I.in, 0);
	uv_read_start((uv_stream_t *)&I.in, on_alloc, on_read);
	uv_run(I.loop, UV_RUN_DEFAULT);
	wsc_free(I.wsc);
	for (size_t i = 0; i < I.count; i++) {
		frame_queue_clear(&I.conns[i]->conn->out);
		frame_rx_free(&I.conns[i]->conn->in);
		free(I.conns[i]->conn);
		free(I.conns[i]);
	}
	free(I.conns);
	return I.status;
}
