/*
 * proto.c: encoding, decoding and validation of baton.v1 messages.
 *
 * Every message type is listed once, in `types` below, with who may send it
 * and the body fields it must carry; the decoder checks a message against
 * that entry, so the relay and the daemons never see a message that lacks a
 * field they rely on.
 */
#include "proto.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum field_kind {
	F_STR = 1,	/* non-empty string */
	F_U64,		/* decimal string */
	F_INT,		/* JSON number, integral */
	F_BOOL,
	F_OBJ,
	F_ARR,
	F_OID,		/* 40 lowercase hex digits */
	F_UUID,
};

struct field {
	const char *name;
	enum field_kind kind;
	bool optional;
};

#define FIELDS_MAX 10

struct msg_type {
	const char *name;
	unsigned from;		/* proto_role bits */
	bool session;		/* envelope must carry a session id */
	struct field fields[FIELDS_MAX];	/* up to a NULL name, if any */
};

#define C PROTO_FROM_CLIENT
#define M PROTO_FROM_MACHINE
#define R PROTO_FROM_RELAY
#define OPT true

static const struct msg_type types[] = {
	/* handshake and generic replies */
	{ "hello", C | M, false, {
		{ "version", F_INT }, { "role", F_STR },
		{ "token", F_STR, OPT }, { "key", F_STR, OPT },
		{ "name", F_STR, OPT }, { "kind", F_STR, OPT },
		{ "machine", F_UUID, OPT }, { "generation", F_U64, OPT },
		{ "sessions", F_ARR, OPT } } },
	{ "challenge", R, false, { { "nonce", F_STR } } },
	{ "challenge.answer", M, false, { { "signature", F_STR } } },
	{ "welcome", R, false, {
		{ "user", F_STR }, { "role", F_STR },
		{ "machine", F_UUID, OPT }, { "version", F_INT } } },
	{ "error", C | M | R, false, {
		{ "code", F_STR }, { "message", F_STR } } },
	{ "ok", R, false, { { NULL } } },
	{ "ping", C | M | R, false, { { NULL } } },
	{ "pong", C | M | R, false, { { NULL } } },

	/* pairing a laptop: the daemon waits, a signed-in client approves */
	{ "pair.code", R, false, { { "code", F_STR }, { "expires", F_INT } } },
	{ "pair.approve", C, false, { { "code", F_STR } } },
	{ "pair.approved", R, false, { { "machine", F_UUID },
		{ "name", F_STR }, { "user", F_STR },
		{ "note", F_STR, OPT } } },

	/* the remote environment of a workspace's sandbox */
	{ "env.set", C, false, { { "workspace", F_STR }, { "name", F_STR },
		{ "value", F_STR } } },
	{ "env.unset", C, false, { { "workspace", F_STR },
		{ "name", F_STR } } },
	{ "env.list", C, false, { { "workspace", F_STR, OPT } } },
	{ "env", R, false, { { "vars", F_ARR } } },
	{ "env.sealed", R, false, { { "sealed", F_STR } } },

	/* workspace sync: the laptop uploads checkpoints as it works */
	{ "workspace.sync", C, false, { { "workspace", F_STR },
		{ "on", F_BOOL } } },
	{ "session.sync", R, true, { { "on", F_BOOL },
		{ "have", F_ARR, OPT } } },
	{ "session.synced", M, true, { { "checkpoint", F_OID },
		{ "pack_bytes", F_U64 }, { "profile", F_OBJ, OPT } } },

	/* the relay stops an idle sandbox */
	{ "machine.stop", R, false, { { NULL } } },

	/* workspace settings */
	{ "workspace.setup", C, false, { { "workspace", F_STR },
		{ "script", F_STR, OPT } } },

	/* client requests and their replies */
	{ "machines.list", C, false, { { NULL } } },
	{ "machines", R, false, { { "machines", F_ARR } } },
	{ "sessions.list", C, false, { { NULL } } },
	{ "sessions", R, false, { { "sessions", F_ARR } } },
	{ "credits.get", C, false, { { NULL } } },
	/* a one-time code that signs a browser in (baton login --qr) */
	{ "login.new", C, false, { { NULL } } },
	{ "login.code", R, false, { { "code", F_STR }, { "expires", F_INT },
		{ "scope", F_STR } } },
	/* a sandbox's setup log, for a client */
	{ "setup.get", C, false, { { "machine", F_STR } } },
	{ "setup", R, false, { { "machine", F_STR }, { "state", F_STR },
		{ "text", F_STR, OPT } } },
	{ "credits", R, false, { { "limited", F_BOOL },
		{ "seconds", F_U64, OPT } } },
	{ "session.start", C, false, {
		{ "machine", F_STR }, { "dir", F_STR, OPT },
		{ "agent", F_STR, OPT }, { "cols", F_INT, OPT },
		{ "rows", F_INT, OPT }, { "git", F_STR, OPT },
		{ "ref", F_STR, OPT } } },
	{ "session.clone", R, true, {
		{ "git", F_STR }, { "ref", F_STR, OPT },
		{ "agent", F_STR }, { "epoch", F_U64 },
		{ "workspace", F_STR }, { "setup", F_STR, OPT },
		{ "setup_timeout", F_INT, OPT }, { "cols", F_INT, OPT },
		{ "rows", F_INT, OPT } } },
	{ "session", R, true, {
		{ "id", F_UUID }, { "state", F_STR }, { "machine", F_STR },
		{ "kind", F_STR }, { "seq", F_U64 } } },
	{ "session.status", C, true, { { NULL } } },
	{ "session.attach", C, true, { { "from", F_U64, OPT } } },
	{ "attached", R, true, {
		{ "seq", F_U64 }, { "session", F_OBJ, OPT } } },
	{ "session.detach", C, true, { { NULL } } },
	{ "session.resize", C | R, true, {
		{ "cols", F_INT }, { "rows", F_INT } } },
	{ "session.stop", C | R, true, { { NULL } } },
	{ "session.move", C, true, { { "to", F_STR } } },
	{ "move.step", R, true, { { "step", F_STR }, { "detail", F_STR } } },
	{ "move.done", R, true, { { "machine", F_STR }, { "kind", F_STR },
		{ "worktree", F_STR } } },
	{ "session.exited", M | R, true, {
		{ "status", F_INT }, { "seq", F_U64, OPT } } },

	/* relay to machine and the machine's answers */
	{ "session.spawn", R, true, {
		{ "dir", F_STR }, { "agent", F_STR }, { "epoch", F_U64 },
		{ "seq", F_U64 }, { "cols", F_INT, OPT },
		{ "rows", F_INT, OPT } } },
	{ "session.spawned", M, true, {
		{ "worktree", F_STR }, { "workspace", F_STR },
		{ "remote", F_STR, OPT }, { "profile", F_OBJ, OPT } } },
	{ "session.suspend", R, true, {
		{ "epoch", F_U64 }, { "have", F_ARR } } },
	{ "session.suspended", M, true, {
		{ "checkpoint", F_OID }, { "seq", F_U64 },
		{ "pack_bytes", F_U64 }, { "profile", F_OBJ, OPT } } },
	{ "session.resume", R, true, {
		{ "checkpoint", F_OID }, { "agent", F_STR },
		{ "epoch", F_U64 }, { "seq", F_U64 },
		{ "profile", F_OBJ, OPT }, { "remote", F_STR, OPT },
		{ "workspace", F_STR }, { "setup", F_STR, OPT },
		{ "setup_timeout", F_INT, OPT } } },
	{ "objects.want", M, true, {
		{ "checkpoint", F_OID }, { "have", F_ARR } } },
	{ "objects.sent", R, true, {
		{ "checkpoint", F_OID }, { "pack_bytes", F_U64 } } },
	{ "session.resumed", M, true, {
		{ "worktree", F_STR }, { "checkpoint", F_OID },
		{ "set_aside", F_STR, OPT }, { "note", F_STR, OPT } } },
	{ "session.stand_down", R, true, { { "epoch", F_U64 } } },
	{ "session.restart", R, true, {
		{ "epoch", F_U64 }, { "seq", F_U64 }, { "agent", F_STR } } },
	{ "session.restarted", M, true, { { "worktree", F_STR } } },
	{ "output.ack", R, true, { { "seq", F_U64 } } },
	{ "setup.log", M, false, { { "text", F_STR }, { "done", F_BOOL },
		{ "status", F_INT, OPT } } },
};

#undef C
#undef M
#undef R
#undef OPT

static const struct msg_type *find_type(const char *name)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(types[i].name, name))
			return &types[i];
	return NULL;
}

static int depth_of(const cJSON *item)
{
	int deepest = 0;

	for (const cJSON *c = item->child; c; c = c->next) {
		int d = depth_of(c);

		if (d > deepest)
			deepest = d;
	}
	return (cJSON_IsObject(item) || cJSON_IsArray(item)) ? deepest + 1
							    : deepest;
}

/* True when [p, end) holds only JSON whitespace. */
static bool blank(const char *p, const char *end)
{
	for (; p < end; p++)
		if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
			return false;
	return true;
}

static int fail(const char **code, const char *which, char *cause,
		size_t cause_len, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int fail(const char **code, const char *which, char *cause,
		size_t cause_len, const char *fmt, ...)
{
	va_list ap;

	*code = which;
	va_start(ap, fmt);
	vsnprintf(cause, cause_len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static bool digits(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static bool field_ok(const cJSON *v, enum field_kind kind)
{
	switch (kind) {
	case F_STR:
		return cJSON_IsString(v) && v->valuestring[0] != '\0';
	case F_U64:
		return cJSON_IsString(v) && digits(v->valuestring, 20) &&
		       (strlen(v->valuestring) < 20 ||
			strcmp(v->valuestring, "18446744073709551615") <= 0);
	case F_INT:
		/* range first: casting an out-of-range double is undefined */
		return cJSON_IsNumber(v) && v->valuedouble > -9e15 &&
		       v->valuedouble < 9e15 &&
		       v->valuedouble == (double)(int64_t)v->valuedouble;
	case F_BOOL:
		return cJSON_IsBool(v);
	case F_OBJ:
		return cJSON_IsObject(v);
	case F_ARR:
		return cJSON_IsArray(v);
	case F_OID:
		return cJSON_IsString(v) && proto_oid_valid(v->valuestring);
	case F_UUID: {
		uint8_t raw[16];

		return cJSON_IsString(v) &&
		       proto_uuid_parse(v->valuestring, raw) == 0;
	}
	}
	return false;
}

static const char *kind_name(enum field_kind kind)
{
	switch (kind) {
	case F_STR: return "a non-empty string";
	case F_U64: return "a decimal string";
	case F_INT: return "an integer";
	case F_BOOL: return "true or false";
	case F_OBJ: return "an object";
	case F_ARR: return "an array";
	case F_OID: return "a 40-digit hex object id";
	case F_UUID: return "a UUID";
	}
	return "?";
}

static const char *role_name(unsigned from)
{
	return from == PROTO_FROM_CLIENT ? "a client" :
	       from == PROTO_FROM_MACHINE ? "a machine" :
	       from == PROTO_FROM_RELAY ? "the relay" :
	       "a client or a machine";
}

int proto_msg_decode(const char *text, size_t len, unsigned from,
		     struct proto_msg *out, const char **code, char *cause,
		     size_t cause_len)
{
	const struct msg_type *t;
	const cJSON *type, *id, *session, *body;
	char quoted[PROTO_TYPE_MAX + 1];
	const char *end;
	cJSON *root;

	memset(out, 0, sizeof(*out));
	out->id = "";
	if (len > PROTO_MAX_MESSAGE)
		return fail(code, PROTO_E_TOO_LARGE, cause, cause_len,
			    "message of %zu bytes is over the limit of %d",
			    len, PROTO_MAX_MESSAGE);

	root = cJSON_ParseWithLengthOpts(text, len, &end, false);
	if (root == NULL)
		return fail(code, PROTO_E_BAD_MESSAGE, cause, cause_len,
			    "message is not valid JSON");
	out->root = root;
	if (!blank(end, text + len))
		return fail(code, PROTO_E_BAD_MESSAGE, cause, cause_len,
			    "message has bytes after its JSON value");
	if (!cJSON_IsObject(root))
		return fail(code, PROTO_E_BAD_MESSAGE, cause, cause_len,
			    "message is not a JSON object");

	id = cJSON_GetObjectItemCaseSensitive(root, "id");
	if (id != NULL) {
		if (!cJSON_IsString(id) ||
		    strlen(id->valuestring) > PROTO_ID_MAX)
			return fail(code, PROTO_E_BAD_MESSAGE, cause,
				    cause_len, "\"id\" must be a string of at "
				    "most %d bytes", PROTO_ID_MAX);
		out->id = id->valuestring;
	}
	if (depth_of(root) > PROTO_MAX_DEPTH)
		return fail(code, PROTO_E_BAD_MESSAGE, cause, cause_len,
			    "message nests deeper than %d levels",
			    PROTO_MAX_DEPTH);

	type = cJSON_GetObjectItemCaseSensitive(root, "type");
	if (!cJSON_IsString(type))
		return fail(code, PROTO_E_BAD_MESSAGE, cause, cause_len,
			    "message has no \"type\" string");
	t = find_type(type->valuestring);
	if (t == NULL)
		return fail(code, PROTO_E_UNKNOWN_TYPE, cause, cause_len,
			    "unknown message type \"%s\"",
			    proto_printable(type->valuestring, quoted,
					    sizeof(quoted)));
	if (!(t->from & from))
		return fail(code, PROTO_E_FORBIDDEN, cause, cause_len,
			    "\"%s\" may not be sent by %s", t->name,
			    role_name(from));

	session = cJSON_GetObjectItemCaseSensitive(root, "session");
	if (session != NULL && !field_ok(session, F_UUID))
		return fail(code, PROTO_E_BAD_MESSAGE, cause, cause_len,
			    "\"session\" must be a UUID");
	if (t->session && session == NULL)
		return fail(code, PROTO_E_BAD_MESSAGE, cause, cause_len,
			    "\"%s\" needs a \"session\"", t->name);
	/* One spelling of an id: everything compares them as text. */
	if (session != NULL)
		for (char *p = session->valuestring; *p; p++)
			if (*p >= 'A' && *p <= 'F')
				*p = (char)(*p - 'A' + 'a');

	body = cJSON_GetObjectItemCaseSensitive(root, "body");
	if (body == NULL) {
		body = cJSON_AddObjectToObject(root, "body");
	} else if (!cJSON_IsObject(body)) {
		return fail(code, PROTO_E_BAD_MESSAGE, cause, cause_len,
			    "\"body\" must be an object");
	}
	for (size_t i = 0; i < FIELDS_MAX && t->fields[i].name; i++) {
		const struct field *f = &t->fields[i];
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(body,
								  f->name);

		if (v == NULL && f->optional)
			continue;
		if (v == NULL)
			return fail(code, PROTO_E_BAD_MESSAGE, cause,
				    cause_len, "\"%s\" needs body field "
				    "\"%s\"", t->name, f->name);
		if (!field_ok(v, f->kind))
			return fail(code, PROTO_E_BAD_MESSAGE, cause,
				    cause_len, "\"%s\": field \"%s\" must be "
				    "%s", t->name, f->name,
				    kind_name(f->kind));
	}

	out->type = t->name;
	out->session = session ? session->valuestring : NULL;
	out->body = (cJSON *)body;
	return 0;
}

void proto_msg_free(struct proto_msg *m)
{
	cJSON_Delete(m->root);
	memset(m, 0, sizeof(*m));
}

char *proto_encode(const char *type, const char *id, const char *session,
		   cJSON *body)
{
	cJSON *root = cJSON_CreateObject();
	char *text;

	cJSON_AddStringToObject(root, "type", type);
	if (id != NULL && id[0] != '\0')
		cJSON_AddStringToObject(root, "id", id);
	if (session != NULL)
		cJSON_AddStringToObject(root, "session", session);
	cJSON_AddItemToObject(root, "body",
			      body ? body : cJSON_CreateObject());
	text = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (text == NULL)
		abort();	/* cJSON fails only when out of memory */
	return text;
}

char *proto_encode_error(const char *id, const char *session,
			 const char *code, const char *message)
{
	cJSON *body = cJSON_CreateObject();

	cJSON_AddStringToObject(body, "code", code);
	cJSON_AddStringToObject(body, "message", message);
	return proto_encode("error", id, session, body);
}

const char *proto_str(const cJSON *obj, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

int proto_u64(const cJSON *obj, const char *name, uint64_t *out)
{
	const char *s = proto_str(obj, name);
	char *end;

	if (s == NULL || !digits(s, 20))
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return (errno || *end) ? -EINVAL : 0;
}

int proto_int(const cJSON *obj, const char *name, int64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (v == NULL || !field_ok(v, F_INT))
		return -EINVAL;
	*out = (int64_t)v->valuedouble;
	return 0;
}

bool proto_bool(const cJSON *obj, const char *name, bool fallback)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : fallback;
}

void proto_add_u64(cJSON *obj, const char *name, uint64_t v)
{
	char text[24];

	snprintf(text, sizeof(text), "%" PRIu64, v);
	cJSON_AddStringToObject(obj, name, text);
}

#define BIN_VERSION 1

int proto_bin_decode(const void *frame, size_t len, struct proto_bin *out,
		     const char **cause)
{
	const uint8_t *p = frame;

	if (len < PROTO_BIN_HEADER) {
		*cause = "binary frame shorter than its 32-byte header";
		return -EINVAL;
	}
	if (len > PROTO_MAX_MESSAGE) {
		*cause = "binary frame over the message size limit";
		return -E2BIG;
	}
	if (p[0] != BIN_VERSION) {
		*cause = "binary frame of an unknown header version";
		return -EINVAL;
	}
	if (p[1] < PROTO_BIN_OUTPUT || p[1] > PROTO_BIN_PACK) {
		*cause = "binary frame of an unknown kind";
		return -EINVAL;
	}
	if (len - PROTO_BIN_HEADER > PROTO_CHUNK) {
		*cause = "binary frame payload over the chunk limit";
		return -E2BIG;
	}
	out->kind = p[1];
	out->flags = (uint16_t)(p[2] << 8 | p[3]);
	out->epoch = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 |
		     (uint32_t)p[6] << 8 | p[7];
	memcpy(out->session, p + 8, 16);
	out->seq = 0;
	for (int i = 0; i < 8; i++)
		out->seq = out->seq << 8 | p[24 + i];
	out->data = p + PROTO_BIN_HEADER;
	out->len = len - PROTO_BIN_HEADER;
	return 0;
}

void proto_bin_header(const struct proto_bin *b,
		      uint8_t out[PROTO_BIN_HEADER])
{
	out[0] = BIN_VERSION;
	out[1] = b->kind;
	out[2] = (uint8_t)(b->flags >> 8);
	out[3] = (uint8_t)b->flags;
	out[4] = (uint8_t)(b->epoch >> 24);
	out[5] = (uint8_t)(b->epoch >> 16);
	out[6] = (uint8_t)(b->epoch >> 8);
	out[7] = (uint8_t)b->epoch;
	memcpy(out + 8, b->session, 16);
	for (int i = 0; i < 8; i++)
		out[24 + i] = (uint8_t)(b->seq >> (56 - 8 * i));
}

void proto_uuid_new(char out[PROTO_UUID_LEN + 1])
{
	uint8_t raw[16];

	randombytes_buf(raw, sizeof(raw));
	raw[6] = (raw[6] & 0x0f) | 0x40;	/* version 4 */
	raw[8] = (raw[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
	proto_uuid_format(raw, out);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int proto_uuid_parse(const char *text, uint8_t out[16])
{
	size_t n = 0;

	if (strlen(text) != PROTO_UUID_LEN)
		return -EINVAL;
	for (size_t i = 0; i < PROTO_UUID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (text[i] != '-')
				return -EINVAL;
			continue;
		}
		int hi = hexval(text[i]), lo = hexval(text[i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[n++] = (uint8_t)(hi << 4 | lo);
		i++;
	}
	return 0;
}

void proto_uuid_format(const uint8_t in[16], char out[PROTO_UUID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[in[i] >> 4];
		out[o++] = hex[in[i] & 15];
	}
	out[o] = '\0';
}

char *proto_printable(const char *in, char *out, size_t out_len)
{
	size_t n = 0;

	for (; in && *in && n + 1 < out_len; in++)
		out[n++] = (*in >= 0x20 && *in < 0x7f) ? *in : '?';
	if (out_len)
		out[n] = '\0';
	return out;
}

bool proto_oid_valid(const char *hex)
{
	if (strlen(hex) != 40)
		return false;
	for (const char *p = hex; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}
