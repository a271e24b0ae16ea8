/*
 * test_link.c: unit tests for common/link.c: the relay URL parser, and a
 * link to a port where nothing listens, which must retry with a growing
 * delay and release every handle when shut down.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <libwebsockets.h>
#include <uv.h>

#include "link.h"
#include "util.h"

#define MAX_CLOSES 32

/* Asserts that url parses into host, port and path. */
static void assert_parses(const char *url, const char *host, int port,
			  const char *path)
{
	char *got_host = NULL, *got_path = NULL, *cause = NULL;
	int got_port = -1;

	assert_int_equal(link_parse_url(url, &got_host, &got_port, &got_path,
					&cause), 0);
	assert_null(cause);
	assert_string_equal(got_host, host);
	assert_int_equal(got_port, port);
	assert_string_equal(got_path, path);
	free(got_host);
	free(got_path);
}

/* Asserts that url is refused with err and a cause naming the URL and
 * containing hint. */
static void assert_refused(const char *url, int err, const char *hint)
{
	char *host = NULL, *path = NULL, *cause = NULL;
	int port = -1, r;

	r = link_parse_url(url, &host, &port, &path, &cause);
	if (r != err)
		fail_msg("\"%s\" gave %d, expected %d", url, r, err);
	assert_null(host);
	assert_null(path);
	assert_non_null(cause);
	if (strncmp(cause, url, strlen(url)) || !strstr(cause, hint))
		fail_msg("cause \"%s\" should start with \"%s\" and "
			 "contain \"%s\"", cause, url, hint);
	free(cause);
}

/* Hosts by name, IPv4 and bracketed IPv6, with ports and paths. */
static void test_parse(void **state)
{
	assert_parses("ws://127.0.0.1:8080", "127.0.0.1", 8080, "/");
	assert_parses("ws://localhost:80/path", "localhost", 80, "/path");
	assert_parses("ws://[::1]:9000/x", "::1", 9000, "/x");
	assert_parses("ws://relay.example:65535/a/b?c", "relay.example",
		      65535, "/a/b?c");
	assert_parses("ws://h:1/", "h", 1, "/");
}

/* Without a port the port is 80; without a path the path is "/". */
static void test_parse_defaults(void **state)
{
	assert_parses("ws://localhost", "localhost", 80, "/");
	assert_parses("ws://localhost/p", "localhost", 80, "/p");
	assert_parses("ws://[::1]", "::1", 80, "/");
	assert_parses("ws://[fe80::1]/q", "fe80::1", 80, "/q");
}

/* wss:// is refused with a cause that says TLS is not supported yet. */
static void test_parse_wss(void **state)
{
	assert_refused("wss://relay.example:443", -EPROTONOSUPPORT, "TLS");
	assert_refused("wss://127.0.0.1:8080/x", -EPROTONOSUPPORT,
		       "use ws://");
}

/* Other schemes, and none, are refused with an example of a good URL. */
static void test_parse_scheme(void **state)
{
	assert_refused("http://127.0.0.1:8080", -EINVAL, "ws://127.0.0.1");
	assert_refused("WS://127.0.0.1:8080", -EINVAL, "start with ws://");
	assert_refused("127.0.0.1:8080", -EINVAL, "start with ws://");
	assert_refused("", -EINVAL, "start with ws://");
}

/* Empty hosts, bad ports and broken brackets are refused. */
static void test_parse_bad(void **state)
{
	static const char *const bad[] = {
		"ws://",		/* empty host */
		"ws://:8080",		/* empty host */
		"ws:///path",		/* empty host */
		"ws://[]:8080",		/* empty host in brackets */
		"ws://h:0",		/* port 0 */
		"ws://h:70000",		/* port too large */
		"ws://h:65536/",	/* port too large */
		"ws://h:99999999999999999999",
		"ws://h:-80",		/* negative port */
		"ws://h:+80",		/* a sign is not a digit */
		"ws://h: 80",		/* nor is a space */
		"ws://h:8o8o",		/* port with letters */
		"ws://h:abc",		/* port of letters */
		"ws://h:80x/",		/* letters after the port */
		"ws://h:",		/* empty port */
		"ws://h:/p",		/* empty port */
		"ws://[::1:8080",	/* missing ] */
		"ws://[::1",		/* missing ] */
		"ws://[::1]8080",	/* junk after ] */
		"ws://[::1]x/p",	/* junk after ] */
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_refused(bad[i], -EINVAL, "ws://HOST:PORT");
}

/* A loopback TCP port where nothing listens: bound, then closed. */
static int dead_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

/* A link's loop, its timers and what its callbacks saw. */
struct run {
	uv_loop_t loop;
	uv_timer_t stop;	/* shuts the link down after a while */
	uv_timer_t watchdog;	/* unreferenced: stops a loop that hangs */
	struct link *link;
	uint64_t start;
	uint64_t closes[MAX_CLOSES];	/* ms after start of each on_close */
	int nclose;
	int opens;
	bool timed_out;
};

static void on_open(struct link *l, void *arg)
{
	struct run *r = arg;

	r->opens++;
}

/* Records when each close came. */
static void on_close(struct link *l, const char *reason, void *arg)
{
	struct run *r = arg;

	assert_non_null(reason);
	if (r->nclose < MAX_CLOSES)
		r->closes[r->nclose] = now_ms() - r->start;
	r->nclose++;
}

static void on_timer_closed(uv_handle_t *h)
{
}

/* Shuts the link down and lets the loop run dry. */
static void on_stop(uv_timer_t *t)
{
	struct run *r = t->data;

	link_shutdown(r->link);
	uv_close((uv_handle_t *)t, on_timer_closed);
}

/* The loop did not finish in time: stop it so the test can fail. */
static void on_watchdog(uv_timer_t *t)
{
	struct run *r = t->data;

	r->timed_out = true;
	uv_stop(&r->loop);
}

/* Runs a link to a dead port for run_ms, shuts it down, runs the loop
 * until it has no more work, frees the link and closes the loop. */
static void run_dead_link(struct run *r, bool reconnect, uint64_t run_ms)
{
	static const struct link_callbacks cb = {
		.on_open = on_open,
		.on_close = on_close,
	};
	struct link_opts opts = {
		.reconnect = reconnect,
		.cb = &cb,
		.arg = r,
	};
	char *url = xasprintf("ws://127.0.0.1:%d", dead_port());
	char *cause = NULL;

	memset(r, 0, sizeof(*r));
	opts.url = url;
	assert_int_equal(uv_loop_init(&r->loop), 0);
	uv_timer_init(&r->loop, &r->stop);
	r->stop.data = r;
	uv_timer_init(&r->loop, &r->watchdog);
	r->watchdog.data = r;
	uv_timer_start(&r->watchdog, on_watchdog, run_ms + 20000, 0);
	uv_unref((uv_handle_t *)&r->watchdog);

	r->start = now_ms();
	assert_int_equal(link_new(&r->loop, &opts, &r->link, &cause), 0);
	assert_null(cause);
	uv_timer_start(&r->stop, on_stop, run_ms, 0);
	uv_run(&r->loop, UV_RUN_DEFAULT);
	assert_false(r->timed_out);

	link_free(r->link);
	uv_close((uv_handle_t *)&r->watchdog, on_timer_closed);
	uv_run(&r->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&r->loop), 0);
	free(url);
}

/*
 * Nothing listens: the link keeps retrying, but each wait is at least half
 * of a doubling delay (200, 400, 800 ms nominal, with jitter), so 1.5 s
 * holds only a handful of attempts. After shutdown every handle is gone.
 */
static void test_reconnect_backoff(void **state)
{
	struct run r;

	run_dead_link(&r, true, 1500);
	assert_int_equal(r.opens, 0);
	assert_in_range(r.nclose, 3, 9);
	for (int i = 1; i < r.nclose && i < MAX_CLOSES; i++) {
		uint64_t gap = r.closes[i] - r.closes[i - 1];
		uint64_t least = 100u << (i - 1);

		if (gap < least)
			fail_msg("wait %d was %llu ms, expected at least %llu",
				 i, (unsigned long long)gap,
				 (unsigned long long)least);
	}
}

/* Without reconnect a refused connection is reported once. */
static void test_no_reconnect(void **state)
{
	struct run r;

	run_dead_link(&r, false, 800);
	assert_int_equal(r.opens, 0);
	assert_int_equal(r.nclose, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_defaults),
		cmocka_unit_test(test_parse_wss),
		cmocka_unit_test(test_parse_scheme),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_reconnect_backoff),
		cmocka_unit_test(test_no_reconnect),
	};

	lws_set_log_level(LLL_ERR, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
