/*
 * test_secrets.c: unit tests for common/secrets.c (the at-rest key file,
 * encryption at rest bound to its row, boxes sealed to a machine's key,
 * and the streaming scrubber against every way of cutting its input).
 * Key file tests run in a fresh folder under $TMPDIR.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "secrets.h"
#include "util.h"

/* A text holding values whole, back to back, overlapping, cut short, and
 * a value's first bytes at its very end. */
static const char *const sample_values[] = {
	"TOKEN-ab12", "pass-word-99", "word", "12TOK",
};
static const char sample_text[] =
	"pre TOKEN-ab12 mid TOKEN-ab12TOKEN-ab12 x pass-word-99 "
	"TOKEN-ab1 end pass";
static const char sample_scrubbed[] =
	"pre [redacted] mid [redacted] x [redacted] TOKEN-ab1 end pass";

/* A fresh temporary folder for one test; teardown removes it. */
static int setup(void **state)
{
	const char *base = getenv("TMPDIR");
	char *dir = xasprintf("%s/baton-secrets-XXXXXX", base ? base : "/tmp");

	if (mkdtemp(dir) == NULL) {
		free(dir);
		return -1;
	}
	umask(022);
	*state = dir;
	return 0;
}

/* Removes the test's folder. */
static int teardown(void **state)
{
	char *dir = *state;
	char *cmd = xasprintf("rm -rf '%s'", dir);
	int r = system(cmd);

	free(cmd);
	free(dir);
	return r == 0 ? 0 : -1;
}

/* Writes len bytes to path and gives it mode. */
static void put(const char *path, const void *data, size_t len, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

/* A scrubber holding the sample's values. */
static struct scrub *sample_scrub(void)
{
	struct scrub *s = scrub_new();

	for (size_t i = 0; i < ARRAY_SIZE(sample_values); i++)
		scrub_add(s, sample_values[i]);
	return s;
}

/* Feeds text to s cut at each of the n offsets in cuts (ascending), then
 * flushes; returns everything released (the caller frees). */
static char *feed_cut(struct scrub *s, const char *text, const size_t *cuts,
		      size_t n)
{
	struct buf out = BUF_INIT;
	size_t len = strlen(text), from = 0;

	for (size_t i = 0; i <= n; i++) {
		size_t to = i < n ? cuts[i] : len;

		scrub_feed(s, text + from, to - from, &out);
		from = to;
	}
	scrub_flush(s, &out);
	return buf_detach(&out, NULL);
}

/* The scrubber's contract written the slow way: every byte of every
 * occurrence hidden, each run of hidden bytes one mark. */
static char *reference_scrub(const char *const *values, size_t n,
			     const char *text)
{
	size_t len = strlen(text);
	unsigned char *hidden = xcalloc(len + 1, 1);
	struct buf out = BUF_INIT;

	for (size_t v = 0; v < n; v++) {
		size_t vlen = strlen(values[v]);

		if (vlen < 4)
			continue;
		for (size_t at = 0; at + vlen <= len; at++)
			if (!memcmp(text + at, values[v], vlen))
				memset(hidden + at, 1, vlen);
	}
	for (size_t i = 0; i < len; i++) {
		if (!hidden[i])
			buf_append(&out, text + i, 1);
		else if (i == 0 || !hidden[i - 1])
			buf_puts(&out, SECRETS_MARK);
	}
	free(hidden);
	return buf_detach(&out, NULL);
}

/* A missing key file is made: 32 random bytes, mode 0600, read back the
 * same the next time. */
static void test_key_create(void **state)
{
	char *path = xasprintf("%s/at-rest.key", (char *)*state);
	unsigned char key[SECRETS_KEY_BYTES], again[SECRETS_KEY_BYTES];
	unsigned char zero[SECRETS_KEY_BYTES] = { 0 };
	char *cause = NULL;
	struct stat st;

	assert_int_equal(secrets_key_load(path, key, &cause), 0);
	assert_null(cause);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, SECRETS_KEY_BYTES);
	assert_memory_not_equal(key, zero, sizeof(key));

	assert_int_equal(secrets_key_load(path, again, &cause), 0);
	assert_memory_equal(key, again, sizeof(key));
	free(path);
}

/* A key file others could read or write is refused with the command that
 * mends it; one only its owner can use loads. */
static void test_key_mode(void **state)
{
	char *path = xasprintf("%s/at-rest.key", (char *)*state);
	char *fix = xasprintf("chmod 600 %s", path);
	unsigned char bytes[SECRETS_KEY_BYTES], key[SECRETS_KEY_BYTES];
	static const mode_t bad[] = { 0644, 0604, 0640, 0620, 0602, 0666 };
	char *cause = NULL;

	memset(bytes, 0x5a, sizeof(bytes));
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		put(path, bytes, sizeof(bytes), bad[i]);
		assert_int_equal(secrets_key_load(path, key, &cause), -EPERM);
		assert_non_null(cause);
		assert_non_null(strstr(cause, fix));
		free(cause);
		cause = NULL;
	}

	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(secrets_key_load(path, key, &cause), 0);
	assert_null(cause);
	assert_memory_equal(key, bytes, sizeof(key));
	free(fix);
	free(path);
}

/* A key file of the wrong size or kind is refused, and kept as it is. */
static void test_key_wrong_file(void **state)
{
	char *path = xasprintf("%s/at-rest.key", (char *)*state);
	unsigned char bytes[SECRETS_KEY_BYTES + 1], key[SECRETS_KEY_BYTES];
	static const size_t sizes[] = { 0, SECRETS_KEY_BYTES - 1,
					SECRETS_KEY_BYTES + 1 };
	char *cause = NULL;
	struct stat st;

	memset(bytes, 0x11, sizeof(bytes));
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		put(path, bytes, sizes[i], 0600);
		assert_int_equal(secrets_key_load(path, key, &cause), -EINVAL);
		assert_non_null(cause);
		assert_non_null(strstr(cause, path));
		free(cause);
		cause = NULL;
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_size, sizes[i]);
	}
	free(path);

	path = xasprintf("%s/folder.key", (char *)*state);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(secrets_key_load(path, key, &cause), -EINVAL);
	assert_non_null(cause);
	free(cause);
	free(path);
}

/* A key file in a folder that does not exist is an error with a cause. */
static void test_key_no_folder(void **state)
{
	char *path = xasprintf("%s/missing/at-rest.key", (char *)*state);
	unsigned char key[SECRETS_KEY_BYTES];
	char *cause = NULL;

	assert_int_equal(secrets_key_load(path, key, &cause), -ENOENT);
	assert_non_null(cause);
	assert_non_null(strstr(cause, path));
	free(cause);
	free(path);
}

/* A value sealed at rest opens with its key and ad, NUL-terminated; two
 * seals of one value differ (a fresh nonce each). */
static void test_at_rest_round_trip(void **state)
{
	static const char ad[] = "alice/ws-1/GITHUB_TOKEN";
	static const char secret[] = "ghp_0123456789abcdef";
	unsigned char key[SECRETS_KEY_BYTES];
	unsigned char *blob, *blob2, *value;
	size_t blob_len, blob2_len, len;

	(void)state;
	randombytes_buf(key, sizeof(key));
	assert_int_equal(secrets_seal_at_rest(key, ad, secret, strlen(secret),
					      &blob, &blob_len), 0);
	assert_int_equal(blob_len, strlen(secret) +
			 crypto_aead_xchacha20poly1305_ietf_NPUBBYTES +
			 crypto_aead_xchacha20poly1305_ietf_ABYTES);
	assert_int_equal(secrets_open_at_rest(key, ad, blob, blob_len, &value,
					      &len), 0);
	assert_int_equal(len, strlen(secret));
	assert_string_equal((char *)value, secret);
	free(value);

	assert_int_equal(secrets_seal_at_rest(key, ad, secret, strlen(secret),
					      &blob2, &blob2_len), 0);
	assert_int_equal(blob2_len, blob_len);
	assert_memory_not_equal(blob, blob2, blob_len);
	free(blob2);
	free(blob);

	assert_int_equal(secrets_seal_at_rest(key, ad, "", 0, &blob,
					      &blob_len), 0);
	assert_int_equal(secrets_open_at_rest(key, ad, blob, blob_len, &value,
					      &len), 0);
	assert_int_equal(len, 0);
	assert_string_equal((char *)value, "");
	free(value);
	free(blob);
}

/* Any byte of the blob changed, or the blob cut short, fails to open. */
static void test_at_rest_tampered(void **state)
{
	static const char ad[] = "alice/ws-1/NPM_TOKEN";
	unsigned char key[SECRETS_KEY_BYTES];
	unsigned char *blob, *value = (unsigned char *)"untouched";
	size_t blob_len, len = 99;

	(void)state;
	randombytes_buf(key, sizeof(key));
	assert_int_equal(secrets_seal_at_rest(key, ad, "npm_secret", 10, &blob,
					      &blob_len), 0);
	for (size_t i = 0; i < blob_len; i++) {
		blob[i] ^= 0x01;
		assert_int_equal(secrets_open_at_rest(key, ad, blob, blob_len,
						      &value, &len), -EBADMSG);
		assert_null(value);
		assert_int_equal(len, 0);
		blob[i] ^= 0x01;
	}
	for (size_t cut = 0; cut < blob_len; cut++)
		assert_int_equal(secrets_open_at_rest(key, ad, blob, cut,
						      &value, &len), -EBADMSG);
	free(blob);
}

/* A blob opens for its own row only, and with its own key only. */
static void test_at_rest_wrong_ad(void **state)
{
	unsigned char key[SECRETS_KEY_BYTES], other[SECRETS_KEY_BYTES];
	unsigned char *blob, *value;
	size_t blob_len, len;

	(void)state;
	randombytes_buf(key, sizeof(key));
	randombytes_buf(other, sizeof(other));
	assert_int_equal(secrets_seal_at_rest(key, "alice/ws-1/TOKEN", "tok",
					      3, &blob, &blob_len), 0);
	assert_int_equal(secrets_open_at_rest(key, "alice/ws-2/TOKEN", blob,
					      blob_len, &value, &len),
			 -EBADMSG);
	assert_int_equal(secrets_open_at_rest(key, "bob/ws-1/TOKEN", blob,
					      blob_len, &value, &len),
			 -EBADMSG);
	assert_int_equal(secrets_open_at_rest(key, "", blob, blob_len, &value,
					      &len), -EBADMSG);
	assert_int_equal(secrets_open_at_rest(other, "alice/ws-1/TOKEN", blob,
					      blob_len, &value, &len),
			 -EBADMSG);
	assert_int_equal(secrets_open_at_rest(key, "alice/ws-1/TOKEN", blob,
					      blob_len, &value, &len), 0);
	assert_string_equal((char *)value, "tok");
	free(value);
	free(blob);
}

/* A box sealed to a machine's key opens with that machine's secret key
 * only, and not once changed or cut short. */
static void test_seal_round_trip(void **state)
{
	static const char msg[] = "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI";
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char sk[crypto_sign_SECRETKEYBYTES];
	unsigned char pk2[crypto_sign_PUBLICKEYBYTES];
	unsigned char sk2[crypto_sign_SECRETKEYBYTES];
	unsigned char *sealed, *out;
	size_t sealed_len, out_len;

	(void)state;
	crypto_sign_keypair(pk, sk);
	crypto_sign_keypair(pk2, sk2);
	assert_int_equal(secrets_seal_to(pk, msg, strlen(msg), &sealed,
					 &sealed_len), 0);
	assert_int_equal(sealed_len, strlen(msg) + crypto_box_SEALBYTES);
	assert_int_equal(secrets_open_from(pk, sk, sealed, sealed_len, &out,
					   &out_len), 0);
	assert_int_equal(out_len, strlen(msg));
	assert_string_equal((char *)out, msg);
	free(out);

	assert_int_equal(secrets_open_from(pk2, sk2, sealed, sealed_len, &out,
					   &out_len), -EBADMSG);
	assert_null(out);
	assert_int_equal(secrets_open_from(pk, sk2, sealed, sealed_len, &out,
					   &out_len), -EBADMSG);
	sealed[sealed_len - 1] ^= 0x80;
	assert_int_equal(secrets_open_from(pk, sk, sealed, sealed_len, &out,
					   &out_len), -EBADMSG);
	sealed[sealed_len - 1] ^= 0x80;
	assert_int_equal(secrets_open_from(pk, sk, sealed,
					   crypto_box_SEALBYTES - 1, &out,
					   &out_len), -EBADMSG);
	free(sealed);
}

/* A public key that is no point of the curve, or one of small order, is
 * refused both ways. */
static void test_seal_bad_key(void **state)
{
	unsigned char bad[crypto_sign_PUBLICKEYBYTES];
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char sk[crypto_sign_SECRETKEYBYTES];
	unsigned char *out = (unsigned char *)"untouched";
	size_t out_len = 99;

	(void)state;
	crypto_sign_keypair(pk, sk);
	memset(bad, 0, sizeof(bad));
	assert_int_equal(secrets_seal_to(bad, "x", 1, &out, &out_len),
			 -EINVAL);
	assert_null(out);
	assert_int_equal(out_len, 0);
	memset(bad, 0xff, sizeof(bad));
	assert_int_equal(secrets_seal_to(bad, "x", 1, &out, &out_len),
			 -EINVAL);
	assert_int_equal(secrets_open_from(bad, sk, (unsigned char *)"x", 1,
					   &out, &out_len), -EINVAL);
}

/* Values too short, NULL or already there are not registered. */
static void test_scrub_add(void **state)
{
	struct scrub *s = scrub_new();
	char *out;

	(void)state;
	assert_int_equal(scrub_count(s), 0);
	scrub_add(s, NULL);
	scrub_add(s, "");
	scrub_add(s, "abc");
	assert_int_equal(scrub_count(s), 0);
	scrub_add(s, "abcd");
	scrub_add(s, "abcd");
	scrub_add(s, "abcde");
	assert_int_equal(scrub_count(s), 2);

	out = scrub_string(s, "abc ab abcd abcdef");

	assert_string_equal(out, "abc ab [redacted] [redacted]f");
	free(out);
	scrub_free(s);
}

/* With no values the bytes pass as fed, none held back. */
static void test_scrub_pass_through(void **state)
{
	static const char text[] = "plain \0bytes\x1b[0m";
	struct scrub *s = scrub_new();
	struct buf out = BUF_INIT;

	(void)state;
	for (size_t i = 0; i < sizeof(text); i++) {
		scrub_feed(s, text + i, 1, &out);
		assert_int_equal(out.len, i + 1);
	}
	assert_memory_equal(out.data, text, sizeof(text));
	scrub_flush(s, &out);
	assert_int_equal(out.len, sizeof(text));
	buf_free(&out);
	scrub_free(s);
}

/* One-shot replacement: whole values, the longer of two at one place,
 * overlapping and adjacent values as one mark, and marks never searched
 * (a value inside "[redacted]" is left alone). */
static void test_scrub_string(void **state)
{
	static const struct {
		const char *values[3];
		const char *text;
		const char *want;
	} cases[] = {
		{ { "SECRET" }, "a SECRET b", "a [redacted] b" },
		{ { "SECRET" }, "SECRETSECRET", "[redacted]" },
		{ { "SECRET" }, "SECRET SECRET", "[redacted] [redacted]" },
		{ { "SECRET" }, "SECRE", "SECRE" },
		{ { "tokn", "tokn-long" }, "x tokn-long y tokn-lon",
		  "x [redacted] y [redacted]-lon" },
		{ { "abcd1234", "1234wxyz" }, "abcd1234wxyz!",
		  "[redacted]!" },
		{ { "SECRET", "dact" }, "a SECRET b", "a [redacted] b" },
		{ { "aaaa" }, "aaaaaaa b aaa", "[redacted] b aaa" },
	};
	struct scrub *s;
	char *out;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		s = scrub_new();
		for (size_t v = 0; v < 3 && cases[i].values[v]; v++)
			scrub_add(s, cases[i].values[v]);
		out = scrub_string(s, cases[i].text);
		assert_string_equal(out, cases[i].want);
		free(out);
		scrub_free(s);
	}

	s = sample_scrub();
	out = scrub_string(s, sample_text);

	assert_string_equal(out, sample_scrubbed);
	free(out);
	scrub_free(s);
}

/* The sample cut once at every offset, twice at every pair of offsets,
 * and fed byte by byte gives what scrub_string gives for it whole. */
static void test_scrub_every_split(void **state)
{
	size_t len = strlen(sample_text);
	size_t cuts[ARRAY_SIZE(sample_text)];
	struct scrub *s;
	char *out;

	(void)state;
	for (size_t i = 0; i <= len; i++) {
		s = sample_scrub();
		out = feed_cut(s, sample_text, &i, 1);
		assert_string_equal(out, sample_scrubbed);
		free(out);
		scrub_free(s);
	}
	for (size_t i = 0; i <= len; i++) {
		for (size_t j = i; j <= len; j++) {
			size_t two[2] = { i, j };

			s = sample_scrub();
			out = feed_cut(s, sample_text, two, 2);
			assert_string_equal(out, sample_scrubbed);
			free(out);
			scrub_free(s);
		}
	}

	for (size_t i = 0; i < len; i++)
		cuts[i] = i + 1;
	s = sample_scrub();
	out = feed_cut(s, sample_text, cuts, len - 1);
	assert_string_equal(out, sample_scrubbed);
	free(out);
	scrub_free(s);
}

/* Bytes that cannot begin a value are released at once; the first bytes
 * of a value are held (at most the longest value less one) until the rest
 * shows whether they are one. */
static void test_scrub_hold_back(void **state)
{
	struct scrub *s = scrub_new();
	struct buf out = BUF_INIT;

	(void)state;
	scrub_add(s, "SECRET12");
	scrub_add(s, "ABCD");
	scrub_feed(s, "hello ", 6, &out);
	assert_string_equal(out.data, "hello ");
	scrub_feed(s, "SECRET1", 7, &out);
	assert_string_equal(out.data, "hello ");
	scrub_feed(s, "3", 1, &out);
	assert_string_equal(out.data, "hello SECRET13");
	scrub_feed(s, "SECRET12", 8, &out);
	assert_string_equal(out.data, "hello SECRET13[redacted]");
	scrub_feed(s, "SSSSSSSSSSSSSSSSSSSS", 20, &out);
	assert_int_equal(out.len, strlen("hello SECRET13[redacted]") + 19);
	scrub_flush(s, &out);
	assert_string_equal(out.data, "hello SECRET13[redacted]"
			    "SSSSSSSSSSSSSSSSSSSS");
	buf_free(&out);
	scrub_free(s);
}

/* A flush releases a value's first part; what follows is still hidden,
 * and the stream goes on as before. */
static void test_scrub_flush(void **state)
{
	struct scrub *s = scrub_new();
	struct buf out = BUF_INIT;

	(void)state;
	scrub_add(s, "SECRET12");
	scrub_feed(s, "x SECR", 6, &out);
	assert_string_equal(out.data, "x ");
	scrub_flush(s, &out);
	assert_string_equal(out.data, "x SECR");
	scrub_flush(s, &out);
	assert_string_equal(out.data, "x SECR");
	scrub_feed(s, "ET12 y SECRET12 z", 17, &out);
	scrub_flush(s, &out);
	assert_string_equal(out.data, "x SECR[redacted] y [redacted] z");
	buf_free(&out);
	scrub_free(s);
}

/* A small deterministic generator, so a failure can be replayed. */
static uint32_t next_random(uint32_t *state)
{
	*state = *state * 1103515245u + 12345u;
	return *state >> 16;
}

/* Random texts over a small alphabet, with values made of the same
 * letters (so they overlap, nest and repeat), cut at random: the stream
 * agrees with scrub_string and with the slow reference. */
static void test_scrub_random(void **state)
{
	static const char letters[] = "ab";
	uint32_t seed = 20261204;

	(void)state;
	for (int round = 0; round < 2000; round++) {
		char values[4][9], text[81];
		const char *vp[4];
		size_t cuts[80], ncuts = 0;
		size_t len = next_random(&seed) % 80;
		struct scrub *s = scrub_new();
		char *want, *whole, *streamed;

		for (size_t v = 0; v < 4; v++) {
			size_t vlen = 3 + next_random(&seed) % 6;

			for (size_t i = 0; i < vlen; i++)
				values[v][i] = letters[next_random(&seed) % 2];
			values[v][vlen] = '\0';
			vp[v] = values[v];
			scrub_add(s, values[v]);
		}
		for (size_t i = 0; i < len; i++)
			text[i] = letters[next_random(&seed) % 2];
		text[len] = '\0';
		for (size_t i = 1; i < len; i++)
			if (next_random(&seed) % 4 == 0)
				cuts[ncuts++] = i;

		want = reference_scrub(vp, 4, text);
		whole = scrub_string(s, text);
		streamed = feed_cut(s, text, cuts, ncuts);
		if (strcmp(whole, want) || strcmp(streamed, want))
			print_error("round %d: text %s\n", round, text);
		assert_string_equal(whole, want);
		assert_string_equal(streamed, want);
		free(want);
		free(whole);
		free(streamed);
		scrub_free(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_key_create, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_key_mode, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_key_wrong_file, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_key_no_folder, setup,
						teardown),
		cmocka_unit_test(test_at_rest_round_trip),
		cmocka_unit_test(test_at_rest_tampered),
		cmocka_unit_test(test_at_rest_wrong_ad),
		cmocka_unit_test(test_seal_round_trip),
		cmocka_unit_test(test_seal_bad_key),
		cmocka_unit_test(test_scrub_add),
		cmocka_unit_test(test_scrub_pass_through),
		cmocka_unit_test(test_scrub_string),
		cmocka_unit_test(test_scrub_every_split),
		cmocka_unit_test(test_scrub_hold_back),
		cmocka_unit_test(test_scrub_flush),
		cmocka_unit_test(test_scrub_random),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
