/*
 * test_proto.c: unit tests for proto/ (baton.v1 encode, decode and
 * validation, binary frame headers, UUIDs and object ids), ending with a
 * mutation loop that feeds damaged messages to both decoders.
 *
 * The `samples` table restates proto.c's message table from the outside:
 * one valid message per type, its senders and its required fields. A change
 * to the protocol must change both, on purpose.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto.h"

#define C PROTO_FROM_CLIENT
#define M PROTO_FROM_MACHINE
#define R PROTO_FROM_RELAY

#define OID "0123456789abcdef0123456789abcdef01234567"
#define UUID "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
#define CAUSE_LEN 256

/* One valid message of a type: its body carries every field it knows. */
struct sample {
	const char *type;
	unsigned from;		/* proto_role bits allowed to send it */
	bool session;		/* envelope session required */
	const char *body;
	const char *required[8];
};

static const struct sample samples[] = {
	{ "hello", C | M, false,
	  "{\"version\":1,\"role\":\"machine\",\"token\":\"t0k\","
	  "\"name\":\"laptop\",\"kind\":\"sandbox\",\"machine\":\"" UUID
	  "\",\"generation\":\"3\",\"sessions\":[],\"key\":\"ab\"}",
	  { "version", "role" } },
	{ "challenge", R, false, "{\"nonce\":\"00ff\"}", { "nonce" } },
	{ "challenge.answer", M, false, "{\"signature\":\"00ff\"}",
	  { "signature" } },
	{ "pair.code", R, false, "{\"code\":\"ABCD2345\",\"expires\":99}",
	  { "code", "expires" } },
	{ "pair.approve", C, false, "{\"code\":\"ABCD-2345\"}", { "code" } },
	{ "pair.approved", R, false,
	  "{\"machine\":\"" UUID "\",\"name\":\"lap\",\"user\":\"ann\","
	  "\"note\":\"n\"}", { "machine", "name", "user" } },
	{ "env.set", C, false,
	  "{\"workspace\":\"w\",\"name\":\"A\",\"value\":\"v\"}",
	  { "workspace", "name", "value" } },
	{ "env.unset", C, false, "{\"workspace\":\"w\",\"name\":\"A\"}",
	  { "workspace", "name" } },
	{ "env.list", C, false, "{\"workspace\":\"w\"}", { NULL } },
	{ "env", R, false, "{\"vars\":[]}", { "vars" } },
	{ "env.sealed", R, false, "{\"sealed\":\"x\"}", { "sealed" } },
	{ "workspace.sync", C, false, "{\"workspace\":\"w\",\"on\":true}",
	  { "workspace", "on" } },
	{ "machine.stop", R, false, "{}", { NULL } },
	{ "workspace.setup", C, false,
	  "{\"workspace\":\"w\",\"script\":\"echo hi\"}", { "workspace" } },
	{ "session.sync", R, true, "{\"on\":true,\"have\":[]}", { "on" } },
	{ "session.synced", M, true,
	  "{\"checkpoint\":\"" OID "\",\"pack_bytes\":\"10\","
	  "\"profile\":{}}", { "checkpoint", "pack_bytes" } },
	{ "welcome", R, false,
	  "{\"user\":\"ann\",\"role\":\"client\",\"machine\":\"" UUID
	  "\",\"version\":1}",
	  { "user", "role", "version" } },
	{ "error", C | M | R, false,
	  "{\"code\":\"failed\",\"message\":\"it broke\"}",
	  { "code", "message" } },
	{ "ok", R, false, "{}", { NULL } },
	{ "ping", C | M | R, false, "{}", { NULL } },
	{ "pong", C | M | R, false, "{}", { NULL } },
	{ "machines.list", C, false, "{}", { NULL } },
	{ "machines", R, false, "{\"machines\":[{\"name\":\"a\"}]}",
	  { "machines" } },
	{ "sessions.list", C, false, "{}", { NULL } },
	{ "sessions", R, false, "{\"sessions\":[]}", { "sessions" } },
	{ "credits.get", C, false, "{}", { NULL } },
	{ "credits", R, false, "{\"limited\":true,\"seconds\":\"3720\"}",
	  { "limited" } },
	{ "session.start", C, false,
	  "{\"machine\":\"laptop\",\"dir\":\"/src/app\",\"agent\":\"shell\","
	  "\"cols\":80,\"rows\":24,\"git\":\"https://h/r.git\","
	  "\"ref\":\"main\"}",
	  { "machine" } },
	{ "session.clone", R, true,
	  "{\"git\":\"https://h/r.git\",\"ref\":\"main\",\"agent\":\"shell\","
	  "\"epoch\":\"1\",\"workspace\":\"https://h/r.git\","
	  "\"setup\":\"true\",\"setup_timeout\":60,\"cols\":80,\"rows\":24}",
	  { "git", "agent", "epoch", "workspace" } },
	{ "session", R, true,
	  "{\"id\":\"" UUID "\",\"state\":\"running\",\"machine\":\"laptop\","
	  "\"kind\":\"local\",\"seq\":\"12\"}",
	  { "id", "state", "machine", "kind", "seq" } },
	{ "session.status", C, true, "{}", { NULL } },
	{ "session.attach", C, true, "{\"from\":\"7\"}", { NULL } },
	{ "attached", R, true, "{\"seq\":\"9\"}", { "seq" } },
	{ "session.detach", C, true, "{}", { NULL } },
	{ "session.resize", C | R, true, "{\"cols\":120,\"rows\":40}",
	  { "cols", "rows" } },
	{ "session.stop", C | R, true, "{}", { NULL } },
	{ "session.move", C, true, "{\"to\":\"sandbox\"}", { "to" } },
	{ "move.step", R, true,
	  "{\"step\":\"fenced\",\"detail\":\"epoch 4\"}",
	  { "step", "detail" } },
	{ "move.done", R, true,
	  "{\"machine\":\"sandbox-1\",\"kind\":\"sandbox\","
	  "\"worktree\":\"/w/app\"}",
	  { "machine", "kind", "worktree" } },
	{ "session.exited", M | R, true, "{\"status\":0}", { "status" } },
	{ "session.spawn", R, true,
	  "{\"dir\":\"/src/app\",\"agent\":\"claude\",\"epoch\":\"1\","
	  "\"seq\":\"0\",\"cols\":80,\"rows\":24}",
	  { "dir", "agent", "epoch", "seq" } },
	{ "session.spawned", M, true,
	  "{\"worktree\":\"/src/app\",\"workspace\":\"github.com/a/b\"}",
	  { "worktree", "workspace" } },
	{ "session.suspend", R, true,
	  "{\"epoch\":\"2\",\"have\":[\"" OID "\"]}",
	  { "epoch", "have" } },
	{ "session.suspended", M, true,
	  "{\"checkpoint\":\"" OID "\",\"seq\":\"41\","
	  "\"pack_bytes\":\"20480\"}",
	  { "checkpoint", "seq", "pack_bytes" } },
	{ "session.resume", R, true,
	  "{\"checkpoint\":\"" OID "\",\"agent\":\"claude\",\"epoch\":\"3\","
	  "\"seq\":\"41\",\"worktree\":\"/src/app\","
	  "\"remote\":\"https://example.invalid/a.git\","
	  "\"workspace\":\"github.com/a/b\"}",
	  { "checkpoint", "agent", "epoch", "seq", "workspace" } },
	{ "objects.want", M, true,
	  "{\"checkpoint\":\"" OID "\",\"have\":[]}",
	  { "checkpoint", "have" } },
	{ "objects.sent", R, true,
	  "{\"checkpoint\":\"" OID "\",\"pack_bytes\":\"0\"}",
	  { "checkpoint", "pack_bytes" } },
	{ "session.resumed", M, true,
	  "{\"worktree\":\"/w/app\",\"checkpoint\":\"" OID "\","
	  "\"set_aside\":\"/w/app.baton-1\",\"note\":\"restored beside\"}",
	  { "worktree", "checkpoint" } },
	{ "session.stand_down", R, true, "{\"epoch\":\"5\"}", { "epoch" } },
	{ "output.ack", R, true, "{\"seq\":\"100\"}", { "seq" } },
	{ "setup.log", M, false,
	  "{\"text\":\"npm install\\n\",\"done\":true,\"status\":0}",
	  { "text", "done" } },
};

#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))

static const unsigned roles[] = { C, M, R };

/* The lowest role bit allowed to send `s`. */
static unsigned sender_of(const struct sample *s)
{
	return s->from & -s->from;
}

/* Encodes sample `s` with its full body; caller frees. */
static char *encode_sample(const struct sample *s, const char *id,
			   bool with_session)
{
	cJSON *body = cJSON_Parse(s->body);

	assert_non_null(body);
	return proto_encode(s->type, id, with_session ? UUID : NULL, body);
}

/* Decodes NUL-terminated `text` sent by `from`. */
static int decode(const char *text, unsigned from, struct proto_msg *m,
		  const char **code, char *cause)
{
	*code = NULL;
	cause[0] = '\0';
	return proto_msg_decode(text, strlen(text), from, m, code, cause,
				CAUSE_LEN);
}

/* Asserts that `text` is refused with `want` and a cause naming `needle`. */
static void expect_refused(const char *text, unsigned from,
			   const char *want, const char *needle)
{
	struct proto_msg m;
	const char *code;
	char cause[CAUSE_LEN];
	int rc = decode(text, from, &m, &code, cause);

	if (rc == 0)
		fail_msg("accepted: %s", text);
	assert_int_equal(rc, -EINVAL);
	assert_non_null(code);
	assert_string_equal(code, want);
	assert_null(m.type);
	assert_null(m.body);
	if (needle != NULL && strstr(cause, needle) == NULL)
		fail_msg("cause \"%s\" does not name \"%s\" (message %s)",
			 cause, needle, text);
	proto_msg_free(&m);
}

/* Asserts that `text` decodes. */
static void expect_accepted(const char *text, unsigned from)
{
	struct proto_msg m;
	const char *code;
	char cause[CAUSE_LEN];

	if (decode(text, from, &m, &code, cause) != 0)
		fail_msg("refused (%s: %s): %s", code, cause, text);
	assert_non_null(m.type);
	assert_true(cJSON_IsObject(m.body));
	proto_msg_free(&m);
}

/* Builds a message of `type` whose body is `body` text; caller frees. */
static char *with_body(const char *type, bool session, const char *body)
{
	size_t n = strlen(type) + strlen(body) + 128;
	char *text = malloc(n);

	assert_non_null(text);
	snprintf(text, n, "{\"type\":\"%s\",%s\"body\":%s}", type,
		 session ? "\"session\":\"" UUID "\"," : "", body);
	return text;
}

/* Every sample survives encode then decode with type, id, session, body. */
static void test_round_trip(void **state)
{
	for (size_t i = 0; i < NSAMPLES; i++) {
		const struct sample *s = &samples[i];
		cJSON *want = cJSON_Parse(s->body);
		char *text = encode_sample(s, "req-1", true);
		struct proto_msg m;
		const char *code;
		char cause[CAUSE_LEN];

		if (decode(text, sender_of(s), &m, &code, cause) != 0)
			fail_msg("%s refused: %s", s->type, cause);
		assert_string_equal(m.type, s->type);
		assert_string_equal(m.id, "req-1");
		assert_string_equal(m.session, UUID);
		assert_true(cJSON_Compare(m.body, want, true));
		proto_msg_free(&m);
		cJSON_Delete(want);
		free(text);
	}
}

/* No id and no session encode to absent fields and decode to "" and NULL. */
static void test_round_trip_bare(void **state)
{
	char *text = proto_encode("ping", "", NULL, NULL);
	struct proto_msg m;
	const char *code;
	char cause[CAUSE_LEN];

	assert_string_equal(text, "{\"type\":\"ping\",\"body\":{}}");
	assert_int_equal(decode(text, M, &m, &code, cause), 0);
	assert_string_equal(m.id, "");
	assert_null(m.session);
	assert_null(m.body->child);
	proto_msg_free(&m);
	free(text);

	text = proto_encode("pong", NULL, NULL, NULL);
	assert_string_equal(text, "{\"type\":\"pong\",\"body\":{}}");
	free(text);
}

/* A message without "body" decodes with an empty body object. */
static void test_body_absent(void **state)
{
	struct proto_msg m;
	const char *code;
	char cause[CAUSE_LEN];

	assert_int_equal(decode("{\"type\":\"ping\",\"id\":\"1\"}", C, &m,
				&code, cause), 0);
	assert_true(cJSON_IsObject(m.body));
	assert_null(m.body->child);
	proto_msg_free(&m);

	expect_refused("{\"type\":\"session.move\",\"session\":\"" UUID "\"}",
		       C, PROTO_E_BAD_MESSAGE, "\"to\"");
}

/* proto_encode_error builds an "error" that decodes to code and message. */
static void test_encode_error(void **state)
{
	char *text = proto_encode_error("abc", UUID, PROTO_E_NOT_FOUND,
					"no such session");
	struct proto_msg m;
	const char *code;
	char cause[CAUSE_LEN];

	assert_int_equal(decode(text, R, &m, &code, cause), 0);
	assert_string_equal(m.type, "error");
	assert_string_equal(m.id, "abc");
	assert_string_equal(m.session, UUID);
	assert_string_equal(proto_str(m.body, "code"), "not_found");
	assert_string_equal(proto_str(m.body, "message"), "no such session");
	proto_msg_free(&m);
	free(text);
}

/* Each required field, when missing, is refused with a cause naming it;
 * each optional field may be left out. */
static void test_missing_fields(void **state)
{
	for (size_t i = 0; i < NSAMPLES; i++) {
		const struct sample *s = &samples[i];
		cJSON *full = cJSON_Parse(s->body);
		size_t nreq = 0;

		while (nreq < 8 && s->required[nreq] != NULL)
			nreq++;
		for (cJSON *f = full->child; f; f = f->next) {
			cJSON *body = cJSON_Duplicate(full, true);
			char needle[64];
			char *text;
			bool req = false;

			for (size_t k = 0; k < nreq; k++)
				req |= !strcmp(s->required[k], f->string);
			cJSON_DeleteItemFromObjectCaseSensitive(body,
								f->string);
			text = proto_encode(s->type, "7", UUID, body);
			snprintf(needle, sizeof(needle), "\"%s\"", f->string);
			if (req)
				expect_refused(text, sender_of(s),
					       PROTO_E_BAD_MESSAGE, needle);
			else
				expect_accepted(text, sender_of(s));
			free(text);
		}
		cJSON_Delete(full);
	}
}

/* The samples list every required field in their bodies. */
static void test_samples_complete(void **state)
{
	for (size_t i = 0; i < NSAMPLES; i++) {
		cJSON *body = cJSON_Parse(samples[i].body);

		assert_non_null(body);
		for (size_t k = 0; k < 8 && samples[i].required[k]; k++)
			assert_non_null(cJSON_GetObjectItemCaseSensitive(
				body, samples[i].required[k]));
		cJSON_Delete(body);
	}
}

/* A field of the wrong JSON type or shape is refused, naming the field. */
static void test_wrong_field_types(void **state)
{
	static const struct {
		const char *type;
		bool session;
		unsigned from;
		const char *body;
		const char *field;
	} cases[] = {
		/* U64: a decimal string, nothing else */
		{ "session.stand_down", true, R, "{\"epoch\":5}", "epoch" },
		{ "session.stand_down", true, R, "{\"epoch\":\"\"}", "epoch" },
		{ "session.stand_down", true, R, "{\"epoch\":\"12a\"}",
		  "epoch" },
		{ "session.stand_down", true, R, "{\"epoch\":\"0x1f\"}",
		  "epoch" },
		{ "session.stand_down", true, R, "{\"epoch\":\"-1\"}",
		  "epoch" },
		{ "session.stand_down", true, R, "{\"epoch\":\"+1\"}",
		  "epoch" },
		{ "session.stand_down", true, R, "{\"epoch\":\" 1\"}",
		  "epoch" },
		{ "session.stand_down", true, R, "{\"epoch\":\"1.5\"}",
		  "epoch" },
		{ "attached", true, R,
		  "{\"seq\":\"100000000000000000000\"}", "seq" },
		{ "attached", true, R,
		  "{\"seq\":\"18446744073709551616\"}", "seq" },
		{ "attached", true, R,
		  "{\"seq\":\"99999999999999999999\"}", "seq" },
		{ "session.attach", true, C, "{\"from\":3}", "from" },
		/* INT: an integral JSON number */
		{ "session.resize", true, C, "{\"cols\":\"80\",\"rows\":24}",
		  "cols" },
		{ "session.resize", true, C, "{\"cols\":80,\"rows\":2.5}",
		  "rows" },
		{ "session.resize", true, C, "{\"cols\":1e300,\"rows\":24}",
		  "cols" },
		{ "session.resize", true, C, "{\"cols\":-1e300,\"rows\":24}",
		  "cols" },
		{ "session.resize", true, C, "{\"cols\":1e999,\"rows\":24}",
		  "cols" },
		{ "session.resize", true, C, "{\"cols\":true,\"rows\":24}",
		  "cols" },
		/* OID: 40 lowercase hex digits */
		{ "objects.sent", true, R,
		  "{\"checkpoint\":\"0123456789ABCDEF0123456789abcdef01234567\""
		  ",\"pack_bytes\":\"0\"}", "checkpoint" },
		{ "objects.sent", true, R,
		  "{\"checkpoint\":\"0123456789abcdef0123456789abcdef0123456\""
		  ",\"pack_bytes\":\"0\"}", "checkpoint" },
		{ "objects.sent", true, R,
		  "{\"checkpoint\":\"" OID "0\",\"pack_bytes\":\"0\"}",
		  "checkpoint" },
		{ "objects.sent", true, R,
		  "{\"checkpoint\":\"0123456789abcdef0123456789abcdef0123456g\""
		  ",\"pack_bytes\":\"0\"}", "checkpoint" },
		/* UUID */
		{ "hello", false, M,
		  "{\"version\":1,\"role\":\"machine\",\"token\":\"t\","
		  "\"machine\":\"not-a-uuid\"}", "machine" },
		{ "session", true, R,
		  "{\"id\":\"6f1c2a3b4d5e4f608a7b9c0d1e2f3a4b\","
		  "\"state\":\"running\",\"machine\":\"m\",\"kind\":\"local\","
		  "\"seq\":\"0\"}", "id" },
		/* STR: non-empty string */
		{ "session.move", true, C, "{\"to\":\"\"}", "to" },
		{ "session.move", true, C, "{\"to\":7}", "to" },
		{ "session.move", true, C, "{\"to\":null}", "to" },
		/* BOOL, ARR */
		{ "setup.log", false, M, "{\"text\":\"x\",\"done\":\"true\"}",
		  "done" },
		{ "setup.log", false, M, "{\"text\":\"x\",\"done\":1}",
		  "done" },
		{ "objects.want", true, M,
		  "{\"checkpoint\":\"" OID "\",\"have\":{}}", "have" },
		/* an optional field, when present, must be well formed */
		{ "session.start", false, C,
		  "{\"machine\":\"m\",\"dir\":\"/d\",\"cols\":\"80\"}",
		  "cols" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *text = with_body(cases[i].type, cases[i].session,
				       cases[i].body);
		char needle[64];

		snprintf(needle, sizeof(needle), "\"%s\"", cases[i].field);
		expect_refused(text, cases[i].from, PROTO_E_BAD_MESSAGE,
			       needle);
		free(text);
	}
}

/* Edge values that are valid: 2^64-1, leading zeros, negative integers. */
static void test_field_edges_valid(void **state)
{
	static const char *bodies[] = {
		"{\"seq\":\"18446744073709551615\"}",
		"{\"seq\":\"00000000000000000001\"}",
		"{\"seq\":\"0\"}",
	};
	char *text;

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		text = with_body("attached", true, bodies[i]);
		expect_accepted(text, R);
		free(text);
	}
	text = with_body("session.exited", true, "{\"status\":-15}");
	expect_accepted(text, M);
	free(text);
	text = with_body("session.exited", true, "{\"status\":1.0}");
	expect_accepted(text, M);
	free(text);
}

/* A type nobody defined is refused as unknown_type, keeping the id. */
static void test_unknown_type(void **state)
{
	struct proto_msg m;
	const char *code;
	char cause[CAUSE_LEN];
	char text[1200];

	expect_refused("{\"type\":\"session.explode\",\"body\":{}}", C,
		       PROTO_E_UNKNOWN_TYPE, "session.explode");
	expect_refused("{\"type\":\"\"}", C, PROTO_E_UNKNOWN_TYPE, NULL);
	expect_refused("{\"type\":\"PING\"}", C, PROTO_E_UNKNOWN_TYPE,
		       "PING");

	assert_int_equal(decode("{\"type\":\"nope\",\"id\":\"q9\"}", C, &m,
				&code, cause), -EINVAL);
	assert_string_equal(code, PROTO_E_UNKNOWN_TYPE);
	assert_string_equal(m.id, "q9");
	proto_msg_free(&m);

	/* a long type name is cut in the cause, which stays in its buffer */
	strcpy(text, "{\"type\":\"");
	memset(text + strlen(text), 'x', 1000);
	strcpy(text + 9 + 1000, "\"}");
	assert_int_equal(decode(text, C, &m, &code, cause), -EINVAL);
	assert_string_equal(code, PROTO_E_UNKNOWN_TYPE);
	assert_true(strlen(cause) < 100);
	proto_msg_free(&m);
}

/* Every type is refused as forbidden from each role that may not send it. */
static void test_forbidden(void **state)
{
	for (size_t i = 0; i < NSAMPLES; i++) {
		char *text = encode_sample(&samples[i], "f1", true);

		for (size_t r = 0; r < 3; r++) {
			struct proto_msg m;
			const char *code;
			char cause[CAUSE_LEN];
			int rc = decode(text, roles[r], &m, &code, cause);

			if (samples[i].from & roles[r]) {
				if (rc != 0)
					fail_msg("%s from role %u: %s",
						 samples[i].type, roles[r],
						 cause);
			} else {
				assert_int_equal(rc, -EINVAL);
				assert_string_equal(code, PROTO_E_FORBIDDEN);
				assert_string_equal(m.id, "f1");
				assert_non_null(strstr(cause,
						       samples[i].type));
			}
			proto_msg_free(&m);
		}
		free(text);
	}
}

/* Types that need an envelope session are refused without one. */
static void test_session_required(void **state)
{
	for (size_t i = 0; i < NSAMPLES; i++) {
		char *text = encode_sample(&samples[i], NULL, false);

		if (samples[i].session)
			expect_refused(text, sender_of(&samples[i]),
				       PROTO_E_BAD_MESSAGE, "\"session\"");
		else
			expect_accepted(text, sender_of(&samples[i]));
		free(text);
	}
}

/* Malformed envelopes are refused as bad_message. */
static void test_envelope_errors(void **state)
{
	static const char *bad[] = {
		"",
		"{",
		"hello",
		"{\"type\":\"ping\",}",
		"[{\"type\":\"ping\"}]",
		"\"ping\"",
		"null",
		"42",
		"{}",
		"{\"type\":7}",
		"{\"Type\":\"ping\"}",
		"{\"type\":\"ping\",\"body\":[]}",
		"{\"type\":\"ping\",\"body\":\"x\"}",
		"{\"type\":\"ping\",\"body\":null}",
		"{\"type\":\"ping\",\"session\":\"abc\"}",
		"{\"type\":\"ping\",\"session\":5}",
		"{\"type\":\"ping\",\"session\":\"\"}",
		"{\"type\":\"session.stop\",\"session\":null}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_refused(bad[i], C, PROTO_E_BAD_MESSAGE, NULL);
	expect_refused("{\"type\":\"ping\",\"session\":\"abc\"}", C,
		       PROTO_E_BAD_MESSAGE, "\"session\"");
	expect_refused("{\"type\":\"ping\",\"body\":[]}", C,
		       PROTO_E_BAD_MESSAGE, "\"body\"");
}

/* The envelope id: at most 64 bytes and a string, else out->id stays "". */
static void test_envelope_id(void **state)
{
	struct proto_msg m;
	const char *code;
	char cause[CAUSE_LEN];
	char id[PROTO_ID_MAX + 2];
	char text[256];

	memset(id, 'a', PROTO_ID_MAX);
	id[PROTO_ID_MAX] = '\0';
	snprintf(text, sizeof(text), "{\"type\":\"ping\",\"id\":\"%s\"}", id);
	assert_int_equal(decode(text, C, &m, &code, cause), 0);
	assert_string_equal(m.id, id);
	proto_msg_free(&m);

	strcat(id, "a");
	snprintf(text, sizeof(text), "{\"type\":\"ping\",\"id\":\"%s\"}", id);
	assert_int_equal(decode(text, C, &m, &code, cause), -EINVAL);
	assert_string_equal(code, PROTO_E_BAD_MESSAGE);
	assert_string_equal(m.id, "");
	assert_non_null(strstr(cause, "\"id\""));
	proto_msg_free(&m);

	assert_int_equal(decode("{\"type\":\"ping\",\"id\":17}", C, &m,
				&code, cause), -EINVAL);
	assert_string_equal(code, PROTO_E_BAD_MESSAGE);
	assert_string_equal(m.id, "");
	proto_msg_free(&m);

	assert_int_equal(decode("{\"type\":\"ping\",\"id\":[\"x\"]}", C, &m,
				&code, cause), -EINVAL);
	assert_string_equal(m.id, "");
	proto_msg_free(&m);

	/* the id is kept for the reply when a later check fails */
	assert_int_equal(decode("{\"type\":\"session.move\",\"id\":\"r2\","
				"\"session\":\"" UUID "\",\"body\":{}}", C,
				&m, &code, cause), -EINVAL);
	assert_string_equal(code, PROTO_E_BAD_MESSAGE);
	assert_string_equal(m.id, "r2");
	proto_msg_free(&m);

	/* not JSON: nothing to free, and the id is still "" */
	assert_int_equal(decode("{\"id\":\"x\"", C, &m, &code, cause),
			 -EINVAL);
	assert_string_equal(m.id, "");
	assert_null(m.root);
	proto_msg_free(&m);
}

/* A ping whose body holds `n` nested arrays: depth n + 2; caller frees. */
static char *nested(int n)
{
	char *text = malloc((size_t)n * 2 + 64);
	char *p = text;

	assert_non_null(text);
	p += sprintf(p, "{\"type\":\"ping\",\"body\":{\"x\":");
	memset(p, '[', (size_t)n);
	p += n;
	memset(p, ']', (size_t)n);
	p += n;
	strcpy(p, "}}");
	return text;
}

/* Sixteen levels of nesting pass, seventeen are refused. */
static void test_nesting(void **state)
{
	char *text = nested(PROTO_MAX_DEPTH - 2);

	expect_accepted(text, C);
	free(text);

	text = nested(PROTO_MAX_DEPTH - 1);
	expect_refused(text, C, PROTO_E_BAD_MESSAGE, "16");
	free(text);

	/* far deeper than cJSON's own limit: refused, not a stack overflow */
	text = nested(100000);
	expect_refused(text, C, PROTO_E_BAD_MESSAGE, NULL);
	free(text);
}

/* Over PROTO_MAX_MESSAGE is too_large before parsing; the limit passes. */
static void test_too_large(void **state)
{
	size_t n = PROTO_MAX_MESSAGE;
	char *text = malloc(n + 1);
	struct proto_msg m;
	const char *code;
	char cause[CAUSE_LEN];
	int head, tail = 3;

	assert_non_null(text);

	/* exactly the limit: an error whose message fills the rest */
	head = sprintf(text, "{\"type\":\"error\",\"body\":{\"code\":\"x\","
		       "\"message\":\"");
	memset(text + head, 'm', n - (size_t)head - (size_t)tail);
	memcpy(text + n - (size_t)tail, "\"}}", (size_t)tail);
	assert_int_equal(proto_msg_decode(text, n, R, &m, &code, cause,
					  sizeof(cause)), 0);
	assert_string_equal(m.type, "error");
	proto_msg_free(&m);

	/* one byte over, and not JSON: the size is checked first */
	memset(text, '[', n + 1);
	assert_int_equal(proto_msg_decode(text, n + 1, R, &m, &code, cause,
					  sizeof(cause)), -EINVAL);
	assert_string_equal(code, PROTO_E_TOO_LARGE);
	assert_null(m.root);
	assert_string_equal(m.id, "");
	proto_msg_free(&m);
	free(text);
}

/* The decoder honours `len` and ignores what lies past it. */
static void test_length_bound(void **state)
{
	static const char text[] = "{\"type\":\"ping\"}{\"junk";
	struct proto_msg m;
	const char *code;
	char cause[CAUSE_LEN];

	assert_int_equal(proto_msg_decode(text, 15, C, &m, &code, cause,
					  sizeof(cause)), 0);
	assert_string_equal(m.type, "ping");
	proto_msg_free(&m);

	assert_int_equal(proto_msg_decode(text, 10, C, &m, &code, cause,
					  sizeof(cause)), -EINVAL);
	assert_string_equal(code, PROTO_E_BAD_MESSAGE);
	proto_msg_free(&m);
}

/* A frame holds one JSON value: whitespace may follow it, nothing else. */
static void test_trailing_bytes(void **state)
{
	struct proto_msg m;
	const char *code;
	char cause[CAUSE_LEN];

	expect_accepted(" {\"type\":\"ping\"} \r\n\t", C);
	expect_refused("{\"type\":\"ping\"}garbage", C, PROTO_E_BAD_MESSAGE,
		       "after");
	expect_refused("{\"type\":\"ping\"}{\"type\":\"pong\"}", C,
		       PROTO_E_BAD_MESSAGE, "after");

	/* a NUL inside the frame's length is a byte too */
	assert_int_equal(proto_msg_decode("{\"type\":\"ping\"}", 16, C, &m,
					  &code, cause, sizeof(cause)),
			 -EINVAL);
	assert_string_equal(code, PROTO_E_BAD_MESSAGE);
	proto_msg_free(&m);
}

/* A tiny cause buffer truncates the cause without overflowing. */
static void test_small_cause(void **state)
{
	struct proto_msg m;
	const char *code;
	char cause[8];

	memset(cause, 'Z', sizeof(cause));
	assert_int_equal(proto_msg_decode("[]", 2, C, &m, &code, cause, 4),
			 -EINVAL);
	assert_int_equal(strlen(cause), 3);
	assert_int_equal(cause[4], 'Z');
	proto_msg_free(&m);
}

/* proto_u64 reads decimal strings up to 2^64-1 and nothing else. */
static void test_accessor_u64(void **state)
{
	cJSON *o = cJSON_Parse("{\"a\":\"0\",\"b\":\"18446744073709551615\","
			       "\"c\":\"18446744073709551616\",\"d\":\"12a\","
			       "\"e\":5,\"f\":\"\",\"g\":\"-1\","
			       "\"h\":\"007\",\"Seq\":\"1\"}");
	uint64_t v = 99;

	assert_int_equal(proto_u64(o, "a", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(proto_u64(o, "b", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(proto_u64(o, "h", &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(proto_u64(o, "c", &v), -EINVAL);
	assert_int_equal(proto_u64(o, "d", &v), -EINVAL);
	assert_int_equal(proto_u64(o, "e", &v), -EINVAL);
	assert_int_equal(proto_u64(o, "f", &v), -EINVAL);
	assert_int_equal(proto_u64(o, "g", &v), -EINVAL);
	assert_int_equal(proto_u64(o, "missing", &v), -EINVAL);
	assert_int_equal(proto_u64(o, "seq", &v), -EINVAL);
	assert_int_equal(proto_u64(o, "Seq", &v), 0);
	cJSON_Delete(o);

	/* proto_add_u64 writes what proto_u64 reads */
	o = cJSON_CreateObject();
	proto_add_u64(o, "max", UINT64_MAX);
	proto_add_u64(o, "zero", 0);
	assert_string_equal(proto_str(o, "max"), "18446744073709551615");
	assert_string_equal(proto_str(o, "zero"), "0");
	assert_int_equal(proto_u64(o, "max", &v), 0);
	assert_true(v == UINT64_MAX);
	cJSON_Delete(o);
}

/* proto_int reads integral numbers in range only. */
static void test_accessor_int(void **state)
{
	cJSON *o = cJSON_Parse("{\"a\":42,\"b\":-7,\"c\":1.5,\"d\":\"42\","
			       "\"e\":1e300,\"f\":-1e300,\"g\":true,"
			       "\"h\":1e999,\"A\":1}");
	int64_t v = 99;

	assert_int_equal(proto_int(o, "a", &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(proto_int(o, "b", &v), 0);
	assert_int_equal(v, -7);
	assert_int_equal(proto_int(o, "c", &v), -EINVAL);
	assert_int_equal(proto_int(o, "d", &v), -EINVAL);
	assert_int_equal(proto_int(o, "e", &v), -EINVAL);
	assert_int_equal(proto_int(o, "f", &v), -EINVAL);
	assert_int_equal(proto_int(o, "g", &v), -EINVAL);
	assert_int_equal(proto_int(o, "h", &v), -EINVAL);
	assert_int_equal(proto_int(o, "missing", &v), -EINVAL);
	v = 99;
	assert_int_equal(proto_int(o, "A", &v), 0);
	assert_int_equal(v, 1);
	cJSON_Delete(o);
}

/* proto_bool takes JSON booleans only, else the fallback. */
static void test_accessor_bool(void **state)
{
	cJSON *o = cJSON_Parse("{\"t\":true,\"f\":false,\"s\":\"true\","
			       "\"n\":1,\"T\":true}");

	assert_true(proto_bool(o, "t", false));
	assert_false(proto_bool(o, "f", true));
	assert_true(proto_bool(o, "s", true));
	assert_false(proto_bool(o, "s", false));
	assert_false(proto_bool(o, "n", false));
	assert_false(proto_bool(o, "missing", false));
	assert_true(proto_bool(o, "missing", true));
	assert_false(proto_bool(o, "F", false));
	cJSON_Delete(o);
}

/* proto_str returns strings only and matches names by exact case. */
static void test_accessor_str(void **state)
{
	cJSON *o = cJSON_Parse("{\"Type\":\"upper\",\"n\":3,\"e\":\"\","
			       "\"z\":null}");

	assert_null(proto_str(o, "type"));
	assert_string_equal(proto_str(o, "Type"), "upper");
	assert_null(proto_str(o, "n"));
	assert_string_equal(proto_str(o, "e"), "");
	assert_null(proto_str(o, "z"));
	assert_null(proto_str(o, "missing"));
	cJSON_Delete(o);

	/* body field names are case-sensitive too */
	expect_refused("{\"type\":\"session.move\",\"session\":\"" UUID "\","
		       "\"body\":{\"To\":\"sandbox\"}}", C,
		       PROTO_E_BAD_MESSAGE, "\"to\"");
	expect_refused("{\"type\":\"ping\",\"Session\":\"x\",\"SESSION\":1,"
		       "\"session\":7}", C, PROTO_E_BAD_MESSAGE,
		       "\"session\"");
}

/* \u0000 inside strings is survived (cJSON cuts the string there). */
static void test_embedded_nul(void **state)
{
	static const char *texts[] = {
		"{\"type\":\"error\",\"id\":\"a\\u0000b\",\"body\":"
		"{\"code\":\"x\\u0000y\",\"message\":\"m\"}}",
		"{\"type\":\"error\",\"body\":{\"code\":\"x\","
		"\"message\":\"\\u0000\"}}",
		"{\"type\":\"\\u0000ping\"}",
		"{\"type\":\"session.move\",\"session\":\"" UUID "\\u0000\","
		"\"body\":{\"to\":\"sandbox\"}}",
		"{\"type\":\"ping\",\"body\":{\"\\u0000\":1}}",
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct proto_msg m;
		const char *code;
		char cause[CAUSE_LEN];

		if (decode(texts[i], R, &m, &code, cause) != 0) {
			assert_non_null(code);
			assert_true(cause[0] != '\0');
		}
		proto_msg_free(&m);
	}

	/* an empty string after the cut is not a non-empty string */
	expect_refused(texts[1], R, PROTO_E_BAD_MESSAGE, "\"message\"");
}

/* A header written by proto_bin_header decodes to the same fields. */
static void test_bin_round_trip(void **state)
{
	static const uint8_t payload[] = "hello";
	struct proto_bin b = {
		.kind = PROTO_BIN_PACK,
		.flags = PROTO_BIN_LAST,
		.epoch = 0xdeadbeef,
		.seq = UINT64_MAX,
	};
	uint8_t frame[PROTO_BIN_HEADER + sizeof(payload)];
	struct proto_bin got;
	const char *cause = NULL;

	for (int i = 0; i < 16; i++)
		b.session[i] = (uint8_t)(0xa0 + i);
	proto_bin_header(&b, frame);
	memcpy(frame + PROTO_BIN_HEADER, payload, sizeof(payload));
	assert_int_equal(proto_bin_decode(frame, sizeof(frame), &got, &cause),
			 0);
	assert_int_equal(got.kind, PROTO_BIN_PACK);
	assert_int_equal(got.flags, PROTO_BIN_LAST);
	assert_int_equal(got.epoch, 0xdeadbeef);
	assert_memory_equal(got.session, b.session, 16);
	assert_true(got.seq == UINT64_MAX);
	assert_ptr_equal(got.data, frame + PROTO_BIN_HEADER);
	assert_int_equal(got.len, sizeof(payload));

	/* the wire layout: version, kind, flags, epoch, uuid, seq, all BE */
	b.kind = PROTO_BIN_OUTPUT;
	b.flags = 0x0102;
	b.epoch = 0x03040506;
	b.seq = 0x0708090a0b0c0d0eULL;
	proto_bin_header(&b, frame);
	assert_int_equal(frame[0], 1);
	assert_int_equal(frame[1], 1);
	assert_int_equal(frame[2], 0x01);
	assert_int_equal(frame[3], 0x02);
	assert_int_equal(frame[4], 0x03);
	assert_int_equal(frame[7], 0x06);
	assert_int_equal(frame[8], 0xa0);
	assert_int_equal(frame[23], 0xaf);
	assert_int_equal(frame[24], 0x07);
	assert_int_equal(frame[31], 0x0e);
	assert_int_equal(proto_bin_decode(frame, PROTO_BIN_HEADER, &got,
					  &cause), 0);
	assert_int_equal(got.kind, PROTO_BIN_OUTPUT);
	assert_int_equal(got.flags, 0x0102);
	assert_int_equal(got.epoch, 0x03040506);
	assert_true(got.seq == 0x0708090a0b0c0d0eULL);
	assert_int_equal(got.len, 0);

	b.kind = PROTO_BIN_INPUT;
	b.epoch = 0;
	b.seq = 0;
	proto_bin_header(&b, frame);
	assert_int_equal(proto_bin_decode(frame, PROTO_BIN_HEADER, &got,
					  &cause), 0);
	assert_int_equal(got.kind, PROTO_BIN_INPUT);
	assert_true(got.seq == 0);
}

/* Short frames, unknown versions and kinds, oversize payloads fail. */
static void test_bin_errors(void **state)
{
	struct proto_bin b = { .kind = PROTO_BIN_OUTPUT, .seq = 1 };
	size_t n = PROTO_BIN_HEADER + PROTO_CHUNK + 1;
	uint8_t *frame = calloc(1, PROTO_MAX_MESSAGE + 1);
	struct proto_bin got;
	const char *cause;

	assert_non_null(frame);
	proto_bin_header(&b, frame);

	cause = NULL;
	assert_int_equal(proto_bin_decode(frame, PROTO_BIN_HEADER - 1, &got,
					  &cause), -EINVAL);
	assert_non_null(cause);
	assert_int_equal(proto_bin_decode(frame, 0, &got, &cause), -EINVAL);

	assert_int_equal(proto_bin_decode(frame, n - 1, &got, &cause), 0);
	assert_int_equal(got.len, PROTO_CHUNK);
	cause = NULL;
	assert_int_equal(proto_bin_decode(frame, n, &got, &cause), -E2BIG);
	assert_non_null(strstr(cause, "chunk"));
	assert_int_equal(proto_bin_decode(frame, PROTO_MAX_MESSAGE + 1, &got,
					  &cause), -E2BIG);

	frame[0] = 0;
	assert_int_equal(proto_bin_decode(frame, 40, &got, &cause), -EINVAL);
	assert_non_null(strstr(cause, "version"));
	frame[0] = 2;
	assert_int_equal(proto_bin_decode(frame, 40, &got, &cause), -EINVAL);
	frame[0] = 1;

	frame[1] = 0;
	assert_int_equal(proto_bin_decode(frame, 40, &got, &cause), -EINVAL);
	assert_non_null(strstr(cause, "kind"));
	frame[1] = 4;
	assert_int_equal(proto_bin_decode(frame, 40, &got, &cause), -EINVAL);
	frame[1] = 255;
	assert_int_equal(proto_bin_decode(frame, 40, &got, &cause), -EINVAL);
	free(frame);
}

/* New UUIDs are version 4, distinct, and survive parse and format. */
static void test_uuid_new(void **state)
{
	char a[PROTO_UUID_LEN + 1], b[PROTO_UUID_LEN + 1];
	char again[PROTO_UUID_LEN + 1];
	uint8_t raw[16];

	proto_uuid_new(a);
	proto_uuid_new(b);
	assert_int_equal(strlen(a), PROTO_UUID_LEN);
	assert_string_not_equal(a, b);
	assert_int_equal(a[14], '4');
	assert_non_null(strchr("89ab", a[19]));
	assert_int_equal(proto_uuid_parse(a, raw), 0);
	assert_int_equal(raw[6] >> 4, 4);
	proto_uuid_format(raw, again);
	assert_string_equal(again, a);
}

/* Known bytes format to known text and back; uppercase parses. */
static void test_uuid_known(void **state)
{
	static const uint8_t want[16] = {
		0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
		0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
	};
	char text[PROTO_UUID_LEN + 1];
	uint8_t raw[16];

	proto_uuid_format(want, text);
	assert_string_equal(text, "00112233-4455-6677-8899-aabbccddeeff");
	assert_int_equal(proto_uuid_parse(text, raw), 0);
	assert_memory_equal(raw, want, 16);
	assert_int_equal(proto_uuid_parse(
		"00112233-4455-6677-8899-AABBCCDDEEFF", raw), 0);
	assert_memory_equal(raw, want, 16);
}

/* Malformed UUID text is refused. */
static void test_uuid_invalid(void **state)
{
	static const char *bad[] = {
		"",
		"00112233-4455-6677-8899-aabbccddeef",
		"00112233-4455-6677-8899-aabbccddeeff0",
		"00112233445566778899aabbccddeeff",
		"0011223-34455-6677-8899-aabbccddeeff",
		"00112233-4455-6677-8899_aabbccddeeff",
		"00112233-4455-6677-8899-aabbccddeefg",
		"00112233-4455-6677-8899-aabbccddee f",
		"{0112233-4455-6677-8899-aabbccddeef}",
		"00112233-4455-6677-8899-aabbccddeeff\n",
		"001122334-455-6677-8899-aabbccddeeff",
		"------------------------------------",
	};
	uint8_t raw[16];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (proto_uuid_parse(bad[i], raw) != -EINVAL)
			fail_msg("accepted uuid \"%s\"", bad[i]);
}

/* Object ids are exactly 40 lowercase hex digits. */
static void test_oid_valid(void **state)
{
	static const char *bad[] = {
		"",
		"0123456789abcdef0123456789abcdef0123456",
		OID "8",
		"0123456789ABCDEF0123456789abcdef01234567",
		"0123456789abcdef0123456789abcdef0123456g",
		"0123456789abcdef0123456789abcdef012345 7",
	};
	static const char zeros[] = "0000000000000000000000000000000000000000";

	assert_true(proto_oid_valid(OID));
	assert_true(proto_oid_valid(zeros));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (proto_oid_valid(bad[i]))
			fail_msg("accepted oid \"%s\"", bad[i]);
}

/* A deterministic xorshift64 generator, so a failure reproduces. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Applies 1 to 4 flips, inserts or deletes to buf[0..*len), which has
 * room for `cap` bytes. */
static void mutate(uint8_t *buf, size_t *len, size_t cap)
{
	static const char tokens[] = "{}[]\",:\\0123456789eE+-.tfnu ";
	int n = 1 + (int)(rng() % 4);

	for (int i = 0; i < n; i++) {
		size_t at = *len ? (size_t)(rng() % *len) : 0;
		uint8_t byte = rng() % 2 ? (uint8_t)rng()
			     : (uint8_t)tokens[rng() % (sizeof(tokens) - 1)];

		switch (rng() % 3) {
		case 0:
			if (*len)
				buf[at] ^= (uint8_t)(1u << (rng() % 8));
			break;
		case 1:
			if (*len < cap) {
				memmove(buf + at + 1, buf + at, *len - at);
				buf[at] = byte;
				(*len)++;
			}
			break;
		default:
			if (*len) {
				memmove(buf + at, buf + at + 1, *len - at - 1);
				(*len)--;
			}
			break;
		}
	}
}

#define MUTATIONS 20000

/* Damaged text frames decode or fail with a code and a cause, never crash;
 * each copy is exactly its length, with no NUL after it. */
static void test_mutations_text(void **state)
{
	char *seeds[NSAMPLES];
	uint8_t buf[2048];
	size_t ok = 0;

	for (size_t i = 0; i < NSAMPLES; i++)
		seeds[i] = encode_sample(&samples[i], "m1", true);
	for (int i = 0; i < MUTATIONS; i++) {
		const char *seed = seeds[rng() % NSAMPLES];
		size_t len = strlen(seed);
		unsigned from = roles[rng() % 3];
		struct proto_msg m;
		const char *code = NULL;
		char cause[CAUSE_LEN] = "";
		char *copy;
		int rc;

		assert_true(len < sizeof(buf));
		memcpy(buf, seed, len);
		mutate(buf, &len, sizeof(buf));
		copy = malloc(len ? len : 1);
		assert_non_null(copy);
		memcpy(copy, buf, len);
		rc = proto_msg_decode(copy, len, from, &m, &code, cause,
				      sizeof(cause));
		if (rc == 0) {
			assert_non_null(m.type);
			assert_non_null(m.id);
			assert_true(cJSON_IsObject(m.body));
			ok++;
		} else {
			assert_int_equal(rc, -EINVAL);
			assert_non_null(code);
			assert_true(cause[0] != '\0');
			assert_null(m.type);
			assert_non_null(m.id);
		}
		proto_msg_free(&m);
		free(copy);
	}
	for (size_t i = 0; i < NSAMPLES; i++)
		free(seeds[i]);

	/* the loop must have exercised both outcomes */
	assert_true(ok > 0 && ok < MUTATIONS);
}

/* Damaged binary frames decode within bounds or fail with a cause. */
static void test_mutations_bin(void **state)
{
	uint8_t seed[PROTO_BIN_HEADER + 64];
	uint8_t buf[sizeof(seed) + 16];
	struct proto_bin b = { .kind = PROTO_BIN_OUTPUT, .epoch = 3,
			       .seq = 77 };
	size_t ok = 0;

	proto_bin_header(&b, seed);
	memset(seed + PROTO_BIN_HEADER, 'o', sizeof(seed) - PROTO_BIN_HEADER);
	for (int i = 0; i < MUTATIONS; i++) {
		size_t len = sizeof(seed);
		struct proto_bin got;
		const char *cause = NULL;
		uint8_t *copy;
		int rc;

		memcpy(buf, seed, len);
		if (rng() % 2)
			len = (size_t)(rng() % (PROTO_BIN_HEADER + 8));
		mutate(buf, &len, sizeof(buf));
		copy = malloc(len ? len : 1);
		assert_non_null(copy);
		memcpy(copy, buf, len);
		rc = proto_bin_decode(copy, len, &got, &cause);
		if (rc == 0) {
			assert_true(len >= PROTO_BIN_HEADER);
			assert_ptr_equal(got.data, copy + PROTO_BIN_HEADER);
			assert_int_equal(got.len, len - PROTO_BIN_HEADER);
			assert_in_range(got.kind, PROTO_BIN_OUTPUT,
					PROTO_BIN_PACK);
			ok++;
		} else {
			assert_true(rc == -EINVAL || rc == -E2BIG);
			assert_non_null(cause);
			assert_true(cause[0] != '\0');
		}
		free(copy);
	}
	assert_true(ok > 0 && ok < MUTATIONS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_round_trip_bare),
		cmocka_unit_test(test_body_absent),
		cmocka_unit_test(test_encode_error),
		cmocka_unit_test(test_samples_complete),
		cmocka_unit_test(test_missing_fields),
		cmocka_unit_test(test_wrong_field_types),
		cmocka_unit_test(test_field_edges_valid),
		cmocka_unit_test(test_unknown_type),
		cmocka_unit_test(test_forbidden),
		cmocka_unit_test(test_session_required),
		cmocka_unit_test(test_envelope_errors),
		cmocka_unit_test(test_envelope_id),
		cmocka_unit_test(test_nesting),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_length_bound),
		cmocka_unit_test(test_trailing_bytes),
		cmocka_unit_test(test_small_cause),
		cmocka_unit_test(test_accessor_u64),
		cmocka_unit_test(test_accessor_int),
		cmocka_unit_test(test_accessor_bool),
		cmocka_unit_test(test_accessor_str),
		cmocka_unit_test(test_embedded_nul),
		cmocka_unit_test(test_bin_round_trip),
		cmocka_unit_test(test_bin_errors),
		cmocka_unit_test(test_uuid_new),
		cmocka_unit_test(test_uuid_known),
		cmocka_unit_test(test_uuid_invalid),
		cmocka_unit_test(test_oid_valid),
		cmocka_unit_test(test_mutations_text),
		cmocka_unit_test(test_mutations_bin),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
