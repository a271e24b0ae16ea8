/*
 * test_util.c: unit tests for common/util.c (byte buffers, formatted
 * strings, folders, whole-file reads, atomic writes, tree removal and the
 * monotonic clock). File tests run in a fresh folder under $TMPDIR.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "util.h"

/* A fresh temporary folder for one test; teardown removes it. */
static int setup(void **state)
{
	const char *base = getenv("TMPDIR");
	char *dir = xasprintf("%s/baton-util-XXXXXX", base ? base : "/tmp");

	if (mkdtemp(dir) == NULL) {
		free(dir);
		return -1;
	}
	umask(022);
	*state = dir;
	return 0;
}

/* Removes the test's folder with the system's rm -rf, so a broken rm_rf
 * cannot hide its own failure. */
static int teardown(void **state)
{
	char *dir = *state;
	char *cmd = xasprintf("rm -rf '%s'", dir);
	int r = system(cmd);

	free(cmd);
	free(dir);
	return r == 0 ? 0 : -1;
}

/* dir/name; the caller frees. */
static char *join(const char *dir, const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

/* Writes text to path with plain stdio. */
static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* The number of entries in a folder, "." and ".." excluded. */
static int entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* Appended bytes, embedded NULs included, stay in order and terminated. */
static void test_buf_append(void **state)
{
	struct buf b = BUF_INIT;

	buf_append(&b, "ab\0c", 4);
	buf_puts(&b, "de");
	buf_append(&b, "", 0);
	assert_int_equal(b.len, 6);
	assert_memory_equal(b.data, "ab\0cde", 7);
	assert_true(b.cap >= b.len + 1);
	buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
}

/* An empty append to an empty buffer still yields a terminated string. */
static void test_buf_append_nothing(void **state)
{
	struct buf b = BUF_INIT;

	buf_append(&b, NULL, 0);
	assert_non_null(b.data);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	buf_free(&b);
}

/* buf_printf appends formatted text, longer ones included. */
static void test_buf_printf(void **state)
{
	struct buf b = BUF_INIT;
	char *big = xmalloc(5001);

	memset(big, 'x', 5000);
	big[5000] = '\0';
	buf_puts(&b, "n=");
	buf_printf(&b, "%d %s|", 42, "words");
	buf_printf(&b, "%s", big);
	assert_int_equal(b.len, strlen("n=42 words|") + 5000);
	assert_memory_equal(b.data, "n=42 words|", 11);
	assert_string_equal(b.data + 11, big);
	free(big);
	buf_free(&b);
}

/* 100000 small appends keep every byte and grow the buffer by doubling:
 * the capacity changes a few dozen times, not once per append. */
static void test_buf_grow(void **state)
{
	struct buf b = BUF_INIT;
	size_t last_cap = 0;
	int growths = 0;

	for (int i = 0; i < 100000; i++) {
		char piece[8];

		snprintf(piece, sizeof(piece), "%07d", i);
		buf_append(&b, piece, 7);
		if (b.cap != last_cap) {
			growths++;
			last_cap = b.cap;
		}
		assert_true(b.cap >= b.len + 1);
	}
	assert_int_equal(b.len, 700000);
	assert_int_equal(strlen(b.data), 700000);
	for (int i = 0; i < 100000; i += 997) {
		char piece[8];

		snprintf(piece, sizeof(piece), "%07d", i);
		assert_memory_equal(b.data + (size_t)i * 7, piece, 7);
	}
	assert_in_range(growths, 1, 40);

	/* buf_grow alone makes room without changing the contents. */
	buf_grow(&b, 1 << 20);
	assert_true(b.cap >= b.len + (1 << 20) + 1);
	assert_int_equal(b.len, 700000);
	buf_free(&b);
}

/* Detaching hands over the bytes and leaves an empty, reusable buffer. */
static void test_buf_detach(void **state)
{
	struct buf b = BUF_INIT;
	size_t len = 99;
	char *s;

	buf_puts(&b, "hello");
	s = buf_detach(&b, &len);
	assert_string_equal(s, "hello");
	assert_int_equal(len, 5);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	free(s);

	buf_puts(&b, "again");
	s = buf_detach(&b, NULL);
	assert_string_equal(s, "again");
	free(s);
}

/* An empty buffer detaches as "" (allocated), never NULL. */
static void test_buf_detach_empty(void **state)
{
	struct buf b = BUF_INIT;
	size_t len = 99;
	char *s = buf_detach(&b, &len);

	assert_non_null(s);
	assert_string_equal(s, "");
	assert_int_equal(len, 0);
	assert_null(b.data);
	free(s);
}

/* Reset empties the buffer but keeps its memory for reuse. */
static void test_buf_reset(void **state)
{
	struct buf b = BUF_INIT;
	size_t cap;
	char *data;

	buf_reset(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);

	buf_puts(&b, "some text");
	cap = b.cap;
	data = b.data;
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	assert_int_equal(b.cap, cap);
	assert_ptr_equal(b.data, data);
	buf_puts(&b, "new");
	assert_string_equal(b.data, "new");
	assert_int_equal(b.len, 3);
	buf_free(&b);
}

/* xasprintf formats into a fresh string of any length. */
static void test_xasprintf(void **state)
{
	char *s = xasprintf("%s-%d-%05.1f-%c", "a", -7, 2.5, 'z');
	char *empty = xasprintf("%s", "");
	char *long_s = xasprintf("%0*d", 10000, 5);

	assert_string_equal(s, "a--7-002.5-z");
	assert_string_equal(empty, "");
	assert_int_equal(strlen(long_s), 10000);
	assert_int_equal(long_s[9999], '5');
	assert_int_equal(long_s[0], '0');
	free(long_s);
	free(empty);
	free(s);
}

/* mkdir_p creates every missing level with the mode asked for, and
 * succeeds again on a folder that exists. */
static void test_mkdir_p(void **state)
{
	char *dir = *state;
	char *deep = join(dir, "a/b/c/d");
	char *mid = join(dir, "a/b");
	char *slash = join(dir, "a/b/c/d/e/");
	struct stat st;

	assert_int_equal(mkdir_p(deep, 0700), 0);
	assert_int_equal(stat(deep, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(stat(mid, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);

	assert_int_equal(mkdir_p(deep, 0700), 0);
	assert_int_equal(mkdir_p(mid, 0700), 0);
	assert_int_equal(mkdir_p(slash, 0700), 0);
	assert_int_equal(entries(deep), 1);
	free(slash);
	free(mid);
	free(deep);
}

/* A path through a regular file fails with -ENOTDIR and creates nothing;
 * so does a path that names a regular file itself. */
static void test_mkdir_p_through_file(void **state)
{
	char *dir = *state;
	char *file = join(dir, "plain");
	char *under = join(dir, "plain/sub/deeper");

	put(file, "x");
	assert_int_equal(mkdir_p(under, 0700), -ENOTDIR);
	assert_int_equal(mkdir_p(file, 0700), -ENOTDIR);
	assert_int_equal(entries(dir), 1);
	free(under);
	free(file);
}

/* An empty path names nothing to create. */
static void test_mkdir_p_empty(void **state)
{
	assert_int_equal(mkdir_p("", 0700), -ENOENT);
}

/* A whole file comes back NUL-terminated with its length, up to max. */
static void test_file_read_all(void **state)
{
	char *dir = *state;
	char *path = join(dir, "f");
	char *empty = join(dir, "empty");
	char *data = NULL;
	size_t len = 99;
	struct buf big = BUF_INIT;

	for (int i = 0; i < 20000; i++)
		buf_puts(&big, "0123456789");
	assert_int_equal(file_write_atomic(path, big.data, big.len, 0600), 0);

	assert_int_equal(file_read_all(path, big.len, &data, &len), 0);
	assert_int_equal(len, big.len);
	assert_memory_equal(data, big.data, big.len);
	assert_int_equal(data[len], '\0');
	free(data);

	put(empty, "");
	assert_int_equal(file_read_all(empty, 0, &data, &len), 0);
	assert_int_equal(len, 0);
	assert_string_equal(data, "");
	free(data);

	buf_free(&big);
	free(empty);
	free(path);
}

/* One byte over max is -EFBIG, and *out is left alone. */
static void test_file_read_all_limit(void **state)
{
	char *dir = *state;
	char *path = join(dir, "f");
	char *data = NULL;
	size_t len = 0;

	put(path, "0123456789");
	assert_int_equal(file_read_all(path, 9, &data, &len), -EFBIG);
	assert_null(data);
	assert_int_equal(file_read_all(path, 10, &data, &len), 0);
	assert_int_equal(len, 10);
	free(data);
	free(path);
}

/* A missing file is -ENOENT; a folder cannot be read as a file. */
static void test_file_read_all_missing(void **state)
{
	char *dir = *state;
	char *path = join(dir, "nothing-here");
	char *data = NULL;
	size_t len = 0;

	assert_int_equal(file_read_all(path, 100, &data, &len), -ENOENT);
	assert_null(data);
	assert_int_equal(file_read_all(dir, 100, &data, &len), -EISDIR);
	assert_null(data);
	free(path);
}

/* A new file gets exactly the bytes and the mode, and no temporary file
 * stays in the folder. */
static void test_file_write_atomic(void **state)
{
	char *dir = *state;
	char *path = join(dir, "out");
	char *data;
	size_t len;
	struct stat st;

	assert_int_equal(file_write_atomic(path, "a\0b", 3, 0640), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_int_equal(file_read_all(path, 100, &data, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(data, "a\0b", 3);
	free(data);
	assert_int_equal(entries(dir), 1);

	assert_int_equal(file_write_atomic(path, "", 0, 0600), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(entries(dir), 1);
	free(path);
}

/* Replacing swaps in a new file by rename: a reader that opened the old
 * one still sees the old bytes in full, never a truncated or mixed file. */
static void test_file_write_atomic_replaces(void **state)
{
	char *dir = *state;
	char *path = join(dir, "out");
	char old[64], *data;
	struct stat before, after;
	size_t len;
	ssize_t n;
	int fd;

	put(path, "the old contents");
	assert_int_equal(stat(path, &before), 0);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);

	assert_int_equal(file_write_atomic(path, "new", 3, 0600), 0);
	assert_int_equal(stat(path, &after), 0);
	assert_true(before.st_ino != after.st_ino);
	assert_int_equal(after.st_mode & 0777, 0600);
	n = read(fd, old, sizeof(old) - 1);
	assert_int_equal(n, 16);
	old[n] = '\0';
	assert_string_equal(old, "the old contents");
	close(fd);

	assert_int_equal(file_read_all(path, 100, &data, &len), 0);
	assert_string_equal(data, "new");
	free(data);
	assert_int_equal(entries(dir), 1);
	free(path);
}

/* Writing into a missing folder fails with -ENOENT and creates nothing. */
static void test_file_write_atomic_missing_dir(void **state)
{
	char *dir = *state;
	char *path = join(dir, "no/such/file");

	assert_int_equal(file_write_atomic(path, "x", 1, 0600), -ENOENT);
	assert_int_equal(entries(dir), 0);
	free(path);
}

/* Writing over a folder fails, leaves the folder and cleans up its
 * temporary file. */
static void test_file_write_atomic_over_dir(void **state)
{
	char *dir = *state;
	char *sub = join(dir, "sub");
	struct stat st;

	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(file_write_atomic(sub, "x", 1, 0600), -EISDIR);
	assert_int_equal(stat(sub, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(entries(dir), 1);
	free(sub);
}

/* rm_rf removes a nested tree but never follows a link out of it: the
 * folder and file the links point at survive, only the links go. */
static void test_rm_rf(void **state)
{
	char *dir = *state;
	char *tree = join(dir, "tree");
	char *deep = join(dir, "tree/a/b/c");
	char *outside = join(dir, "outside");
	char *precious = join(dir, "outside/precious");
	char *inner = join(dir, "outside/inner");
	char *inner_file = join(dir, "outside/inner/file");
	char *dir_link = join(dir, "tree/a/to-outside");
	char *file_link = join(dir, "tree/a/b/to-precious");
	char *f1 = join(dir, "tree/top");
	char *f2 = join(dir, "tree/a/b/c/leaf");
	char *data;
	size_t len;
	struct stat st;

	assert_int_equal(mkdir_p(deep, 0700), 0);
	assert_int_equal(mkdir_p(inner, 0700), 0);
	put(precious, "keep me");
	put(inner_file, "keep me too");
	put(f1, "1");
	put(f2, "2");
	assert_int_equal(symlink(outside, dir_link), 0);
	assert_int_equal(symlink(precious, file_link), 0);

	assert_int_equal(rm_rf(tree), 0);
	assert_int_equal(lstat(tree, &st), -1);
	assert_int_equal(errno, ENOENT);

	assert_int_equal(file_read_all(precious, 100, &data, &len), 0);
	assert_string_equal(data, "keep me");
	free(data);
	assert_int_equal(file_read_all(inner_file, 100, &data, &len), 0);
	assert_string_equal(data, "keep me too");
	free(data);
	assert_int_equal(entries(outside), 2);
	assert_int_equal(entries(dir), 1);

	free(f2);
	free(f1);
	free(file_link);
	free(dir_link);
	free(inner_file);
	free(inner);
	free(precious);
	free(outside);
	free(deep);
	free(tree);
}

/* rm_rf given a link removes the link, not what it points at; a missing
 * path is already removed; a plain file is unlinked. */
static void test_rm_rf_single(void **state)
{
	char *dir = *state;
	char *target = join(dir, "target");
	char *kept = join(dir, "target/kept");
	char *link = join(dir, "link");
	char *file = join(dir, "file");
	char *missing = join(dir, "missing");
	struct stat st;

	assert_int_equal(mkdir(target, 0700), 0);
	put(kept, "k");
	put(file, "f");
	assert_int_equal(symlink(target, link), 0);

	assert_int_equal(rm_rf(link), 0);
	assert_int_equal(lstat(link, &st), -1);
	assert_int_equal(stat(kept, &st), 0);

	assert_int_equal(rm_rf(file), 0);
	assert_int_equal(lstat(file, &st), -1);
	assert_int_equal(rm_rf(missing), 0);
	assert_int_equal(entries(dir), 1);

	free(missing);
	free(file);
	free(link);
	free(kept);
	free(target);
}

/* Milliseconds of the monotonic clock, read with clock_gettime. */
static uint64_t monotonic_ms(void)
{
	struct timespec ts;

	assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* now_ms is the monotonic clock in milliseconds: it lies between two
 * readings of that clock, never goes back, and a 120 ms sleep shows as at
 * least 120 (and, even on a busy machine, well under ten seconds). */
static void test_now_ms(void **state)
{
	struct timespec pause = { 0, 120 * 1000 * 1000 };
	uint64_t before = monotonic_ms(), t = now_ms(), after = monotonic_ms();
	uint64_t prev, start, end;

	assert_in_range(t, before, after);
	prev = t;
	for (int i = 0; i < 100000; i++) {
		t = now_ms();
		assert_true(t >= prev);
		prev = t;
	}
	start = now_ms();
	assert_int_equal(nanosleep(&pause, NULL), 0);
	end = now_ms();
	assert_in_range(end - start, 120, 10000);
}

/* Lengths of time read the way people say them, at each unit's edge. */
static void test_duration_format(void **state)
{
	static const struct {
		int64_t seconds;
		const char *want;
	} cases[] = {
		{ -5, "0 s" }, { 0, "0 s" }, { 59, "59 s" }, { 60, "1 min" },
		{ 61, "1 min 1 s" }, { 3599, "59 min 59 s" },
		{ 3600, "1 h" }, { 3720, "1 h 2 min" }, { 3779, "1 h 2 min" },
		{ 90000, "25 h" },
	};
	char buf[32];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		assert_string_equal(duration_format(cases[i].seconds, buf,
						    sizeof(buf)),
				    cases[i].want);
}

#define FS_TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_append),
		cmocka_unit_test(test_buf_append_nothing),
		cmocka_unit_test(test_buf_printf),
		cmocka_unit_test(test_buf_grow),
		cmocka_unit_test(test_buf_detach),
		cmocka_unit_test(test_buf_detach_empty),
		cmocka_unit_test(test_buf_reset),
		cmocka_unit_test(test_xasprintf),
		FS_TEST(test_mkdir_p),
		FS_TEST(test_mkdir_p_through_file),
		cmocka_unit_test(test_mkdir_p_empty),
		FS_TEST(test_file_read_all),
		FS_TEST(test_file_read_all_limit),
		FS_TEST(test_file_read_all_missing),
		FS_TEST(test_file_write_atomic),
		FS_TEST(test_file_write_atomic_replaces),
		FS_TEST(test_file_write_atomic_missing_dir),
		FS_TEST(test_file_write_atomic_over_dir),
		FS_TEST(test_rm_rf),
		FS_TEST(test_rm_rf_single),
		cmocka_unit_test(test_now_ms),
		cmocka_unit_test(test_duration_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
