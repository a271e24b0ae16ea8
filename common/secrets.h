/*
 * secrets.h: the secret values Baton carries for its users (API tokens,
 * passwords an agent needs): encrypted at rest in the relay's store,
 * sealed to one machine's key on their way to it, and scrubbed out of the
 * terminal output that machine sends back.
 *
 * Pure functions over libsodium; the program calls sodium_init() once
 * before using any of them.
 */
#ifndef BATON_SECRETS_H
#define BATON_SECRETS_H

#include <stddef.h>

#include <sodium.h>

#include "util.h"

#define SECRETS_KEY_BYTES crypto_secretbox_KEYBYTES

/*
 * Loads the relay's at-rest key from path, creating it (random bytes,
 * mode 0600, written atomically) when absent. A file readable or writable
 * by group or others is refused with -EPERM and a cause that says to
 * chmod 600 it; a file of the wrong size or kind with -EINVAL. 0, or
 * negative with *cause saying what to do (the caller frees it).
 */
int secrets_key_load(const char *path, unsigned char key[SECRETS_KEY_BYTES],
		     char **cause);

/*
 * Encrypts value (len bytes) with key for storage (XChaCha20-Poly1305):
 * *out is a malloc'd nonce || ciphertext of *out_len bytes, the caller
 * frees it. ad names the row the value belongs to and is bound into the
 * ciphertext, so the blob opens with that ad only: a stored value cannot
 * be moved to another row. ad is a C string and ends at its first NUL,
 * so join the row's fields with a byte they cannot hold. 0 always.
 */
int secrets_seal_at_rest(const unsigned char key[SECRETS_KEY_BYTES],
			 const char *ad, const void *value, size_t len,
			 unsigned char **out, size_t *out_len);

/*
 * Opens a blob from secrets_seal_at_rest() with the same key and ad:
 * *value is malloc'd (the caller frees it), *len bytes plus a NUL.
 * 0, or -EBADMSG for a blob tampered with, truncated, sealed with another
 * key or for another ad (*value is then NULL).
 */
int secrets_open_at_rest(const unsigned char key[SECRETS_KEY_BYTES],
			 const char *ad, const unsigned char *blob,
			 size_t blob_len, unsigned char **value, size_t *len);

/*
 * Seals msg (len bytes) so that only the holder of the secret key of
 * ed_pk, a machine's Ed25519 public key, can open it (the key converted to
 * X25519; crypto_box_seal). *out is malloc'd, *out_len bytes; the caller
 * frees it. 0, or -EINVAL for a public key that does not convert.
 */
int secrets_seal_to(const unsigned char ed_pk[crypto_sign_PUBLICKEYBYTES],
		    const void *msg, size_t len, unsigned char **out,
		    size_t *out_len);

/*
 * Opens what secrets_seal_to() sealed to ed_pk, with the matching Ed25519
 * secret key (libsodium's 64-byte layout). *out is malloc'd, *out_len
 * bytes plus a NUL; the caller frees it. 0, -EINVAL for a public key that
 * does not convert, or -EBADMSG when the box does not open (another key,
 * tampered or truncated; *out is then NULL).
 */
int secrets_open_from(const unsigned char ed_pk[crypto_sign_PUBLICKEYBYTES],
		      const unsigned char ed_sk[crypto_sign_SECRETKEYBYTES],
		      const unsigned char *sealed, size_t len,
		      unsigned char **out, size_t *out_len);

/*
 * A streaming scrubber: replaces every occurrence of a registered value in
 * a byte stream by SECRETS_MARK, even when a value is split across chunks.
 * Bytes covered by overlapping or adjacent occurrences become one mark, so
 * no part of either value survives (of two values found at one position,
 * the longer is replaced whole).
 */
#define SECRETS_MARK "[redacted]"

struct scrub;

struct scrub *scrub_new(void);
/* Frees the scrubber, first wiping the values and held bytes it keeps. */
void scrub_free(struct scrub *s);
/* Registers a value to replace; one shorter than 4 bytes would mangle
 * ordinary text and is ignored, as are NULL and duplicates. */
void scrub_add(struct scrub *s, const char *value);
/* The number of values registered. */
size_t scrub_count(const struct scrub *s);
/*
 * Feeds len bytes of the stream; appends to out the bytes now safe to
 * release, values replaced. Holds back only bytes that could begin a
 * value, at most the longest value's length - 1; with no value registered
 * the bytes pass straight through.
 */
void scrub_feed(struct scrub *s, const void *data, size_t len,
		struct buf *out);
/*
 * Releases the bytes held back, at the end of the stream or before a
 * pause where holding them would delay output. A value split across a
 * flush has its first part released; what follows the flush is still
 * replaced.
 */
void scrub_flush(struct scrub *s, struct buf *out);
/* Returns a malloc'd copy of text with every value replaced, as feeding
 * it to a fresh stream and flushing would; the caller frees it. */
char *scrub_string(const struct scrub *s, const char *text);

#endif
