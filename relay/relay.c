/*
 * relay.c: what the relay does with each message: the handshake, the
 * client requests, the machines' reports, and the orchestration of a move
 * (proto/PROTOCOL.md, "Moving a session").
 *
 * Sessions are kept in memory as struct rsession, loaded from the store on
 * first use and written through on every change of owner or state, so a
 * restarted relay picks up where it was.
 */
#define _GNU_SOURCE
#include "relay.h"
#include "checkpoint.h"
#include "crash.h"
#include "log.h"
#include "secrets.h"
#include "workspace.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define RECENT_INPUTS 256		/* input ids remembered per session */
#define PENDING_INPUT_MAX (1024 * 1024)	/* input held during a move */
#define HAVES_MAX 32			/* checkpoints offered as haves */
#define BOOTSTRAP_TTL_S 600		/* a sandbox must say hello by then */
#define SETUP_SCRIPT_MAX (64 * 1024)	/* a workspace's setup script */
#define SETUP_LOG_SHOWN (256 * 1024)	/* setup.get: the log's end */

enum move_phase {
	MOVE_SUSPENDING,	/* waiting for the source's checkpoint */
	MOVE_LAUNCHING,		/* waiting for the target's hello */
	MOVE_RESTORING,		/* waiting for the target's resumed */
};

struct move {
	enum move_phase phase;
	uint64_t requester;	/* conn id of the client that asked */
	char *request_id;
	char *source;		/* machine id */
	char *target;		/* machine id */
	bool fenced;		/* the target owns the session now */
	bool fallback;		/* returning to the source after a failure */
	char *failure;		/* why the move fell back */
	git_repository *objects;
	struct checkpoint_unpack *unpack;
	uint64_t bytes_up;	/* pack bytes from the source */
	uint64_t bytes_down;	/* pack bytes to the target */
	uint64_t started_ms;
	uint64_t launched_ms;	/* loop time the target was started */
	bool park;		/* no target: keep the checkpoint, stop */
};

struct pending_input {
	struct pending_input *next;
	uint64_t id;
	size_t len;
	uint8_t data[];
};

struct rsession {
	struct store_session rec;
	cJSON *profile;		/* the agent profile the source runs */
	char *remote;		/* workspace remote URL, if any */
	struct move *move;
	uint64_t start_conn;	/* client waiting for session.start */
	char *start_request;
	uint64_t stop_conn;	/* client waiting for session.stop */
	char *stop_request;
	bool restarting;	/* session.restart sent, no answer yet */
	uint64_t inputs[RECENT_INPUTS];
	size_t input_next;
	struct pending_input *held;	/* input held while moving */
	size_t held_bytes;
	struct checkpoint_unpack *sync_unpack;	/* a sync's pack arriving */
	git_repository *sync_objects;	/* the object store it goes into */
	uint64_t sync_bytes;
	struct scrub *scrub;	/* the workspace's env values, or NULL */
	uint64_t active_ms;	/* loop time of its last input or output */
	cJSON *clone;		/* a cloud start waiting for its sandbox */
	uint64_t clone_ms;	/* loop time that sandbox was started */
	unsigned scrub_generation;	/* r->env_generation it was made at */
	bool scrub_made;
	struct rsession *next;
};

static void move_resume(struct relay *r, struct rsession *s);
static void move_recover(struct relay *r, struct rsession *s);
static void sync_offer(struct relay *r, struct rsession *s);
static void stats_move_finished(struct relay *r, uint64_t ms);
static void move_fence(struct relay *r, struct rsession *s);
static void clone_send(struct relay *r, struct rsession *s);
static int sandbox_launch(struct relay *r, const char *user,
			  const char *workspace, char **cause);
static void reply_start(struct relay *r, struct rsession *s, const char *code,
			const char *message);
static void add_setup(struct relay *r, struct rsession *s, cJSON *body);
static void move_fail(struct relay *r, struct rsession *s, const char *why);
static void send_ack(struct conn *c, struct rsession *s);

/* Finds a connection by id (it may have gone). */
static struct conn *conn_by_id(struct relay *r, uint64_t id)
{
	for (struct conn *c = r->conns; c; c = c->next)
		if (c->id == id && !c->closing)
			return c;
	return NULL;
}

static struct rsession *session_find(struct relay *r, const char *id)
{
	struct store_session rec;
	struct rsession *s;
	char *profile = NULL;

	for (s = r->sessions; s; s = s->next)
		if (!strcmp(s->rec.id, id))
			return s;
	if (store_session_get(r->store, id, &rec) < 0)
		return NULL;
	s = xcalloc(1, sizeof(*s));
	s->rec = rec;
	store_transcript_last(r->store, id, &s->rec.seq);
	if (store_session_profile_get(r->store, id, &profile) == 0)
		s->profile = cJSON_Parse(profile);
	free(profile);
	s->next = r->sessions;
	r->sessions = s;
	return s;
}

static void move_free(struct move *m)
{
	if (m == NULL)
		return;
	checkpoint_unpack_free(m->unpack);
	git_repository_free(m->objects);
	free(m->request_id);
	free(m->source);
	free(m->target);
	free(m->failure);
	free(m);
}

static void held_free(struct rsession *s)
{
	while (s->held) {
		struct pending_input *p = s->held;

		s->held = p->next;
		free(p);
	}
	s->held_bytes = 0;
}

/* Forgets a sync upload in progress. */
static void sync_drop(struct rsession *s)
{
	checkpoint_unpack_free(s->sync_unpack);
	s->sync_unpack = NULL;
	git_repository_free(s->sync_objects);
	s->sync_objects = NULL;
	s->sync_bytes = 0;
}

void relay_sessions_free(struct relay *r)
{
	while (r->sessions) {
		struct rsession *s = r->sessions;

		r->sessions = s->next;
		store_session_clear(&s->rec);
		cJSON_Delete(s->profile);
		free(s->remote);
		move_free(s->move);
		free(s->start_request);
		free(s->stop_request);
		held_free(s);
		sync_drop(s);
		cJSON_Delete(s->clone);
		scrub_free(s->scrub);
		free(s);
	}
}

/* The scrubber of a session's output: the current values of its
 * workspace's remote environment; NULL when there are none. */
static struct scrub *session_scrub(struct relay *r, struct rsession *s)
{
	if (!s->scrub_made || s->scrub_generation != r->env_generation) {
		scrub_free(s->scrub);
		s->scrub = env_scrub(r, s->rec.user, s->rec.workspace);
		s->scrub_generation = r->env_generation;
		s->scrub_made = true;
	}
	return s->scrub;
}

/* Writes the session record through to the store. */
static void session_save(struct relay *r, struct rsession *s)
{
	int e = store_session_put(r->store, &s->rec);

	if (e < 0)
		log_error("relay", "cannot save session %s: %s", s->rec.id,
			  strerror(-e));
}

static void set_str(char **field, const char *value)
{
	free(*field);
	*field = value ? xstrdup(value) : NULL;
}

/* Keeps the agent profile a machine reports for a session. */
static void session_set_profile(struct relay *r, struct rsession *s,
				const cJSON *profile)
{
	char *text;

	if (!cJSON_IsObject(profile))
		return;
	cJSON_Delete(s->profile);
	s->profile = cJSON_Duplicate(profile, 1);
	text = cJSON_PrintUnformatted(profile);
	if (text && store_session_profile_set(r->store, s->rec.id, text) < 0)
		log_warn("relay", "session %s: cannot keep its agent profile",
			 s->rec.id);
	free(text);
}

static cJSON *session_json(struct relay *r, struct rsession *s)
{
	struct store_workspace w;
	struct store_machine m = { 0 };
	cJSON *o = cJSON_CreateObject();
	bool have_machine = store_machine_get(r->store, s->rec.machine,
					      &m) == 0;

	cJSON_AddStringToObject(o, "id", s->rec.id);
	cJSON_AddStringToObject(o, "state", s->rec.state);
	cJSON_AddStringToObject(o, "machine",
				have_machine ? m.name : s->rec.machine);
	cJSON_AddStringToObject(o, "machine_id", s->rec.machine);
	cJSON_AddStringToObject(o, "kind", have_machine ? m.kind : "local");
	if (have_machine)
		cJSON_AddStringToObject(o, "machine_state", m.state);
	cJSON_AddStringToObject(o, "worktree",
				s->rec.worktree ? s->rec.worktree : "");
	cJSON_AddStringToObject(o, "agent", s->rec.agent);
	if (s->rec.workspace)
		cJSON_AddStringToObject(o, "workspace", s->rec.workspace);
	proto_add_u64(o, "seq", s->rec.seq);
	proto_add_u64(o, "epoch", s->rec.epoch);
	cJSON_AddNumberToObject(o, "exit_status", s->rec.exit_status);
	if (s->rec.checkpoint)
		cJSON_AddStringToObject(o, "checkpoint", s->rec.checkpoint);
	if (s->rec.workspace &&
	    store_workspace_get(r->store, s->rec.workspace, &w) == 0) {
		cJSON_AddBoolToObject(o, "sync", w.sync);
		if (w.synced_checkpoint) {
			cJSON_AddStringToObject(o, "synced_checkpoint",
						w.synced_checkpoint);
			cJSON_AddNumberToObject(o, "synced_at",
						(double)w.synced_at);
		}
		store_workspace_clear(&w);
	}
	store_machine_clear(&m);
	return o;
}

/* Tells every listener of the session its new state. */
static void session_publish(struct relay *r, struct rsession *s)
{
	char *text = proto_encode("session", NULL, s->rec.id,
				  session_json(r, s));

	bus_publish_text(r->bus, s->rec.id, text);
	free(text);
}

/* Sends a message to the machine that owns a session, if connected. */
static int send_to_machine(struct relay *r, const char *machine_id,
			   char *text)
{
	struct conn *mc = bus_machine(r->bus, machine_id);

	if (mc == NULL) {
		free(text);
		return -ENOTCONN;
	}
	conn_send_owned(mc, text);
	return 0;
}

static void move_step(struct relay *r, struct rsession *s, const char *step,
		      const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Reports a step of a move to the client that asked for it. */
static void move_step(struct relay *r, struct rsession *s, const char *step,
		      const char *fmt, ...)
{
	struct conn *c = conn_by_id(r, s->move->requester);
	cJSON *body;
	va_list ap;
	char *detail;

	va_start(ap, fmt);
	detail = xvasprintf(fmt, ap);
	va_end(ap);
	log_info("move", "session %s: %s: %s", s->rec.id, step, detail);
	if (c) {
		body = cJSON_CreateObject();
		cJSON_AddStringToObject(body, "step", step);
		cJSON_AddStringToObject(body, "detail", detail);
		conn_send_owned(c, proto_encode("move.step",
						s->move->request_id,
						s->rec.id, body));
	}
	free(detail);
}

static const char *machine_name(struct relay *r, const char *id,
				char *buf, size_t len)
{
	struct store_machine m = { 0 };

	if (store_machine_get(r->store, id, &m) == 0)
		snprintf(buf, len, "%s", m.name);
	else
		snprintf(buf, len, "%s", id);
	store_machine_clear(&m);
	return buf;
}

/* ---- handshake ---- */

/*
 * Checks the sessions a machine says it holds: the ones it owns at the
 * current epoch get the seq stored so far; any other is to stand down, with
 * the same answer whether it belongs to someone else or does not exist.
 */
static void reconcile_sessions(struct relay *r, struct conn *c,
			       const cJSON *held)
{
	const cJSON *item;

	cJSON_ArrayForEach(item, held) {
		const char *id = proto_str(item, "id");
		uint64_t epoch = 0;
		uint8_t raw[16];
		char norm[PROTO_UUID_LEN + 1];
		struct rsession *s;
		cJSON *body;

		if (id == NULL || proto_uuid_parse(id, raw) < 0 ||
		    proto_u64(item, "epoch", &epoch) < 0)
			continue;
		proto_uuid_format(raw, norm);
		s = session_find(r, norm);
		if (s && strcmp(s->rec.user, c->user))
			s = NULL;
		if (s && !strcmp(s->rec.machine, c->machine_id) &&
		    epoch == s->rec.epoch) {
			send_ack(c, s);
			continue;
		}
		body = cJSON_CreateObject();
		proto_add_u64(body, "epoch", s ? s->rec.epoch : 0);
		log_info("relay", "machine %s holds session %s at epoch %"
			 PRIu64 "; telling it to stand down",
			 c->machine_name, norm, epoch);
		conn_send_owned(c, proto_encode("session.stand_down", NULL,
						norm, body));
	}
}

static bool holds(const cJSON *held, const char *id)
{
	const cJSON *item;

	cJSON_ArrayForEach(item, held) {
		const char *h = proto_str(item, "id");

		if (h && !strcasecmp(h, id))
			return true;
	}
	return false;
}

/*
 * A machine came (back) without sessions it should be running: its agent
 * died with it, or the relay went down in the middle of a move. A session
 * fenced to it is resumed from the checkpoint; any other is restarted in
 * the worktree the machine kept, which has everything since.
 */
static void recover_sessions(struct relay *r, struct conn *c,
			     const cJSON *held)
{
	struct store_session *live = NULL;
	size_t n = 0;

	if (store_sessions_live(r->store, c->machine_id, &live, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		struct rsession *s;
		cJSON *body;

		if (holds(held, live[i].id))
			continue;
		s = session_find(r, live[i].id);
		if (s == NULL || s->move || s->restarting)
			continue;
		if (!strcmp(s->rec.state, "moving")) {
			log_info("relay", "session %s: %s was to resume it; "
				 "resuming it there now", s->rec.id,
				 c->machine_name);
			move_recover(r, s);
			continue;
		}
		log_info("relay", "session %s: %s came back without it; "
			 "restarting its agent there", s->rec.id,
			 c->machine_name);
		s->restarting = true;
		body = cJSON_CreateObject();
		proto_add_u64(body, "epoch", s->rec.epoch);
		proto_add_u64(body, "seq", s->rec.seq);
		cJSON_AddStringToObject(body, "agent", s->rec.agent);
		conn_send_owned(c, proto_encode("session.restart", NULL,
						s->rec.id, body));
	}
	store_sessions_free(live, n);
}

/*
 * Admits a connection auth.c has vouched for: says welcome and, for a
 * machine, makes it the machine's connection and settles its sessions.
 */
void relay_admit(struct relay *r, struct conn *c, const char *hello_id,
		 const cJSON *held)
{
	struct store_machine mach = { 0 };
	cJSON *body;

	if (c->role == CONN_MACHINE) {
		struct conn *old;

		if (store_machine_get(r->store, c->machine_id, &mach) < 0) {
			conn_send_error(c, hello_id, NULL, PROTO_E_FAILED,
					"the relay lost this machine's record;"
					" see its log");
			conn_close(c, "machine record missing");
			return;
		}
		c->machine_name = xstrdup(mach.name);
		c->machine_kind = xstrdup(mach.kind);
		c->credit_ms = uv_now(r->loop);	/* sandboxes: metered */
		old = bus_machine_set(r->bus, mach.id, c);
		if (old)
			conn_close(old, "replaced by a newer connection of "
				   "the same machine");
		store_machine_set_state(r->store, mach.id,
					!strcmp(mach.kind, "sandbox")
						? "ready" : "online");
	}

	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "user", c->user);
	cJSON_AddStringToObject(body, "role",
				c->role == CONN_CLIENT ? "client" : "machine");
	if (c->machine_id)
		cJSON_AddStringToObject(body, "machine", c->machine_id);
	cJSON_AddNumberToObject(body, "version", PROTO_VERSION);
	conn_send_owned(c, proto_encode("welcome", hello_id, NULL, body));
	LOG_AT(c->role == CONN_CLIENT ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO,
	       "relay", "%s %s of user %s connected from %s",
		 c->role == CONN_CLIENT ? "client" : "machine",
		 c->machine_name ? c->machine_name : "", c->user, c->peer);
	/* Before any session.resume: setup and agent need the values. */
	if (c->role == CONN_MACHINE && !strcmp(mach.kind, "sandbox"))
		env_send_sealed(r, c, c->user, mach.workspace, mach.pubkey);
	store_machine_clear(&mach);

	if (c->role == CONN_MACHINE) {
		reconcile_sessions(r, c, held);
		for (struct rsession *s = r->sessions; s; s = s->next)
			if (s->move && s->move->phase == MOVE_LAUNCHING &&
			    !strcmp(s->move->target, c->machine_id))
				move_resume(r, s);
		recover_sessions(r, c, held);
		for (struct rsession *s = r->sessions; s; s = s->next) {
			if (strcmp(s->rec.machine, c->machine_id))
				continue;
			if (s->clone)
				clone_send(r, s);
			sync_offer(r, s);
		}
	}
}

/* ---- client requests ---- */

#define READ_ONLY_WHY "this token is read-only; it may list, watch and " \
	"tail sessions, but not type, start, move, stop or resize them, " \
	"approve a pairing, or change a workspace's environment or sync; " \
	"use a token made with `baton-relay token create --scope steer`"

/* Whether a read-only client's message would change a session. */
static bool steers(const char *type)
{
	return !strcmp(type, "session.start") ||
	       !strcmp(type, "pair.approve") ||
	       !strcmp(type, "env.set") ||
	       !strcmp(type, "workspace.sync") ||
	       !strcmp(type, "workspace.setup") ||
	       !strcmp(type, "env.unset") ||
	       !strcmp(type, "session.move") ||
	       !strcmp(type, "session.stop") ||
	       !strcmp(type, "session.resize");
}

/* The session named in a client's message, if it is the client's. */
static struct rsession *client_session(struct relay *r, struct conn *c,
				       const struct proto_msg *m)
{
	struct rsession *s = m->session ? session_find(r, m->session) : NULL;

	if (s == NULL || strcmp(s->rec.user, c->user)) {
		conn_send_error(c, m->id, m->session, PROTO_E_NOT_FOUND,
				"no such session; `baton sessions` lists "
				"yours");
		return NULL;
	}
	return s;
}

static void handle_machines_list(struct relay *r, struct conn *c,
				 const struct proto_msg *m)
{
	struct store_machine *ms = NULL;
	size_t n = 0;
	cJSON *body = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(body, "machines");

	store_machines_list(r->store, c->user, &ms, &n);
	for (size_t i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "id", ms[i].id);
		cJSON_AddStringToObject(o, "name", ms[i].name);
		cJSON_AddStringToObject(o, "kind", ms[i].kind);
		cJSON_AddStringToObject(o, "state", ms[i].state);
		cJSON_AddBoolToObject(o, "online",
				      bus_machine(r->bus, ms[i].id) != NULL);
		proto_add_u64(o, "generation", (uint64_t)ms[i].generation);
		cJSON_AddItemToArray(arr, o);
	}
	store_machines_free(ms, n);
	conn_send_owned(c, proto_encode("machines", m->id, NULL, body));
}

static void handle_sessions_list(struct relay *r, struct conn *c,
				 const struct proto_msg *m)
{
	struct store_session *ss = NULL;
	size_t n = 0;
	cJSON *body = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(body, "sessions");

	store_sessions_list(r->store, c->user, &ss, &n);
	for (size_t i = 0; i < n; i++) {
		struct rsession *s = session_find(r, ss[i].id);

		if (s)
			cJSON_AddItemToArray(arr, session_json(r, s));
	}
	store_sessions_free(ss, n);
	conn_send_owned(c, proto_encode("sessions", m->id, NULL, body));
}

/*
 * Refuses a session.start when the machine already runs as many sessions
 * (starting, running or in a move) as the relay allows.
 */
static bool machine_full(struct relay *r, struct conn *c,
			 const struct proto_msg *m,
			 const struct store_machine *mach)
{
	static const char *const live[] = { "starting", "running",
					    "suspending", "moving" };
	unsigned n = 0, max = r->limits.sessions_per_machine;
	char *why;

	if (max == 0)
		return false;
	for (struct rsession *s = r->sessions; s; s = s->next) {
		if (strcmp(s->rec.machine, mach->id))
			continue;
		for (size_t i = 0; i < ARRAY_SIZE(live); i++)
			if (!strcmp(s->rec.state, live[i]))
				n++;
	}
	if (n < max)
		return false;
	why = xasprintf("machine %s runs %u sessions, the most this relay "
			"allows; stop one first (`baton sessions` lists them)",
			mach->name, n);
	conn_limited(c, m->id, why, false);
	free(why);
	return true;
}

/* Whether NAME is in a comma-separated LIST, ignoring case and blanks. */
static bool name_in_list(const char *name, const char *list)
{
	size_t n = strlen(name);

	for (const char *p = list; p && *p;) {
		size_t len;

		p += strspn(p, ", \t\n");
		len = strcspn(p, ", \t\n");
		if (len == n && !strncasecmp(p, name, n))
			return true;
		p += len;
	}
	return false;
}

/*
 * A cloud start runs with the workspace's git account (GIT_USERNAME):
 * the repository must be that account's own, or an organisation's the
 * user says the account belongs to (GIT_ORGS, comma-separated). Another
 * person's repository is refused: it is theirs to run, and a fork is the
 * way to work on it. The owner is the URL's first path part.
 */
static bool cloud_owner_allowed(struct relay *r, struct conn *c,
				const struct proto_msg *m, const char *url,
				const char *ws)
{
	const char *path = strstr(url, "://");
	char *account, *orgs, *owner, *why = NULL;
	size_t len;
	bool ok;

	if (path == NULL || (path = strchr(path + 3, '/')) == NULL)
		return true;	/* not host/OWNER/REPO: nothing to compare */
	path++;
	len = strcspn(path, "/");
	if (len == 0 || path[len] != '/')
		return true;
	owner = xstrndup(path, len);
	account = env_get(r, c->user, ws, "GIT_USERNAME");
	orgs = env_get(r, c->user, ws, "GIT_ORGS");
	if (account == NULL)
		why = xasprintf("no git account is connected to this "
				"workspace: set its user name with `baton env "
				"set %s GIT_USERNAME` (and GIT_PASSWORD)", url);
	else if (strcasecmp(owner, account) && !name_in_list(owner, orgs))
		why = xasprintf("the repository belongs to %s, not to your git "
				"account %s: fork it to %s and start from the "
				"fork; or, if %s is an organisation %s belongs "
				"to, add it with `baton env set %s GIT_ORGS` "
				"(names separated by commas)", owner, account,
				account, owner, account, url);
	ok = why == NULL;
	if (!ok)
		conn_send_error(c, m->id, NULL, PROTO_E_FORBIDDEN, why);
	free(why);
	free(owner);
	free(account);
	free(orgs);
	return ok;
}

/*
 * A session with no laptop: the workspace's sandbox clones the repository
 * at the ref, with git credentials from the remote environment, and
 * starts the agent there (baton start --sandbox --git URL --ref REF).
 */
static void handle_cloud_start(struct relay *r, struct conn *c,
			       const struct proto_msg *m)
{
	const char *url = proto_str(m->body, "git");
	const char *agent = proto_str(m->body, "agent");
	char *key = workspace_url_public(url), *ws = NULL, *cause = NULL;
	struct store_machine mach = { 0 };
	struct rsession *s;
	char id[PROTO_UUID_LEN + 1];

	if (strcmp(key, url)) {
		conn_send_error(c, m->id, NULL, PROTO_E_BAD_MESSAGE, "the URL "
				"holds a user or password; give the plain URL "
				"and put the credentials in the workspace's "
				"remote environment (baton env set URL "
				"GIT_USERNAME, and GIT_PASSWORD)");
		goto out;
	}
	if (store_workspace_ensure(r->store, c->user, key, &ws) < 0 ||
	    store_machine_sandbox(r->store, c->user, ws, 0, &mach) < 0) {
		conn_send_error(c, m->id, NULL, PROTO_E_FAILED, "the relay "
				"cannot record the workspace; see its log");
		goto out;
	}
	if (machine_full(r, c, m, &mach) ||
	    !cloud_owner_allowed(r, c, m, url, ws))
		goto out;

	proto_uuid_new(id);
	s = xcalloc(1, sizeof(*s));
	s->rec.id = xstrdup(id);
	s->rec.user = xstrdup(c->user);
	s->rec.machine = xstrdup(mach.id);
	s->rec.workspace = ws;
	ws = NULL;
	s->rec.agent = xstrdup(agent ? agent : "shell");
	s->rec.worktree = xstrdup("-");	/* known once cloned */
	s->rec.state = xstrdup("starting");
	s->rec.epoch = 1;
	s->rec.exit_status = -1;
	s->remote = xstrdup(url);
	s->start_conn = c->id;
	s->start_request = xstrdup(m->id);
	s->clone = cJSON_Duplicate(m->body, 1);
	s->clone_ms = uv_now(r->loop);
	s->next = r->sessions;
	r->sessions = s;
	session_save(r, s);
	log_info("relay", "session %s: cloning %s%s%s on the sandbox of "
		 "user %s", id, url, proto_str(m->body, "ref") ? " at " : "",
		 proto_str(m->body, "ref") ? proto_str(m->body, "ref") : "",
		 c->user);
	if (bus_machine(r->bus, mach.id)) {
		clone_send(r, s);
	} else if (!launcher_running(r->launcher, mach.id) &&
		   sandbox_launch(r, c->user, s->rec.workspace, &cause) < 0) {
		set_str(&s->rec.state, "failed");
		session_save(r, s);
		reply_start(r, s, PROTO_E_UNAVAILABLE, cause);
		cJSON_Delete(s->clone);
		s->clone = NULL;
	}
out:
	free(cause);
	free(ws);
	free(key);
	store_machine_clear(&mach);
}

/* Sends a cloud start to its sandbox, which is connected now. */
static void clone_send(struct relay *r, struct rsession *s)
{
	cJSON *body = cJSON_CreateObject();
	const char *ref = proto_str(s->clone, "ref");
	int64_t cols = 120, rows = 40;

	proto_int(s->clone, "cols", &cols);
	proto_int(s->clone, "rows", &rows);
	cJSON_AddStringToObject(body, "git", s->remote);
	if (ref)
		cJSON_AddStringToObject(body, "ref", ref);
	cJSON_AddStringToObject(body, "agent", s->rec.agent);
	proto_add_u64(body, "epoch", s->rec.epoch);
	cJSON_AddStringToObject(body, "workspace", s->remote);
	cJSON_AddNumberToObject(body, "cols", (double)cols);
	cJSON_AddNumberToObject(body, "rows", (double)rows);
	add_setup(r, s, body);
	send_to_machine(r, s->rec.machine, proto_encode("session.clone",
							NULL, s->rec.id,
							body));
	cJSON_Delete(s->clone);
	s->clone = NULL;
}

/*
 * The client's machine by name or id. Answers not_found, the same for
 * another user's machine as for none, and returns -ENOENT.
 */
static int client_machine(struct relay *r, struct conn *c,
			  const struct proto_msg *m, const char *name,
			  struct store_machine *mach)
{
	char quoted[65], *why;

	if ((store_machine_by_name(r->store, c->user, name, mach) == 0 ||
	     store_machine_get(r->store, name, mach) == 0) &&
	    !strcmp(mach->user, c->user))
		return 0;
	store_machine_clear(mach);
	why = xasprintf("no machine named \"%s\"; `baton machines` lists "
			"yours", proto_printable(name, quoted, sizeof(quoted)));
	conn_send_error(c, m->id, NULL, PROTO_E_NOT_FOUND, why);
	free(why);
	return -ENOENT;
}

static void handle_session_start(struct relay *r, struct conn *c,
				 const struct proto_msg *m)
{
	const char *name = proto_str(m->body, "machine");
	const char *agent = proto_str(m->body, "agent");
	struct store_machine mach = { 0 };
	struct rsession *s;
	char id[PROTO_UUID_LEN + 1];
	int64_t cols = 120, rows = 40;
	struct conn *mc;
	cJSON *body;

	if (proto_str(m->body, "git")) {
		handle_cloud_start(r, c, m);
		return;
	}
	if (proto_str(m->body, "dir") == NULL) {
		conn_send_error(c, m->id, NULL, PROTO_E_BAD_MESSAGE,
				"a session needs \"dir\", a folder on the "
				"machine, or \"git\", a repository for a "
				"sandbox");
		return;
	}
	if (client_machine(r, c, m, name, &mach) < 0)
		return;
	mc = bus_machine(r->bus, mach.id);
	if (mc == NULL) {
		char *why = xasprintf("machine \"%s\" is offline; start "
				      "baton-local there", mach.name);

		conn_send_error(c, m->id, NULL, PROTO_E_UNAVAILABLE, why);
		free(why);
		goto out;
	}
	if (machine_full(r, c, m, &mach))
		goto out;
	proto_int(m->body, "cols", &cols);
	proto_int(m->body, "rows", &rows);

	proto_uuid_new(id);
	s = xcalloc(1, sizeof(*s));
	s->rec.id = xstrdup(id);
	s->rec.user = xstrdup(c->user);
	s->rec.machine = xstrdup(mach.id);
	s->rec.agent = xstrdup(agent ? agent : "shell");
	s->rec.worktree = xstrdup(proto_str(m->body, "dir"));
	s->rec.state = xstrdup("starting");
	s->rec.epoch = 1;
	s->rec.exit_status = -1;
	s->start_conn = c->id;
	s->start_request = xstrdup(m->id);
	s->next = r->sessions;
	r->sessions = s;
	session_save(r, s);

	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "dir", s->rec.worktree);
	cJSON_AddStringToObject(body, "agent", s->rec.agent);
	proto_add_u64(body, "epoch", s->rec.epoch);
	proto_add_u64(body, "seq", 0);
	cJSON_AddNumberToObject(body, "cols", (double)cols);
	cJSON_AddNumberToObject(body, "rows", (double)rows);
	conn_send_owned(mc, proto_encode("session.spawn", m->id, id, body));
	log_info("relay", "session %s: starting %s in %s on %s", id,
		 s->rec.agent, s->rec.worktree, mach.name);
out:
	store_machine_clear(&mach);
}

struct replay {
	struct conn *conn;
	uint8_t session[16];
	uint64_t *seen;
};

/* Sends one stored chunk; stops the read when the connection is full. */
static int replay_send(uint64_t seq, const void *data, size_t len, void *arg)
{
	struct replay *rp = arg;
	struct proto_bin hdr = { .kind = PROTO_BIN_OUTPUT, .seq = seq };

	memcpy(hdr.session, rp->session, 16);
	conn_send_binary(rp->conn, &hdr, data, len);
	*rp->seen = seq;
	return conn_queued(rp->conn) > CONN_QUEUE_MAX ? 1 : 0;
}

/* Sends a listener that is behind what it missed, as room allows. */
static int replay_read(const char *session, struct conn *c, uint64_t *seen,
		       void *arg)
{
	struct relay *r = arg;
	struct rsession *s = session_find(r, session);
	struct replay rp = { .conn = c, .seen = seen };

	if (s == NULL)
		return 1;
	proto_uuid_parse(session, rp.session);
	if (*seen < s->rec.seq)
		store_transcript_read(r->store, session, *seen, replay_send,
				      &rp);
	return *seen >= s->rec.seq ? 1 : 0;
}

void relay_on_drain(struct relay *r, struct conn *c)
{
	bus_catch_up(r->bus, c, replay_read, r);
}

static void handle_attach(struct relay *r, struct conn *c,
			  const struct proto_msg *m, struct rsession *s)
{
	uint64_t from = 0;
	cJSON *body;

	proto_u64(m->body, "from", &from);
	body = cJSON_CreateObject();
	proto_add_u64(body, "seq", s->rec.seq);
	cJSON_AddItemToObject(body, "session", session_json(r, s));
	conn_send_owned(c, proto_encode("attached", m->id, s->rec.id, body));
	bus_subscribe(r->bus, s->rec.id, c, from);
	relay_on_drain(r, c);
}

static void handle_forward(struct relay *r, struct conn *c,
			   const struct proto_msg *m, struct rsession *s)
{
	char *text;

	text = proto_encode(m->type, m->id, s->rec.id,
			    cJSON_Duplicate(m->body, 1));
	if (strcmp(s->rec.state, "running")) {
		free(text);
		text = NULL;
	}
	if (text == NULL || send_to_machine(r, s->rec.machine, text) < 0) {
		conn_send_error(c, m->id, s->rec.id, PROTO_E_UNAVAILABLE,
				"the session is not running on a connected "
				"machine");
		return;
	}
	if (!strcmp(m->type, "session.stop")) {
		s->stop_conn = c->id;
		set_str(&s->stop_request, m->id);
	} else {
		conn_send_owned(c, proto_encode("ok", m->id, s->rec.id, NULL));
	}
}

/* Lists the workspace's recent checkpoints that its object store holds. */
static void add_haves(struct relay *r, const char *workspace,
		      git_repository *objects, cJSON *arr)
{
	char **haves = NULL;
	size_t count = 0;
	git_odb *odb = NULL;
	git_oid oid;

	if (store_checkpoints_recent(r->store, workspace, HAVES_MAX, &haves,
				     &count) < 0)
		return;
	if (git_repository_odb(&odb, objects) == 0) {
		for (size_t i = 0; i < count; i++)
			if (git_oid_fromstr(&oid, haves[i]) == 0 &&
			    git_odb_exists(odb, &oid))
				cJSON_AddItemToArray(arr, cJSON_CreateString(
							     haves[i]));
	}
	git_odb_free(odb);
	store_strv_free(haves, count);
}

/* workspace.setup: sets or (without a script) clears the setup script
 * the workspace's sandboxes run instead of the repository's. */
static void handle_workspace_setup(struct relay *r, struct conn *c,
				   const struct proto_msg *m)
{
	const char *script = proto_str(m->body, "script");
	char *id = NULL, *key = NULL;

	if (store_workspace_find(r->store, c->user,
				 proto_str(m->body, "workspace"), &id,
				 &key) < 0) {
		conn_send_error(c, m->id, NULL, PROTO_E_NOT_FOUND, "no "
				"workspace of yours has that name or id; its "
				"key is the repository's remote URL");
		return;
	}
	if (script && strlen(script) > SETUP_SCRIPT_MAX) {
		conn_send_error(c, m->id, NULL, PROTO_E_TOO_LARGE, "a setup "
				"script may hold at most 64 KiB");
	} else if (store_workspace_set_setup(r->store, id, script) < 0) {
		conn_send_error(c, m->id, NULL, PROTO_E_FAILED, "the relay "
				"cannot record the script; see its log");
	} else {
		log_info("relay", "user %s %s the setup script of workspace "
			 "%s", c->user, script ? "set" : "cleared", key);
		conn_send_owned(c, proto_encode("ok", m->id, NULL, NULL));
	}
	free(id);
	free(key);
}

/* ---- workspace sync ---- */

/*
 * Tells the laptop running s whether to upload checkpoints as it works,
 * with the checkpoints the relay already holds (so it sends only what is
 * missing). Sandboxes are not asked: what they run is the latest state.
 */
static void sync_offer(struct relay *r, struct rsession *s)
{
	struct store_workspace w;
	struct store_machine m = { 0 };
	git_repository *objects = NULL;
	cJSON *body, *arr;

	if (s->rec.workspace == NULL || s->move ||
	    strcmp(s->rec.state, "running") ||
	    bus_machine(r->bus, s->rec.machine) == NULL ||
	    store_machine_get(r->store, s->rec.machine, &m) < 0)
		return;
	if (strcmp(m.kind, "local") ||
	    store_workspace_get(r->store, s->rec.workspace, &w) < 0) {
		store_machine_clear(&m);
		return;
	}
	body = cJSON_CreateObject();
	cJSON_AddBoolToObject(body, "on", w.sync);
	arr = cJSON_AddArrayToObject(body, "have");
	if (w.sync &&
	    store_objects_open(r->store, s->rec.workspace, &objects) == 0)
		add_haves(r, s->rec.workspace, objects, arr);
	git_repository_free(objects);
	send_to_machine(r, s->rec.machine,
			proto_encode("session.sync", NULL, s->rec.id, body));
	store_workspace_clear(&w);
	store_machine_clear(&m);
}

/* workspace.sync: turns a workspace's sync on or off. */
static void handle_workspace_sync(struct relay *r, struct conn *c,
				  const struct proto_msg *m)
{
	char *id = NULL, *key = NULL;
	bool on = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m->body,
								"on"));

	if (store_workspace_find(r->store, c->user,
				 proto_str(m->body, "workspace"), &id,
				 &key) < 0) {
		conn_send_error(c, m->id, NULL, PROTO_E_NOT_FOUND, "no "
				"workspace of yours has that name or id; its "
				"key is the repository's remote URL, and "
				"`baton status SID` shows a session's");
		return;
	}
	if (store_workspace_set_sync(r->store, id, on) < 0) {
		conn_send_error(c, m->id, NULL, PROTO_E_FAILED, "the relay "
				"cannot record the setting; see its log");
	} else {
		log_info("relay", "user %s turned sync %s for workspace %s",
			 c->user, on ? "on" : "off", key);
		conn_send_owned(c, proto_encode("ok", m->id, NULL, NULL));
		for (struct rsession *s = r->sessions; s; s = s->next)
			if (s->rec.workspace && !strcmp(s->rec.workspace, id))
				sync_offer(r, s);
	}
	free(id);
	free(key);
}

/* A pack frame outside a move: part of a sync upload. */
static void sync_pack(struct relay *r, struct rsession *s,
		      const struct proto_bin *b)
{
	char *cause = NULL;

	if (s->rec.workspace == NULL)
		return;
	if (s->sync_unpack == NULL &&
	    (store_objects_open(r->store, s->rec.workspace,
				&s->sync_objects) < 0 ||
	     checkpoint_unpack_new(s->sync_objects, &s->sync_unpack,
				   &cause) < 0)) {
		log_warn("relay", "session %s: cannot take a sync: %s",
			 s->rec.id, cause ? cause : "no object store");
		free(cause);
		sync_drop(s);
		return;
	}
	if (checkpoint_unpack_append(s->sync_unpack, b->data, b->len,
				     &cause) < 0) {
		log_warn("relay", "session %s: a sync's pack is damaged: %s",
			 s->rec.id, cause);
		free(cause);
		sync_drop(s);
		return;
	}
	s->sync_bytes += b->len;
}

/* session.synced: the upload is whole; keep it as the workspace's state. */
static void handle_synced(struct relay *r, struct conn *c,
			  const struct proto_msg *m, struct rsession *s)
{
	const char *oid_text = proto_str(m->body, "checkpoint");
	git_repository *objects = NULL;
	git_odb *odb = NULL;
	char *cause = NULL;
	git_oid oid;
	int ok = 0;

	if (s->move || strcmp(s->rec.machine, c->machine_id)) {
		conn_send_error(c, m->id, s->rec.id, PROTO_E_CONFLICT, "the "
				"session is moving; this sync is not kept");
		sync_drop(s);
		return;
	}
	if (s->sync_unpack &&
	    checkpoint_unpack_commit(s->sync_unpack, &cause) < 0) {
		conn_send_error(c, m->id, s->rec.id, PROTO_E_FAILED, cause);
		free(cause);
		sync_drop(s);
		return;
	}
	git_oid_fromstr(&oid, oid_text);
	if (store_objects_open(r->store, s->rec.workspace, &objects) == 0 &&
	    git_repository_odb(&odb, objects) == 0)
		ok = git_odb_exists(odb, &oid);
	git_odb_free(odb);
	git_repository_free(objects);
	if (!ok) {
		conn_send_error(c, m->id, s->rec.id, PROTO_E_FAILED, "the "
				"sync's pack did not hold its checkpoint");
		sync_drop(s);
		return;
	}
	session_set_profile(r, s, cJSON_GetObjectItemCaseSensitive(
				     m->body, "profile"));
	store_checkpoint_add(r->store, s->rec.workspace, s->rec.id, oid_text,
			     c->machine_id);
	if (store_workspace_synced(r->store, s->rec.workspace, s->rec.id,
				   oid_text) < 0) {
		conn_send_error(c, m->id, s->rec.id, PROTO_E_FAILED, "the "
				"relay cannot record the sync; see its log");
	} else {
		log_info("relay", "session %s: synced checkpoint %.12s (%"
			 PRIu64 " bytes of objects)", s->rec.id, oid_text,
			 s->sync_bytes);
		conn_send_owned(c, proto_encode("ok", m->id, s->rec.id, NULL));
	}
	sync_drop(s);
}

/*
 * Moves a session whose laptop is offline to its sandbox from the last
 * checkpoint a sync uploaded: the fence is taken at once (the laptop, when
 * it returns, is told to stand down and keeps its files). Returns false,
 * having answered the client, when there is nothing to resume from.
 */
static bool move_offline(struct relay *r, struct conn *c,
			 const struct proto_msg *m, struct rsession *s,
			 struct move *mv)
{
	struct store_workspace w;
	char name[128], *why = NULL;
	int64_t age;

	if (store_workspace_get(r->store, s->rec.workspace, &w) < 0)
		return false;
	if (!w.sync)
		why = xasprintf("the laptop running the session (%s) is "
				"offline, and sync is off for workspace %s, so "
				"the relay holds no recent state to resume "
				"from; bring the laptop back, and turn sync on "
				"(`baton sync on %s`) to be ready next time",
				machine_name(r, s->rec.machine, name,
					     sizeof(name)), w.key, w.key);
	else if (w.synced_checkpoint == NULL)
		why = xasprintf("the laptop running the session (%s) is "
				"offline, and sync for workspace %s is on but "
				"has uploaded nothing yet; bring the laptop "
				"back online long enough for one sync",
				machine_name(r, s->rec.machine, name,
					     sizeof(name)), w.key);
	if (why) {
		conn_send_error(c, m->id, s->rec.id, PROTO_E_UNAVAILABLE, why);
		free(why);
		store_workspace_clear(&w);
		return false;
	}

	age = (int64_t)time(NULL) - w.synced_at;
	r->stats.moves_started++;
	s->move = mv;
	set_str(&s->rec.checkpoint, w.synced_checkpoint);
	move_step(r, s, "offline", "%s is offline: resuming from the "
		  "checkpoint %.12s synced %" PRId64 " %s ago%s",
		  machine_name(r, s->rec.machine, name, sizeof(name)),
		  w.synced_checkpoint, age >= 120 ? age / 60 : age,
		  age >= 120 ? "min" : "s",
		  strcmp(w.synced_session, s->rec.id)
			  ? " (by another session of the workspace)" : "");
	store_workspace_clear(&w);
	move_fence(r, s);
	return true;
}

/* Resumes a parked session on TARGET from the checkpoint it left. */
static void move_unpark(struct relay *r, struct conn *c,
			const struct proto_msg *m, struct rsession *s,
			const char *target)
{
	struct move *mv = xcalloc(1, sizeof(*mv));

	mv->phase = MOVE_RESTORING;
	mv->requester = c->id;
	mv->request_id = xstrdup(m->id);
	mv->source = xstrdup(s->rec.machine);
	mv->target = xstrdup(target);
	mv->started_ms = now_ms();
	if (store_objects_open(r->store, s->rec.workspace, &mv->objects) < 0) {
		move_free(mv);
		conn_send_error(c, m->id, s->rec.id, PROTO_E_FAILED,
				"the relay cannot open its object store");
		return;
	}
	r->stats.moves_started++;
	s->move = mv;
	move_step(r, s, "parked", "resuming from checkpoint %.12s, kept when "
		  "the session's sandbox sat idle", s->rec.checkpoint);
	move_fence(r, s);
}

/*
 * Parks a session whose sandbox sat idle: the sandbox checkpoints it as
 * for a move, the relay keeps the checkpoint, and nobody runs it until
 * the next move.
 */
/*
 * The first step of a move or a park: the session takes mv, says it is
 * suspending, and its machine is asked for a checkpoint of what the
 * relay's object store lacks.
 */
static void move_suspend(struct relay *r, struct rsession *s,
			 struct move *mv)
{
	cJSON *body = cJSON_CreateObject();
	cJSON *arr;

	s->move = mv;
	set_str(&s->rec.state, "suspending");
	session_save(r, s);
	session_publish(r, s);
	proto_add_u64(body, "epoch", s->rec.epoch);
	arr = cJSON_AddArrayToObject(body, "have");
	add_haves(r, s->rec.workspace, mv->objects, arr);
	send_to_machine(r, s->rec.machine,
			proto_encode("session.suspend", NULL, s->rec.id, body));
}

static void session_park(struct relay *r, struct rsession *s)
{
	struct move *mv = xcalloc(1, sizeof(*mv));

	mv->phase = MOVE_SUSPENDING;
	mv->park = true;
	mv->request_id = xstrdup("");
	mv->source = xstrdup(s->rec.machine);
	mv->target = xstrdup(s->rec.machine);
	mv->started_ms = now_ms();
	if (store_objects_open(r->store, s->rec.workspace, &mv->objects) < 0) {
		move_free(mv);
		return;
	}
	move_suspend(r, s, mv);
	log_info("relay", "session %s: idle for %u s on its sandbox; parking "
		 "it", s->rec.id, r->sandbox_idle_s);
}

/* Starts a move: validates the target and asks the source to suspend. */
static void handle_move(struct relay *r, struct conn *c,
			const struct proto_msg *m, struct rsession *s)
{
	const char *to = proto_str(m->body, "to");
	struct store_machine target = { 0 };
	struct move *mv;
	char *why = NULL;
	bool offline;
	int e;

	if (s->move || (strcmp(s->rec.state, "running") &&
			strcmp(s->rec.state, "parked"))) {
		why = xasprintf("session is %s; only a running or parked "
				"session can move", s->move ? "already moving"
							    : s->rec.state);
		conn_send_error(c, m->id, s->rec.id, PROTO_E_CONFLICT, why);
		goto out;
	}
	if (!strcmp(to, "sandbox")) {
		if (s->rec.workspace == NULL) {
			conn_send_error(c, m->id, s->rec.id, PROTO_E_CONFLICT,
					"the session has no workspace yet");
			goto out;
		}
		e = store_machine_sandbox(r->store, s->rec.user,
					  s->rec.workspace, 0, &target);
	} else {
		e = store_machine_by_name(r->store, s->rec.user, to, &target);
	}
	if (e < 0) {
		char quoted[65];

		why = xasprintf("no machine named \"%s\"; use \"sandbox\" or "
				"a name from `baton machines`",
				proto_printable(to, quoted, sizeof(quoted)));
		conn_send_error(c, m->id, s->rec.id, PROTO_E_NOT_FOUND, why);
		goto out;
	}
	if (!strcmp(s->rec.state, "parked") &&
	    (strcmp(target.kind, "local") || bus_machine(r->bus, target.id))) {
		move_unpark(r, c, m, s, target.id);
		goto out;
	}
	if (!strcmp(target.id, s->rec.machine)) {
		conn_send_error(c, m->id, s->rec.id, PROTO_E_CONFLICT,
				"the session already runs there");
		goto out;
	}
	if (!strcmp(target.kind, "sandbox") &&
	    credits_spent(r, s->rec.user, &why)) {
		conn_send_error(c, m->id, s->rec.id, PROTO_E_UNAVAILABLE, why);
		goto out;
	}
	if (!strcmp(target.kind, "local") &&
	    bus_machine(r->bus, target.id) == NULL) {
		why = xasprintf("machine \"%s\" is offline", target.name);
		conn_send_error(c, m->id, s->rec.id, PROTO_E_UNAVAILABLE, why);
		goto out;
	}
	offline = bus_machine(r->bus, s->rec.machine) == NULL;
	if (offline && strcmp(target.kind, "sandbox")) {
		conn_send_error(c, m->id, s->rec.id, PROTO_E_UNAVAILABLE,
				"the machine running the session is offline, "
				"so it cannot checkpoint it now");
		goto out;
	}

	mv = xcalloc(1, sizeof(*mv));
	mv->phase = MOVE_SUSPENDING;
	mv->requester = c->id;
	mv->request_id = xstrdup(m->id);
	mv->source = xstrdup(s->rec.machine);
	mv->target = xstrdup(target.id);
	mv->started_ms = now_ms();
	e = store_objects_open(r->store, s->rec.workspace, &mv->objects);
	if (e < 0) {
		move_free(mv);
		conn_send_error(c, m->id, s->rec.id, PROTO_E_FAILED,
				"the relay cannot open its object store");
		goto out;
	}
	if (offline) {
		sync_drop(s);
		if (!move_offline(r, c, m, s, mv))
			move_free(mv);
		goto out;
	}
	sync_drop(s);	/* a sync cut short by the move is not kept */
	r->stats.moves_started++;
	move_suspend(r, s, mv);
	move_step(r, s, "suspending", "asking the source to stop the agent "
		  "and take a checkpoint");
out:
	free(why);
	store_machine_clear(&target);
}

/* The end of a setup log (a client wants the end of a long one), or NULL
 * when there is none. */
static char *setup_log_tail(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *text;
	long size;
	size_t n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) < 0 || (size = ftell(f)) < 0 ||
	    fseek(f, size > SETUP_LOG_SHOWN ? size - SETUP_LOG_SHOWN : 0,
		  SEEK_SET) < 0) {
		fclose(f);
		return NULL;
	}
	text = xmalloc(SETUP_LOG_SHOWN + 1);
	n = fread(text, 1, SETUP_LOG_SHOWN, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

/* setup.get: a sandbox's setup log, as the relay kept it. */
static void handle_setup_get(struct relay *r, struct conn *c,
			     const struct proto_msg *m)
{
	struct store_machine mach = { 0 };
	char *path, *text;
	cJSON *body;

	if (client_machine(r, c, m, proto_str(m->body, "machine"),
			   &mach) < 0)
		return;
	path = xasprintf("%s/sandboxes/%s/setup.log", store_data_dir(r->store),
			 mach.id);
	text = setup_log_tail(path);
	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "machine", mach.name);
	cJSON_AddStringToObject(body, "state", mach.state);
	if (text && *text)
		cJSON_AddStringToObject(body, "text", text);
	conn_send_owned(c, proto_encode("setup", m->id, NULL, body));
	free(text);
	free(path);
	store_machine_clear(&mach);
}

/* A client's requests that name no session, and who answers each. */
static const struct {
	const char *type;
	void (*handle)(struct relay *r, struct conn *c,
		       const struct proto_msg *m);
} client_requests[] = {
	{ "machines.list", handle_machines_list },
	{ "sessions.list", handle_sessions_list },
	{ "session.start", handle_session_start },
	{ "pair.approve", auth_pair_approve },
	{ "workspace.sync", handle_workspace_sync },
	{ "workspace.setup", handle_workspace_setup },
	{ "credits.get", credits_handle },
	{ "login.new", web_login_new },
	{ "setup.get", handle_setup_get },
};

static void handle_client(struct relay *r, struct conn *c,
			  const struct proto_msg *m)
{
	struct rsession *s;

	if (c->read_only && steers(m->type)) {
		conn_send_error(c, m->id, m->session, PROTO_E_FORBIDDEN,
				READ_ONLY_WHY);
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(client_requests); i++) {
		if (!strcmp(m->type, client_requests[i].type)) {
			client_requests[i].handle(r, c, m);
			return;
		}
	}
	if (!strncmp(m->type, "env.", 4)) {
		env_handle(r, c, m);
		return;
	}
	if (!strcmp(m->type, "ping")) {
		conn_send_owned(c, proto_encode("pong", m->id, NULL, NULL));
		return;
	}
	if (!strcmp(m->type, "pong") || !strcmp(m->type, "error"))
		return;	/* a client's answer to us: nothing to do */
	if ((s = client_session(r, c, m)) == NULL)
		return;
	if (!strcmp(m->type, "session.status")) {
		conn_send_owned(c, proto_encode("session", m->id, s->rec.id,
						session_json(r, s)));
	} else if (!strcmp(m->type, "session.attach")) {
		handle_attach(r, c, m, s);
	} else if (!strcmp(m->type, "session.detach")) {
		bus_unsubscribe(r->bus, s->rec.id, c);
		conn_send_owned(c, proto_encode("ok", m->id, s->rec.id, NULL));
	} else if (!strcmp(m->type, "session.resize") ||
		   !strcmp(m->type, "session.stop")) {
		handle_forward(r, c, m, s);
	} else if (!strcmp(m->type, "session.move")) {
		handle_move(r, c, m, s);
	} else {
		conn_send_error(c, m->id, m->session, PROTO_E_FORBIDDEN,
				"clients may not send this message");
	}
}

/* ---- machines ---- */

/* The session named in a machine's message, if that machine may speak for
 * it: the owner, or the source of a move in progress. */
static struct rsession *machine_session(struct relay *r, struct conn *c,
					const char *id)
{
	struct rsession *s = id ? session_find(r, id) : NULL;

	if (s == NULL || strcmp(s->rec.user, c->user))
		return NULL;
	if (!strcmp(s->rec.machine, c->machine_id))
		return s;
	if (s->move && !strcmp(s->move->source, c->machine_id) &&
	    s->move->phase == MOVE_SUSPENDING)
		return s;
	return NULL;
}

static void reply_start(struct relay *r, struct rsession *s, const char *code,
			const char *message)
{
	struct conn *c = conn_by_id(r, s->start_conn);

	if (c && code)
		conn_send_error(c, s->start_request, s->rec.id, code, message);
	else if (c)
		conn_send_owned(c, proto_encode("session", s->start_request,
						s->rec.id, session_json(r, s)));
	s->start_conn = 0;
	free(s->start_request);
	s->start_request = NULL;
}

static void handle_spawned(struct relay *r, struct conn *c,
			   const struct proto_msg *m, struct rsession *s)
{
	const char *key = proto_str(m->body, "workspace");
	const cJSON *profile = cJSON_GetObjectItemCaseSensitive(m->body,
								"profile");
	char *workspace = NULL;

	if (store_workspace_ensure(r->store, s->rec.user, key, &workspace) <
	    0) {
		reply_start(r, s, PROTO_E_FAILED, "the relay cannot record "
			    "the workspace");
		return;
	}
	free(s->rec.workspace);
	s->rec.workspace = workspace;
	set_str(&s->rec.worktree, proto_str(m->body, "worktree"));
	set_str(&s->remote, proto_str(m->body, "remote"));
	set_str(&s->rec.state, "running");
	s->active_ms = uv_now(r->loop);
	session_save(r, s);
	session_set_profile(r, s, profile);
	log_info("relay", "session %s running in %s on %s", s->rec.id,
		 s->rec.worktree, c->machine_name);
	reply_start(r, s, NULL, NULL);
	session_publish(r, s);
	sync_offer(r, s);
}

static void handle_exited(struct relay *r, struct conn *c,
			  const struct proto_msg *m, struct rsession *s)
{
	int64_t status = -1;
	struct conn *stopper;

	if (s->move)
		return;	/* the source ends its agent as part of a move */
	proto_int(m->body, "status", &status);
	s->rec.exit_status = (int)status;
	set_str(&s->rec.state, "exited");
	session_save(r, s);
	log_info("relay", "session %s exited with status %d", s->rec.id,
		 (int)status);
	{
		cJSON *body = cJSON_CreateObject();
		char *text;

		cJSON_AddNumberToObject(body, "status", (double)status);
		proto_add_u64(body, "seq", s->rec.seq);
		text = proto_encode("session.exited", NULL, s->rec.id, body);
		bus_publish_text(r->bus, s->rec.id, text);
		free(text);
	}
	stopper = conn_by_id(r, s->stop_conn);
	if (stopper)
		conn_send_owned(stopper, proto_encode("ok", s->stop_request,
						      s->rec.id, NULL));
	s->stop_conn = 0;
}

/* The source has uploaded its checkpoint: record it, fence, go on. */
static void handle_suspended(struct relay *r, struct conn *c,
			     const struct proto_msg *m, struct rsession *s)
{
	const char *oid_text = proto_str(m->body, "checkpoint");
	struct move *mv = s->move;
	char *cause = NULL;
	git_odb *odb = NULL;
	git_oid oid;
	int ok;

	if (mv == NULL || mv->phase != MOVE_SUSPENDING ||
	    strcmp(mv->source, c->machine_id)) {
		conn_send_error(c, m->id, s->rec.id, PROTO_E_CONFLICT,
				"no move of this session is waiting for a "
				"checkpoint");
		return;
	}
	if (mv->unpack && checkpoint_unpack_commit(mv->unpack, &cause) < 0) {
		move_fail(r, s, cause);
		free(cause);
		return;
	}
	checkpoint_unpack_free(mv->unpack);
	mv->unpack = NULL;
	git_oid_fromstr(&oid, oid_text);
	ok = git_repository_odb(&odb, mv->objects) == 0 &&
	     git_odb_exists(odb, &oid);
	git_odb_free(odb);
	if (!ok) {
		move_fail(r, s, "the source's pack did not hold its "
			  "checkpoint");
		return;
	}
	/* The source says which agent it ran: the relay may have restarted
	 * since the session started. */
	session_set_profile(r, s, cJSON_GetObjectItemCaseSensitive(
				     m->body, "profile"));
	store_checkpoint_add(r->store, s->rec.workspace, s->rec.id, oid_text,
			     c->machine_id);
	set_str(&s->rec.checkpoint, oid_text);
	move_step(r, s, "checkpoint", "checkpoint %.12s stored (%" PRIu64
		  " bytes uploaded)", oid_text, mv->bytes_up);
	if (mv->park) {
		/* Nobody owns it now: the next move resumes it from here. */
		s->rec.epoch++;
		set_str(&s->rec.state, "parked");
		session_save(r, s);
		s->move = NULL;
		move_free(mv);
		log_info("relay", "session %s parked at checkpoint %.12s: its "
			 "sandbox sat idle", s->rec.id, oid_text);
		session_publish(r, s);
		return;
	}

	crash_point("relay:checkpoint-stored");

	move_fence(r, s);
}

/*
 * The fence: the target owns the session from a higher epoch, written
 * before anything else, so an older owner is told to stand down. Then the
 * target is asked to resume.
 */
static void move_fence(struct relay *r, struct rsession *s)
{
	struct move *mv = s->move;
	char name[128];

	mv->fenced = true;
	s->rec.epoch++;
	set_str(&s->rec.machine, mv->target);
	set_str(&s->rec.state, "moving");
	session_save(r, s);
	crash_point("relay:fenced");
	session_publish(r, s);
	move_step(r, s, "fenced", "%s owns the session from epoch %" PRIu64,
		  machine_name(r, mv->target, name, sizeof(name)),
		  s->rec.epoch);
	move_resume(r, s);
}

/*
 * Starts a new generation of the workspace's sandbox with a one-time
 * bootstrap credential for its first connection, where it binds its own key;
 * an older generation still running is refused from then on. A user whose
 * sandbox credits are spent gets none (-EDQUOT).
 */
static int sandbox_launch(struct relay *r, const char *user,
			  const char *workspace, char **cause)
{
	struct store_machine m = { 0 };
	char *token = NULL;
	int e;

	if (credits_spent(r, user, cause))
		return -EDQUOT;
	e = store_machine_sandbox(r->store, user, workspace, 1, &m);
	if (e == 0)
		e = store_bootstrap_create(r->store, m.id, m.generation,
					   (int64_t)time(NULL) +
						   BOOTSTRAP_TTL_S, &token);
	if (e < 0)
		*cause = xasprintf("cannot record a new sandbox: %s",
				   strerror(-e));
	else
		e = launcher_start(r->launcher, &m, r->url, token, cause);
	if (e == 0)
		store_machine_set_state(r->store, m.id, "starting");
	if (token)
		sodium_memzero(token, strlen(token));
	free(token);
	store_machine_clear(&m);
	return e;
}

/* The setup a sandbox runs: the workspace's script, if one is set (else
 * the repository's .baton/setup), and the time it may take. */
static void add_setup(struct relay *r, struct rsession *s, cJSON *body)
{
	struct store_workspace w;

	cJSON_AddNumberToObject(body, "setup_timeout", r->setup_timeout_s);
	if (store_workspace_get(r->store, s->rec.workspace, &w) < 0)
		return;
	if (w.setup)
		cJSON_AddStringToObject(body, "setup", w.setup);
	store_workspace_clear(&w);
}

/* Whether a machine is a sandbox, by its connection. */
static bool machine_is_sandbox(struct relay *r, const char *machine_id)
{
	struct conn *c = bus_machine(r->bus, machine_id);

	return c && c->machine_kind && !strcmp(c->machine_kind, "sandbox");
}

/* Sends the resume to the target, starting it first when needed. */
static void move_resume(struct relay *r, struct rsession *s)
{
	struct move *mv = s->move;
	struct store_machine target = { 0 };
	char *cause = NULL;
	cJSON *body;
	char name[128];

	if (bus_machine(r->bus, mv->target) == NULL) {
		if (mv->phase == MOVE_LAUNCHING) {
			return;	/* still waiting for its hello */
		}
		if (store_machine_get(r->store, mv->target, &target) < 0 ||
		    strcmp(target.kind, "sandbox")) {
			store_machine_clear(&target);
			move_fail(r, s, "the target machine went offline");
			return;
		}
		store_machine_clear(&target);
		if (!launcher_running(r->launcher, mv->target) &&
		    sandbox_launch(r, s->rec.user, s->rec.workspace,
				   &cause) < 0) {
			move_fail(r, s, cause);
			free(cause);
			return;
		}
		mv->phase = MOVE_LAUNCHING;
		mv->launched_ms = uv_now(r->loop);
		move_step(r, s, "launching", "starting sandbox %s",
			  machine_name(r, mv->target, name, sizeof(name)));
		return;
	}

	mv->phase = MOVE_RESTORING;
	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "checkpoint", s->rec.checkpoint);
	cJSON_AddStringToObject(body, "agent", s->rec.agent);
	proto_add_u64(body, "epoch", s->rec.epoch);
	proto_add_u64(body, "seq", s->rec.seq);
	cJSON_AddStringToObject(body, "workspace", s->rec.workspace);
	if (s->remote)
		cJSON_AddStringToObject(body, "remote", s->remote);
	if (s->profile)
		cJSON_AddItemToObject(body, "profile",
				      cJSON_Duplicate(s->profile, 1));
	add_setup(r, s, body);
	send_to_machine(r, mv->target, proto_encode("session.resume", NULL,
						    s->rec.id, body));
	if (machine_is_sandbox(r, mv->target))
		store_machine_set_state(r->store, mv->target, "restoring");
	move_step(r, s, "restoring", "%s is restoring checkpoint %.12s",
		  machine_name(r, mv->target, name, sizeof(name)),
		  s->rec.checkpoint);
}

/* A move cannot go on. Before the fence the session stays where it was;
 * after it, the session goes back to the source at the checkpoint. */
static void move_fail(struct relay *r, struct rsession *s, const char *why)
{
	struct move *mv = s->move;
	struct conn *c;
	char *target_id;

	log_warn("move", "session %s: move failed: %s", s->rec.id, why);
	if (!mv->fallback && !mv->park && mv->requester)
		r->stats.moves_failed++;	/* once, at the first failure */
	if (!mv->fenced || mv->fallback) {
		c = conn_by_id(r, mv->requester);
		if (c)
			conn_send_error(c, mv->request_id, s->rec.id,
					PROTO_E_FAILED, why);
		/* Before the fence the source still owns it; if it is away,
		 * it restarts the agent when it comes back. */
		set_str(&s->rec.state, mv->fallback ? "stopped" : "running");
		s->move = NULL;
		move_free(mv);
		session_save(r, s);
		session_publish(r, s);
		return;
	}

	/* After the fence: resume on the source, which still has the
	 * worktree the checkpoint was taken from. */
	mv->fallback = true;
	set_str(&mv->failure, why);
	move_step(r, s, "returning", "%s; resuming on the source", why);
	target_id = mv->target;
	mv->target = mv->source;
	mv->source = target_id;
	s->rec.epoch++;
	set_str(&s->rec.machine, mv->target);
	session_save(r, s);
	mv->phase = MOVE_RESTORING;
	if (bus_machine(r->bus, mv->target) == NULL) {
		move_fail(r, s, "the source is offline too; the session "
			  "stays at its last checkpoint");
		return;
	}
	move_resume(r, s);
}

/*
 * Finishes a move the relay lost track of (it restarted after the fence):
 * the owner resumes from the stored checkpoint. Nobody asked for this
 * move, so a failure leaves the session stopped at that checkpoint.
 */
static void move_recover(struct relay *r, struct rsession *s)
{
	struct move *mv = xcalloc(1, sizeof(*mv));

	mv->phase = MOVE_RESTORING;
	mv->request_id = xstrdup("");
	mv->source = xstrdup(s->rec.machine);
	mv->target = xstrdup(s->rec.machine);
	mv->fenced = true;
	mv->fallback = true;
	mv->failure = xstrdup("the move could not be finished");
	mv->started_ms = now_ms();
	if (s->rec.checkpoint == NULL ||
	    store_objects_open(r->store, s->rec.workspace, &mv->objects) < 0) {
		move_free(mv);
		log_error("relay", "session %s: no checkpoint to resume from",
			  s->rec.id);
		set_str(&s->rec.state, "stopped");
		session_save(r, s);
		return;
	}
	s->move = mv;
	move_resume(r, s);
}

/* Delivers input that arrived while the session was moving. */
static void flush_held_input(struct relay *r, struct rsession *s)
{
	struct conn *mc = bus_machine(r->bus, s->rec.machine);
	struct proto_bin hdr = { .kind = PROTO_BIN_INPUT };

	proto_uuid_parse(s->rec.id, hdr.session);
	while (s->held) {
		struct pending_input *p = s->held;

		s->held = p->next;
		hdr.seq = p->id;
		if (mc)
			conn_send_binary(mc, &hdr, p->data, p->len);
		free(p);
	}
	s->held_bytes = 0;
}

static void handle_resumed(struct relay *r, struct conn *c,
			   const struct proto_msg *m, struct rsession *s)
{
	struct move *mv = s->move;
	const char *note = proto_str(m->body, "note");
	const char *set_aside = proto_str(m->body, "set_aside");
	struct conn *req;
	cJSON *body;

	set_str(&s->rec.worktree, proto_str(m->body, "worktree"));
	set_str(&s->rec.state, "running");
	s->rec.exit_status = -1;
	s->active_ms = uv_now(r->loop);
	session_save(r, s);
	if (!strcmp(c->machine_kind, "sandbox"))
		store_machine_set_state(r->store, c->machine_id, "ready");
	if (mv == NULL)
		return;

	req = conn_by_id(r, mv->requester);
	if (mv->fallback) {
		if (req) {
			char *why = xasprintf("move failed: %s; the session "
					      "runs on %s again", mv->failure,
					      c->machine_name);

			conn_send_error(req, mv->request_id, s->rec.id,
					PROTO_E_FAILED, why);
			free(why);
		}
	} else if (req) {
		body = cJSON_CreateObject();
		cJSON_AddStringToObject(body, "machine", c->machine_name);
		cJSON_AddStringToObject(body, "kind", c->machine_kind);
		cJSON_AddStringToObject(body, "worktree", s->rec.worktree);
		cJSON_AddStringToObject(body, "checkpoint", s->rec.checkpoint);
		proto_add_u64(body, "bytes_up", mv->bytes_up);
		proto_add_u64(body, "bytes_down", mv->bytes_down);
		proto_add_u64(body, "ms", now_ms() - mv->started_ms);
		if (note)
			cJSON_AddStringToObject(body, "note", note);
		if (set_aside)
			cJSON_AddStringToObject(body, "set_aside", set_aside);
		conn_send_owned(req, proto_encode("move.done", mv->request_id,
						  s->rec.id, body));
	}
	log_info("move", "session %s now runs on %s in %s (%" PRIu64
		 " ms, %" PRIu64 " bytes up, %" PRIu64 " down)%s%s",
		 s->rec.id, c->machine_name, s->rec.worktree,
		 now_ms() - mv->started_ms, mv->bytes_up, mv->bytes_down,
		 note ? ": " : "", note ? note : "");
	if (!mv->fallback && mv->requester)
		stats_move_finished(r, now_ms() - mv->started_ms);
	s->move = NULL;
	move_free(mv);
	flush_held_input(r, s);
	session_publish(r, s);
	sync_offer(r, s);	/* back on a laptop: it syncs again */
}

/* The upper bounds of the move duration buckets, in milliseconds. */
static const uint64_t move_bucket_ms[RELAY_MOVE_BUCKETS] = {
	50, 100, 250, 500, 1000, 2500, 10000, 60000,
};

/* Counts a move that ended where it was asked to, and how long it took. */
static void stats_move_finished(struct relay *r, uint64_t ms)
{
	r->stats.moves_finished++;
	r->stats.move_ms_sum += ms;
	for (size_t i = 0; i < RELAY_MOVE_BUCKETS; i++)
		if (ms <= move_bucket_ms[i])
			r->stats.move_ms[i]++;
}

/* Adds up the sizes of the files under PATH, not following links. */
static uint64_t tree_bytes(const char *path)
{
	struct stat st;
	struct dirent *e;
	uint64_t sum = 0;
	DIR *dir;

	if (lstat(path, &st) < 0)
		return 0;
	if (!S_ISDIR(st.st_mode))
		return S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
	if ((dir = opendir(path)) == NULL)
		return 0;
	while ((e = readdir(dir)) != NULL) {
		char *child;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		child = xasprintf("%s/%s", path, e->d_name);
		sum += tree_bytes(child);
		free(child);
	}
	closedir(dir);
	return sum;
}

char *relay_metrics(struct relay *r)
{
	static const char *const roles[] = { "new", "client", "machine",
					     "pairing" };
	static const char *const states[] = { "starting", "running",
		"suspending", "moving", "parked", "exited", "stopped",
		"failed" };
	struct relay_stats *st = &r->stats;
	uint64_t now = uv_now(r->loop);
	unsigned by_role[4] = { 0 };
	struct buf b = BUF_INIT;
	char *path;

	for (struct conn *c = r->conns; c; c = c->next)
		if (c->role < 4)
			by_role[c->role]++;
	/* The store's size is a walk of its folders: once a minute. */
	if (st->disk_measured_ms == 0 || now - st->disk_measured_ms > 60000) {
		path = xasprintf("%s/transcripts", store_data_dir(r->store));
		st->disk_transcripts = tree_bytes(path);
		free(path);
		path = xasprintf("%s/objects", store_data_dir(r->store));
		st->disk_objects = tree_bytes(path);
		free(path);
		st->disk_measured_ms = now ? now : 1;
	}

	buf_puts(&b, "# HELP baton_connections Open WebSocket connections.\n"
		 "# TYPE baton_connections gauge\n");
	for (size_t i = 0; i < 4; i++)
		buf_printf(&b, "baton_connections{role=\"%s\"} %u\n",
			   roles[i], by_role[i]);
	buf_puts(&b, "# HELP baton_sessions Sessions the relay holds, by "
		 "state.\n# TYPE baton_sessions gauge\n");
	for (size_t i = 0; i < ARRAY_SIZE(states); i++) {
		unsigned n = 0;

		for (struct rsession *s = r->sessions; s; s = s->next)
			n += !strcmp(s->rec.state, states[i]);
		buf_printf(&b, "baton_sessions{state=\"%s\"} %u\n",
			   states[i], n);
	}
	buf_printf(&b, "# HELP baton_moves_total Moves asked for, by how they "
		   "ended.\n# TYPE baton_moves_total counter\n"
		   "baton_moves_total{result=\"started\"} %" PRIu64 "\n"
		   "baton_moves_total{result=\"finished\"} %" PRIu64 "\n"
		   "baton_moves_total{result=\"failed\"} %" PRIu64 "\n",
		   st->moves_started, st->moves_finished, st->moves_failed);
	buf_puts(&b, "# HELP baton_move_duration_seconds How long finished "
		 "moves took.\n# TYPE baton_move_duration_seconds "
		 "histogram\n");
	/* each finished move counts in every bucket it fits: cumulative */
	for (size_t i = 0; i < RELAY_MOVE_BUCKETS; i++)
		buf_printf(&b, "baton_move_duration_seconds_bucket{le=\"%g\"} "
			   "%" PRIu64 "\n", move_bucket_ms[i] / 1000.0,
			   st->move_ms[i]);
	buf_printf(&b, "baton_move_duration_seconds_bucket{le=\"+Inf\"} %"
		   PRIu64 "\nbaton_move_duration_seconds_sum %.3f\n"
		   "baton_move_duration_seconds_count %" PRIu64 "\n",
		   st->moves_finished, st->move_ms_sum / 1000.0,
		   st->moves_finished);
	buf_printf(&b, "# HELP baton_relayed_bytes_total Session output sent "
		   "on and input passed to agents.\n"
		   "# TYPE baton_relayed_bytes_total counter\n"
		   "baton_relayed_bytes_total %" PRIu64 "\n",
		   st->bytes_relayed);
	buf_printf(&b, "# HELP baton_store_bytes Bytes on disk, measured at "
		   "most once a minute.\n# TYPE baton_store_bytes gauge\n"
		   "baton_store_bytes{kind=\"transcripts\"} %" PRIu64 "\n"
		   "baton_store_bytes{kind=\"objects\"} %" PRIu64 "\n",
		   st->disk_transcripts, st->disk_objects);
	return buf_detach(&b, NULL);
}

bool relay_ready(struct relay *r)
{
	int64_t seconds;
	int e;

	if (r->stopping)
		return false;
	/* Any read answers whether the database is usable. */
	e = store_credits_get(r->store, "readyz", &seconds);
	return e == 0 || e == -ENOENT;
}

/* The owner has started the agent again in its worktree. */
static void handle_restarted(struct relay *r, struct conn *c,
			     const struct proto_msg *m, struct rsession *s)
{
	s->restarting = false;
	set_str(&s->rec.worktree, proto_str(m->body, "worktree"));
	set_str(&s->rec.state, "running");
	s->rec.exit_status = -1;
	session_save(r, s);
	log_info("relay", "session %s runs again on %s in %s", s->rec.id,
		 c->machine_name, s->rec.worktree);
	flush_held_input(r, s);
	session_publish(r, s);
}

/* Sends the target the objects it lacks. */
static void handle_objects_want(struct relay *r, struct conn *c,
				const struct proto_msg *m, struct rsession *s)
{
	const cJSON *have = cJSON_GetObjectItemCaseSensitive(m->body, "have");
	struct move *mv = s->move;
	struct proto_bin hdr = { .kind = PROTO_BIN_PACK };
	struct buf pack = BUF_INIT;
	git_oid want, *haves;
	size_t nhaves = 0, off = 0;
	const cJSON *item;
	char *cause = NULL;
	cJSON *body;

	if (mv == NULL || mv->phase != MOVE_RESTORING) {
		conn_send_error(c, m->id, s->rec.id, PROTO_E_CONFLICT,
				"no move is restoring this session");
		return;
	}
	git_oid_fromstr(&want, proto_str(m->body, "checkpoint"));
	haves = xcalloc((size_t)cJSON_GetArraySize(have) + 1, sizeof(*haves));
	cJSON_ArrayForEach(item, have) {
		if (cJSON_IsString(item) &&
		    proto_oid_valid(item->valuestring) &&
		    git_oid_fromstr(&haves[nhaves], item->valuestring) == 0)
			nhaves++;
	}
	if (checkpoint_pack(mv->objects, &want, haves, nhaves, &pack,
			    &cause) < 0) {
		free(haves);
		conn_send_error(c, m->id, s->rec.id, PROTO_E_FAILED, cause);
		move_fail(r, s, cause);
		free(cause);
		return;
	}
	free(haves);

	proto_uuid_parse(s->rec.id, hdr.session);
	hdr.epoch = (uint32_t)s->rec.epoch;
	do {
		size_t n = pack.len - off > PROTO_CHUNK ? PROTO_CHUNK
							: pack.len - off;

		hdr.flags = off + n == pack.len ? PROTO_BIN_LAST : 0;
		conn_send_binary(c, &hdr, pack.data + off, n);
		hdr.seq++;
		off += n;
	} while (off < pack.len);
	mv->bytes_down += pack.len;

	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "checkpoint",
				proto_str(m->body, "checkpoint"));
	proto_add_u64(body, "pack_bytes", pack.len);
	conn_send_owned(c, proto_encode("objects.sent", m->id, s->rec.id,
					body));
	move_step(r, s, "sending", "%zu bytes of objects to the target",
		  pack.len);
	buf_free(&pack);
}

static void handle_setup_log(struct relay *r, struct conn *c,
			     const struct proto_msg *m)
{
	const char *text = proto_str(m->body, "text");
	char *path = xasprintf("%s/sandboxes/%s/setup.log",
			       store_data_dir(r->store), c->machine_id);
	bool done = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m->body,
								  "done"));
	int64_t status = 0;
	char *clean = NULL;
	FILE *f;

	proto_int(m->body, "status", &status);
	if (!strcmp(c->machine_kind, "sandbox"))
		store_machine_set_state(r->store, c->machine_id,
			!done ? "setup" : status == 0 ? "restoring"
			: !strncmp(text, "start_timeout", 13) ? "start_timeout"
			: "start_error");

	for (struct rsession *s = r->sessions; s; s = s->next) {
		if (s->move && !strcmp(s->move->target, c->machine_id) &&
		    session_scrub(r, s)) {
			clean = scrub_string(session_scrub(r, s), text);
			text = clean;
			break;
		}
	}
	f = fopen(path, "a");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	free(path);
	for (struct rsession *s = r->sessions; s; s = s->next)
		if (s->move && !strcmp(s->move->target, c->machine_id))
			move_step(r, s, "setup", "%s", text);
	free(clean);
}

/* A machine reports an error about a session: a failed spawn or move. */
static void handle_machine_error(struct relay *r, struct conn *c,
				 const struct proto_msg *m,
				 struct rsession *s)
{
	const char *message = proto_str(m->body, "message");

	log_warn("relay", "machine %s: session %s: %s", c->machine_name,
		 s->rec.id, message);
	if (s->start_conn) {
		set_str(&s->rec.state, "failed");
		session_save(r, s);
		reply_start(r, s, proto_str(m->body, "code"), message);
	} else if (s->move) {
		move_fail(r, s, message);
	} else if (s->restarting) {
		s->restarting = false;
		set_str(&s->rec.state, "stopped");
		session_save(r, s);
		session_publish(r, s);
	}
}

/*
 * Tells a machine that speaks for a session it does not run to stand
 * down: the same answer whether the session is another machine's, another
 * user's or none at all.
 */
static void stand_down_unknown(struct conn *c, const char *session)
{
	cJSON *body = cJSON_CreateObject();

	c->refusals++;
	LOG_AT(c->refusals <= 20 ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG, "relay",
	       "refused machine %s (user %s, connection %" PRIu64 ") for "
	       "session %s, which it does not run: told it to stand down",
	       c->machine_name, c->user, c->id, session);

	proto_add_u64(body, "epoch", 0);
	conn_send_owned(c, proto_encode("session.stand_down", NULL, session,
					body));
}

static void handle_machine(struct relay *r, struct conn *c,
			   const struct proto_msg *m)
{
	struct rsession *s;

	if (!strcmp(m->type, "ping")) {
		conn_send_owned(c, proto_encode("pong", m->id, NULL, NULL));
		return;
	}
	if (!strcmp(m->type, "pong"))
		return;
	if (!strcmp(m->type, "setup.log")) {
		handle_setup_log(r, c, m);
		return;
	}
	if (!strcmp(m->type, "challenge.answer")) {
		conn_send_error(c, m->id, NULL, PROTO_E_CONFLICT, "this "
				"machine was welcomed already; there is no "
				"challenge to answer");
		return;
	}
	s = machine_session(r, c, m->session);
	if (s == NULL) {
		if (m->session && strcmp(m->type, "error"))
			stand_down_unknown(c, m->session);
		return;
	}
	if (!strcmp(m->type, "session.spawned"))
		handle_spawned(r, c, m, s);
	else if (!strcmp(m->type, "session.exited"))
		handle_exited(r, c, m, s);
	else if (!strcmp(m->type, "session.suspended"))
		handle_suspended(r, c, m, s);
	else if (!strcmp(m->type, "objects.want"))
		handle_objects_want(r, c, m, s);
	else if (!strcmp(m->type, "session.resumed"))
		handle_resumed(r, c, m, s);
	else if (!strcmp(m->type, "session.restarted"))
		handle_restarted(r, c, m, s);
	else if (!strcmp(m->type, "session.synced"))
		handle_synced(r, c, m, s);
	else if (!strcmp(m->type, "error"))
		handle_machine_error(r, c, m, s);
}

void relay_on_text(struct relay *r, struct conn *c, const char *text,
		   size_t len)
{
	unsigned from = c->role == CONN_CLIENT ? PROTO_FROM_CLIENT
		      : c->role == CONN_MACHINE ? PROTO_FROM_MACHINE
		      : PROTO_FROM_CLIENT | PROTO_FROM_MACHINE;
	struct proto_msg m;
	const char *code;
	char cause[256];
	int e;

	e = proto_msg_decode(text, len, from, &m, &code, cause,
			     sizeof(cause));
	if (e < 0 && c->role == CONN_NEW && !strcmp(code, PROTO_E_FORBIDDEN)) {
		/* A type only the relay sends, before hello. */
		conn_send_error(c, m.id, NULL, PROTO_E_UNAUTHORIZED,
				"send hello with a token first");
		conn_close(c, "message before hello");
		proto_msg_free(&m);
		return;
	}
	if (e < 0) {
		conn_send_error(c, m.id, NULL, code, cause);
		if (c->role == CONN_NEW)
			conn_close(c, "bad message before hello");
		proto_msg_free(&m);
		return;
	}
	if (!strcmp(m.type, "ping") && c->role != CONN_CLIENT &&
	    c->role != CONN_MACHINE) {
		conn_send_owned(c, proto_encode("pong", m.id, NULL, NULL));
	} else if (!strcmp(m.type, "pong") && c->role != CONN_CLIENT &&
		   c->role != CONN_MACHINE) {
		/* liveness only */
	} else if (c->role == CONN_NEW && c->wait &&
		   !strcmp(m.type, "challenge.answer")) {
		auth_answer(r, c, &m);
	} else if (c->role == CONN_NEW && strcmp(m.type, "hello")) {
		conn_send_error(c, m.id, NULL, PROTO_E_UNAUTHORIZED,
				c->wait ? "answer the challenge first"
					: "send hello with a token first");
		conn_close(c, "message before hello");
	} else if (!strcmp(m.type, "hello")) {
		if (c->role == CONN_NEW)
			auth_hello(r, c, &m);
		else
			conn_send_error(c, m.id, NULL, PROTO_E_CONFLICT,
					"hello was already received");
	} else if (c->role == CONN_PAIRING) {
		conn_send_error(c, m.id, NULL, PROTO_E_FORBIDDEN,
				"this connection waits to be paired");
	} else if (c->role == CONN_CLIENT) {
		handle_client(r, c, &m);
	} else {
		handle_machine(r, c, &m);
	}
	proto_msg_free(&m);
}

static bool input_seen(struct rsession *s, uint64_t id)
{
	for (size_t i = 0; i < RECENT_INPUTS; i++)
		if (s->inputs[i] == id)
			return true;
	s->inputs[s->input_next] = id;
	s->input_next = (s->input_next + 1) % RECENT_INPUTS;
	return false;
}

static void client_input(struct relay *r, struct conn *c,
			 const struct proto_bin *b, struct rsession *s)
{
	struct conn *mc;

	if (b->seq == 0 || input_seen(s, b->seq))
		return;
	s->active_ms = uv_now(r->loop);
	if (!strcmp(s->rec.state, "parked")) {
		conn_send_error(c, NULL, s->rec.id, PROTO_E_UNAVAILABLE,
				"input not delivered: the session is parked "
				"(its sandbox stopped when it sat idle); "
				"resume it with `baton move SID --to sandbox` "
				"or `--to MACHINE`");
		return;
	}
	mc = bus_machine(r->bus, s->rec.machine);
	if (s->move == NULL && mc && !strcmp(s->rec.state, "running")) {
		r->stats.bytes_relayed += b->len;
		conn_send_binary(mc, b, b->data, b->len);
		return;
	}
	if (s->move && s->held_bytes + b->len <= PENDING_INPUT_MAX) {
		struct pending_input *p = xmalloc(sizeof(*p) + b->len);
		struct pending_input **tail = &s->held;

		p->next = NULL;
		p->id = b->seq;
		p->len = b->len;
		memcpy(p->data, b->data, b->len);
		while (*tail)
			tail = &(*tail)->next;
		*tail = p;
		s->held_bytes += b->len;
		return;
	}
	conn_send_error(c, NULL, s->rec.id, PROTO_E_UNAVAILABLE,
			"input not delivered: the session is not running");
}

/* Tells a machine up to which seq the session's output is stored. */
static void send_ack(struct conn *c, struct rsession *s)
{
	cJSON *body = cJSON_CreateObject();

	proto_add_u64(body, "seq", s->rec.seq);
	conn_send_owned(c, proto_encode("output.ack", NULL, s->rec.id, body));
}

static void machine_output(struct relay *r, struct conn *c,
			   const struct proto_bin *b, struct rsession *s)
{
	struct proto_bin out = *b;
	struct scrub *sc = session_scrub(r, s);
	struct buf clean = { 0 };
	const void *data = b->data;
	size_t len = b->len;
	int e;

	if (b->epoch != (uint32_t)s->rec.epoch)
		return;	/* from before the fence: that owner is retired */
	s->active_ms = uv_now(r->loop);
	if (sc) {
		/* The sandbox scrubs across chunks; this catches a value
		 * that reaches us another way (a laptop that echoes it). */
		scrub_feed(sc, b->data, b->len, &clean);
		scrub_flush(sc, &clean);
		data = clean.data ? clean.data : "";
		len = clean.len;
	}
	e = store_transcript_append(r->store, s->rec.id, b->seq, data, len);
	if (e == -EEXIST) {
		send_ack(c, s);	/* a resend: the machine may forget it */
		return;
	}
	if (e < 0) {
		/*
		 * Not acknowledged: the machine keeps it. Dropping the
		 * connection makes it send everything unacknowledged again
		 * when it reconnects (with backoff), by which time there may
		 * be room again; the chunks after this one would only be
		 * refused as a gap meanwhile.
		 */
		log_error("relay", "session %s: cannot store output %" PRIu64
			  " (last %" PRIu64 "): %s; the machine keeps it and "
			  "sends it again", s->rec.id, b->seq, s->rec.seq,
			  strerror(-e));
		if (!c->closing)
			conn_close(c, "cannot store its output");
		buf_free(&clean);
		return;
	}
	s->rec.seq = b->seq;
	out.epoch = 0;
	out.len = (uint32_t)len;
	r->stats.bytes_relayed += len;
	bus_publish_output(r->bus, s->rec.id, &out, data, len);
	send_ack(c, s);
	buf_free(&clean);
}

static void machine_pack(struct relay *r, struct conn *c,
			 const struct proto_bin *b, struct rsession *s)
{
	struct move *mv = s->move;
	char *cause = NULL;

	/* A sync's frames are told apart by their flag: one still on the
	 * wire when a move starts is dropped, not taken for the move's. */
	if (b->flags & PROTO_BIN_SYNC) {
		if (mv == NULL && !strcmp(s->rec.machine, c->machine_id))
			sync_pack(r, s, b);
		return;
	}
	if (mv == NULL || mv->phase != MOVE_SUSPENDING ||
	    strcmp(mv->source, c->machine_id))
		return;
	if (mv->unpack == NULL &&
	    checkpoint_unpack_new(mv->objects, &mv->unpack, &cause) < 0) {
		move_fail(r, s, cause);
		free(cause);
		return;
	}
	if (checkpoint_unpack_append(mv->unpack, b->data, b->len, &cause) <
	    0) {
		move_fail(r, s, cause);
		free(cause);
		return;
	}
	mv->bytes_up += b->len;
}

void relay_on_binary(struct relay *r, struct conn *c, const void *data,
		     size_t len)
{
	char id[PROTO_UUID_LEN + 1];
	struct proto_bin b;
	struct rsession *s;
	const char *cause;

	if (c->role == CONN_NEW) {
		conn_send_error(c, NULL, NULL, PROTO_E_UNAUTHORIZED,
				"send hello with a token first");
		conn_close(c, "binary frame before hello");
		return;
	}
	if (proto_bin_decode(data, len, &b, &cause) < 0) {
		conn_send_error(c, NULL, NULL, PROTO_E_BAD_MESSAGE, cause);
		return;
	}
	proto_uuid_format(b.session, id);
	if (c->role == CONN_CLIENT) {
		s = session_find(r, id);
		if (s == NULL || strcmp(s->rec.user, c->user)) {
			conn_send_error(c, NULL, id, PROTO_E_NOT_FOUND,
					"no such session");
			return;
		}
		if (b.kind == PROTO_BIN_INPUT && c->read_only) {
			conn_send_error(c, NULL, id, PROTO_E_FORBIDDEN,
					"input not delivered: "
					READ_ONLY_WHY);
		} else if (b.kind == PROTO_BIN_INPUT) {
			client_input(r, c, &b, s);
		} else {
			conn_send_error(c, NULL, id, PROTO_E_FORBIDDEN,
					"clients send only input frames");
		}
		return;
	}
	s = machine_session(r, c, id);
	if (s == NULL) {
		stand_down_unknown(c, id);
		return;
	}
	if (b.kind == PROTO_BIN_OUTPUT)
		machine_output(r, c, &b, s);
	else if (b.kind == PROTO_BIN_PACK)
		machine_pack(r, c, &b, s);
}

void relay_on_close(struct relay *r, struct conn *c)
{
	credits_on_close(r, c);
	if (c->role != CONN_MACHINE)
		return;
	if (bus_machine(r->bus, c->machine_id) != c)
		return;	/* replaced by a newer connection */
	log_info("relay", "machine %s went offline", c->machine_name);
	store_machine_set_state(r->store, c->machine_id,
				strcmp(c->machine_kind, "sandbox") ? "offline"
								   : "off");
	bus_forget(r->bus, c);
	for (struct rsession *s = r->sessions; s; s = s->next) {
		if (s->restarting && !strcmp(s->rec.machine, c->machine_id))
			s->restarting = false;	/* asked again next time */
		if (s->start_conn && !strcmp(s->rec.machine, c->machine_id))
			reply_start(r, s, PROTO_E_UNAVAILABLE,
				    "the machine went offline");
		if (s->move == NULL || r->stopping)
			continue;
		if ((s->move->phase == MOVE_SUSPENDING &&
		     !strcmp(s->move->source, c->machine_id)) ||
		    (s->move->phase == MOVE_RESTORING &&
		     !strcmp(s->move->target, c->machine_id)))
			move_fail(r, s, "the machine went offline during "
				  "the move");
	}
}

#define RECOVERY_FIRST_MS 12000	/* longer than a link's longest backoff */
#define RECOVERY_EVERY_MS 30000
#define RECOVERY_LAUNCHES 5		/* at most per minute */

/* Starts a sandbox for each live session whose sandbox is gone. */
static void check_sandboxes(struct relay *r)
{
	struct store_session *live = NULL;
	struct store_machine m = { 0 };
	size_t n = 0;

	if (r->stopping || store_sessions_live(r->store, NULL, &live, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		struct rsession *s = session_find(r, live[i].id);
		char *cause = NULL;

		store_machine_clear(&m);
		if (s == NULL || s->move ||
		    store_machine_get(r->store, s->rec.machine, &m) < 0 ||
		    strcmp(m.kind, "sandbox") ||
		    bus_machine(r->bus, m.id) ||
		    launcher_running(r->launcher, m.id))
			continue;
		if (now_ms() - r->launches_window_ms > 60000) {
			r->launches_window_ms = now_ms();
			r->launches = 0;
		}
		if (r->launches >= RECOVERY_LAUNCHES) {
			log_warn("relay", "sandbox %s is gone; not starting "
				 "it again this minute", m.name);
			continue;
		}
		r->launches++;
		log_info("relay", "session %s: its sandbox %s is gone; "
			 "starting a new one", s->rec.id, m.name);
		if (sandbox_launch(r, m.user, m.workspace, &cause) < 0) {
			log_error("relay", "cannot start sandbox %s: %s",
				  m.name, cause);
			free(cause);
		}
	}
	store_machine_clear(&m);
	store_sessions_free(live, n);
}

static void on_sandbox_check(uv_timer_t *t)
{
	check_sandboxes(t->data);
}

#define HELLO_SWEEP_MS 5000

/* Whether a session runs on, or moves to or from, the machine. */
bool relay_machine_busy(struct relay *r, const char *machine_id)
{
	for (struct rsession *s = r->sessions; s; s = s->next) {
		if (!strcmp(s->rec.machine, machine_id) &&
		    (!strcmp(s->rec.state, "running") ||
		     !strcmp(s->rec.state, "starting") ||
		     !strcmp(s->rec.state, "suspending") ||
		     !strcmp(s->rec.state, "moving")))
			return true;
		if (s->move && (!strcmp(s->move->target, machine_id) ||
				!strcmp(s->move->source, machine_id)))
			return true;
	}
	return false;
}

/*
 * Stops sandboxes that have run no session for --sandbox-idle seconds:
 * they are told to exit (a container's entrypoint ends with them). Their
 * sessions' checkpoints are on the relay, so a later move starts a new
 * one from there.
 */
static void sandboxes_idle(struct relay *r, uint64_t now)
{
	for (struct rsession *s = r->sessions; s; s = s->next) {
		if (s->move || strcmp(s->rec.state, "running") ||
		    !machine_is_sandbox(r, s->rec.machine))
			continue;
		if (s->active_ms == 0)
			s->active_ms = now;	/* loaded after a restart */
		else if (now - s->active_ms >
			 (uint64_t)r->sandbox_idle_s * 1000)
			session_park(r, s);
	}
	for (struct conn *c = r->conns; c; c = c->next) {
		if (c->role != CONN_MACHINE || c->closing || c->stop_sent ||
		    strcmp(c->machine_kind, "sandbox"))
			continue;
		if (relay_machine_busy(r, c->machine_id)) {
			c->idle_since_ms = 0;
			continue;
		}
		if (c->idle_since_ms == 0) {
			c->idle_since_ms = now;
			continue;
		}
		if (now - c->idle_since_ms <
		    (uint64_t)r->sandbox_idle_s * 1000)
			continue;
		log_info("relay", "sandbox %s has run no session for %u s; "
			 "stopping it", c->machine_name, r->sandbox_idle_s);
		store_machine_set_state(r->store, c->machine_id, "stopping");
		conn_send_owned(c, proto_encode("machine.stop", NULL, NULL,
						NULL));
		c->stop_sent = true;
	}
}

/*
 * Closes connections that have not proven who they are in time, and
 * laptops whose pairing code has expired: neither holds a place for long.
 */
static void on_hello_sweep(uv_timer_t *t)
{
	struct relay *r = t->data;
	uint64_t now = uv_now(r->loop);
	int64_t wall = (int64_t)time(NULL);

	/* A sandbox started for a move that never says hello (its command
	 * exited 0 but nothing came up) must not hold the session. */
	for (struct rsession *s = r->sessions; s; s = s->next) {
		if (s->clone && now - s->clone_ms >
				(uint64_t)r->launch_timeout_s * 1000) {
			cJSON_Delete(s->clone);
			s->clone = NULL;
			set_str(&s->rec.state, "failed");
			session_save(r, s);
			reply_start(r, s, PROTO_E_UNAVAILABLE, "the sandbox "
				    "did not connect in time; see its "
				    "sandbox.log");
		}
		if (s->move && s->move->phase == MOVE_LAUNCHING &&
		    now - s->move->launched_ms >
			    (uint64_t)r->launch_timeout_s * 1000) {
			char *why = xasprintf("the sandbox did not connect "
					      "within %u s; see its "
					      "sandbox.log under the relay's "
					      "data folder",
					      r->launch_timeout_s);

			move_fail(r, s, why);
			free(why);
		}
	}
	sandboxes_idle(r, now);
	for (struct conn *c = r->conns; c; c = c->next) {
		if (c->closing)
			continue;
		if (c->role == CONN_NEW &&
		    now - c->opened_ms > (uint64_t)r->hello_timeout_s * 1000) {
			conn_send_error(c, NULL, NULL, PROTO_E_UNAUTHORIZED,
					"no hello, or no answer to the "
					"challenge, in time");
			conn_close(c, "no hello in time");
		} else if (c->role == CONN_PAIRING &&
			   c->pair_expires < wall) {
			conn_send_error(c, NULL, NULL, PROTO_E_NOT_FOUND,
					"the pairing code expired; run "
					"`baton-local pair` again");
			conn_close(c, "pairing code expired");
		}
	}
}

void relay_recovery_start(struct relay *r)
{
	uint64_t sweep;

	uv_timer_init(r->loop, &r->sandbox_check);
	r->sandbox_check.data = r;
	uv_timer_start(&r->sandbox_check, on_sandbox_check,
		       RECOVERY_FIRST_MS, RECOVERY_EVERY_MS);
	uv_timer_init(r->loop, &r->hello_sweep);
	r->hello_sweep.data = r;
	sweep = r->hello_timeout_s * 500 < HELLO_SWEEP_MS
		? r->hello_timeout_s * 500 : HELLO_SWEEP_MS;
	uv_timer_start(&r->hello_sweep, on_hello_sweep, sweep, sweep);
}

static void on_check_closed(uv_handle_t *h)
{
}

void relay_recovery_stop(struct relay *r)
{
	uv_close((uv_handle_t *)&r->sandbox_check, on_check_closed);
	uv_close((uv_handle_t *)&r->hello_sweep, on_check_closed);
}

/* Called by the launcher when a sandbox process ends. */
void relay_sandbox_exited(const char *machine_id, int status, void *arg)
{
	struct relay *r = arg;
	bool launching = false;

	if (r->stopping)
		return;
	for (struct rsession *s = r->sessions; s; s = s->next)
		if (s->move && s->move->phase == MOVE_LAUNCHING &&
		    !strcmp(s->move->target, machine_id)) {
			char *why = xasprintf("the sandbox exited with status "
					      "%d before it connected; see "
					      "its sandbox.log", status);

			launching = true;
			move_fail(r, s, why);
			free(why);
		}
	/* One that ran sessions and died is replaced at once. */
	if (!launching)
		check_sandboxes(r);
}
