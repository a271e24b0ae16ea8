/*
 * test_outbox.c: output kept until acknowledged, in memory and in the
 * spill file; resent in order after a rewind; forgotten once acked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outbox.h"

static char spill_path[256];

static int setup(void **state)
{
	snprintf(spill_path, sizeof(spill_path), "%s/outbox-test-%d.spill",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
	unlink(spill_path);
	return 0;
}

static int teardown(void **state)
{
	unlink(spill_path);
	return 0;
}

/* Pushes chunk `seq` of session `sid` holding `len` bytes of its seq. */
static int push(struct outbox *o, uint8_t sid, uint64_t seq, size_t len)
{
	struct proto_bin hdr = { .kind = PROTO_BIN_OUTPUT, .seq = seq };
	uint8_t *data = malloc(len);
	int e;

	memset(hdr.session, sid, 16);
	memset(data, (int)(seq & 0xff), len);
	e = outbox_push(o, &hdr, data, len);
	free(data);
	return e;
}

/* Takes the next chunk and checks its session, seq and bytes. */
static void expect_next(struct outbox *o, uint8_t sid, uint64_t seq,
			size_t len)
{
	struct proto_bin hdr;
	struct buf data = BUF_INIT;

	assert_int_equal(outbox_next(o, &hdr, &data), 0);
	assert_int_equal(hdr.session[0], sid);
	assert_int_equal(hdr.seq, seq);
	assert_int_equal(data.len, len);
	for (size_t i = 0; i < len; i++)
		assert_int_equal((uint8_t)data.data[i], seq & 0xff);
	buf_free(&data);
}

/* Chunks come out in the order they went in, once per connection. */
static void test_order_and_rewind(void **state)
{
	struct outbox *o = outbox_new(spill_path, 1 << 20, 1 << 20);
	struct proto_bin hdr;
	struct buf data = BUF_INIT;

	assert_int_equal(push(o, 1, 1, 10), 0);
	assert_int_equal(push(o, 2, 1, 20), 0);
	assert_int_equal(push(o, 1, 2, 30), 0);
	expect_next(o, 1, 1, 10);
	expect_next(o, 2, 1, 20);
	assert_int_equal(outbox_unsent(o), 1);
	expect_next(o, 1, 2, 30);
	assert_int_equal(outbox_next(o, &hdr, &data), -ENOENT);

	/* A new connection sends everything not acknowledged again. */
	outbox_rewind(o);
	assert_int_equal(outbox_unsent(o), 3);
	expect_next(o, 1, 1, 10);
	buf_free(&data);
	outbox_free(o);
}

/* An ack forgets that session's chunks up to its seq, and no others. */
static void test_ack(void **state)
{
	struct outbox *o = outbox_new(spill_path, 1 << 20, 1 << 20);
	uint8_t one[16], two[16];

	memset(one, 1, 16);
	memset(two, 2, 16);
	for (uint64_t seq = 1; seq <= 5; seq++) {
		push(o, 1, seq, 8);
		push(o, 2, seq, 8);
	}
	expect_next(o, 1, 1, 8);
	outbox_ack(o, one, 3);
	assert_int_equal(outbox_count(o), 7);
	assert_int_equal(outbox_memory(o), 7 * 8);
	/* the unsent count only lost the two unsent chunks acked */
	assert_int_equal(outbox_unsent(o), 7);
	expect_next(o, 2, 1, 8);
	outbox_ack(o, two, UINT64_MAX);
	outbox_rewind(o);
	expect_next(o, 1, 4, 8);
	expect_next(o, 1, 5, 8);
	assert_int_equal(outbox_unsent(o), 0);
	outbox_ack(o, one, 5);
	assert_int_equal(outbox_count(o), 0);
	outbox_free(o);
}

/* Past the memory limit chunks go to the spill file and read back. */
static void test_spill(void **state)
{
	struct outbox *o = outbox_new(spill_path, 100, 1 << 20);
	uint8_t one[16];
	struct stat st;

	memset(one, 1, 16);
	for (uint64_t seq = 1; seq <= 10; seq++)
		assert_int_equal(push(o, 1, seq, 40), 0);
	assert_int_equal(outbox_memory(o), 80);
	assert_int_equal(outbox_spilled(o), 8 * 40);
	for (uint64_t seq = 1; seq <= 10; seq++)
		expect_next(o, 1, seq, 40);

	/* Once everything is acknowledged the file is emptied. */
	outbox_ack(o, one, 10);
	assert_int_equal(stat(spill_path, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(outbox_spilled(o), 0);
	outbox_free(o);
	assert_int_not_equal(access(spill_path, F_OK), 0);
}

/* Over the disk limit the chunk is still kept, and the caller is told. */
static void test_full(void **state)
{
	struct outbox *o = outbox_new(spill_path, 10, 50);

	assert_int_equal(push(o, 1, 1, 10), 0);
	assert_int_equal(push(o, 1, 2, 40), 0);
	assert_int_equal(push(o, 1, 3, 40), -ENOSPC);
	assert_int_equal(outbox_count(o), 3);
	expect_next(o, 1, 1, 10);
	expect_next(o, 1, 2, 40);
	expect_next(o, 1, 3, 40);
	outbox_free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_order_and_rewind, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
