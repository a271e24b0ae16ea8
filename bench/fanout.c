/*
 * fanout.c: bench-fanout, PTY output streamed through the relay to many
 * clients at once.
 *
 *   bench-fanout PORT TOKEN SESSION CLIENTS BYTES [STALLED]
 *   bench-fanout --pty FILE BYTES
 *
 * Attaches CLIENTS readers and STALLED clients that stop reading their
 * socket once attached (a phone gone to sleep), all to SESSION, whose
 * agent answers a line "N" with N bytes and then "FLOOD-END\n" on a raw
 * terminal (the "flood" profile of bench/lib.sh). The first reader sends
 * "BYTES\n"; each reader times its output from the first byte to the last.
 *
 * Prints one line: readers, bytes, the median, lowest and highest
 * per-reader rate and the aggregate rate (every reader's bytes over the
 * time from the first byte anyone got to the last), in MiB/s, and the
 * milliseconds from the request to the first byte.
 *
 * With --pty, the ceiling this machine's terminals set: the same command
 * the flood agent runs (dd of BYTES of FILE, 64 KiB writes, on a raw
 * terminal) read straight from a PTY master in 64 KiB reads, no relay and
 * no daemon. Prints "pty bytes N median MiB/s".
 */
#define _GNU_SOURCE
#include "wsc.h"
#include "proto.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MARKER_LEN 10		/* "FLOOD-END\n" */
#define TIME_LIMIT_MS 120000

struct reader {
	struct wsc_conn *conn;
	struct wsc_attach attach;
	bool stalled;
	bool attached;
	uint64_t bytes;
	uint64_t first_us;
	uint64_t done_us;
};

static struct {
	struct wsc *wsc;
	uv_timer_t limit;
	struct reader *r;
	int count;		/* readers and stalled */
	int readers;
	int attached;
	int done;
	uint64_t want;		/* bytes each reader must get */
	uint64_t asked_us;
	uint8_t session[16];
	int status;
} F;

static void finish(int status)
{
	if (F.status == 0)
		F.status = status;
	uv_timer_stop(&F.limit);
	uv_close((uv_handle_t *)&F.limit, NULL);
	wsc_shutdown(F.wsc);
}

/* All attached: the first reader asks the agent for the flood. */
static void ask(void)
{
	struct proto_bin hdr = { .kind = PROTO_BIN_INPUT };
	char line[32];
	int n;

	memcpy(hdr.session, F.session, sizeof(hdr.session));
	hdr.seq = wsc_now_us() << 16;
	n = snprintf(line, sizeof(line), "%llu\n",
		     (unsigned long long)(F.want - MARKER_LEN));
	F.asked_us = wsc_now_us();
	wsc_send_binary(F.r[0].conn, &hdr, line, (size_t)n);
}

static void on_open(struct wsc_conn *c)
{
	struct reader *r = c->data;

	wsc_attach_start(c, &r->attach);
}

static void on_text(struct wsc_conn *c, const char *text, size_t len)
{
	struct reader *r = c->data;

	switch (wsc_attach_text(c, &r->attach, text, len)) {
	case 1:
		if (r->attached)
			break;
		r->attached = true;
		if (r->stalled)
			wsc_read(c, false);
		if (++F.attached == F.count)
			ask();
		break;
	case -1:
		finish(1);
		break;
	default:
		break;
	}
}

static void on_binary(struct wsc_conn *c, const uint8_t *data, size_t len)
{
	struct reader *r = c->data;
	struct proto_bin b;
	const char *cause;

	if (proto_bin_decode(data, len, &b, &cause) < 0 ||
	    b.kind != PROTO_BIN_OUTPUT || b.seq <= r->attach.from ||
	    r->done_us || r->stalled)
		return;
	if (r->first_us == 0)
		r->first_us = wsc_now_us();
	r->bytes += b.len;
	if (r->bytes < F.want)
		return;
	r->done_us = wsc_now_us();
	if (++F.done == F.readers)
		finish(0);
}

static void on_close(struct wsc_conn *c)
{
	struct reader *r = c->data;

	if (F.done < F.readers && !r->stalled) {
		fprintf(stderr, "bench-fanout: a reader's connection closed "
			"after %llu bytes\n", (unsigned long long)r->bytes);
		finish(1);
	}
}

static void on_limit(uv_timer_t *t)
{
	fprintf(stderr, "bench-fanout: %d of %d readers done after %d s\n",
		F.done, F.readers, TIME_LIMIT_MS / 1000);
	finish(1);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(void)
{
	double *rate = xcalloc((size_t)F.readers, sizeof(*rate));
	uint64_t first = UINT64_MAX, last = 0;
	double mib = (double)F.want / (1024.0 * 1024.0);

	for (int i = 0; i < F.readers; i++) {
		struct reader *r = &F.r[i];
		uint64_t us = r->done_us - r->first_us;

		rate[i] = mib / ((double)(us ? us : 1) / 1e6);
		if (r->first_us < first)
			first = r->first_us;
		if (r->done_us > last)
			last = r->done_us;
	}
	qsort(rate, (size_t)F.readers, sizeof(*rate), cmp_double);
	printf("readers %d bytes %llu median %.1f min %.1f max %.1f "
	       "aggregate %.1f first_ms %.2f\n", F.readers,
	       (unsigned long long)F.want, rate[F.readers / 2], rate[0],
	       rate[F.readers - 1],
	       mib * F.readers / ((double)(last - first) / 1e6),
	       (double)(first - F.asked_us) / 1000.0);
	free(rate);
}

/* The PTY alone: see the top of the file. */
static int pty_alone(const char *file, unsigned long long bytes)
{
	char cmd[4096], *chunk = xmalloc(PROTO_CHUNK);
	uint64_t first = 0, last = 0, got = 0;
	int fd, status;
	pid_t pid;

	snprintf(cmd, sizeof(cmd), "stty raw -echo; dd if='%s' bs=65536 "
		 "count=%llu iflag=count_bytes status=none", file, bytes);
	fd = posix_openpt(O_RDWR | O_NOCTTY);
	if (fd < 0 || grantpt(fd) < 0 || unlockpt(fd) < 0 ||
	    (pid = fork()) < 0) {
		fprintf(stderr, "bench-fanout: cannot open a PTY: %s\n",
			strerror(errno));
		return 1;
	}
	if (pid == 0) {
		int slave;

		setsid();
		slave = open(ptsname(fd), O_RDWR);
		if (slave < 0)
			_exit(127);
		dup2(slave, 0);
		dup2(slave, 1);
		dup2(slave, 2);
		close(slave);
		close(fd);
		execlp("sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	for (;;) {
		ssize_t n = read(fd, chunk, PROTO_CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;	/* EIO: the writer is gone */
		if (first == 0)
			first = wsc_now_us();
		got += (uint64_t)n;
		last = wsc_now_us();
	}
	close(fd);
	waitpid(pid, &status, 0);
	free(chunk);
	if (got < bytes) {
		fprintf(stderr, "bench-fanout: the PTY gave %llu of %llu "
			"bytes\n", (unsigned long long)got, bytes);
		return 1;
	}
	printf("pty bytes %llu median %.1f\n", bytes,
	       (double)got / (1024.0 * 1024.0) /
	       ((double)(last - first ? last - first : 1) / 1e6));
	return 0;
}

int main(int argc, char **argv)
{
	static const struct wsc_ops ops = { on_open, on_text, on_binary,
					    on_close };
	uv_loop_t *loop = uv_default_loop();
	int port, stalled = 0;

	if (argc == 4 && !strcmp(argv[1], "--pty"))
		return pty_alone(argv[2], strtoull(argv[3], NULL, 10));
	if (argc != 6 && argc != 7) {
		fprintf(stderr, "usage: bench-fanout PORT TOKEN SESSION "
			"CLIENTS BYTES [STALLED]\n");
		return 64;
	}
	lws_set_log_level(LLL_ERR, NULL);
	port = atoi(argv[1]);
	F.readers = atoi(argv[4]);
	F.want = strtoull(argv[5], NULL, 10);
	if (argc == 7)
		stalled = atoi(argv[6]);
	if (port <= 0 || F.readers <= 0 || F.want <= MARKER_LEN ||
	    stalled < 0 || proto_uuid_parse(argv[3], F.session) < 0) {
		fprintf(stderr, "bench-fanout: bad arguments\n");
		return 64;
	}
	F.count = F.readers + stalled;
	F.r = xcalloc((size_t)F.count, sizeof(*F.r));
	F.wsc = wsc_new(loop, &ops);
	if (F.wsc == NULL)
		return 1;
	uv_timer_init(loop, &F.limit);
	uv_timer_start(&F.limit, on_limit, TIME_LIMIT_MS, 0);
	for (int i = 0; i < F.count; i++) {
		F.r[i].attach.token = argv[2];
		F.r[i].attach.session = argv[3];
		F.r[i].stalled = i >= F.readers;
		F.r[i].conn = wsc_connect(F.wsc, port, &F.r[i]);
		if (F.r[i].conn == NULL) {
			fprintf(stderr, "bench-fanout: cannot connect\n");
			return 1;
		}
	}
	uv_run(loop, UV_RUN_DEFAULT);
	wsc_free(F.wsc);
	if (F.status == 0)
		report();
	for (int i = 0; i < F.count; i++) {
		frame_queue_clear(&F.r[i].conn->out);
		frame_rx_free(&F.r[i].conn->in);
		free(F.r[i].conn);
	}
	free(F.r);
	return F.status;
}
