/*
 * proto.h: Baton's wire protocol, baton.v1 (proto/PROTOCOL.md describes
 * every message).
 *
 * Control messages are JSON text frames with an envelope
 *   {"type": "...", "id": "...", "session": "...", "body": {...}}
 * A reply carries the id of the request it answers. Bulk bytes (PTY output
 * and input, pack data) travel in binary frames with a fixed 32-byte header.
 * 64-bit numbers travel as decimal strings.
 */
#ifndef BATON_PROTO_H
#define BATON_PROTO_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION 1
#define PROTO_SUBPROTOCOL "baton.v1"
#define PROTO_MAX_MESSAGE (1024 * 1024)	/* one whole message, any kind */
#define PROTO_MAX_DEPTH 16		/* JSON nesting */
#define PROTO_CHUNK (64 * 1024)		/* bulk payload per binary frame */
#define PROTO_ID_MAX 64			/* envelope id length */
#define PROTO_TYPE_MAX 32

/* Who may send a message (a bit set). */
enum proto_role {
	PROTO_FROM_CLIENT = 1 << 0,
	PROTO_FROM_MACHINE = 1 << 1,
	PROTO_FROM_RELAY = 1 << 2,
};

/* Error codes in "error" messages. */
#define PROTO_E_BAD_MESSAGE "bad_message"	/* malformed or invalid */
#define PROTO_E_UNKNOWN_TYPE "unknown_type"
#define PROTO_E_TOO_LARGE "too_large"
#define PROTO_E_UNAUTHORIZED "unauthorized"	/* no or wrong token */
#define PROTO_E_FORBIDDEN "forbidden"		/* not allowed for you */
#define PROTO_E_NOT_FOUND "not_found"
#define PROTO_E_CONFLICT "conflict"		/* wrong state for that */
#define PROTO_E_UNAVAILABLE "unavailable"	/* peer offline, try later */
#define PROTO_E_STALE "stale"			/* fenced: older epoch */
#define PROTO_E_FAILED "failed"			/* the operation failed */
#define PROTO_E_VERSION "version"		/* protocol version mismatch */
#define PROTO_E_LIMITED "limited"		/* over a limit; try later */

/* A decoded control message. The strings point into `root`. */
struct proto_msg {
	const char *type;
	const char *id;		/* "" when absent */
	const char *session;	/* NULL when absent */
	cJSON *body;		/* always an object */
	cJSON *root;		/* owns everything */
};

/*
 * Parses and validates a text frame sent by `from` (a proto_role bit):
 * size, nesting, envelope, known type, allowed sender, and the type's
 * required body fields. On failure returns a negative number, fills `cause`
 * with a sentence and `code` with a PROTO_E_* code, and leaves *out empty
 * except out->id, which is set when the envelope's id could be read (so the
 * error reply can reference it; it then points into storage owned by `out`
 * and must still be released with proto_msg_free).
 */
int proto_msg_decode(const char *text, size_t len, unsigned from,
		     struct proto_msg *out, const char **code, char *cause,
		     size_t cause_len);
void proto_msg_free(struct proto_msg *m);

/* Encodes a message; takes ownership of body (NULL for {}); caller frees
 * the result. id and session may be NULL. */
char *proto_encode(const char *type, const char *id, const char *session,
		   cJSON *body);
/* An "error" message answering request `id` (may be NULL). */
char *proto_encode_error(const char *id, const char *session,
			 const char *code, const char *message);

/* Body accessors (case-sensitive names). */
const char *proto_str(const cJSON *obj, const char *name);
int proto_u64(const cJSON *obj, const char *name, uint64_t *out);
int proto_int(const cJSON *obj, const char *name, int64_t *out);
bool proto_bool(const cJSON *obj, const char *name, bool fallback);
void proto_add_u64(cJSON *obj, const char *name, uint64_t v);

/* Binary frames. */
enum proto_bin_kind {
	PROTO_BIN_OUTPUT = 1,	/* agent output: seq = transcript seq */
	PROTO_BIN_INPUT = 2,	/* client input: seq = client input id */
	PROTO_BIN_PACK = 3,	/* pack data: seq = chunk number from 0 */
};
#define PROTO_BIN_LAST 0x0001	/* flags: last chunk of a pack */
#define PROTO_BIN_SYNC 0x0002	/* flags: a pack of a sync, not a move */
#define PROTO_BIN_HEADER 32

struct proto_bin {
	uint8_t kind;
	uint16_t flags;
	uint32_t epoch;		/* sender's owner epoch (machines), else 0 */
	uint8_t session[16];
	uint64_t seq;
	const uint8_t *data;	/* payload, points into the frame */
	size_t len;
};

/* Validates a binary frame; cause is a static string on failure. */
int proto_bin_decode(const void *frame, size_t len, struct proto_bin *out,
		     const char **cause);
/* Writes the header of `b` (b->data and b->len ignored). */
void proto_bin_header(const struct proto_bin *b,
		      uint8_t out[PROTO_BIN_HEADER]);

/* Session ids are UUIDs: 36-char text, 16 bytes in binary frames. */
#define PROTO_UUID_LEN 36
void proto_uuid_new(char out[PROTO_UUID_LEN + 1]);
int proto_uuid_parse(const char *text, uint8_t out[16]);
void proto_uuid_format(const uint8_t in[16], char out[PROTO_UUID_LEN + 1]);
bool proto_oid_valid(const char *hex);	/* 40 lowercase hex digits */

/*
 * Copies at most out_len - 1 bytes of untrusted text for quoting in a
 * message: printable ASCII stays, anything else becomes '?', so a reply
 * is always valid UTF-8 and holds no control bytes. Returns out.
 */
char *proto_printable(const char *in, char *out, size_t out_len);

#endif
