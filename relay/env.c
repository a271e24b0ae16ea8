/*
 * env.c: the remote environment of a workspace's sandbox.
 *
 * `baton env set WORKSPACE NAME` sends a value once; the relay encrypts it
 * with its own key (relay.key in the data folder, 0600) before it touches
 * the database, bound to its user, workspace and name, so a row copied to
 * another place does not open. The values go only to that workspace's
 * sandbox, sealed to the key the sandbox proved, as one env.sealed message
 * after its welcome and again whenever they change. Clients only ever see
 * names. Output the relay stores or forwards is scrubbed of the values of
 * its session's workspace (the sandbox scrubs too, before sending).
 */
#define _GNU_SOURCE
#include "relay.h"
#include "log.h"
#include "secrets.h"
#include "util.h"
#include "workspace.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VALUE_MAX (64 * 1024)

int env_init(struct relay *r, char **cause)
{
	char *path = xasprintf("%s/relay.key", store_data_dir(r->store));
	int e = secrets_key_load(path, r->env_key, cause);

	free(path);
	return e;
}

void env_clear(struct relay *r)
{
	sodium_memzero(r->env_key, sizeof(r->env_key));
}

/* What the value is bound to: a copy of the row elsewhere does not open. */
static char *env_ad(const char *user, const char *workspace,
		    const char *name)
{
	return xasprintf("%s\n%s\n%s", user, workspace, name);
}

/* Decrypts one stored value (hex of nonce and ciphertext); NULL when it
 * does not open, which is logged without the value. */
static char *env_open(struct relay *r, const char *user,
		      const struct store_env *v)
{
	size_t hexlen = strlen(v->value), len = 0, out_len = 0;
	unsigned char *blob = xmalloc(hexlen / 2 + 1), *out = NULL;
	char *ad = env_ad(user, v->workspace, v->name);
	int e = -EBADMSG;

	if (sodium_hex2bin(blob, hexlen / 2 + 1, v->value, hexlen, NULL,
			   &len, NULL) == 0)
		e = secrets_open_at_rest(r->env_key, ad, blob, len, &out,
					 &out_len);
	if (e < 0)
		log_error("env", "the value of %s in workspace %s does not "
			  "open with this relay's key (relay.key replaced, or "
			  "the row altered); set it again", v->name,
			  v->workspace);
	free(ad);
	free(blob);
	return (char *)out;
}

/* The values of a workspace as a JSON object NAME: VALUE (caller frees
 * with env_object_free, which wipes them). */
static cJSON *env_object(struct relay *r, const char *user,
			 const char *workspace)
{
	struct store_env *vs = NULL;
	size_t n = 0;
	cJSON *o = cJSON_CreateObject();

	if (store_env_list(r->store, user, workspace, &vs, &n) < 0) {
		log_error("env", "cannot read the environment of workspace "
			  "%s", workspace);
		return o;
	}
	for (size_t i = 0; i < n; i++) {
		char *value = env_open(r, user, &vs[i]);

		if (value == NULL)
			continue;
		cJSON_AddStringToObject(o, vs[i].name, value);
		sodium_memzero(value, strlen(value));
		free(value);
	}
	store_env_free(vs, n);
	return o;
}

static void env_object_free(cJSON *o);

char *env_get(struct relay *r, const char *user, const char *workspace,
	      const char *name)
{
	cJSON *o = env_object(r, user, workspace);
	const char *v = cJSON_GetStringValue(
		cJSON_GetObjectItemCaseSensitive(o, name));
	char *copy = v ? xstrdup(v) : NULL;

	env_object_free(o);
	return copy;
}

/* Wipes the values of an env_object and frees it. */
static void env_object_free(cJSON *o)
{
	for (cJSON *v = o ? o->child : NULL; v; v = v->next)
		if (cJSON_IsString(v))
			sodium_memzero(v->valuestring, strlen(v->valuestring));
	cJSON_Delete(o);
}

void env_send_sealed(struct relay *r, struct conn *c, const char *user,
		     const char *workspace, const char *pubkey)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char *sealed = NULL;
	size_t got = 0, sealed_len = 0;
	cJSON *o, *body;
	char *text, *b64;
	int e = -EINVAL;

	if (pubkey == NULL || workspace == NULL)
		return;
	o = env_object(r, user, workspace);
	text = cJSON_PrintUnformatted(o);
	if (sodium_hex2bin(pk, sizeof(pk), pubkey, strlen(pubkey), NULL, &got,
			   NULL) == 0 && got == sizeof(pk))
		e = secrets_seal_to(pk, text, strlen(text), &sealed,
				    &sealed_len);
	sodium_memzero(text, strlen(text));
	free(text);
	if (e == 0) {
		size_t b64_len = sodium_base64_ENCODED_LEN(
			sealed_len, sodium_base64_VARIANT_ORIGINAL);

		b64 = xmalloc(b64_len);
		sodium_bin2base64(b64, b64_len, sealed, sealed_len,
				  sodium_base64_VARIANT_ORIGINAL);
		body = cJSON_CreateObject();
		cJSON_AddStringToObject(body, "sealed", b64);
		conn_send_owned(c, proto_encode("env.sealed", NULL, NULL,
						body));
		log_info("env", "sent %d variable(s) of workspace %s to its "
			 "sandbox, sealed", cJSON_GetArraySize(o), workspace);
		free(b64);
	} else {
		log_error("env", "cannot seal the environment of workspace %s "
			  "to its sandbox's key", workspace);
	}
	free(sealed);
	env_object_free(o);
}

struct scrub *env_scrub(struct relay *r, const char *user,
			const char *workspace)
{
	struct scrub *sc;
	cJSON *o;

	if (workspace == NULL)
		return NULL;
	o = env_object(r, user, workspace);
	if (cJSON_GetArraySize(o) == 0) {
		cJSON_Delete(o);
		return NULL;
	}
	sc = scrub_new();
	for (cJSON *v = o->child; v; v = v->next)
		scrub_add(sc, v->valuestring);
	env_object_free(o);
	return sc;
}

/* Sends the workspace's values again to its sandbox, if it is online. */
static void env_push(struct relay *r, const char *user, const char *ws)
{
	for (struct conn *o = r->conns; o; o = o->next) {
		struct store_machine m = { 0 };

		if (o->role != CONN_MACHINE || o->closing ||
		    strcmp(o->machine_kind, "sandbox") ||
		    strcmp(o->user, user))
			continue;
		if (store_machine_get(r->store, o->machine_id, &m) == 0 &&
		    m.workspace && !strcmp(m.workspace, ws))
			env_send_sealed(r, o, user, ws, m.pubkey);
		store_machine_clear(&m);
	}
}

/* Finds the client's workspace named in the message, or answers why not. */
static char *env_workspace(struct relay *r, struct conn *c,
			   const struct proto_msg *m)
{
	const char *name = proto_str(m->body, "workspace");
	char *id = NULL, *plain;

	if (store_workspace_find(r->store, c->user, name, &id, NULL) == 0)
		return id;
	/* Setting a variable for a repository not used yet makes its
	 * workspace: a cloud-only start needs its git credentials first. */
	if (!strcmp(m->type, "env.set") && strstr(name, "://")) {
		plain = workspace_url_public(name);
		if (strcmp(plain, name))
			conn_send_error(c, m->id, NULL, PROTO_E_BAD_MESSAGE,
					"the workspace's URL holds a user or "
					"password; give the plain URL");
		else if (store_workspace_ensure(r->store, c->user, name,
						&id) < 0)
			conn_send_error(c, m->id, NULL, PROTO_E_FAILED, "the "
					"relay cannot record the workspace");
		free(plain);
		return id;
	}
	conn_send_error(c, m->id, NULL, PROTO_E_NOT_FOUND, "no workspace of "
			"yours has that name or id; a workspace is made when a "
			"session starts in a repository, or by env set on its "
			"remote URL (`baton env list` shows those with "
			"variables)");
	return NULL;
}

static void env_set(struct relay *r, struct conn *c,
		    const struct proto_msg *m, const char *ws)
{
	const char *name = proto_str(m->body, "name");
	const char *value = proto_str(m->body, "value");
	unsigned char *blob = NULL;
	size_t blob_len = 0, vlen = strlen(value);
	char *ad, *hex;
	int e;

	if (vlen > VALUE_MAX) {
		conn_send_error(c, m->id, NULL, PROTO_E_TOO_LARGE, "a value "
				"may hold at most 64 KiB");
		return;
	}
	ad = env_ad(c->user, ws, name);
	e = secrets_seal_at_rest(r->env_key, ad, value, vlen, &blob,
				 &blob_len);
	free(ad);
	if (e < 0) {
		conn_send_error(c, m->id, NULL, PROTO_E_FAILED, "the relay "
				"cannot encrypt the value; see its log");
		return;
	}
	hex = xmalloc(blob_len * 2 + 1);
	sodium_bin2hex(hex, blob_len * 2 + 1, blob, blob_len);
	e = store_env_set(r->store, ws, name, hex);
	free(hex);
	free(blob);
	if (e == -EINVAL) {
		conn_send_error(c, m->id, NULL, PROTO_E_BAD_MESSAGE, "a name "
				"is letters, digits and '_', not starting "
				"with a digit");
		return;
	}
	if (e < 0) {
		conn_send_error(c, m->id, NULL, PROTO_E_FAILED, "the relay "
				"cannot store the value; see its log");
		log_error("env", "cannot store %s of workspace %s: %s", name,
			  ws, strerror(-e));
		return;
	}
	r->env_generation++;
	log_info("env", "user %s set %s in workspace %s", c->user, name, ws);
	conn_send_owned(c, proto_encode("ok", m->id, NULL, NULL));
	env_push(r, c->user, ws);
}

static void env_unset(struct relay *r, struct conn *c,
		      const struct proto_msg *m, const char *ws)
{
	const char *name = proto_str(m->body, "name");
	int e = store_env_unset(r->store, ws, name);

	if (e == -ENOENT || e == -EINVAL) {
		conn_send_error(c, m->id, NULL, PROTO_E_NOT_FOUND, "the "
				"workspace has no variable of that name");
		return;
	}
	if (e < 0) {
		conn_send_error(c, m->id, NULL, PROTO_E_FAILED, "the relay "
				"cannot remove the value; see its log");
		return;
	}
	r->env_generation++;
	log_info("env", "user %s unset %s in workspace %s", c->user, name,
		 ws);
	conn_send_owned(c, proto_encode("ok", m->id, NULL, NULL));
	env_push(r, c->user, ws);
}

/* Names and times only: a value never leaves the relay towards a client. */
static void env_list(struct relay *r, struct conn *c,
		     const struct proto_msg *m, const char *ws)
{
	struct store_env *vs = NULL;
	size_t n = 0;
	cJSON *body, *arr;

	if (store_env_list(r->store, c->user, ws, &vs, &n) < 0) {
		conn_send_error(c, m->id, NULL, PROTO_E_FAILED, "the relay "
				"cannot read the environment; see its log");
		return;
	}
	body = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(body, "vars");
	for (size_t i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "workspace", vs[i].key);
		cJSON_AddStringToObject(o, "name", vs[i].name);
		cJSON_AddNumberToObject(o, "updated", (double)vs[i].updated);
		cJSON_AddItemToArray(arr, o);
	}
	store_env_free(vs, n);
	conn_send_owned(c, proto_encode("env", m->id, NULL, body));
}

void env_handle(struct relay *r, struct conn *c, const struct proto_msg *m)
{
	char *ws = NULL;

	if (proto_str(m->body, "workspace")) {
		ws = env_workspace(r, c, m);
		if (ws == NULL)
			return;
	}
	if (!strcmp(m->type, "env.list"))
		env_list(r, c, m, ws);
	else if (!strcmp(m->type, "env.set"))
		env_set(r, c, m, ws);
	else
		env_unset(r, c, m, ws);
	free(ws);
}
