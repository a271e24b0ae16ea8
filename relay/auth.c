/*
 * auth.c: who is on the other end of a connection.
 *
 * A client shows a token. A machine shows its Ed25519 public key and signs
 * a fresh challenge with it; the relay admits it only when that key is the
 * one bound to the machine's record. A key is bound three ways:
 *   - pairing: `baton-local pair` waits with a one-time code that a signed-in
 *     client approves (`baton pair approve CODE`);
 *   - a sandbox's one-time bootstrap credential, made by the launcher for one
 *     machine record and generation, spent by its first connection;
 *   - a hand-made machine token, for a laptop record that has no key yet
 *     (the first key shown is kept; another key is refused from then on).
 * The signed answer is checked once per challenge, so a recorded answer is
 * worth nothing on another connection.
 */
#define _GNU_SOURCE
#include "relay.h"
#include "identity.h"
#include "log.h"
#include "ratelimit.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAIR_WAITING_MAX 32	/* laptops waiting with a code, in all */
#define PAIR_ALPHABET "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"	/* no I O 0 1 */
#define NAME_MAX_LEN 64

/* A hello that passed the token checks, waiting for the signed answer. */
struct auth_wait {
	char *hello_id;		/* the hello's id, echoed by welcome */
	char *key;		/* hex public key the answer must verify */
	char *user;
	char *machine;		/* machine record id; NULL when pairing */
	char *bootstrap;	/* credential to spend once the key is proven */
	int64_t generation;	/* sandbox: generation of the credential */
	bool bind;		/* bind the key to the record once proven */
	bool pair;		/* a laptop asking for a pairing code */
	char *name;		/* pairing: the machine name asked for */
	cJSON *held;		/* sessions the machine says it runs */
	unsigned char nonce[IDENTITY_NONCE_BYTES];
};

static void wait_free(struct auth_wait *w)
{
	if (w == NULL)
		return;
	free(w->hello_id);
	free(w->key);
	free(w->user);
	free(w->machine);
	if (w->bootstrap)
		sodium_memzero(w->bootstrap, strlen(w->bootstrap));
	free(w->bootstrap);
	free(w->name);
	cJSON_Delete(w->held);
	free(w);
}

void auth_conn_free(struct conn *c)
{
	wait_free(c->wait);
	c->wait = NULL;
	free(c->pair_code);
	free(c->pair_name);
	free(c->pair_key);
	c->pair_code = c->pair_name = c->pair_key = NULL;
	if (c->web_token)
		sodium_memzero(c->web_token, strlen(c->web_token));
	free(c->web_token);
	c->web_token = NULL;
}

/* Refuses a hello: says why, logs it without secrets, and hangs up. */
static void refuse(struct conn *c, const char *id, const char *code,
		   const char *why, const char *log_reason)
{
	log_info("auth", "connection %" PRIu64 " from %s refused: %s", c->id,
		 c->peer, log_reason);
	conn_send_error(c, id, NULL, code, why);
	conn_close(c, log_reason);
}

/* Machine names: printable, short, no path or shell surprises. */
static bool valid_name(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > NAME_MAX_LEN)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("._-", *p)))
			return false;
	return strncmp(name, "sandbox-", 8) != 0;
}

/* Sends the challenge and keeps the hello until it is answered. */
static void challenge(struct conn *c, struct auth_wait *w)
{
	char hex[IDENTITY_NONCE_BYTES * 2 + 1];
	cJSON *body = cJSON_CreateObject();

	randombytes_buf(w->nonce, sizeof(w->nonce));
	sodium_bin2hex(hex, sizeof(hex), w->nonce, sizeof(w->nonce));
	cJSON_AddStringToObject(body, "nonce", hex);
	c->wait = w;
	conn_send_owned(c, proto_encode("challenge", NULL, NULL, body));
}

/*
 * Refuses c when its user already has as many connections open as the
 * relay allows. A machine's own older connection does not count: c is
 * about to replace it.
 */
static bool user_full(struct relay *r, struct conn *c, const char *id,
		      const char *user, const char *machine)
{
	unsigned n = 0, max = r->limits.conns_per_user;
	char *why;

	if (max == 0)
		return false;
	for (struct conn *o = r->conns; o; o = o->next)
		if (o != c && !o->closing && o->user &&
		    !strcmp(o->user, user) &&
		    !(machine && o->machine_id &&
		      !strcmp(o->machine_id, machine)))
			n++;
	if (n < max)
		return false;
	why = xasprintf("user %s has %u connections open, the most this "
			"relay allows; close some (each `baton attach` or "
			"`baton tail --follow` holds one)", user, n);
	conn_limited(c, id, why, true);
	free(why);
	return true;
}

/* A client: the token alone says who it is. */
static void hello_client(struct relay *r, struct conn *c,
			 const struct proto_msg *m, const char *user,
			 const char *scope)
{
	if (user_full(r, c, m->id, user, NULL))
		return;
	c->user = xstrdup(user);
	c->role = CONN_CLIENT;
	c->read_only = scope && !strcmp(scope, "read");
	relay_admit(r, c, m->id, NULL);
}

/* Says why a token was refused, in words a user can act on. */
static void refuse_token(struct conn *c, const struct proto_msg *m, int e)
{
	if (e == -EKEYREVOKED)
		refuse(c, m->id, PROTO_E_UNAUTHORIZED, "the token was revoked; "
		       "create a new one with `baton-relay token create`",
		       "revoked token");
	else if (e == -EKEYEXPIRED)
		refuse(c, m->id, PROTO_E_UNAUTHORIZED, "the token has expired;"
		       " create a new one with `baton-relay token create`",
		       "expired token");
	else
		refuse(c, m->id, PROTO_E_UNAUTHORIZED, "the token is not valid"
		       " for this relay; create one with `baton-relay token "
		       "create`", "invalid token");
}

/*
 * A machine that shows a token: a laptop with a machine token (its record
 * is found or made by name), or a sandbox with its bootstrap credential.
 */
static int hello_machine_token(struct relay *r, struct conn *c,
			       const struct proto_msg *m,
			       struct auth_wait *w, struct store_machine *mach)
{
	const char *token = proto_str(m->body, "token");
	const char *kind = proto_str(m->body, "kind");
	const char *mid = proto_str(m->body, "machine");
	char *user = NULL, *tkind = NULL;
	uint64_t gen = 0;
	int e;

	if (kind && !strcmp(kind, "sandbox")) {
		/* The credential is spent only after the key is proven. */
		if (mid == NULL || store_machine_get(r->store, mid, mach) < 0 ||
		    strcmp(mach->kind, "sandbox")) {
			refuse(c, m->id, PROTO_E_UNAUTHORIZED, "no sandbox "
			       "record has this id", "unknown sandbox");
			return -EPERM;
		}
		if (proto_u64(m->body, "generation", &gen) < 0 ||
		    gen != (uint64_t)mach->generation) {
			refuse(c, m->id, PROTO_E_STALE, "this sandbox's "
			       "generation is not the current one; it is "
			       "retired", "stale sandbox generation");
			return -ESTALE;
		}
		w->user = xstrdup(mach->user);
		w->bootstrap = xstrdup(token);
		w->generation = mach->generation;
		w->bind = true;
		return 0;
	}

	e = store_token_check(r->store, token, &user, &tkind, NULL);
	if (e < 0) {
		refuse_token(c, m, e);
		return e;
	}
	if (strcmp(tkind, "machine")) {
		refuse(c, m->id, PROTO_E_FORBIDDEN, "this is a client token; "
		       "a machine needs a token made with --kind machine, or "
		       "`baton-local pair`", "token of the wrong kind");
		e = -EPERM;
	} else if (!valid_name(proto_str(m->body, "name")) ||
		   store_machine_local(r->store, user,
				       proto_str(m->body, "name"), mach) < 0) {
		refuse(c, m->id, PROTO_E_FORBIDDEN, "a laptop needs a name of "
		       "letters, digits, '.', '_' and '-' (not sandbox-...)",
		       "bad machine name");
		e = -EINVAL;
	} else if (mach->pubkey && strcmp(mach->pubkey, w->key)) {
		char *why = xasprintf("the machine %s is paired with another "
				      "key; a token alone cannot take its "
				      "place: pair this laptop with "
				      "`baton-local pair`", mach->name);

		refuse(c, m->id, PROTO_E_FORBIDDEN, why,
		       "machine token with a key not the machine's");
		free(why);
		e = -EPERM;
	} else {
		w->user = user;
		user = NULL;
		w->bind = mach->pubkey == NULL;
	}
	free(user);
	free(tkind);
	return e;
}

/* A machine without a token: its record must hold the key it shows. */
static int hello_machine_key(struct relay *r, struct conn *c,
			     const struct proto_msg *m, struct auth_wait *w,
			     struct store_machine *mach)
{
	const char *mid = proto_str(m->body, "machine");
	uint64_t gen = 0;

	if (mid == NULL || store_machine_get(r->store, mid, mach) < 0 ||
	    mach->pubkey == NULL || strcmp(mach->pubkey, w->key)) {
		refuse(c, m->id, PROTO_E_UNAUTHORIZED, "this relay does not "
		       "know this machine's key; pair it with `baton-local "
		       "pair --relay URL`", "unknown machine key");
		return -EPERM;
	}
	if (!strcmp(mach->kind, "sandbox") &&
	    (proto_u64(m->body, "generation", &gen) < 0 ||
	     gen != (uint64_t)mach->generation)) {
		refuse(c, m->id, PROTO_E_STALE, "this sandbox's generation is "
		       "not the current one; it is retired",
		       "stale sandbox generation");
		return -ESTALE;
	}
	w->user = xstrdup(mach->user);
	return 0;
}

/*
 * Takes a hello from its credential's allowance (the token, or the key of
 * a machine that shows none) before anything looks the credential up, or
 * refuses it. The limiter keeps a keyed hash, never the credential.
 */
/*
 * Takes one use of a credential (a token, a key, a sign-in code) from its
 * allowance, keyed by a keyed hash so the limiter holds no secret.
 */
bool auth_rate_take(struct relay *r, const char *cred, uint64_t *retry_ms)
{
	unsigned char h[16];
	char hex[sizeof(h) * 2 + 1];

	*retry_ms = 0;
	if (r->limits.hello_rate == NULL || cred == NULL)
		return true;
	crypto_generichash(h, sizeof(h), (const unsigned char *)cred,
			   strlen(cred), r->limits.hello_key,
			   sizeof(r->limits.hello_key));
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	return ratelimit_take(r->limits.hello_rate, hex, uv_now(r->loop),
			      retry_ms);
}

static bool hello_allowed(struct relay *r, struct conn *c,
			  const struct proto_msg *m, const char *token,
			  const char *key)
{
	char why[128];
	uint64_t retry_ms = 0;

	if (auth_rate_take(r, token ? token : key, &retry_ms))
		return true;
	snprintf(why, sizeof(why), "this %s has connected too often lately; "
		 "try again in %" PRIu64 " s", token ? "token" : "machine",
		 (retry_ms + 999) / 1000);
	conn_limited(c, m->id, why, true);
	return false;
}

void auth_hello(struct relay *r, struct conn *c, const struct proto_msg *m)
{
	const char *role = proto_str(m->body, "role");
	const char *token = proto_str(m->body, "token");
	const char *key = proto_str(m->body, "key");
	struct store_machine mach = { 0 };
	struct auth_wait *w;
	int64_t version = 0;
	int e;

	if (c->role != CONN_NEW || c->wait) {
		conn_send_error(c, m->id, NULL, PROTO_E_CONFLICT,
				"hello was already received");
		return;
	}
	proto_int(m->body, "version", &version);
	if (version != PROTO_VERSION) {
		refuse(c, m->id, PROTO_E_VERSION, "this relay speaks protocol "
		       "version 1; update baton", "protocol version mismatch");
		return;
	}
	/* a browser signed in at /api/login shows its cookie instead */
	if (!strcmp(role, "client") && token == NULL)
		token = c->web_token;
	if (!hello_allowed(r, c, m, token,
			   strcmp(role, "machine") ? NULL : key))
		return;

	if (!strcmp(role, "client") && token == NULL) {
		refuse(c, m->id, PROTO_E_UNAUTHORIZED, "a client's hello needs "
		       "a token (a browser: sign in first)",
		       "client hello without a token");
		return;
	}
	if (!strcmp(role, "client")) {
		char *user = NULL, *kind = NULL, *scope = NULL;

		e = store_token_check(r->store, token, &user, &kind, &scope);
		if (e < 0)
			refuse_token(c, m, e);
		else if (strcmp(kind, "client"))
			refuse(c, m->id, PROTO_E_FORBIDDEN, "this is a machine "
			       "token; a client needs a token made with "
			       "--kind client", "token of the wrong kind");
		else
			hello_client(r, c, m, user, scope);
		free(user);
		free(kind);
		free(scope);
		return;
	}
	if (strcmp(role, "machine") && strcmp(role, "pair")) {
		refuse(c, m->id, PROTO_E_BAD_MESSAGE, "role must be \"client\","
		       " \"machine\" or \"pair\"", "bad role");
		return;
	}
	if (!identity_pk_valid(key)) {
		refuse(c, m->id, PROTO_E_UNAUTHORIZED, "a machine must show its"
		       " public key (64 hex digits); update this program",
		       "no machine key");
		return;
	}

	w = xcalloc(1, sizeof(*w));
	w->hello_id = m->id ? xstrdup(m->id) : NULL;
	w->key = xstrdup(key);
	if (!strcmp(role, "pair")) {
		const char *name = proto_str(m->body, "name");

		if (!valid_name(name)) {
			refuse(c, m->id, PROTO_E_BAD_MESSAGE, "pairing needs a "
			       "machine name of letters, digits, '.', '_' and "
			       "'-' (not sandbox-...)", "bad pairing name");
			wait_free(w);
			return;
		}
		w->pair = true;
		w->name = xstrdup(name);
		challenge(c, w);
		return;
	}

	e = token ? hello_machine_token(r, c, m, w, &mach)
		  : hello_machine_key(r, c, m, w, &mach);
	if (e < 0) {
		wait_free(w);
	} else {
		w->machine = xstrdup(mach.id);
		w->held = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(
						  m->body, "sessions"), true);
		challenge(c, w);
	}
	store_machine_clear(&mach);
}

/* Counts the laptops waiting with a pairing code. */
static size_t pairs_waiting(struct relay *r)
{
	size_t n = 0;

	for (struct conn *o = r->conns; o; o = o->next)
		if (o->role == CONN_PAIRING)
			n++;
	return n;
}

/* Gives a proven pairing request its one-time code. */
static void pair_start(struct relay *r, struct conn *c, struct auth_wait *w)
{
	char code[AUTH_CODE_LEN + 1];
	cJSON *body;

	if (pairs_waiting(r) >= PAIR_WAITING_MAX) {
		refuse(c, w->hello_id, PROTO_E_UNAVAILABLE, "too many laptops "
		       "are waiting to pair; try again in a few minutes",
		       "pairing table full");
		return;
	}
	auth_code_new(code);

	c->role = CONN_PAIRING;
	c->pair_code = xstrdup(code);
	c->pair_name = xstrdup(w->name);
	c->pair_key = xstrdup(w->key);
	c->pair_expires = (int64_t)time(NULL) + r->pair_ttl_s;
	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "code", code);
	cJSON_AddNumberToObject(body, "expires", (double)c->pair_expires);
	conn_send_owned(c, proto_encode("pair.code", w->hello_id, NULL, body));
	log_info("auth", "a laptop named %s waits to be paired (connection "
		 "%" PRIu64 " from %s)", w->name, c->id, c->peer);
}

/* Spends the sandbox's credential or binds a laptop's first key. */
static int bind_key(struct relay *r, struct conn *c, struct auth_wait *w)
{
	int e = 0;

	if (w->bootstrap) {
		e = store_bootstrap_take(r->store, w->bootstrap, w->machine,
					 w->generation);
		if (e == -EKEYEXPIRED)
			refuse(c, w->hello_id, PROTO_E_UNAUTHORIZED, "this "
			       "sandbox's bootstrap credential has expired; "
			       "the relay starts a new one when needed",
			       "expired bootstrap credential");
		else if (e < 0)
			refuse(c, w->hello_id, PROTO_E_UNAUTHORIZED, "this "
			       "bootstrap credential is not valid (it works "
			       "once, for one sandbox)",
			       "bootstrap credential refused");
	}
	if (e == 0 && w->bind) {
		e = store_machine_set_key(r->store, w->machine, w->key);
		if (e < 0)
			refuse(c, w->hello_id, PROTO_E_FAILED, "the relay "
			       "cannot record this machine's key; see its "
			       "log", "cannot store the machine key");
		else
			log_info("auth", "machine %s is bound to the key it "
				 "showed", w->machine);
	}
	return e;
}

void auth_answer(struct relay *r, struct conn *c, const struct proto_msg *m)
{
	struct auth_wait *w = c->wait;
	const char *sig = proto_str(m->body, "signature");

	/* One answer per challenge: the nonce goes with the wait. */
	c->wait = NULL;
	if (!identity_verify(w->key, w->nonce, sig)) {
		refuse(c, m->id, PROTO_E_UNAUTHORIZED, "the answer to the "
		       "challenge is not signed by the key shown",
		       "bad challenge answer");
		goto out;
	}
	if (w->pair) {
		pair_start(r, c, w);
		goto out;
	}
	if (user_full(r, c, w->hello_id, w->user, w->machine) ||
	    bind_key(r, c, w) < 0)
		goto out;

	c->user = w->user;
	w->user = NULL;
	c->role = CONN_MACHINE;
	c->machine_id = w->machine;
	w->machine = NULL;
	relay_admit(r, c, w->hello_id, w->held);
out:
	wait_free(w);
}

/* A one-time code: 32 letters and digits that cannot be misread. */
void auth_code_new(char out[AUTH_CODE_LEN + 1])
{
	unsigned char raw[AUTH_CODE_LEN];

	/* 256 is a multiple of the alphabet's 32: no bias */
	randombytes_buf(raw, sizeof(raw));
	for (size_t i = 0; i < AUTH_CODE_LEN; i++)
		out[i] = PAIR_ALPHABET[raw[i] % (sizeof(PAIR_ALPHABET) - 1)];
	out[AUTH_CODE_LEN] = '\0';
	sodium_memzero(raw, sizeof(raw));
}

/* Upper case, without the dash and spaces people type. */
void auth_code_normalize(const char *in, char out[AUTH_CODE_LEN + 1])
{
	size_t n = 0;

	for (; *in && n < AUTH_CODE_LEN + 1; in++) {
		if (*in == '-' || *in == ' ')
			continue;
		out[n++] = (*in >= 'a' && *in <= 'z') ? *in - 'a' + 'A' : *in;
	}
	if (n > AUTH_CODE_LEN)
		n = 0;	/* too long: matches nothing */
	out[n] = '\0';
}

/* The waiting laptop with this code, if its code is still alive. */
static struct conn *pair_find(struct relay *r, const char *code)
{
	int64_t now = (int64_t)time(NULL);

	if (strlen(code) != AUTH_CODE_LEN)
		return NULL;
	for (struct conn *o = r->conns; o; o = o->next)
		if (o->role == CONN_PAIRING && o->pair_code &&
		    !o->closing && o->pair_expires >= now &&
		    sodium_memcmp(o->pair_code, code, AUTH_CODE_LEN) == 0)
			return o;
	return NULL;
}

void auth_pair_approve(struct relay *r, struct conn *c,
		       const struct proto_msg *m)
{
	char code[AUTH_CODE_LEN + 1];
	struct store_machine mach = { 0 };
	struct conn *laptop;
	bool replaced = false;
	cJSON *body;

	auth_code_normalize(proto_str(m->body, "code"), code);
	laptop = pair_find(r, code);
	if (laptop == NULL) {
		log_info("auth", "user %s approved a pairing code that no "
			 "laptop waits with", c->user);
		conn_send_error(c, m->id, NULL, PROTO_E_NOT_FOUND, "no laptop "
				"waits with that code; a code works once and "
				"expires (ten minutes by default): run "
				"`baton-local pair` again");
		return;
	}
	if (store_machine_pair(r->store, c->user, laptop->pair_name,
			       laptop->pair_key, &mach, &replaced) < 0) {
		conn_send_error(c, m->id, NULL, PROTO_E_FAILED, "the relay "
				"cannot record the machine; see its log");
		return;
	}
	/* The code is spent whatever happens to either connection now. */
	free(laptop->pair_code);
	laptop->pair_code = NULL;

	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "machine", mach.id);
	cJSON_AddStringToObject(body, "name", mach.name);
	cJSON_AddStringToObject(body, "user", c->user);
	conn_send_owned(laptop, proto_encode("pair.approved", NULL, NULL,
					     cJSON_Duplicate(body, true)));
	conn_close(laptop, "paired");
	if (replaced)
		cJSON_AddStringToObject(body, "note", "this name had another "
					"key before; the old one no longer "
					"works");
	conn_send_owned(c, proto_encode("pair.approved", m->id, NULL, body));
	log_info("auth", "user %s paired machine %s (%s)%s", c->user,
		 mach.name, mach.id, replaced ? ", replacing its old key" : "");
	store_machine_clear(&mach);
}
