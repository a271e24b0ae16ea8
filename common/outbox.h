/*
 * outbox.h: a daemon's output on its way to the relay. Every chunk stays
 * here until the relay acknowledges storing it, so a chunk lost with a
 * connection is sent again after the reconnect (the relay drops the ones
 * it already has by seq). Up to a memory limit the bytes are kept in
 * memory; beyond it they go to a spill file, so an agent can keep running
 * while the relay is away for a long time.
 */
#ifndef BATON_OUTBOX_H
#define BATON_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "util.h"

struct outbox;

/* spill_path is created only when needed; caller keeps it unique. */
struct outbox *outbox_new(const char *spill_path, size_t mem_max,
			  uint64_t disk_max);
void outbox_free(struct outbox *o);

/*
 * Keeps a chunk. Returns 0, or -ENOSPC when the disk limit is reached or
 * the spill file cannot be written: the chunk is then kept in memory all
 * the same, and the caller should stop producing (pause the agent).
 */
int outbox_push(struct outbox *o, const struct proto_bin *hdr,
		const void *data, size_t len);
/* The oldest chunk not sent on this connection yet: fills *hdr and the
 * bytes into *data (reset first) and marks it sent. 0, or -ENOENT when
 * every chunk is sent, or -EIO when the spill file cannot be read. */
int outbox_next(struct outbox *o, struct proto_bin *hdr, struct buf *data);
/* The relay has stored the session's chunks up to seq: forget them. */
void outbox_ack(struct outbox *o, const uint8_t session[16], uint64_t seq);
/* A new connection: every chunk kept is to be sent again. */
void outbox_rewind(struct outbox *o);

size_t outbox_count(const struct outbox *o);	/* chunks kept */
size_t outbox_unsent(const struct outbox *o);	/* chunks to send */
size_t outbox_memory(const struct outbox *o);	/* bytes in memory */
uint64_t outbox_spilled(const struct outbox *o);/* bytes in the file */

#endif
