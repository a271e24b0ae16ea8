/*
 * bus.c: the relay's internal routing: which connection serves which
 * machine, and which connections listen to which session. The embedded
 * relay routes in process; a replicated relay would route through its
 * database's notifications behind this same interface.
 */
#include "relay.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

struct route {
	char *key;		/* machine id or session id */
	struct conn *conn;
	uint64_t seen;		/* listeners: last output seq sent */
	bool behind;		/* listeners: catching up from the transcript */
	struct route *next;
};

struct bus {
	struct route *machines;
	struct route *listeners;
};

struct bus *bus_new(void)
{
	return xcalloc(1, sizeof(struct bus));
}

static void routes_free(struct route *r)
{
	while (r) {
		struct route *next = r->next;

		free(r->key);
		free(r);
		r = next;
	}
}

void bus_free(struct bus *b)
{
	if (b == NULL)
		return;
	routes_free(b->machines);
	routes_free(b->listeners);
	free(b);
}

/* Removes the routes that match key (NULL: any) and conn (NULL: any). */
static void routes_remove(struct route **head, const char *key,
			  const struct conn *c)
{
	struct route **p = head;

	while (*p) {
		struct route *r = *p;

		if ((key == NULL || !strcmp(r->key, key)) &&
		    (c == NULL || r->conn == c)) {
			*p = r->next;
			free(r->key);
			free(r);
		} else {
			p = &r->next;
		}
	}
}

static struct route *route_add(struct route **head, const char *key,
			       struct conn *c)
{
	struct route *r = xcalloc(1, sizeof(*r));

	r->key = xstrdup(key);
	r->conn = c;
	r->next = *head;
	*head = r;
	return r;
}

void bus_forget(struct bus *b, struct conn *c)
{
	routes_remove(&b->machines, NULL, c);
	routes_remove(&b->listeners, NULL, c);
}

struct conn *bus_machine_set(struct bus *b, const char *machine_id,
			     struct conn *c)
{
	struct conn *old = bus_machine(b, machine_id);

	routes_remove(&b->machines, machine_id, NULL);
	route_add(&b->machines, machine_id, c);
	return old == c ? NULL : old;
}

struct conn *bus_machine(struct bus *b, const char *machine_id)
{
	for (struct route *r = b->machines; r; r = r->next)
		if (!strcmp(r->key, machine_id))
			return r->conn;
	return NULL;
}

void bus_subscribe(struct bus *b, const char *session, struct conn *c,
		   uint64_t from)
{
	struct route *r;

	routes_remove(&b->listeners, session, c);
	r = route_add(&b->listeners, session, c);
	r->seen = from;
	r->behind = true;
}

void bus_unsubscribe(struct bus *b, const char *session, struct conn *c)
{
	routes_remove(&b->listeners, session, c);
}

void bus_publish_text(struct bus *b, const char *session, const char *text)
{
	for (struct route *r = b->listeners; r; r = r->next)
		if (!strcmp(r->key, session))
			conn_send_text(r->conn, text);
}

void bus_publish_output(struct bus *b, const char *session,
			const struct proto_bin *hdr, const void *data,
			size_t len)
{
	for (struct route *r = b->listeners; r; r = r->next) {
		if (strcmp(r->key, session) || r->behind)
			continue;
		if (conn_queued(r->conn) > CONN_QUEUE_MAX) {
			r->behind = true;	/* the transcript has it */
			continue;
		}
		conn_send_binary(r->conn, hdr, data, len);
		r->seen = hdr->seq;
	}
}

void bus_catch_up(struct bus *b, struct conn *c, bus_read_cb read,
		  void *arg)
{
	for (struct route *r = b->listeners; r; r = r->next)
		if (r->conn == c && r->behind &&
		    read(r->key, c, &r->seen, arg) == 1)
			r->behind = false;
}

bool bus_behind(struct bus *b, struct conn *c)
{
	for (struct route *r = b->listeners; r; r = r->next)
		if (r->conn == c && r->behind)
			return true;
	return false;
}
