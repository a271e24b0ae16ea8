/*
 * test_bus.c: unit tests for relay/bus.c (which connection serves which
 * machine, and which connections listen to which session).
 *
 * The bus sends through conn_send_text and conn_send_binary, which live in
 * relay/server.c next to lws. This program does not link server.c: it
 * defines both functions below, and they record who was sent what.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "relay.h"
#include "util.h"

#define MAX_SENT 64

/* One message the bus handed to a connection. */
struct sent {
	struct conn *conn;
	bool binary;
	char *text;		/* text messages */
	struct proto_bin hdr;	/* binary messages */
	char *data;
	size_t len;
};

static struct sent sent[MAX_SENT];
static size_t nsent;

/* Stands in for server.c: records a text message. */
void conn_send_text(struct conn *c, const char *text)
{
	assert_true(nsent < MAX_SENT);
	sent[nsent].conn = c;
	sent[nsent].binary = false;
	sent[nsent].text = xstrdup(text);
	nsent++;
}

/* Stands in for server.c: how much each connection has waiting. */
static struct conn *full_conn;	/* this one is over the limit */

size_t conn_queued(const struct conn *c)
{
	return c == full_conn ? CONN_QUEUE_MAX + 1 : 0;
}

/* Stands in for the relay's transcript reader: sends nothing, says the
 * listener is caught up, and remembers where it started. */
static uint64_t read_from;

static int read_caught_up(const char *session, struct conn *c,
			  uint64_t *seen, void *arg)
{
	read_from = *seen;
	return 1;
}

/* Stands in for server.c: records a binary message. */
void conn_send_binary(struct conn *c, const struct proto_bin *hdr,
		      const void *data, size_t len)
{
	assert_true(nsent < MAX_SENT);
	sent[nsent].conn = c;
	sent[nsent].binary = true;
	sent[nsent].hdr = *hdr;
	sent[nsent].data = xstrndup(data, len);
	sent[nsent].len = len;
	nsent++;
}

/* Forgets what was recorded. */
static void sent_clear(void)
{
	for (size_t i = 0; i < nsent; i++) {
		free(sent[i].text);
		free(sent[i].data);
	}
	memset(sent, 0, sizeof(sent));
	nsent = 0;
}

/* How many recorded messages went to c. */
static int sent_to(const struct conn *c)
{
	int n = 0;

	for (size_t i = 0; i < nsent; i++)
		n += sent[i].conn == c;
	return n;
}

/* A bus and a few connections (only their addresses matter here). */
struct fixture {
	struct bus *bus;
	struct conn a, b, c, d;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	f->bus = bus_new();
	f->a.id = 1;
	f->b.id = 2;
	f->c.id = 3;
	f->d.id = 4;
	sent_clear();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	bus_free(f->bus);
	sent_clear();
	free(f);
	return 0;
}

/* Registering a machine returns the connection it replaces: none the
 * first time, none when the same connection registers again, the old
 * one when another takes over. */
static void test_machine_set(void **state)
{
	struct fixture *f = *state;

	assert_null(bus_machine_set(f->bus, "m1", &f->a));
	assert_ptr_equal(bus_machine(f->bus, "m1"), &f->a);
	assert_null(bus_machine_set(f->bus, "m1", &f->a));
	assert_ptr_equal(bus_machine(f->bus, "m1"), &f->a);
	assert_ptr_equal(bus_machine_set(f->bus, "m1", &f->b), &f->a);
	assert_ptr_equal(bus_machine(f->bus, "m1"), &f->b);
	assert_ptr_equal(bus_machine_set(f->bus, "m1", &f->a), &f->b);
	assert_ptr_equal(bus_machine(f->bus, "m1"), &f->a);
}

/* Lookups find each machine's own connection, and none for others. */
static void test_machine_lookup(void **state)
{
	struct fixture *f = *state;

	assert_null(bus_machine(f->bus, "m1"));
	assert_null(bus_machine_set(f->bus, "m1", &f->a));
	assert_null(bus_machine_set(f->bus, "m2", &f->b));
	assert_null(bus_machine_set(f->bus, "m10", &f->c));
	assert_ptr_equal(bus_machine(f->bus, "m1"), &f->a);
	assert_ptr_equal(bus_machine(f->bus, "m2"), &f->b);
	assert_ptr_equal(bus_machine(f->bus, "m10"), &f->c);
	assert_null(bus_machine(f->bus, "m"));
	assert_null(bus_machine(f->bus, "m3"));
	assert_null(bus_machine(f->bus, ""));

	/* One connection may serve two ids; replacing one leaves the other. */
	assert_ptr_equal(bus_machine_set(f->bus, "m2", &f->a), &f->b);
	assert_ptr_equal(bus_machine(f->bus, "m1"), &f->a);
	assert_ptr_equal(bus_machine(f->bus, "m2"), &f->a);
	assert_ptr_equal(bus_machine(f->bus, "m10"), &f->c);
}

/* A text published to a session reaches exactly its listeners, once. */
static void test_publish_text(void **state)
{
	struct fixture *f = *state;

	bus_subscribe(f->bus, "s1", &f->a, 0);
	bus_subscribe(f->bus, "s1", &f->b, 0);
	bus_subscribe(f->bus, "s2", &f->c, 0);
	bus_publish_text(f->bus, "s1", "hello s1");
	assert_int_equal(nsent, 2);
	assert_int_equal(sent_to(&f->a), 1);
	assert_int_equal(sent_to(&f->b), 1);
	assert_int_equal(sent_to(&f->c), 0);
	for (size_t i = 0; i < nsent; i++) {
		assert_false(sent[i].binary);
		assert_string_equal(sent[i].text, "hello s1");
	}

	sent_clear();
	bus_publish_text(f->bus, "s2", "hello s2");
	assert_int_equal(nsent, 1);
	assert_ptr_equal(sent[0].conn, &f->c);
	assert_string_equal(sent[0].text, "hello s2");

	sent_clear();
	bus_publish_text(f->bus, "s3", "nobody");
	bus_publish_text(f->bus, "s", "prefix of s1");
	assert_int_equal(nsent, 0);
}

/* Output reaches a listener only once it is caught up, with its header
 * and bytes; a listener whose connection is full falls behind at the last
 * seq it got, and the others keep getting output. */
static void test_publish_output(void **state)
{
	struct fixture *f = *state;
	struct proto_bin hdr = { .kind = 1, .seq = 77, .epoch = 5 };

	bus_subscribe(f->bus, "s1", &f->a, 70);
	bus_subscribe(f->bus, "s1", &f->b, 0);
	bus_subscribe(f->bus, "s2", &f->c, 0);
	assert_true(bus_behind(f->bus, &f->a));
	bus_publish_output(f->bus, "s1", &hdr, "early", 5);
	assert_int_equal(nsent, 0);

	bus_catch_up(f->bus, &f->a, read_caught_up, NULL);
	assert_int_equal(read_from, 70);
	assert_false(bus_behind(f->bus, &f->a));
	bus_catch_up(f->bus, &f->b, read_caught_up, NULL);
	bus_publish_output(f->bus, "s1", &hdr, "bytes", 5);
	assert_int_equal(nsent, 2);
	assert_int_equal(sent_to(&f->c), 0);
	assert_true(sent[0].binary);
	assert_int_equal(sent[0].hdr.kind, 1);
	assert_int_equal(sent[0].hdr.seq, 77);
	assert_int_equal(sent[0].hdr.epoch, 5);
	assert_int_equal(sent[0].len, 5);
	assert_string_equal(sent[0].data, "bytes");

	sent_clear();
	full_conn = &f->a;
	hdr.seq = 78;
	bus_publish_output(f->bus, "s1", &hdr, "more", 4);
	assert_int_equal(sent_to(&f->a), 0);
	assert_int_equal(sent_to(&f->b), 1);
	assert_true(bus_behind(f->bus, &f->a));
	full_conn = NULL;
	bus_catch_up(f->bus, &f->a, read_caught_up, NULL);
	assert_int_equal(read_from, 77);
}

/* Subscribing twice to a session still delivers each message once. */
static void test_subscribe_twice(void **state)
{
	struct fixture *f = *state;

	bus_subscribe(f->bus, "s1", &f->a, 0);
	bus_subscribe(f->bus, "s1", &f->b, 0);
	bus_subscribe(f->bus, "s1", &f->a, 0);
	bus_publish_text(f->bus, "s1", "once");
	assert_int_equal(sent_to(&f->a), 1);
	assert_int_equal(sent_to(&f->b), 1);
	assert_int_equal(nsent, 2);

	/* ... and one unsubscribe is enough to stop it. */
	sent_clear();
	bus_unsubscribe(f->bus, "s1", &f->a);
	bus_publish_text(f->bus, "s1", "after");
	assert_int_equal(sent_to(&f->a), 0);
	assert_int_equal(sent_to(&f->b), 1);
}

/* Unsubscribing stops one connection's messages for one session only. */
static void test_unsubscribe(void **state)
{
	struct fixture *f = *state;

	bus_subscribe(f->bus, "s1", &f->a, 0);
	bus_subscribe(f->bus, "s2", &f->a, 0);
	bus_subscribe(f->bus, "s1", &f->b, 0);
	bus_unsubscribe(f->bus, "s1", &f->a);
	bus_unsubscribe(f->bus, "s1", &f->c);
	bus_unsubscribe(f->bus, "s9", &f->a);

	bus_publish_text(f->bus, "s1", "m1");
	assert_int_equal(nsent, 1);
	assert_ptr_equal(sent[0].conn, &f->b);

	sent_clear();
	bus_publish_text(f->bus, "s2", "m2");
	assert_int_equal(nsent, 1);
	assert_ptr_equal(sent[0].conn, &f->a);

	sent_clear();
	bus_unsubscribe(f->bus, "s1", &f->b);
	bus_unsubscribe(f->bus, "s2", &f->a);
	bus_publish_text(f->bus, "s1", "m3");
	bus_publish_text(f->bus, "s2", "m4");
	assert_int_equal(nsent, 0);
}

/* bus_forget removes a connection from every machine and session, and
 * leaves the other connections' routes alone. */
static void test_forget(void **state)
{
	struct fixture *f = *state;

	assert_null(bus_machine_set(f->bus, "m1", &f->a));
	assert_null(bus_machine_set(f->bus, "m2", &f->a));
	assert_null(bus_machine_set(f->bus, "m3", &f->b));
	bus_subscribe(f->bus, "s1", &f->a, 0);
	bus_subscribe(f->bus, "s2", &f->a, 0);
	bus_subscribe(f->bus, "s1", &f->b, 0);
	bus_subscribe(f->bus, "s2", &f->d, 0);

	bus_forget(f->bus, &f->a);
	bus_forget(f->bus, &f->c);
	assert_null(bus_machine(f->bus, "m1"));
	assert_null(bus_machine(f->bus, "m2"));
	assert_ptr_equal(bus_machine(f->bus, "m3"), &f->b);
	bus_publish_text(f->bus, "s1", "m");
	bus_publish_text(f->bus, "s2", "m");
	assert_int_equal(sent_to(&f->a), 0);
	assert_int_equal(sent_to(&f->b), 1);
	assert_int_equal(sent_to(&f->d), 1);
	assert_int_equal(nsent, 2);

	/* A machine whose connection was forgotten has no one to replace. */
	assert_null(bus_machine_set(f->bus, "m1", &f->c));
	assert_ptr_equal(bus_machine(f->bus, "m1"), &f->c);
}

#define BUS_TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		BUS_TEST(test_machine_set),
		BUS_TEST(test_machine_lookup),
		BUS_TEST(test_publish_text),
		BUS_TEST(test_publish_output),
		BUS_TEST(test_subscribe_twice),
		BUS_TEST(test_unsubscribe),
		BUS_TEST(test_forget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
