/*
 * test_tls.c: unit tests for common/tls.c: the checks of the relay's
 * certificate and key and of a CA file, on files made here with OpenSSL,
 * our own check of the peer's name, and the kinds of refused
 * certificates.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "tls.h"
#include "util.h"

/* The folder of one test and the files made in it. */
struct files {
	char dir[64];
	char *cert;		/* self-signed, for key */
	char *key;
	char *other_key;	/* a key of no certificate */
	char *encrypted;	/* key, under a passphrase */
	char *garbage;
	char *empty;
};

/* A new P-256 key. */
static EVP_PKEY *new_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	assert_non_null(k);
	return k;
}

/* A self-signed certificate for key, valid for a day, for 127.0.0.1 and
 * localhost. */
static X509 *new_cert(EVP_PKEY *key)
{
	X509 *x = X509_new();
	X509_EXTENSION *san;
	X509_NAME *name;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)"baton test", -1,
				   -1, 0);
	X509_set_issuer_name(x, name);
	san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name,
				  "IP:127.0.0.1,DNS:localhost");
	assert_non_null(san);
	assert_true(X509_add_ext(x, san, -1));
	X509_EXTENSION_free(san);
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	return x;
}

/* Opens path for writing, or fails the test. */
static FILE *create(const char *path)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	return f;
}

/* Writes text to path. */
static void write_text(const char *path, const char *text)
{
	FILE *f = create(path);

	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	struct files *fs = xcalloc(1, sizeof(*fs));
	EVP_PKEY *key = new_key(), *other = new_key();
	X509 *cert = new_cert(key);
	FILE *f;

	strcpy(fs->dir, "/tmp/baton-test-tls.XXXXXX");
	assert_non_null(mkdtemp(fs->dir));
	fs->cert = xasprintf("%s/cert.pem", fs->dir);
	fs->key = xasprintf("%s/key.pem", fs->dir);
	fs->other_key = xasprintf("%s/other.key", fs->dir);
	fs->encrypted = xasprintf("%s/encrypted.key", fs->dir);
	fs->garbage = xasprintf("%s/garbage.pem", fs->dir);
	fs->empty = xasprintf("%s/empty.pem", fs->dir);

	f = create(fs->cert);
	assert_true(PEM_write_X509(f, cert));
	fclose(f);
	f = create(fs->key);
	assert_true(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL));
	fclose(f);
	f = create(fs->other_key);
	assert_true(PEM_write_PrivateKey(f, other, NULL, NULL, 0, NULL,
					 NULL));
	fclose(f);
	f = create(fs->encrypted);
	assert_true(PEM_write_PrivateKey(f, key, EVP_aes_256_cbc(),
					 (unsigned char *)"secret", 6, NULL,
					 NULL));
	fclose(f);
	write_text(fs->garbage, "-----BEGIN CERTIFICATE-----\nnot base64"
		   "\n-----END CERTIFICATE-----\n");
	write_text(fs->empty, "");

	X509_free(cert);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
	*state = fs;
	return 0;
}

static int teardown(void **state)
{
	struct files *fs = *state;

	assert_int_equal(rm_rf(fs->dir), 0);
	free(fs->cert);
	free(fs->key);
	free(fs->other_key);
	free(fs->encrypted);
	free(fs->garbage);
	free(fs->empty);
	free(fs);
	return 0;
}

/* Asserts a refusal with err whose cause holds each of the hints. */
static void assert_cause(int r, int err, char *cause, const char *hint1,
			 const char *hint2)
{
	if (r != err)
		fail_msg("gave %d, expected %d: %s", r, err,
			 cause ? cause : "(no cause)");
	assert_non_null(cause);
	if (!strstr(cause, hint1) || (hint2 && !strstr(cause, hint2)))
		fail_msg("cause \"%s\" should contain \"%s\" and \"%s\"",
			 cause, hint1, hint2 ? hint2 : "");
	free(cause);
}

/* A certificate and its own key pass. */
static void test_pair_ok(void **state)
{
	struct files *fs = *state;
	char *cause = NULL;

	assert_int_equal(tls_check_pair(fs->cert, fs->key, &cause), 0);
	assert_null(cause);
}

/* Each wrong file is named, with what is wrong with it. */
static void test_pair_bad(void **state)
{
	struct files *fs = *state;
	char *missing = xasprintf("%s/missing.pem", fs->dir);
	char *cause = NULL;
	int r;

	r = tls_check_pair(missing, fs->key, &cause);
	assert_cause(r, -ENOENT, cause, missing, "cannot read the "
		     "certificate");
	cause = NULL;
	r = tls_check_pair(fs->cert, missing, &cause);
	assert_cause(r, -ENOENT, cause, missing, "cannot read the private "
		     "key");
	cause = NULL;
	r = tls_check_pair(fs->cert, fs->other_key, &cause);
	assert_cause(r, -EINVAL, cause, fs->other_key, "does not belong to "
		     "the certificate");
	cause = NULL;
	r = tls_check_pair(fs->key, fs->cert, &cause);
	assert_cause(r, -EINVAL, cause, fs->key, "swapped");
	cause = NULL;
	r = tls_check_pair(fs->cert, fs->encrypted, &cause);
	assert_cause(r, -EINVAL, cause, fs->encrypted, "unencrypted");
	cause = NULL;
	r = tls_check_pair(fs->garbage, fs->key, &cause);
	assert_cause(r, -EINVAL, cause, fs->garbage, "holds no certificate");
	cause = NULL;
	r = tls_check_pair(fs->cert, fs->empty, &cause);
	assert_cause(r, -EINVAL, cause, fs->empty, "holds no private key");
	cause = NULL;
	r = tls_check_pair(fs->dir, fs->key, &cause);
	assert_cause(r, -EISDIR, cause, fs->dir, "cannot read");
	free(missing);
}

/* A CA file must hold a certificate. */
static void test_ca(void **state)
{
	struct files *fs = *state;
	char *cause = NULL;
	int r;

	assert_int_equal(tls_check_ca(fs->cert, &cause), 0);
	assert_null(cause);
	r = tls_check_ca(fs->key, &cause);
	assert_cause(r, -EINVAL, cause, fs->key, "holds no certificate");
	cause = NULL;
	r = tls_check_ca(fs->empty, &cause);
	assert_cause(r, -EINVAL, cause, fs->empty, "holds no certificate");
	cause = NULL;
	r = tls_check_ca("/nonexistent/ca.pem", &cause);
	assert_cause(r, -ENOENT, cause, "/nonexistent/ca.pem",
		     "cannot read the CA file");
}

/* Asserts tls_check_peer_name's answer for host on the certificate x at
 * depth, and the error it leaves in the context. */
static void assert_name(X509 *x, int depth, const char *host, int want,
			int want_err)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();

	assert_non_null(ctx);
	X509_STORE_CTX_set_current_cert(ctx, x);
	X509_STORE_CTX_set_error_depth(ctx, depth);
	X509_STORE_CTX_set_error(ctx, X509_V_OK);
	if (tls_check_peer_name(ctx, host) != want)
		fail_msg("\"%s\" at depth %d: expected %d", host, depth,
			 want);
	assert_int_equal(X509_STORE_CTX_get_error(ctx), want_err);
	X509_STORE_CTX_free(ctx);
}

/*
 * The peer's certificate must name the host: an address among its IP
 * entries (IPv6 too, which lws 4.1 does not check), a name among its DNS
 * entries. Certificates above the peer's are not checked for names.
 */
static void test_peer_name(void **state)
{
	EVP_PKEY *key = new_key();
	X509 *x = new_cert(key);

	assert_name(x, 0, "127.0.0.1", 0, X509_V_OK);
	assert_name(x, 0, "localhost", 0, X509_V_OK);
	assert_name(x, 0, "LOCALHOST", 0, X509_V_OK);
	assert_name(x, 0, "::1", -1, X509_V_ERR_IP_ADDRESS_MISMATCH);
	assert_name(x, 0, "127.0.0.2", -1, X509_V_ERR_IP_ADDRESS_MISMATCH);
	assert_name(x, 0, "example.invalid", -1,
		    X509_V_ERR_HOSTNAME_MISMATCH);
	assert_name(x, 0, "sub.localhost", -1, X509_V_ERR_HOSTNAME_MISMATCH);
	assert_name(x, 1, "example.invalid", 0, X509_V_OK);
	X509_free(x);
	EVP_PKEY_free(key);
}

/* Asserts the kind of a verify error and that it has words. */
static void assert_refusal(int err, enum tls_refusal want)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	char text[128] = "";

	assert_non_null(ctx);
	X509_STORE_CTX_set_error(ctx, err);
	if (tls_refusal_of(ctx, text, sizeof(text)) != want)
		fail_msg("error %d (%s) is not of kind %d", err, text, want);
	assert_true(strlen(text) > 0);
	assert_string_equal(text, X509_verify_cert_error_string(err));
	X509_STORE_CTX_free(ctx);
}

/* Verify errors sort by what would mend them. */
static void test_refusal_kinds(void **state)
{
	assert_refusal(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
		       TLS_REFUSED_UNTRUSTED);
	assert_refusal(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT,
		       TLS_REFUSED_UNTRUSTED);
	assert_refusal(X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN,
		       TLS_REFUSED_UNTRUSTED);
	assert_refusal(X509_V_ERR_CERT_SIGNATURE_FAILURE,
		       TLS_REFUSED_UNTRUSTED);
	assert_refusal(X509_V_ERR_HOSTNAME_MISMATCH, TLS_REFUSED_NAME);
	assert_refusal(X509_V_ERR_IP_ADDRESS_MISMATCH, TLS_REFUSED_NAME);
	assert_refusal(X509_V_ERR_CERT_HAS_EXPIRED, TLS_REFUSED_DATES);
	assert_refusal(X509_V_ERR_CERT_NOT_YET_VALID, TLS_REFUSED_DATES);
	assert_refusal(X509_V_ERR_CERT_REVOKED, TLS_REFUSED_OTHER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pair_ok, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pair_bad, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ca, setup, teardown),
		cmocka_unit_test(test_peer_name),
		cmocka_unit_test(test_refusal_kinds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
