/*
 * outbox.c: output kept until the relay acknowledges it, in memory and
 * then in a spill file.
 */
#define _GNU_SOURCE
#include "outbox.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct entry {
	struct entry *prev, *next;
	struct proto_bin hdr;	/* data and len unused */
	size_t len;
	uint8_t *data;		/* NULL when spilled */
	off_t off;		/* where in the spill file */
	bool sent;		/* on the current connection */
};

struct outbox {
	struct entry *head, *tail;
	struct entry *cursor;	/* first entry not sent; NULL: all sent */
	char *spill_path;
	int spill_fd;
	off_t spill_end;
	size_t mem_max;
	uint64_t disk_max;
	size_t count;
	size_t unsent;
	size_t memory;
	uint64_t spilled;
};

struct outbox *outbox_new(const char *spill_path, size_t mem_max,
			  uint64_t disk_max)
{
	struct outbox *o = xcalloc(1, sizeof(*o));

	o->spill_path = xstrdup(spill_path);
	o->spill_fd = -1;
	o->mem_max = mem_max;
	o->disk_max = disk_max;
	return o;
}

void outbox_free(struct outbox *o)
{
	if (o == NULL)
		return;
	while (o->head) {
		struct entry *e = o->head;

		o->head = e->next;
		free(e->data);
		free(e);
	}
	if (o->spill_fd >= 0) {
		close(o->spill_fd);
		unlink(o->spill_path);
	}
	free(o->spill_path);
	free(o);
}

/* Writes a chunk at the end of the spill file. */
static int spill(struct outbox *o, struct entry *e, const void *data)
{
	const uint8_t *p = data;
	size_t left = e->len;
	off_t off = o->spill_end;

	if (o->spilled + e->len > o->disk_max)
		return -ENOSPC;
	if (o->spill_fd < 0) {
		o->spill_fd = open(o->spill_path, O_RDWR | O_CREAT | O_TRUNC |
				   O_CLOEXEC, 0600);
		if (o->spill_fd < 0)
			return -errno;
	}
	while (left > 0) {
		ssize_t n = pwrite(o->spill_fd, p, left, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ENOSPC;
		p += n;
		left -= (size_t)n;
		off += n;
	}
	e->off = o->spill_end;
	o->spill_end = off;
	o->spilled += e->len;
	return 0;
}

int outbox_push(struct outbox *o, const struct proto_bin *hdr,
		const void *data, size_t len)
{
	struct entry *e = xcalloc(1, sizeof(*e));
	int err = 0;

	e->hdr = *hdr;
	e->hdr.data = NULL;
	e->hdr.len = 0;
	e->len = len;
	if (o->memory + len > o->mem_max)
		err = spill(o, e, data);
	if (o->memory + len <= o->mem_max || err < 0) {
		e->data = xmalloc(len ? len : 1);
		memcpy(e->data, data, len);
		o->memory += len;
	}

	e->prev = o->tail;
	if (o->tail)
		o->tail->next = e;
	else
		o->head = e;
	o->tail = e;
	if (o->cursor == NULL)
		o->cursor = e;
	o->count++;
	o->unsent++;
	return err;
}

int outbox_next(struct outbox *o, struct proto_bin *hdr, struct buf *data)
{
	struct entry *e = o->cursor;

	if (e == NULL)
		return -ENOENT;
	buf_reset(data);
	if (e->data) {
		buf_append(data, e->data, e->len);
	} else {
		size_t got = 0;

		buf_grow(data, e->len);
		while (got < e->len) {
			ssize_t n = pread(o->spill_fd, data->data + got,
					  e->len - got, e->off + (off_t)got);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return -EIO;
			got += (size_t)n;
		}
		data->len = e->len;
		data->data[e->len] = '\0';
	}
	*hdr = e->hdr;
	e->sent = true;
	o->cursor = e->next;
	o->unsent--;
	return 0;
}

static void drop(struct outbox *o, struct entry *e)
{
	if (!e->sent)
		o->unsent--;
	if (o->cursor == e)
		o->cursor = e->next;
	if (e->prev)
		e->prev->next = e->next;
	else
		o->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		o->tail = e->prev;
	if (e->data)
		o->memory -= e->len;
	else
		o->spilled -= e->len;
	o->count--;
	free(e->data);
	free(e);
}

void outbox_ack(struct outbox *o, const uint8_t session[16], uint64_t seq)
{
	struct entry *e = o->head;

	while (e) {
		struct entry *next = e->next;

		if (e->hdr.seq <= seq && !memcmp(e->hdr.session, session, 16))
			drop(o, e);
		e = next;
	}

	/* An empty outbox starts its spill file again. */
	if (o->head == NULL && o->spill_fd >= 0) {
		if (ftruncate(o->spill_fd, 0) == 0)
			o->spill_end = 0;
	}
}

void outbox_rewind(struct outbox *o)
{
	for (struct entry *e = o->head; e; e = e->next)
		e->sent = false;
	o->cursor = o->head;
	o->unsent = o->count;
}

size_t outbox_count(const struct outbox *o)
{
	return o->count;
}

size_t outbox_unsent(const struct outbox *o)
{
	return o->unsent;
}

size_t outbox_memory(const struct outbox *o)
{
	return o->memory;
}

uint64_t outbox_spilled(const struct outbox *o)
{
	return o->spilled;
}
