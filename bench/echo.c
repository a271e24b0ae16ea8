/*
 * echo.c: bench-echo, keystroke round trips timed one at a time.
 *
 *   bench-echo relay PORT TOKEN SESSION COUNT
 *       a client of the relay on 127.0.0.1:PORT: hello, attach to SESSION
 *       (whose agent echoes its input, e.g. cat on a raw terminal), then
 *       COUNT times: one input frame of one byte, and the wait for the
 *       output frame that carries it back (client, relay, daemon, PTY,
 *       agent, and the same way back)
 *   bench-echo server PORT-FILE
 *       a bare WebSocket echo server on 127.0.0.1 (lws on libuv, like the
 *       relay): every message goes back as it came; writes its port
 *   bench-echo direct PORT COUNT
 *       the same client loop against that server: the floor that lws and
 *       loopback TCP set for one round trip
 *
 * Prints one line: count, then p50, p90, p99, p99.9, min and max in
 * microseconds. The first 200 round trips warm up and are not counted.
 */
#define _GNU_SOURCE
#include "wsc.h"
#include "proto.h"
#include "util.h"

#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WARMUP 200

struct echo {
	uv_loop_t *loop;
	struct wsc *wsc;
	struct wsc_conn *conn;
	bool relay;		/* through the relay (else direct) */
	struct wsc_attach attach;
	uint8_t session[16];
	uint64_t input_id;	/* ids of our input frames */
	long want;		/* round trips to time */
	long done;		/* round trips finished, warm-up included */
	uint64_t sent_us;
	uint64_t *rtt;		/* microseconds, want of them */
	uint8_t key;		/* the byte in flight */
	bool waiting;
	int status;
};

static struct echo E;

/* Sends the next keystroke. */
static void key_send(void)
{
	struct proto_bin hdr = { .kind = PROTO_BIN_INPUT };

	memcpy(hdr.session, E.session, sizeof(hdr.session));
	hdr.seq = ++E.input_id;
	E.key = (uint8_t)('a' + E.done % 26);
	E.waiting = true;
	E.sent_us = wsc_now_us();
	wsc_send_binary(E.conn, &hdr, &E.key, 1);
}

static void finish(int status)
{
	E.status = status;
	wsc_shutdown(E.wsc);
}

static void on_open(struct wsc_conn *c)
{
	if (E.relay)
		wsc_attach_start(c, &E.attach);
	else
		key_send();
}

static void on_text(struct wsc_conn *c, const char *text, size_t len)
{
	switch (wsc_attach_text(c, &E.attach, text, len)) {
	case 1:
		key_send();
		break;
	case -1:
		finish(1);
		break;
	default:
		break;
	}
}

/* One round trip ended when our byte came back. */
static void on_binary(struct wsc_conn *c, const uint8_t *data, size_t len)
{
	struct proto_bin b;
	const char *cause;
	uint64_t now = wsc_now_us();

	if (proto_bin_decode(data, len, &b, &cause) < 0 || !E.waiting)
		return;
	if (E.relay && (b.kind != PROTO_BIN_OUTPUT || b.seq <= E.attach.from))
		return;
	if (b.len == 0 || memchr(b.data, E.key, b.len) == NULL)
		return;
	E.waiting = false;
	if (E.done >= WARMUP)
		E.rtt[E.done - WARMUP] = now - E.sent_us;
	if (++E.done == E.want + WARMUP) {
		finish(0);
		return;
	}
	key_send();
}

static void on_close(struct wsc_conn *c)
{
	if (E.done < E.want + WARMUP) {
		fprintf(stderr, "bench-echo: the connection closed after %ld "
			"round trips\n", E.done);
		E.status = 1;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t pct(const uint64_t *v, long n, double p)
{
	long i = (long)(p * (double)(n - 1) + 0.5);

	return v[i];
}

/* ---- the direct echo server ---- */

struct echo_peer {
	struct frame_queue out;
	struct frame_rx in;
};

static int server_callback(struct lws *wsi, enum lws_callback_reasons reason,
			   void *user, void *in, size_t len)
{
	struct echo_peer *p = user;
	int r;

	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		memset(p, 0, sizeof(*p));
		break;
	case LWS_CALLBACK_RECEIVE:
		r = frame_rx_feed(&p->in, wsi, in, len);
		if (r == FRAME_RX_BINARY || r == FRAME_RX_TEXT) {
			struct frame_queue *q = &p->out;

			if (r == FRAME_RX_TEXT) {
				frame_queue_text(q, (char *)p->in.data,
						 p->in.len);
			} else {
				struct proto_bin b;
				const char *cause;

				if (proto_bin_decode(p->in.data, p->in.len,
						     &b, &cause) == 0)
					frame_queue_binary(q, &b, b.data,
							   b.len);
			}
			lws_callback_on_writable(wsi);
		}
		if (r != FRAME_RX_MORE)
			frame_rx_reset(&p->in);
		break;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		r = frame_queue_write(&p->out, wsi);
		if (r < 0)
			return -1;
		if (r > 0)
			lws_callback_on_writable(wsi);
		break;
	case LWS_CALLBACK_CLOSED:
		frame_queue_clear(&p->out);
		frame_rx_free(&p->in);
		break;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols server_protocols[] = {
	{ PROTO_SUBPROTOCOL, server_callback, sizeof(struct echo_peer),
	  PROTO_CHUNK + 1024, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void on_signal(uv_signal_t *s, int signum)
{
	uv_stop(s->loop);
}

/* Serves until SIGTERM or SIGINT. */
static int serve(const char *port_file)
{
	struct lws_context_creation_info info;
	void *loops[1] = { uv_default_loop() };
	struct lws_context *ctx;
	struct lws_vhost *vh;
	uv_signal_t sig_term, sig_int;
	FILE *f;

	memset(&info, 0, sizeof(info));
	info.port = 0;
	info.iface = "127.0.0.1";
	info.protocols = server_protocols;
	info.options = LWS_SERVER_OPTION_LIBUV;
	info.foreign_loops = loops;
	info.gid = -1;
	info.uid = -1;
	info.vhost_name = "echo";
	ctx = lws_create_context(&info);
	if (ctx == NULL) {
		fprintf(stderr, "bench-echo: cannot listen\n");
		return 1;
	}
	vh = lws_get_vhost_by_name(ctx, "echo");
	f = fopen(port_file, "w");
	if (f == NULL || vh == NULL) {
		fprintf(stderr, "bench-echo: cannot write %s\n", port_file);
		return 1;
	}
	fprintf(f, "%d\n", lws_get_vhost_listen_port(vh));
	fclose(f);
	uv_signal_init(uv_default_loop(), &sig_term);
	uv_signal_start(&sig_term, on_signal, SIGTERM);
	uv_signal_init(uv_default_loop(), &sig_int);
	uv_signal_start(&sig_int, on_signal, SIGINT);
	uv_run(uv_default_loop(), UV_RUN_DEFAULT);
	lws_context_destroy(ctx);
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_close((uv_handle_t *)&sig_int, NULL);
	uv_run(uv_default_loop(), UV_RUN_DEFAULT);
	lws_context_destroy(ctx);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: bench-echo relay PORT TOKEN SESSION COUNT\n"
			"       bench-echo server PORT-FILE\n"
			"       bench-echo direct PORT COUNT\n");
	return 64;
}

int main(int argc, char **argv)
{
	static const struct wsc_ops ops = { on_open, on_text, on_binary,
					    on_close };
	int port;

	lws_set_log_level(LLL_ERR, NULL);
	if (argc == 3 && !strcmp(argv[1], "server"))
		return serve(argv[2]);
	if (argc == 6 && !strcmp(argv[1], "relay")) {
		E.relay = true;
		E.attach.token = argv[3];
		E.attach.session = argv[4];
		if (proto_uuid_parse(argv[4], E.session) < 0)
			return usage();
		E.want = atol(argv[5]);
	} else if (argc == 4 && !strcmp(argv[1], "direct")) {
		E.want = atol(argv[3]);
	} else {
		return usage();
	}
	port = atoi(argv[2]);
	if (E.want <= 0 || port <= 0)
		return usage();
	E.input_id = wsc_now_us() << 16;	/* unique across runs */
	E.rtt = xcalloc((size_t)E.want, sizeof(*E.rtt));
	E.loop = uv_default_loop();
	E.wsc = wsc_new(E.loop, &ops);
	if (E.wsc == NULL ||
	    (E.conn = wsc_connect(E.wsc, port, NULL)) == NULL) {
		fprintf(stderr, "bench-echo: cannot start lws\n");
		return 1;
	}
	uv_run(E.loop, UV_RUN_DEFAULT);
	wsc_free(E.wsc);
	frame_queue_clear(&E.conn->out);
	frame_rx_free(&E.conn->in);
	free(E.conn);
	if (E.status != 0)
		return E.status;

	qsort(E.rtt, (size_t)E.want, sizeof(*E.rtt), cmp_u64);
	printf("count %ld p50 %llu p90 %llu p99 %llu p999 %llu min %llu "
	       "max %llu\n", E.want,
	       (unsigned long long)pct(E.rtt, E.want, 0.50),
	       (unsigned long long)pct(E.rtt, E.want, 0.90),
	       (unsigned long long)pct(E.rtt, E.want, 0.99),
	       (unsigned long long)pct(E.rtt, E.want, 0.999),
	       (unsigned long long)E.rtt[0],
	       (unsigned long long)E.rtt[E.want - 1]);
	free(E.rtt);
	return 0;
}
