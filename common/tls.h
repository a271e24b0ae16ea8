/*
 * tls.h: what Baton does with TLS besides what libwebsockets does: checks
 * certificate, key and CA files before they are handed to lws (so a bad
 * file is named with what to do about it), and says in words why a peer's
 * certificate was refused. OpenSSL is used here and nowhere else.
 */
#ifndef BATON_TLS_H
#define BATON_TLS_H

#include <stddef.h>

/*
 * The relay's certificate (PEM, the server certificate first, then any
 * intermediates) and its private key (PEM, not encrypted) can be read and
 * belong together. 0, or negative with *cause saying which file is wrong
 * and what to do (the caller frees it).
 */
int tls_check_pair(const char *cert, const char *key, char **cause);

/* A CA file to trust can be read and holds at least one PEM certificate.
 * 0, or negative with *cause (the caller frees it). */
int tls_check_ca(const char *ca, char **cause);

/* Why a certificate was refused, by what would mend it. */
enum tls_refusal {
	TLS_REFUSED_UNTRUSTED,	/* no trusted CA signed it */
	TLS_REFUSED_NAME,	/* made out for another name or address */
	TLS_REFUSED_DATES,	/* expired, or not valid yet */
	TLS_REFUSED_OTHER,
};

/*
 * From a certificate verify callback (x509_store_ctx is OpenSSL's
 * X509_STORE_CTX, as lws passes it): once at the peer's own certificate,
 * checks that it is made out for host, a name or an IP address. lws 4.1
 * checks names itself but drops IPv6 addresses (it cuts the host at its
 * first ':'), so this check is ours. On a mismatch it sets the error in
 * the context, as OpenSSL does for its own check, and returns -1.
 */
int tls_check_peer_name(void *x509_store_ctx, const char *host);

/*
 * From a certificate verify callback (x509_store_ctx is OpenSSL's
 * X509_STORE_CTX, as lws passes it): puts OpenSSL's words for the failure
 * in text and returns its kind.
 */
enum tls_refusal tls_refusal_of(void *x509_store_ctx, char *text,
				size_t size);

#endif
