/*
 * tls.c: checks of the PEM files Baton hands to libwebsockets, and the
 * words for a refused certificate, with OpenSSL (the library lws uses).
 */
#define _GNU_SOURCE
#include "tls.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#define PEM_FILE_MAX (1u << 20)	/* a certificate chain is a few KB */

/* Reads a PEM file whole; *cause says what could not be read. */
static int read_pem(const char *path, const char *what, char **text,
		    size_t *len, char **cause)
{
	int e = file_read_all(path, PEM_FILE_MAX, text, len);

	if (e == -EFBIG)
		*cause = xasprintf("%s: over 1 MiB, too large for a %s; is "
				   "it the right file?", path, what);
	else if (e < 0)
		*cause = xasprintf("%s: cannot read the %s: %s", path, what,
				   strerror(-e));
	return e;
}

/* OpenSSL's reason for the last failure, or a stand-in; clears it. */
static const char *ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *why = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return why ? why : "unreadable";
}

/* Never asks for a passphrase: an encrypted key simply fails to load. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

/* Reads the first certificate of a PEM text. */
static X509 *first_cert(const char *text, size_t len)
{
	BIO *bio = BIO_new_mem_buf(text, (int)len);
	X509 *x;

	if (bio == NULL)
		return NULL;
	x = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	return x;
}

int tls_check_pair(const char *cert, const char *key, char **cause)
{
	char *ct = NULL, *kt = NULL;
	size_t clen = 0, klen = 0;
	EVP_PKEY *pk = NULL;
	X509 *x = NULL;
	BIO *bio;
	int r;

	if ((r = read_pem(cert, "certificate", &ct, &clen, cause)) < 0 ||
	    (r = read_pem(key, "private key", &kt, &klen, cause)) < 0)
		goto out;

	r = -EINVAL;
	x = first_cert(ct, clen);
	if (x == NULL) {
		*cause = xasprintf("%s holds no certificate OpenSSL can read "
				   "(%s); give the relay's certificate in "
				   "PEM (-----BEGIN CERTIFICATE-----)%s",
				   cert, ssl_reason(),
				   strstr(ct, "PRIVATE KEY-----")
				   ? "; this file holds a private key: are "
				     "the certificate and the key swapped?"
				   : "");
		goto out;
	}

	bio = BIO_new_mem_buf(kt, (int)klen);
	if (bio != NULL) {
		pk = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
		BIO_free(bio);
	}
	if (pk == NULL && strstr(kt, "ENCRYPTED")) {
		ERR_clear_error();
		*cause = xasprintf("%s is an encrypted private key, and the "
				   "relay cannot ask for its passphrase; "
				   "write it out unencrypted (`openssl pkey "
				   "-in %s -out NEW.key`) and keep that file "
				   "readable only by the relay's user",
				   key, key);
		goto out;
	}
	if (pk == NULL) {
		*cause = xasprintf("%s holds no private key OpenSSL can read "
				   "(%s); give the key the certificate was "
				   "made for, in PEM (-----BEGIN PRIVATE "
				   "KEY-----)", key, ssl_reason());
		goto out;
	}
	if (X509_check_private_key(x, pk) != 1) {
		ERR_clear_error();
		*cause = xasprintf("the private key %s does not belong to the "
				   "certificate %s; give the key the "
				   "certificate was made for (`openssl x509 "
				   "-noout -pubkey -in CERT` and `openssl "
				   "pkey -pubout -in KEY` print the same "
				   "key for a pair)", key, cert);
		goto out;
	}
	r = 0;
out:
	X509_free(x);
	EVP_PKEY_free(pk);
	free(ct);
	free(kt);
	return r;
}

int tls_check_ca(const char *ca, char **cause)
{
	char *text = NULL;
	size_t len = 0;
	X509 *x;
	int r;

	r = read_pem(ca, "CA file", &text, &len, cause);
	if (r < 0)
		return r;
	x = first_cert(text, len);
	if (x == NULL) {
		*cause = xasprintf("%s holds no certificate OpenSSL can read "
				   "(%s); give the certificate of the CA "
				   "that signed the relay's certificate, in "
				   "PEM (-----BEGIN CERTIFICATE-----)", ca,
				   ssl_reason());
		r = -EINVAL;
	}
	X509_free(x);
	free(text);
	return r;
}

int tls_check_peer_name(void *x509_store_ctx, const char *host)
{
	X509_STORE_CTX *ctx = x509_store_ctx;
	X509 *x = X509_STORE_CTX_get_current_cert(ctx);
	int r;

	if (x == NULL || X509_STORE_CTX_get_error_depth(ctx) != 0)
		return 0;
	r = X509_check_ip_asc(x, host, 0);
	if (r == -2) {		/* not an address: a name */
		r = X509_check_host(x, host, 0,
				    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
				    NULL);
		if (r != 1) {
			X509_STORE_CTX_set_error(ctx,
						 X509_V_ERR_HOSTNAME_MISMATCH);
			return -1;
		}
		return 0;
	}
	if (r != 1) {
		X509_STORE_CTX_set_error(ctx, X509_V_ERR_IP_ADDRESS_MISMATCH);
		return -1;
	}
	return 0;
}

enum tls_refusal tls_refusal_of(void *x509_store_ctx, char *text,
				size_t size)
{
	int err = X509_STORE_CTX_get_error(x509_store_ctx);

	snprintf(text, size, "%s", X509_verify_cert_error_string(err));
	switch (err) {
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
	case X509_V_ERR_CERT_UNTRUSTED:
	case X509_V_ERR_CERT_REJECTED:
		return TLS_REFUSED_UNTRUSTED;
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		return TLS_REFUSED_NAME;
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return TLS_REFUSED_DATES;
	default:
		return TLS_REFUSED_OTHER;
	}
}
