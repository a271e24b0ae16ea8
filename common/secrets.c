/*
 * secrets.c: the relay's at-rest key, encryption of stored values, boxes
 * sealed to a machine's key, and the scrubber that keeps values out of
 * terminal output.
 */
#define _GNU_SOURCE
#include "secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SCRUB_MIN 4		/* shorter values would hit ordinary text */
#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES

_Static_assert(SECRETS_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
	       "the at-rest key must fit the AEAD");

/* One value to replace. */
struct scrub_value {
	char *text;
	size_t len;
};

struct scrub {
	struct scrub_value *values;
	size_t count;
	size_t longest;		/* the longest value's length, 0 for none */
	struct buf win;		/* context released, then bytes held back */
	size_t done;		/* win's bytes before this are released */
	bool hiding;		/* the last byte released was a value's */
};

/* Sets *cause to a formatted reason when the caller asked for one. */
static void set_cause(char **cause, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void set_cause(char **cause, const char *fmt, ...)
{
	va_list ap;

	if (cause == NULL)
		return;
	va_start(ap, fmt);
	*cause = xvasprintf(fmt, ap);
	va_end(ap);
}

/* Makes a new random key and writes it to path, readable by its owner. */
static int key_create(const char *path, unsigned char *key, char **cause)
{
	int e;

	randombytes_buf(key, SECRETS_KEY_BYTES);
	e = file_write_atomic(path, key, SECRETS_KEY_BYTES, 0600);
	if (e < 0) {
		sodium_memzero(key, SECRETS_KEY_BYTES);
		set_cause(cause, "cannot create the at-rest key %s: %s; check "
			  "that its folder exists and that the relay's user "
			  "can write there", path, strerror(-e));
	}
	return e;
}

/* Reads exactly len bytes from fd; 0, -EINVAL when it holds fewer, or
 * -errno. */
static int read_exact(int fd, unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EINVAL;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int secrets_key_load(const char *path, unsigned char key[SECRETS_KEY_BYTES],
		     char **cause)
{
	struct stat st;
	int fd, e;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return key_create(path, key, cause);
	if (fd < 0) {
		e = -errno;
		set_cause(cause, "cannot open the at-rest key %s: %s", path,
			  strerror(-e));
		return e;
	}

	if (fstat(fd, &st) < 0) {
		e = -errno;
		set_cause(cause, "cannot read the at-rest key %s: %s", path,
			  strerror(-e));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		e = -EINVAL;
		set_cause(cause, "the at-rest key %s is not a regular file; "
			  "give the path of the relay's key file", path);
		goto out;
	}
	if (st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) {
		e = -EPERM;
		set_cause(cause, "the at-rest key %s can be read or written by "
			  "users other than its owner (mode %03o); chmod 600 "
			  "%s", path, (unsigned)(st.st_mode & 0777), path);
		goto out;
	}
	if (st.st_size != SECRETS_KEY_BYTES) {
		e = -EINVAL;
		set_cause(cause, "%s holds %lld bytes where an at-rest key has "
			  "%d; put the relay's own key file back (values "
			  "stored with it open with no other key)", path,
			  (long long)st.st_size, SECRETS_KEY_BYTES);
		goto out;
	}

	e = read_exact(fd, key, SECRETS_KEY_BYTES);
	if (e == -EINVAL)
		set_cause(cause, "%s shrank while it was read; put the relay's "
			  "own key file back", path);
	else if (e < 0)
		set_cause(cause, "cannot read the at-rest key %s: %s", path,
			  strerror(-e));
	if (e < 0)
		sodium_memzero(key, SECRETS_KEY_BYTES);
out:
	close(fd);
	return e;
}

int secrets_seal_at_rest(const unsigned char key[SECRETS_KEY_BYTES],
			 const char *ad, const void *value, size_t len,
			 unsigned char **out, size_t *out_len)
{
	const unsigned char *a = (const unsigned char *)ad;
	unsigned char *blob = xmalloc(NONCE_BYTES + len + TAG_BYTES);
	unsigned long long clen;

	randombytes_buf(blob, NONCE_BYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(blob + NONCE_BYTES, &clen,
						   value, len, a, strlen(ad),
						   NULL, blob, key);
	*out = blob;
	*out_len = NONCE_BYTES + (size_t)clen;
	return 0;
}

int secrets_open_at_rest(const unsigned char key[SECRETS_KEY_BYTES],
			 const char *ad, const unsigned char *blob,
			 size_t blob_len, unsigned char **value, size_t *len)
{
	const unsigned char *a = (const unsigned char *)ad;
	unsigned long long mlen;
	unsigned char *m;
	int r;

	*value = NULL;
	*len = 0;
	if (blob_len < NONCE_BYTES + TAG_BYTES)
		return -EBADMSG;

	m = xmalloc(blob_len - NONCE_BYTES - TAG_BYTES + 1);
	r = crypto_aead_xchacha20poly1305_ietf_decrypt(m, &mlen, NULL,
						       blob + NONCE_BYTES,
						       blob_len - NONCE_BYTES,
						       a, strlen(ad), blob,
						       key);
	if (r != 0) {
		free(m);
		return -EBADMSG;
	}
	m[mlen] = '\0';
	*value = m;
	*len = (size_t)mlen;
	return 0;
}

int secrets_seal_to(const unsigned char ed_pk[crypto_sign_PUBLICKEYBYTES],
		    const void *msg, size_t len, unsigned char **out,
		    size_t *out_len)
{
	unsigned char x_pk[crypto_box_PUBLICKEYBYTES];
	unsigned char *sealed;

	*out = NULL;
	*out_len = 0;
	if (crypto_sign_ed25519_pk_to_curve25519(x_pk, ed_pk) != 0)
		return -EINVAL;

	sealed = xmalloc(crypto_box_SEALBYTES + len);
	if (crypto_box_seal(sealed, msg, len, x_pk) != 0) {
		free(sealed);
		return -EINVAL;
	}
	*out = sealed;
	*out_len = crypto_box_SEALBYTES + len;
	return 0;
}

int secrets_open_from(const unsigned char ed_pk[crypto_sign_PUBLICKEYBYTES],
		      const unsigned char ed_sk[crypto_sign_SECRETKEYBYTES],
		      const unsigned char *sealed, size_t len,
		      unsigned char **out, size_t *out_len)
{
	unsigned char x_pk[crypto_box_PUBLICKEYBYTES];
	unsigned char x_sk[crypto_box_SECRETKEYBYTES];
	unsigned char *m = NULL;
	int e = 0;

	*out = NULL;
	*out_len = 0;
	if (crypto_sign_ed25519_pk_to_curve25519(x_pk, ed_pk) != 0)
		return -EINVAL;
	if (len < crypto_box_SEALBYTES)
		return -EBADMSG;

	crypto_sign_ed25519_sk_to_curve25519(x_sk, ed_sk);
	m = xmalloc(len - crypto_box_SEALBYTES + 1);
	if (crypto_box_seal_open(m, sealed, len, x_pk, x_sk) != 0) {
		free(m);
		e = -EBADMSG;
		goto out;
	}
	m[len - crypto_box_SEALBYTES] = '\0';
	*out = m;
	*out_len = len - crypto_box_SEALBYTES;
out:
	sodium_memzero(x_sk, sizeof(x_sk));
	return e;
}

struct scrub *scrub_new(void)
{
	return xcalloc(1, sizeof(struct scrub));
}

void scrub_free(struct scrub *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->count; i++) {
		sodium_memzero(s->values[i].text, s->values[i].len);
		free(s->values[i].text);
	}
	free(s->values);
	if (s->win.data != NULL)
		sodium_memzero(s->win.data, s->win.cap);
	buf_free(&s->win);
	free(s);
}

void scrub_add(struct scrub *s, const char *value)
{
	size_t len = value ? strlen(value) : 0;

	if (len < SCRUB_MIN)
		return;
	for (size_t i = 0; i < s->count; i++)
		if (s->values[i].len == len &&
		    !memcmp(s->values[i].text, value, len))
			return;

	s->values = xrealloc(s->values, (s->count + 1) * sizeof(*s->values));
	s->values[s->count].text = xstrdup(value);
	s->values[s->count].len = len;
	s->count++;
	if (len > s->longest)
		s->longest = len;
}

size_t scrub_count(const struct scrub *s)
{
	return s->count;
}

/* Whether the len bytes at p begin some value longer than them, so more
 * input may complete it. */
static bool begins_value(const struct scrub *s, const char *p, size_t len)
{
	for (size_t i = 0; i < s->count; i++)
		if (s->values[i].len > len &&
		    !memcmp(s->values[i].text, p, len))
			return true;
	return false;
}

/* Marks in hidden (one byte per byte of [from, to)) the bytes of every
 * value found whole in text[0, len); hidden is made on the first find.
 * Occurrences may start before from: text holds the context. */
static void find_values(const struct scrub *s, const char *text, size_t len,
			size_t from, size_t to, unsigned char **hidden)
{
	size_t start = from >= s->longest ? from - s->longest + 1 : 0;

	for (size_t at = start; at < to; at++) {
		for (size_t i = 0; i < s->count; i++) {
			const struct scrub_value *v = &s->values[i];
			size_t lo, hi;

			if (at + v->len > len || at + v->len <= from ||
			    memcmp(text + at, v->text, v->len))
				continue;
			if (*hidden == NULL)
				*hidden = xcalloc(to - from, 1);
			lo = at > from ? at : from;
			hi = at + v->len < to ? at + v->len : to;
			memset(*hidden + (lo - from), 1, hi - lo);
		}
	}
}

/*
 * Releases into out the bytes of text[done, len) that no value still
 * incomplete at the end could cover (all of them at the end of the
 * stream), each run of value bytes as one mark; text[0, done) is context
 * already released. *hiding carries whether the byte before done was a
 * value's. Returns the new done.
 */
static size_t release(const struct scrub *s, const char *text, size_t len,
		      size_t done, bool end, bool *hiding, struct buf *out)
{
	unsigned char *hidden = NULL;	/* 1: byte of a value */
	size_t upto = len, run;

	if (!end && s->longest > 0) {
		size_t at = len >= s->longest ? len - s->longest + 1 : 0;

		for (; at < len; at++)
			if (begins_value(s, text + at, len - at))
				break;
		upto = at > done ? at : done;
	}
	if (upto == done)
		return done;

	find_values(s, text, len, done, upto, &hidden);
	if (hidden == NULL) {
		buf_append(out, text + done, upto - done);
		*hiding = false;
		return upto;
	}
	for (size_t i = done; i < upto; i += run) {
		bool h = hidden[i - done];

		for (run = 1; i + run < upto; run++)
			if (hidden[i + run - done] != h)
				break;
		if (!h)
			buf_append(out, text + i, run);
		else if (!*hiding)
			buf_puts(out, SECRETS_MARK);
		*hiding = h;
	}
	free(hidden);
	return upto;
}

/* Forgets released bytes beyond the context a value could start in. */
static void scrub_trim(struct scrub *s)
{
	size_t keep = s->longest > 0 ? s->longest - 1 : 0;
	size_t drop;

	if (s->done <= keep)
		return;
	drop = s->done - keep;
	memmove(s->win.data, s->win.data + drop, s->win.len - drop);
	sodium_memzero(s->win.data + s->win.len - drop, drop);
	s->win.len -= drop;
	s->done -= drop;
}

void scrub_feed(struct scrub *s, const void *data, size_t len,
		struct buf *out)
{
	if (s->count == 0) {
		buf_append(out, data, len);
		return;
	}
	buf_append(&s->win, data, len);
	s->done = release(s, s->win.data, s->win.len, s->done, false,
			  &s->hiding, out);
	scrub_trim(s);
}

void scrub_flush(struct scrub *s, struct buf *out)
{
	if (s->done == s->win.len)
		return;
	s->done = release(s, s->win.data, s->win.len, s->done, true,
			  &s->hiding, out);
	scrub_trim(s);
}

char *scrub_string(const struct scrub *s, const char *text)
{
	struct buf out = BUF_INIT;
	bool hiding = false;

	release(s, text, strlen(text), 0, true, &hiding, &out);
	return buf_detach(&out, NULL);
}
