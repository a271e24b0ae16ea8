/*
 * test_link.c: unit tests for common/link.c: the relay URL parser and the
 * rule that plain ws:// stays on loopback, and a link (ws:// and wss://)
 * to a port where nothing listens, which must retry with a growing delay
 * and release every handle when shut down.
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

/* wss:// parses like ws://, with 443 as its default port. */
static void test_parse_wss(void **state)
{
	assert_parses("wss://relay.example:8443", "relay.example", 8443, "/");
	assert_parses("wss://relay.example", "relay.example", 443, "/");
	assert_parses("wss://relay.example/p", "relay.example", 443, "/p");
	assert_parses("wss://[::1]:9000/x", "::1", 9000, "/x");
	assert_parses("wss://127.0.0.1:8080/x", "127.0.0.1", 8080, "/x");
	assert_refused("wss://", -EINVAL, "wss://HOST:PORT");
	assert_refused("wss://h:0", -EINVAL, "wss://HOST:PORT");
	assert_refused("wss://[::1", -EINVAL, "wss://HOST:PORT");
	assert_refused("WSS://h:1", -EINVAL, "or wss://");
	assert_refused("https://h:1", -EINVAL, "or wss://");
}

/* Only wss:// asks for TLS. */
static void test_url_tls(void **state)
{
	assert_true(link_url_tls("wss://relay.example"));
	assert_false(link_url_tls("ws://relay.example"));
	assert_false(link_url_tls("WSS://relay.example"));
	assert_false(link_url_tls("https://relay.example"));
	assert_false(link_url_tls(""));
}

/* Loopback is localhost, 127.0.0.0/8 and ::1, literally; nothing else. */
static void test_loopback(void **state)
{
	static const char *const yes[] = {
		"127.0.0.1", "127.0.0.2", "127.255.255.254", "127.1.2.3",
		"::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "localhost",
		"LocalHost",
	};
	static const char *const no[] = {
		"0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "126.255.255.255",
		"192.168.1.1", "::2", "::ffff:10.0.0.1", "fe80::1",
		"relay.example", "localhost.example", "127.0.0.1.nip.io",
		"localhost.", "127.1", "", " 127.0.0.1",
	};

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++)
		if (!link_host_is_loopback(yes[i]))
			fail_msg("\"%s\" should be loopback", yes[i]);
	for (size_t i = 0; i < ARRAY_SIZE(no); i++)
		if (link_host_is_loopback(no[i]))
			fail_msg("\"%s\" should not be loopback", no[i]);
}

/* Asserts link_check_url's answer, and a cause only with a refusal. */
static void assert_check(const char *url, bool insecure, int want)
{
	char *cause = NULL;
	int r = link_check_url(url, insecure, &cause);

	if (r != want)
		fail_msg("\"%s\" (insecure %d) gave %d, expected %d: %s", url,
			 insecure, r, want, cause ? cause : "");
	if (want == 0) {
		assert_null(cause);
		return;
	}
	assert_non_null(cause);
	free(cause);
}

/*
 * Plain ws:// is for loopback; beyond it only with insecure. wss:// goes
 * anywhere. The refusal says why and what to do.
 */
static void test_check_url(void **state)
{
	char *cause = NULL;

	assert_check("ws://127.0.0.1:8080", false, 0);
	assert_check("ws://127.0.0.2:8080/x", false, 0);
	assert_check("ws://localhost:8080", false, 0);
	assert_check("ws://[::1]:8080", false, 0);
	assert_check("ws://10.0.0.1:8080", false, -EPERM);
	assert_check("ws://relay.example", false, -EPERM);
	assert_check("ws://[::]:8080", false, -EPERM);
	assert_check("ws://0.0.0.0:8080", false, -EPERM);
	assert_check("ws://10.0.0.1:8080", true, 0);
	assert_check("ws://relay.example", true, 0);
	assert_check("wss://10.0.0.1:8443", false, 0);
	assert_check("wss://relay.example", false, 0);
	assert_check("wss://127.0.0.1:8443", false, 0);
	assert_check("ws://h:0", true, -EINVAL);
	assert_check("wss://", false, -EINVAL);

	assert_int_equal(link_check_url("ws://10.0.0.1:8080", false, &cause),
			 -EPERM);
	if (strncmp(cause, "ws://10.0.0.1:8080: ", 20) ||
	    !strstr(cause, "clear text") || !strstr(cause, "wss://") ||
	    !strstr(cause, "--tls-cert") || !strstr(cause, "--insecure"))
		fail_msg("the refusal does not say why and what to do: %s",
			 cause);
	free(cause);
}

/* link_new refuses what link_check_url refuses, and a CA file it cannot
 * use, before it connects anywhere. */
static void test_new_refuses(void **state)
{
	static const struct link_callbacks cb = { 0 };
	struct link_opts opts = { .cb = &cb };
	struct link *l = NULL;
	char *cause = NULL;
	char ca[] = "/tmp/baton-test-ca.XXXXXX";
	uv_loop_t loop;
	int fd;

	assert_int_equal(uv_loop_init(&loop), 0);
	opts.url = "ws://10.0.0.1:8080";
	assert_int_equal(link_new(&loop, &opts, &l, &cause), -EPERM);
	assert_null(l);
	assert_non_null(strstr(cause, "--insecure"));
	free(cause);
	cause = NULL;

	opts.url = "wss://127.0.0.1:8443";
	opts.ca_file = "/nonexistent/ca.pem";
	assert_int_equal(link_new(&loop, &opts, &l, &cause), -ENOENT);
	assert_null(l);
	if (!strstr(cause, "/nonexistent/ca.pem") ||
	    !strstr(cause, "CA file"))
		fail_msg("the cause does not name the CA file: %s", cause);
	free(cause);
	cause = NULL;

	fd = mkstemp(ca);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "not a certificate\n", 18), 18);
	close(fd);
	opts.ca_file = ca;
	assert_int_equal(link_new(&loop, &opts, &l, &cause), -EINVAL);
	assert_null(l);
	assert_non_null(strstr(cause, "holds no certificate"));
	free(cause);
	unlink(ca);

	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
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
	bool cert_refused;	/* a close said the certificate was refused */
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
	if (link_cert_refused(l))
		r->cert_refused = true;
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
static void run_dead_link(struct run *r, const char *scheme, bool reconnect,
			  uint64_t run_ms)
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
	char *url = xasprintf("%s://127.0.0.1:%d", scheme, dead_port());
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

	run_dead_link(&r, "ws", true, 1500);
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

	run_dead_link(&r, "ws", false, 800);
	assert_int_equal(r.opens, 0);
	assert_int_equal(r.nclose, 1);
}

/* A wss:// link (TLS context and all) retries and shuts down the same
 * way, and a refused TCP connection is not a refused certificate. */
static void test_tls_dead_port(void **state)
{
	struct run r;

	run_dead_link(&r, "wss", true, 1000);
	assert_int_equal(r.opens, 0);
	assert_in_range(r.nclose, 2, 8);
	assert_false(r.cert_refused);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_defaults),
		cmocka_unit_test(test_parse_wss),
		cmocka_unit_test(test_parse_scheme),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_url_tls),
		cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_check_url),
		cmocka_unit_test(test_new_refuses),
		cmocka_unit_test(test_reconnect_backoff),
		cmocka_unit_test(test_no_reconnect),
		cmocka_unit_test(test_tls_dead_port),
	};

	lws_set_log_level(LLL_ERR, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
