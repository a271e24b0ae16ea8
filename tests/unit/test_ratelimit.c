/*
 * test_ratelimit.c: unit tests for relay/ratelimit.c (keyed token buckets):
 * bursts, refill over a fake clock, independent and copied keys, the bound
 * on tracked keys, which key is evicted under a flood, and no limit at all.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ratelimit.h"

/* An arbitrary start for the fake monotonic clock. */
#define T0 1000000

/* Takes a token for KEY at NOW and checks the answer and the retry time. */
static void expect_take(struct ratelimit *rl, const char *key, uint64_t now,
			bool allowed, uint64_t retry)
{
	uint64_t got = 12345;

	assert_int_equal(ratelimit_take(rl, key, now, &got), allowed);
	assert_int_equal(got, retry);
}

/* A burst is allowed in full, then refused with the time to one token. */
static void test_burst(void **state)
{
	struct ratelimit *rl = ratelimit_new(10, 3, 16);

	assert_non_null(rl);
	expect_take(rl, "10.0.0.1", T0, true, 0);
	expect_take(rl, "10.0.0.1", T0, true, 0);
	expect_take(rl, "10.0.0.1", T0, true, 0);
	expect_take(rl, "10.0.0.1", T0, false, 100);
	expect_take(rl, "10.0.0.1", T0 + 40, false, 60);
	assert_false(ratelimit_take(rl, "10.0.0.1", T0 + 40, NULL));
	assert_int_equal(ratelimit_size(rl), 1);
	ratelimit_free(rl);
}

/* Tokens come back at the rate, and no more than the burst accumulates. */
static void test_refill(void **state)
{
	struct ratelimit *rl = ratelimit_new(10, 3, 16);
	int i;

	for (i = 0; i < 3; i++)
		expect_take(rl, "k", T0, true, 0);
	expect_take(rl, "k", T0 + 99, false, 1);
	expect_take(rl, "k", T0 + 100, true, 0);
	expect_take(rl, "k", T0 + 100, false, 100);
	expect_take(rl, "k", T0 + 250, true, 0);
	expect_take(rl, "k", T0 + 250, false, 50);

	/* A long idle spell refills to the burst, not beyond. */
	for (i = 0; i < 3; i++)
		expect_take(rl, "k", T0 + 3600000, true, 0);
	expect_take(rl, "k", T0 + 3600000, false, 100);
	ratelimit_free(rl);
}

/* Rates that are not a whole number of milliseconds per token round the
 * retry time up, and a token is there when it says. */
static void test_fractional_rate(void **state)
{
	struct ratelimit *rl = ratelimit_new(3, 1, 4);
	struct ratelimit *slow = ratelimit_new(0.5, 1, 4);

	expect_take(rl, "k", T0, true, 0);
	expect_take(rl, "k", T0, false, 334);
	expect_take(rl, "k", T0 + 333, false, 1);
	expect_take(rl, "k", T0 + 334, true, 0);

	expect_take(slow, "k", T0, true, 0);
	expect_take(slow, "k", T0 + 1, false, 1999);
	expect_take(slow, "k", T0 + 1999, false, 1);
	expect_take(slow, "k", T0 + 2000, true, 0);
	ratelimit_free(rl);
	ratelimit_free(slow);
}

/* One key running out leaves the others alone. */
static void test_independent_keys(void **state)
{
	struct ratelimit *rl = ratelimit_new(1, 2, 16);

	expect_take(rl, "a", T0, true, 0);
	expect_take(rl, "a", T0, true, 0);
	expect_take(rl, "a", T0, false, 1000);
	expect_take(rl, "b", T0, true, 0);
	expect_take(rl, "b", T0, true, 0);
	expect_take(rl, "b", T0, false, 1000);
	expect_take(rl, "c", T0 + 500, true, 0);
	expect_take(rl, "a", T0 + 500, false, 500);
	assert_int_equal(ratelimit_size(rl), 3);
	ratelimit_free(rl);
}

/* Keys are whole strings, compared in full and copied. */
static void test_long_keys_copied(void **state)
{
	struct ratelimit *rl = ratelimit_new(1, 1, 16);
	char key[400];

	memset(key, 'x', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	expect_take(rl, key, T0, true, 0);
	key[sizeof(key) - 2] = 'y';
	expect_take(rl, key, T0, true, 0);
	expect_take(rl, key, T0, false, 1000);
	key[sizeof(key) - 2] = 'x';
	expect_take(rl, key, T0, false, 1000);

	/* The limiter kept its own copies, not the caller's buffer. */
	memset(key, 0, sizeof(key));
	expect_take(rl, key, T0, true, 0);
	expect_take(rl, "", T0, false, 1000);
	memset(key, 'x', sizeof(key) - 1);
	expect_take(rl, key, T0 + 500, false, 500);
	assert_int_equal(ratelimit_size(rl), 3);
	ratelimit_free(rl);
}

/* 100,000 distinct keys never grow the table past its bound, and it still
 * tracks and limits the keys it holds. */
static void test_bounded(void **state)
{
	struct ratelimit *rl = ratelimit_new(1, 2, 1000);
	char key[32];
	unsigned i;

	for (i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "10.%u.%u.%u", i >> 16,
			 (i >> 8) & 0xff, i & 0xff);
		expect_take(rl, key, T0 + i / 100, true, 0);
		assert_true(ratelimit_size(rl) <= 1000);
	}
	assert_int_equal(ratelimit_size(rl), 1000);

	/* The newest key (taken at T0 + 999) is still tracked with one token
	 * left, and so is one of the last thousand (taken at T0 + 995). */
	expect_take(rl, key, T0 + 999, true, 0);
	expect_take(rl, key, T0 + 999, false, 1000);
	snprintf(key, sizeof(key), "10.%u.%u.%u", 99500 >> 16,
		 (99500 >> 8) & 0xff, 99500 & 0xff);
	expect_take(rl, key, T0 + 999, true, 0);
	expect_take(rl, key, T0 + 999, false, 996);
	assert_int_equal(ratelimit_size(rl), 1000);
	ratelimit_free(rl);
}

/* A key out of tokens stays limited while ten times the table's size in
 * new keys arrive, one attempt each (the guarantee in ratelimit.h). */
static void test_flood_keeps_limited_key(void **state)
{
	struct ratelimit *rl = ratelimit_new(1, 5, 64);
	char key[32];
	int i;

	for (i = 0; i < 5; i++)
		expect_take(rl, "victim", T0, true, 0);
	expect_take(rl, "victim", T0, false, 1000);

	for (i = 0; i < 640; i++) {
		snprintf(key, sizeof(key), "flood-%d", i);
		expect_take(rl, key, T0 + i, true, 0);
	}
	assert_int_equal(ratelimit_size(rl), 64);

	expect_take(rl, "victim", T0 + 700, false, 300);
	expect_take(rl, "victim", T0 + 1000, true, 0);
	expect_take(rl, "victim", T0 + 1000, false, 1000);
	ratelimit_free(rl);
}

/* A refilled bucket goes before a partly empty one used less recently. */
static void test_evicts_fullest(void **state)
{
	struct ratelimit *rl = ratelimit_new(1, 2, 2);

	expect_take(rl, "old", T0, true, 0);
	expect_take(rl, "old", T0, true, 0);
	expect_take(rl, "recent", T0 + 500, true, 0);

	/* At T0 + 1600 "old" holds 1.6 tokens and "recent" a full 2. */
	expect_take(rl, "new", T0 + 1600, true, 0);
	assert_int_equal(ratelimit_size(rl), 2);
	expect_take(rl, "old", T0 + 1600, true, 0);
	expect_take(rl, "old", T0 + 1600, false, 400);
	ratelimit_free(rl);
}

/* A rate of 0 or below never refuses and tracks nothing. */
static void test_unlimited(void **state)
{
	struct ratelimit *zero = ratelimit_new(0, 1, 1);
	struct ratelimit *negative = ratelimit_new(-1, 1, 1);
	int i;

	assert_non_null(zero);
	assert_non_null(negative);
	for (i = 0; i < 1000; i++) {
		expect_take(zero, "k", T0, true, 0);
		expect_take(negative, i % 2 ? "a" : "b", T0, true, 0);
	}
	assert_int_equal(ratelimit_size(zero), 0);
	assert_int_equal(ratelimit_size(negative), 0);
	ratelimit_free(zero);
	ratelimit_free(negative);
	ratelimit_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst),
		cmocka_unit_test(test_refill),
		cmocka_unit_test(test_fractional_rate),
		cmocka_unit_test(test_independent_keys),
		cmocka_unit_test(test_long_keys_copied),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_flood_keeps_limited_key),
		cmocka_unit_test(test_evicts_fullest),
		cmocka_unit_test(test_unlimited),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
