/*
 * fuzz_message.c: fuzz target for the control message decoder
 * (proto_msg_decode), fed the raw bytes of a text frame.
 *
 * Each input is decoded as sent by a client, a machine and the relay. A
 * message that decodes must encode again (proto_encode) into one that
 * decodes to the same type, id, session and body; a message that does not
 * must yield a code, a cause and an error reply the peer can decode.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define CAUSE_MAX 256

/* Stops the run with a message: an invariant of the decoder broke. */
#define CHECK(cond, ...) do {						\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_message: %s: ", #cond);	\
			fprintf(stderr, __VA_ARGS__);			\
			fputc('\n', stderr);				\
			abort();					\
		}							\
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Tells whether two strings (either may be NULL) are equal. */
static int same_str(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	       (a != NULL && b != NULL && !strcmp(a, b));
}

/* Encodes a decoded message again and checks it decodes the same. */
static void reencode_check(const struct proto_msg *m, unsigned from)
{
	struct proto_msg again;
	const char *code = NULL;
	char cause[CAUSE_MAX] = "";
	char *text, *body1, *body2;
	int rc;

	text = proto_encode(m->type, m->id, m->session,
			    cJSON_Duplicate(m->body, 1));
	rc = proto_msg_decode(text, strlen(text), from, &again, &code, cause,
			      sizeof(cause));
	if (strlen(text) > PROTO_MAX_MESSAGE) {
		/* escapes can make the text longer than what came in */
		CHECK(rc < 0 && !strcmp(code, PROTO_E_TOO_LARGE), "%s",
		      cause);
		proto_msg_free(&again);
		free(text);
		return;
	}
	CHECK(rc == 0, "re-encoded \"%s\" refused: %s", m->type, cause);
	CHECK(!strcmp(again.type, m->type), "%s became %s", m->type,
	      again.type);
	CHECK(!strcmp(again.id, m->id), "id %s became %s", m->id, again.id);
	CHECK(same_str(again.session, m->session), "session changed");

	body1 = cJSON_PrintUnformatted(m->body);
	body2 = cJSON_PrintUnformatted(again.body);
	CHECK(body1 && body2 && !strcmp(body1, body2),
	      "body %s became %s", body1, body2);
	cJSON_free(body2);
	cJSON_free(body1);
	proto_msg_free(&again);
	free(text);
}

/* Checks a refusal and that its error reply decodes at the peer. */
static void refusal_check(const struct proto_msg *m, const char *code,
			  const char *cause)
{
	struct proto_msg reply;
	const char *rcode = NULL;
	char rcause[CAUSE_MAX] = "";
	char *text;
	int rc;

	CHECK(code != NULL && code[0] != '\0', "refused without a code");
	CHECK(cause[0] != '\0', "refused without a cause (code %s)", code);
	CHECK(m->type == NULL && m->body == NULL && m->session == NULL,
	      "a refused message left fields set");
	CHECK(m->id != NULL && strlen(m->id) <= PROTO_ID_MAX,
	      "a refused message has a bad id");

	text = proto_encode_error(m->id, NULL, code, cause);
	rc = proto_msg_decode(text, strlen(text), PROTO_FROM_RELAY, &reply,
			      &rcode, rcause, sizeof(rcause));
	CHECK(rc == 0, "error reply %s refused: %s", text, rcause);
	CHECK(!strcmp(reply.type, "error"), "reply became %s", reply.type);
	proto_msg_free(&reply);
	free(text);
}

/* Decodes the input as sent by each role. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned roles[] = {
		PROTO_FROM_CLIENT, PROTO_FROM_MACHINE, PROTO_FROM_RELAY,
	};

	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		struct proto_msg m;
		const char *code = NULL;
		char cause[CAUSE_MAX] = "";
		int rc;

		rc = proto_msg_decode((const char *)data, size, roles[i], &m,
				      &code, cause, sizeof(cause));
		if (rc == 0) {
			CHECK(m.type && m.id && cJSON_IsObject(m.body),
			      "a decoded message lacks its type or body");
			reencode_check(&m, roles[i]);
		} else {
			refusal_check(&m, code, cause);
		}
		proto_msg_free(&m);
	}
	return 0;
}
