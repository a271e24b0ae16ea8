/*
 * identity.c: a machine's Ed25519 key pair, kept in a private file, and the
 * signature over the relay's challenge (see identity.h).
 */
#include "identity.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "statefile.h"
#include "util.h"

#include <cjson/cJSON.h>

#define CONTEXT "baton.v1 machine-auth"
#define SIGNED_LEN (sizeof(CONTEXT) + IDENTITY_NONCE_BYTES + \
		    IDENTITY_PK_BYTES)

/* The bytes a machine signs: context, NUL, nonce, public key. */
static void signed_bytes(const unsigned char *pk, const unsigned char *nonce,
			 unsigned char out[SIGNED_LEN])
{
	memcpy(out, CONTEXT, sizeof(CONTEXT));
	memcpy(out + sizeof(CONTEXT), nonce, IDENTITY_NONCE_BYTES);
	memcpy(out + sizeof(CONTEXT) + IDENTITY_NONCE_BYTES, pk,
	       IDENTITY_PK_BYTES);
}

/* Reads an existing key file; -ENOENT when there is none. */
static int read_key(const char *path, struct identity *id, char **cause)
{
	struct stat st;
	ssize_t n;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno != ENOENT)
			*cause = xasprintf("cannot read the machine key %s: "
					   "%s", path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) < 0) {
		err = -errno;
		*cause = xasprintf("cannot read the machine key %s: %s", path,
				   strerror(errno));
	} else if (st.st_mode & 077) {
		err = -EPERM;
		*cause = xasprintf("the machine key %s may be read by others; "
				   "run `chmod 600 %s` (and consider the key "
				   "leaked: pair this machine again)", path,
				   path);
	} else if (st.st_size != IDENTITY_SK_BYTES) {
		err = -EINVAL;
		*cause = xasprintf("the machine key %s is not a key (%lld "
				   "bytes); move it aside and pair this "
				   "machine again", path,
				   (long long)st.st_size);
	} else {
		n = read(fd, id->sk, IDENTITY_SK_BYTES);
		if (n != IDENTITY_SK_BYTES) {
			err = n < 0 ? -errno : -EIO;
			*cause = xasprintf("cannot read the machine key %s",
					   path);
		}
	}
	close(fd);
	if (err == 0)
		crypto_sign_ed25519_sk_to_pk(id->pk, id->sk);
	return err;
}

int identity_load(const char *path, struct identity *id, char **cause)
{
	int err;

	memset(id, 0, sizeof(*id));
	err = read_key(path, id, cause);
	if (err == -ENOENT) {
		crypto_sign_keypair(id->pk, id->sk);
		err = file_write_atomic(path, id->sk, IDENTITY_SK_BYTES,
					0600);
		if (err < 0)
			*cause = xasprintf("cannot write the machine key %s: "
					   "%s", path, strerror(-err));
	}
	if (err < 0) {
		identity_clear(id);
		return err;
	}
	sodium_bin2hex(id->pk_hex, sizeof(id->pk_hex), id->pk,
		       IDENTITY_PK_BYTES);
	return 0;
}

void identity_clear(struct identity *id)
{
	sodium_memzero(id->sk, sizeof(id->sk));
}

void identity_sign(const struct identity *id,
		   const unsigned char nonce[IDENTITY_NONCE_BYTES],
		   char *sig_hex)
{
	unsigned char msg[SIGNED_LEN];
	unsigned char sig[IDENTITY_SIG_BYTES];

	signed_bytes(id->pk, nonce, msg);
	crypto_sign_detached(sig, NULL, msg, sizeof(msg), id->sk);
	sodium_bin2hex(sig_hex, IDENTITY_SIG_BYTES * 2 + 1, sig, sizeof(sig));
}

/* Decodes exactly LEN bytes of lowercase or uppercase hex. */
static bool unhex(const char *text, unsigned char *out, size_t len)
{
	size_t got = 0;

	if (text == NULL || strlen(text) != len * 2)
		return false;
	return sodium_hex2bin(out, len, text, len * 2, NULL, &got,
			      NULL) == 0 && got == len;
}

bool identity_pk_valid(const char *text)
{
	unsigned char pk[IDENTITY_PK_BYTES];
	unsigned char x[crypto_scalarmult_curve25519_BYTES];

	/* A key that has no X25519 form cannot receive sealed secrets. */
	return unhex(text, pk, sizeof(pk)) &&
	       crypto_sign_ed25519_pk_to_curve25519(x, pk) == 0;
}

bool identity_verify(const char *pk_hex,
		     const unsigned char nonce[IDENTITY_NONCE_BYTES],
		     const char *sig_hex)
{
	unsigned char pk[IDENTITY_PK_BYTES];
	unsigned char sig[IDENTITY_SIG_BYTES];
	unsigned char msg[SIGNED_LEN];

	if (!unhex(pk_hex, pk, sizeof(pk)) ||
	    !unhex(sig_hex, sig, sizeof(sig)))
		return false;
	signed_bytes(pk, nonce, msg);
	return crypto_sign_verify_detached(sig, msg, sizeof(msg), pk) == 0;
}

int identity_machine_save(const char *path, const char *relay_url,
			  const char *machine, const char *name,
			  const char *user)
{
	cJSON *o = cJSON_CreateObject();
	int e;

	cJSON_AddStringToObject(o, "relay", relay_url);
	cJSON_AddStringToObject(o, "machine", machine);
	if (name)
		cJSON_AddStringToObject(o, "name", name);
	if (user)
		cJSON_AddStringToObject(o, "user", user);
	e = statefile_save(path, o);
	cJSON_Delete(o);
	return e;
}

int identity_machine_load(const char *path, const char *relay_url,
			  char **machine, char **cause)
{
	const char *relay, *id;
	cJSON *o = NULL;
	int e;

	*machine = NULL;
	e = statefile_load(path, "baton-local", "--state", &o, cause);
	if (e == -ENOENT)
		return 0;
	if (e == -EINVAL) {
		/* As good as none: pairing again writes a good one. */
		free(*cause);
		*cause = NULL;
		return 0;
	}
	if (e < 0)
		return e;
	relay = cJSON_GetStringValue(cJSON_GetObjectItem(o, "relay"));
	id = cJSON_GetStringValue(cJSON_GetObjectItem(o, "machine"));
	if (relay && id && !strcmp(relay, relay_url))
		*machine = xstrdup(id);
	cJSON_Delete(o);
	return 0;
}
