/*
 * identity.h: a machine's Ed25519 key pair and the challenge it signs.
 *
 * Each daemon makes a key pair on its first run and keeps it in a file only
 * its user can read. On every connection the relay sends a fresh random
 * challenge and the daemon signs it; the relay checks the signature against
 * the key it holds for that machine, so a copied token alone cannot pose as
 * a machine that has a key.
 */
#ifndef BATON_IDENTITY_H
#define BATON_IDENTITY_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>

#define IDENTITY_PK_BYTES crypto_sign_PUBLICKEYBYTES
#define IDENTITY_SK_BYTES crypto_sign_SECRETKEYBYTES
#define IDENTITY_SIG_BYTES crypto_sign_BYTES
#define IDENTITY_NONCE_BYTES 32
#define IDENTITY_PK_HEX (IDENTITY_PK_BYTES * 2 + 1)

struct identity {
	unsigned char pk[IDENTITY_PK_BYTES];
	unsigned char sk[IDENTITY_SK_BYTES];
	char pk_hex[IDENTITY_PK_HEX];	/* as sent in hello */
};

/*
 * Loads the key pair from PATH, making it (mode 0600) when the file does not
 * exist. A file others may read or write, or one of the wrong size, is
 * refused with a cause that says what to do. 0 or -errno.
 */
int identity_load(const char *path, struct identity *id, char **cause);
/* Wipes the secret key. */
void identity_clear(struct identity *id);

/*
 * Signs the relay's challenge. The signed bytes are a context string, the
 * nonce and the public key, so a signature made for Baton's handshake means
 * nothing anywhere else. SIG_HEX receives IDENTITY_SIG_BYTES * 2 + 1 bytes.
 */
void identity_sign(const struct identity *id,
		   const unsigned char nonce[IDENTITY_NONCE_BYTES],
		   char *sig_hex);
/* Checks a hex signature of NONCE by the hex public key PK_HEX. */
bool identity_verify(const char *pk_hex,
		     const unsigned char nonce[IDENTITY_NONCE_BYTES],
		     const char *sig_hex);
/* True when TEXT is a well-formed hex public key. */
bool identity_pk_valid(const char *text);

/*
 * A laptop's record of which machine it is on a relay (machine.json in its
 * state folder, a versioned state file: statefile.h), written when the
 * relay first welcomes or pairs it, so a later start needs no token.
 * 0 or -errno.
 */
int identity_machine_save(const char *path, const char *relay_url,
			  const char *machine, const char *name,
			  const char *user);
/*
 * Sets *machine to the machine id kept in PATH for RELAY_URL (the caller
 * frees), or NULL when there is no file, no usable one, or it is for
 * another relay. An older file is upgraded in place after a copy. A file
 * written by a newer baton-local, or one that cannot be read or upgraded,
 * is refused: -errno with *cause (the caller frees).
 */
int identity_machine_load(const char *path, const char *relay_url,
			  char **machine, char **cause);

#endif
