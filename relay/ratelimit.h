/*
 * ratelimit.h: a keyed token-bucket rate limiter for the relay: new
 * connections per remote address, hello attempts per token. Each key has a
 * bucket of BURST tokens that refills at RATE tokens per second; every
 * attempt takes one. Time is passed in (monotonic milliseconds) so callers
 * share one clock reading and tests control it.
 *
 * At most MAX_KEYS keys are tracked, in memory fixed when the limiter is
 * made. A key seen for the first time while the table is full replaces the
 * tracked key holding the most tokens at that moment: a key whose bucket has
 * refilled to BURST carries no information and goes first (the one full the
 * longest before another); failing that, the least limited key goes. Each
 * call costs O(log MAX_KEYS) whatever the keys are; they are hashed with a
 * random secret key, so a peer cannot choose keys that collide.
 *
 * What that guarantees against a flood of distinct keys: the key evicted
 * holds at least as many tokens as any other tracked key, and a key that
 * has taken one token holds at least BURST - 1 until it takes another. So
 * while any such key is tracked, no key holding fewer is evicted. With
 * BURST >= 2 a key out of tokens keeps its state however many new keys
 * arrive making one attempt each, unless it holds the most tokens of all
 * tracked keys when the first of them arrives. Keys that empty their own
 * buckets can push it out, at BURST attempts each; with BURST == 1 it has
 * no protection. A key whose state is evicted starts with a full bucket.
 *
 * A limiter belongs to one thread.
 */
#ifndef BATON_RATELIMIT_H
#define BATON_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ratelimit;

/* Makes a limiter refilling RATE tokens per second up to BURST (at least 1)
 * for at most MAX_KEYS keys (at least 1); RATE <= 0 means unlimited. Returns
 * NULL when libsodium cannot initialise; free with ratelimit_free. */
struct ratelimit *ratelimit_new(double rate, unsigned burst, size_t max_keys);
/* Frees the limiter and its copies of the keys; NULL is allowed. */
void ratelimit_free(struct ratelimit *rl);
/* Takes one token from KEY's bucket at NOW_MS (monotonic milliseconds; a
 * reading older than one already passed counts as no time elapsed). Returns
 * true when allowed; false when not, with *retry_ms (when not NULL) set to
 * the milliseconds until a token is available, at least 1. *retry_ms is 0
 * after an allowed take. KEY is copied. */
bool ratelimit_take(struct ratelimit *rl, const char *key, uint64_t now_ms,
		    uint64_t *retry_ms);
/* The number of keys tracked now, at most MAX_KEYS (0 when unlimited). */
size_t ratelimit_size(const struct ratelimit *rl);

#endif
