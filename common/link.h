/*
 * link.h: one WebSocket connection from a daemon or client to the relay,
 * on a libuv loop, that reconnects by itself.
 *
 * The owner gets callbacks for open, each whole message, and close. After
 * on_open the owner sends its hello; after on_close the link retries with
 * exponential backoff (capped, with jitter) unless it was told to stop.
 * Messages queued while disconnected are dropped: the owner resends what
 * matters after the next hello.
 *
 * wss:// URLs are spoken over TLS: the relay's certificate chain and its
 * host name are verified against the system's CA store, or against only
 * the CAs in link_opts.ca_file. Plain ws:// carries the token in clear
 * text, so it is allowed only to a loopback address unless the owner sets
 * link_opts.insecure.
 */
#ifndef BATON_LINK_H
#define BATON_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "frames.h"
#include "proto.h"

struct link;

struct link_callbacks {
	void (*on_open)(struct link *l, void *arg);
	void (*on_text)(struct link *l, const char *text, size_t len,
			void *arg);
	void (*on_binary)(struct link *l, const struct proto_bin *frame,
			  void *arg);
	/* reason says why; the link retries afterwards when it may. */
	void (*on_close)(struct link *l, const char *reason, void *arg);
};

struct link_opts {
	const char *url;		/* ws:// or wss://HOST:PORT[/PATH] */
	const char *ca_file;		/* PEM CAs to trust; NULL: system */
	bool insecure;			/* allow ws:// beyond loopback */
	bool reconnect;			/* retry after a close */
	unsigned backoff_max_ms;	/* 0: default (10 s) */
	/* ping and dead-peer times; NULL: defaults and the environment */
	const struct frames_liveness *liveness;
	const struct link_callbacks *cb;
	void *arg;
};

/*
 * Parses the URL and starts connecting; *cause explains a bad URL, a URL
 * the rules refuse (link_check_url) or an unreadable CA file.
 */
int link_new(uv_loop_t *loop, const struct link_opts *opts,
	     struct link **out, char **cause);
bool link_connected(const struct link *l);
/*
 * The last attempt failed because the relay's certificate was refused
 * (on_close said why). Retrying cannot mend that until the certificate or
 * the trusted CAs change.
 */
bool link_cert_refused(const struct link *l);
/*
 * The owner says the connection works (the relay welcomed it): the next
 * retry starts from the shortest delay again. Until then every retry
 * waits longer, so a relay that refuses us is not hammered.
 */
void link_healthy(struct link *l);
/* Queues a message; the text is copied. 0, or -ENOTCONN when closed. */
int link_send_text(struct link *l, const char *text);
/* Sends text and frees it (for proto_encode results). */
int link_send_owned(struct link *l, char *text);
int link_send_binary(struct link *l, const struct proto_bin *hdr,
		     const void *data, size_t len);
/* Bytes waiting to be written (for flow control). */
size_t link_queued(const struct link *l);
/* Drops the current connection; it is retried when reconnect is set. */
void link_drop(struct link *l, const char *why);
/*
 * Stops for good: closes the connection and every handle. Let the loop run
 * until it has no more work, then call link_free.
 */
void link_shutdown(struct link *l);
void link_free(struct link *l);

/*
 * Splits ws://HOST:PORT/PATH or wss://HOST:PORT/PATH (the port defaults
 * to 80 and 443); caller frees host and path.
 */
int link_parse_url(const char *url, char **host, int *port, char **path,
		   char **cause);
/* The URL asks for TLS (wss://). */
bool link_url_tls(const char *url);
/* HOST (no brackets) is localhost, in 127.0.0.0/8, or ::1. */
bool link_host_is_loopback(const char *host);
/*
 * The URL parses, and is wss://, or ws:// to a loopback host, or insecure
 * is set. 0, or negative with *cause saying why and what to do instead.
 */
int link_check_url(const char *url, bool insecure, char **cause);

#endif
