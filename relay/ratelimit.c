/*
 * ratelimit.c: keyed token buckets in fixed memory. Entries sit in an array
 * of MAX_KEYS, found through an open-addressing hash table (linear probing,
 * at most half full, SipHash with a random key) and ordered in a binary
 * min-heap by the time each bucket will be full again. All buckets share
 * one rate and one capacity, so that time orders them by tokens held at any
 * moment: the heap's root is always the fullest bucket, the one to evict.
 */
#include "ratelimit.h"
#include "util.h"

#include <assert.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Slack for rounding in token counts: 1 - RL_EPS tokens is a whole token. */
#define RL_EPS 1e-9

/* One tracked key's bucket. */
struct rl_entry {
	char *key;		/* owned copy */
	uint64_t hash;
	uint64_t last_ms;	/* when tokens was last brought up to date */
	double tokens;		/* held at last_ms, 0 to burst */
	double full_at;		/* ms when the bucket refills to burst */
	size_t heap_pos;	/* index in rl->heap */
};

struct ratelimit {
	double rate;		/* tokens per millisecond; 0 for unlimited */
	double burst;
	size_t max_keys;
	size_t count;		/* entries in use: the first count */
	struct rl_entry *entries;
	size_t *slots;		/* hash table: entry index + 1, 0 for empty */
	size_t mask;		/* slots has mask + 1 places */
	size_t *heap;		/* entry indices, earliest full_at first */
	unsigned char hash_key[crypto_shorthash_KEYBYTES];
};

/* Allocates the tables for MAX_KEYS keys up front; none when unlimited. */
struct ratelimit *ratelimit_new(double rate, unsigned burst, size_t max_keys)
{
	struct ratelimit *rl;
	size_t places = 8;

	assert(!isnan(rate));
	assert(burst >= 1);
	assert(max_keys >= 1 && max_keys <= SIZE_MAX / 4);

	if (sodium_init() < 0)
		return NULL;
	rl = xcalloc(1, sizeof(*rl));
	if (rate <= 0)
		return rl;

	rl->rate = rate / 1000.0;
	rl->burst = burst;
	rl->max_keys = max_keys;
	rl->entries = xcalloc(max_keys, sizeof(*rl->entries));
	rl->heap = xcalloc(max_keys, sizeof(*rl->heap));
	while (places < 2 * max_keys)
		places *= 2;
	rl->slots = xcalloc(places, sizeof(*rl->slots));
	rl->mask = places - 1;
	randombytes_buf(rl->hash_key, sizeof(rl->hash_key));
	return rl;
}

/* Frees the keys, the tables and the limiter. */
void ratelimit_free(struct ratelimit *rl)
{
	size_t i;

	if (rl == NULL)
		return;
	for (i = 0; i < rl->count; i++)
		free(rl->entries[i].key);
	free(rl->entries);
	free(rl->heap);
	free(rl->slots);
	free(rl);
}

/* The number of entries in use. */
size_t ratelimit_size(const struct ratelimit *rl)
{
	return rl->count;
}

/* Hashes a key with the limiter's secret. */
static uint64_t rl_hash(const struct ratelimit *rl, const char *key)
{
	unsigned char out[crypto_shorthash_BYTES];
	uint64_t hash;

	crypto_shorthash(out, (const unsigned char *)key, strlen(key),
			 rl->hash_key);
	memcpy(&hash, out, sizeof(hash));
	return hash;
}

/* The entry index for KEY, or SIZE_MAX when it is not tracked. */
static size_t rl_find(const struct ratelimit *rl, const char *key,
		      uint64_t hash)
{
	size_t i;

	for (i = hash & rl->mask; rl->slots[i] != 0; i = (i + 1) & rl->mask) {
		const struct rl_entry *e = &rl->entries[rl->slots[i] - 1];

		if (e->hash == hash && strcmp(e->key, key) == 0)
			return rl->slots[i] - 1;
	}
	return SIZE_MAX;
}

/* Puts entry IDX into the hash table, which has room. */
static void rl_slot_add(struct ratelimit *rl, size_t idx)
{
	size_t i = rl->entries[idx].hash & rl->mask;

	while (rl->slots[i] != 0)
		i = (i + 1) & rl->mask;
	rl->slots[i] = idx + 1;
}

/* Takes entry IDX out of the hash table, moving later entries of its probe
 * run back so that every entry stays reachable from its home place. */
static void rl_slot_remove(struct ratelimit *rl, size_t idx)
{
	size_t i = rl->entries[idx].hash & rl->mask;
	size_t j;

	while (rl->slots[i] != idx + 1)
		i = (i + 1) & rl->mask;

	for (j = (i + 1) & rl->mask; rl->slots[j] != 0;
	     j = (j + 1) & rl->mask) {
		size_t home = rl->entries[rl->slots[j] - 1].hash & rl->mask;

		/* The entry at j may fill the hole at i unless its home lies
		 * cyclically in (i, j]. */
		if (((j - home) & rl->mask) >= ((j - i) & rl->mask)) {
			rl->slots[i] = rl->slots[j];
			i = j;
		}
	}
	rl->slots[i] = 0;
}

/* Swaps two heap places, keeping the entries' back references. */
static void rl_heap_swap(struct ratelimit *rl, size_t a, size_t b)
{
	size_t t = rl->heap[a];

	rl->heap[a] = rl->heap[b];
	rl->heap[b] = t;
	rl->entries[rl->heap[a]].heap_pos = a;
	rl->entries[rl->heap[b]].heap_pos = b;
}

/* Whether the entry at heap place A refills before the one at B. */
static bool rl_heap_before(const struct ratelimit *rl, size_t a, size_t b)
{
	return rl->entries[rl->heap[a]].full_at <
	       rl->entries[rl->heap[b]].full_at;
}

/* Moves the entry at heap place POS up to where it belongs. */
static void rl_heap_up(struct ratelimit *rl, size_t pos)
{
	while (pos > 0 && rl_heap_before(rl, pos, (pos - 1) / 2)) {
		rl_heap_swap(rl, pos, (pos - 1) / 2);
		pos = (pos - 1) / 2;
	}
}

/* Moves the entry at heap place POS down to where it belongs. */
static void rl_heap_down(struct ratelimit *rl, size_t pos)
{
	for (;;) {
		size_t least = pos;
		size_t child = 2 * pos + 1;

		if (child < rl->count && rl_heap_before(rl, child, least))
			least = child;
		if (child + 1 < rl->count &&
		    rl_heap_before(rl, child + 1, least))
			least = child + 1;
		if (least == pos)
			return;
		rl_heap_swap(rl, pos, least);
		pos = least;
	}
}

/* The tokens E holds at NOW_MS. */
static double rl_tokens(const struct ratelimit *rl, const struct rl_entry *e,
			uint64_t now_ms)
{
	uint64_t elapsed = now_ms > e->last_ms ? now_ms - e->last_ms : 0;
	double tokens = e->tokens + (double)elapsed * rl->rate;

	return tokens < rl->burst ? tokens : rl->burst;
}

/* Sets E to hold TOKENS at NOW_MS (never moving its clock back). */
static void rl_set(const struct ratelimit *rl, struct rl_entry *e,
		   double tokens, uint64_t now_ms)
{
	if (now_ms > e->last_ms)
		e->last_ms = now_ms;
	e->tokens = tokens;
	e->full_at = (double)e->last_ms + (rl->burst - tokens) / rl->rate;
}

/* Milliseconds until a bucket holding TOKENS has a whole one, at least 1. */
static uint64_t rl_wait(const struct ratelimit *rl, double tokens)
{
	double ms = (1.0 - tokens - RL_EPS) / rl->rate;
	uint64_t whole;

	if (ms <= 1)
		return 1;
	if (ms >= (double)UINT64_MAX)
		return UINT64_MAX;
	whole = (uint64_t)ms;
	return (double)whole < ms ? whole + 1 : whole;
}

/* Tracks KEY with one token taken at NOW_MS, replacing the fullest bucket
 * when the table is full. */
static void rl_add(struct ratelimit *rl, const char *key, uint64_t hash,
		   uint64_t now_ms)
{
	struct rl_entry *e;
	size_t idx;

	if (rl->count < rl->max_keys) {
		idx = rl->count++;
		rl->heap[idx] = idx;
		rl->entries[idx].heap_pos = idx;
	} else {
		idx = rl->heap[0];
		rl_slot_remove(rl, idx);
		free(rl->entries[idx].key);
	}

	e = &rl->entries[idx];
	e->key = xstrdup(key);
	e->hash = hash;
	e->last_ms = now_ms;
	rl_set(rl, e, rl->burst - 1, now_ms);
	rl_slot_add(rl, idx);
	if (e->heap_pos == 0)
		rl_heap_down(rl, 0);
	else
		rl_heap_up(rl, e->heap_pos);
}

/* Finds or adds KEY's bucket and takes a token from it if it has one. */
bool ratelimit_take(struct ratelimit *rl, const char *key, uint64_t now_ms,
		    uint64_t *retry_ms)
{
	struct rl_entry *e;
	uint64_t hash;
	size_t idx;
	double tokens;

	if (retry_ms)
		*retry_ms = 0;
	if (rl->rate == 0)
		return true;

	hash = rl_hash(rl, key);
	idx = rl_find(rl, key, hash);
	if (idx == SIZE_MAX) {
		rl_add(rl, key, hash, now_ms);
		return true;
	}

	e = &rl->entries[idx];
	tokens = rl_tokens(rl, e, now_ms);
	if (tokens < 1.0 - RL_EPS) {
		if (retry_ms)
			*retry_ms = rl_wait(rl, tokens);
		return false;
	}

	rl_set(rl, e, tokens > 1.0 ? tokens - 1.0 : 0.0, now_ms);
	rl_heap_down(rl, e->heap_pos);
	return true;
}
