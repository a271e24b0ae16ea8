/*
 * fuzz_frame.c: fuzz target for the binary frame decoder
 * (proto_bin_decode), fed the raw bytes of a binary frame.
 *
 * A frame that decodes must give back its own header when the decoded
 * fields are written again (proto_bin_header), and its payload must be the
 * bytes after the header; a frame that does not must yield a cause.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

/* Stops the run with a message: an invariant of the decoder broke. */
#define CHECK(cond, ...) do {						\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_frame: %s: ", #cond);	\
			fprintf(stderr, __VA_ARGS__);			\
			fputc('\n', stderr);				\
			abort();					\
		}							\
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The header rules of PROTOCOL.md, written apart from the decoder. */
static int frame_valid(const uint8_t *data, size_t size)
{
	return size >= PROTO_BIN_HEADER &&
	       size - PROTO_BIN_HEADER <= PROTO_CHUNK && data[0] == 1 &&
	       data[1] >= PROTO_BIN_OUTPUT && data[1] <= PROTO_BIN_PACK;
}

/* Decodes the input as one binary frame and checks the result. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t header[PROTO_BIN_HEADER];
	struct proto_bin b;
	const char *cause = NULL;
	int rc;

	memset(&b, 0, sizeof(b));
	rc = proto_bin_decode(data, size, &b, &cause);
	CHECK((rc == 0) == frame_valid(data, size),
	      "a %zu-byte frame was %s (%s)", size,
	      rc == 0 ? "accepted" : "refused", cause ? cause : "");
	if (rc < 0) {
		CHECK(cause != NULL && cause[0] != '\0',
		      "refused a %zu-byte frame without a cause", size);
		return 0;
	}

	CHECK(b.data == data + PROTO_BIN_HEADER &&
	      b.len == size - PROTO_BIN_HEADER,
	      "payload is not the bytes after the header");

	proto_bin_header(&b, header);
	CHECK(!memcmp(header, data, PROTO_BIN_HEADER),
	      "the header does not encode back to its own bytes");
	return 0;
}
