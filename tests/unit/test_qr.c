/*
 * test_qr.c: unit tests for common/qr.c. The rendered text is read back
 * into modules, a cell to two rows, and compared with the symbol
 * libqrencode made plus its quiet zone; the symbol itself is checked for
 * its size, its finder patterns, 8-bit mode and level M.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include <cmocka.h>

#include "qr.h"
#include "util.h"

#define QUIET 2
#define COLOURS "\033[97;40m"
#define RESET "\033[0m"

/* A text of n copies of c; the caller frees. */
static char *repeat(char c, size_t n)
{
	char *s = xmalloc(n + 1);

	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* The darkness of one cell's upper (bit 0) and lower (bit 1) module, and
 * its length in bytes in *len. */
static int cell_read(const char *p, size_t *len)
{
	if (*p == ' ') {
		*len = 1;
		return 3;
	}
	*len = 3;
	if (strncmp(p, "\u2588", 3) == 0)
		return 0;
	if (strncmp(p, "\u2584", 3) == 0)
		return 1;
	if (strncmp(p, "\u2580", 3) == 0)
		return 2;
	fail_msg("unexpected cell at \"%.8s\"", p);
	return -1;
}

/* Checks that a line's cells are size columns wide on screen. */
static void check_display_width(const char *cells, size_t len, int size)
{
	char *copy = xstrndup(cells, len);
	wchar_t *wide = xcalloc(len + 1, sizeof(*wide));

	assert_int_equal(mbstowcs(wide, copy, len + 1), size);
	assert_int_equal(wcswidth(wide, len + 1), size);
	free(wide);
	free(copy);
}

/* Reads qr_render's output back into modules, 1 for dark: *rows is twice
 * the number of lines, each line size cells between the colours and the
 * reset. The caller frees. */
static unsigned char *render_read(const char *out, int size, int *rows)
{
	unsigned char *m = NULL;
	const char *p = out, *end;
	size_t len;
	int x, y = 0, dark;

	while (*p != '\0') {
		end = strchr(p, '\n');
		assert_non_null(end);
		assert_true(end - p >= (ptrdiff_t)strlen(COLOURS RESET));
		assert_memory_equal(p, COLOURS, strlen(COLOURS));
		assert_memory_equal(end - strlen(RESET), RESET, strlen(RESET));
		p += strlen(COLOURS);
		check_display_width(p, end - strlen(RESET) - p, size);

		m = xrealloc(m, (size_t)(y + 2) * size);
		for (x = 0; x < size; x++) {
			dark = cell_read(p, &len);
			m[y * size + x] = dark & 1;
			m[(y + 1) * size + x] = dark >> 1;
			p += len;
		}
		assert_ptr_equal(p, end - strlen(RESET));
		p = end + 1;
		y += 2;
	}
	*rows = y;
	return m;
}

/* Renders text and checks the drawing shows exactly its symbol, in a
 * 2-module light margin (2.5 at the bottom, the last line's lower half). */
static void check_render(const char *text)
{
	unsigned char *modules, *drawn;
	char *out;
	int width, size, rows, x, y, want;

	modules = qr_modules(text, &width);
	assert_non_null(modules);
	out = qr_render(text);
	assert_non_null(out);

	size = width + 2 * QUIET;
	drawn = render_read(out, size, &rows);
	assert_int_equal(rows, size + 1);
	for (y = 0; y < rows; y++) {
		for (x = 0; x < size; x++) {
			want = 0;
			if (x >= QUIET && x < QUIET + width &&
			    y >= QUIET && y < QUIET + width)
				want = modules[(y - QUIET) * width + x - QUIET];
			if (drawn[y * size + x] != want)
				fail_msg("module (%d, %d) drawn %d, want %d",
					 x, y, drawn[y * size + x], want);
		}
	}

	free(drawn);
	free(out);
	free(modules);
}

/* Short, pairing-like, non-ASCII and largest-possible texts draw back to
 * their symbols, every line as wide on screen as the code. */
static void test_render_round_trip(void **state)
{
	char *longest = repeat('x', 2331);

	(void)state;
	check_render("hello");
	check_render("baton://pair?relay=relay.example:8443&code=K7QF-M2XD");
	check_render("caf\u00e9 \u2615 \u65e5\u672c");
	check_render(longest);
	free(longest);
}

/* The width of the symbol for a text of n copies of c; fails on error. */
static int width_of(char c, size_t n)
{
	char *text = repeat(c, n);
	unsigned char *modules;
	int width = -1;

	modules = qr_modules(text, &width);
	assert_non_null(modules);
	free(modules);
	free(text);
	return width;
}

/* Widths are 21 + 4k, up to 177. Version 1 at level M holds 14 bytes
 * (L would hold 17, Q 11), and 15 digits would fit version 1 in numeric
 * mode, so a second version for 15 digits shows 8-bit mode. */
static void test_width(void **state)
{
	size_t lengths[] = { 1, 14, 15, 100, 500, 1000, 2331 };
	size_t i;
	int w;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(lengths); i++) {
		w = width_of('a', lengths[i]);
		assert_in_range(w, 21, 177);
		assert_int_equal((w - 21) % 4, 0);
	}
	assert_int_equal(width_of('a', 14), 21);
	assert_int_equal(width_of('a', 15), 25);
	assert_int_equal(width_of('7', 15), 25);
	assert_int_equal(width_of('a', 2331), 177);
}

/* Whether module (x, y) of a finder pattern is dark: its ring, its core,
 * and light in the separator (row and column 7). */
static int finder_dark(int x, int y)
{
	if (x == 7 || y == 7)
		return 0;
	if (x == 0 || x == 6 || y == 0 || y == 6)
		return 1;
	return x >= 2 && x <= 4 && y >= 2 && y <= 4;
}

/* 1 means dark: the three finder patterns read the right way round. */
static void test_modules_finders(void **state)
{
	unsigned char *m;
	int width, x, y, far;

	(void)state;
	m = qr_modules("hello", &width);
	assert_non_null(m);
	far = width - 1;
	for (y = 0; y < 8; y++) {
		for (x = 0; x < 8; x++) {
			assert_int_equal(m[y * width + x], finder_dark(x, y));
			assert_int_equal(m[y * width + far - x],
					 finder_dark(x, y));
			assert_int_equal(m[(far - y) * width + x],
					 finder_dark(x, y));
		}
	}
	free(m);
}

/* More than version 40 holds: libqrencode says ERANGE, qr.c EINVAL. */
static void test_too_long(void **state)
{
	char *over = repeat('x', 2332);
	char *text = repeat('x', 3000);
	int width = -1;

	(void)state;
	errno = 0;
	assert_null(qr_render(text));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(qr_modules(text, &width));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(width, -1);
	errno = 0;
	assert_null(qr_render(over));
	assert_int_equal(errno, EINVAL);
	free(over);
	free(text);
}

/* An empty text is no QR code either. */
static void test_empty(void **state)
{
	int width = -1;

	(void)state;
	errno = 0;
	assert_null(qr_render(""));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(qr_modules("", &width));
	assert_int_equal(errno, EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_round_trip),
		cmocka_unit_test(test_width),
		cmocka_unit_test(test_modules_finders),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_empty),
	};

	/* Display widths are measured as a UTF-8 terminal would. */
	if (setlocale(LC_ALL, "C.UTF-8") == NULL) {
		fprintf(stderr, "test_qr: no C.UTF-8 locale\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
