/*
 * relay.h: the relay's internal picture, shared by its modules: the relay
 * itself, its connections, and the interfaces of the server (lws plumbing),
 * the bus (routing between connections) and the launcher (sandboxes).
 */
#ifndef BATON_RELAY_H
#define BATON_RELAY_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "frames.h"
#include "proto.h"
#include "store.h"

struct bus;
struct launcher;

#define RELAY_MOVE_BUCKETS 8

/* What /metrics counts since the relay started. */
struct relay_stats {
	uint64_t moves_started;
	uint64_t moves_finished;
	uint64_t moves_failed;
	uint64_t move_ms[RELAY_MOVE_BUCKETS];	/* finished moves per bucket */
	uint64_t move_ms_sum;
	uint64_t bytes_relayed;		/* output to clients, input to agents */
	uint64_t disk_transcripts;	/* bytes, measured at most once a */
	uint64_t disk_objects;		/* minute */
	uint64_t disk_measured_ms;
};
struct ratelimit;
struct rsession;

enum conn_role {
	CONN_NEW = 0,		/* no hello yet */
	CONN_CLIENT,
	CONN_MACHINE,
	CONN_PAIRING,		/* a laptop showing a pairing code */
};

struct auth_wait;
struct web_code;

/*
 * What a peer can make the relay do (serve's options). Rates refill per
 * second up to bursts of twice as many; a NULL limiter or a 0 cap lifts
 * that limit. Refusals say `limited`.
 */
#define LIMIT_CONN_RATE_DEFAULT 50.0	/* new connections/s per address */
#define LIMIT_HELLO_RATE_DEFAULT 50.0	/* hellos/s per credential */
#define LIMIT_CONNS_PER_USER_DEFAULT 64
#define LIMIT_SESSIONS_PER_MACHINE_DEFAULT 32
#define LIMIT_KEYS 4096			/* addresses or credentials tracked */

struct relay_limits {
	struct ratelimit *conn_rate;	/* keyed by address (IPv6: its /64) */
	struct ratelimit *hello_rate;	/* keyed by a hash of the credential */
	unsigned char hello_key[32];	/* secret key of those hashes */
	unsigned conns_per_user;	/* clients and machines of one user */
	unsigned sessions_per_machine;	/* starting, running or moving */
	uint64_t log_next_ms;		/* next refusal logged at info */
	unsigned log_quiet;		/* refusals logged at debug since */
};

/* One WebSocket to the relay. */
struct conn {
	uint64_t id;		/* never reused; safe to keep */
	struct relay *relay;
	struct lws *wsi;
	struct frame_queue out;
	struct frame_rx in;
	enum conn_role role;
	char *user;
	char *machine_id;	/* machines only */
	char *machine_name;
	char *machine_kind;	/* "local" or "sandbox" */
	bool read_only;		/* clients: the token may only watch */
	unsigned refusals;	/* errors sent, for the log's throttle */
	uint64_t opened_ms;	/* loop time it connected */
	uint64_t idle_since_ms;	/* sandboxes: running no session since */
	bool stop_sent;		/* sandboxes: told to stop when idle */
	struct auth_wait *wait;	/* hello waiting for its signed answer */
	char *pair_code;	/* pairing: the code, until it is used */
	char *pair_name;	/* pairing: the machine name asked for */
	char *pair_key;		/* pairing: the key it proved */
	int64_t pair_expires;	/* pairing: unix seconds */
	char *web_token;	/* a browser's sign-in cookie, from the
				 * upgrade request; used if hello has none */
	bool closing;		/* close after the queue is written */
	uint64_t credit_ms;	/* sandboxes: loop time charged up to */
	char peer[64];		/* address, for logs */
	struct conn *next;
};

struct relay {
	uv_loop_t *loop;
	struct store *store;
	struct bus *bus;
	struct launcher *launcher;
	struct lws_context *lws;
	struct conn *conns;
	struct rsession *sessions;
	char *url;		/* ws:// or wss://ADDR:PORT for sandboxes */
	struct frames_liveness live;	/* ping and dead-peer times */
	uint64_t next_conn_id;
	unsigned pair_ttl_s;	/* how long a pairing code lives */
	unsigned hello_timeout_s;	/* to say hello and prove a key */
	unsigned setup_timeout_s;	/* a sandbox's setup script */
	unsigned launch_timeout_s;	/* a started sandbox's first hello */
	unsigned sandbox_idle_s;	/* stop a sandbox idle this long */
	struct relay_limits limits;
	unsigned char env_key[32];	/* encrypts env values at rest */
	unsigned env_generation;	/* bumped on every env change */
	bool stopping;
	uv_timer_t sandbox_check;	/* restarts sandboxes that died */
	uv_timer_t hello_sweep;		/* ends connections that never say
					 * who they are */
	struct relay_stats stats;	/* for /metrics */
	uint64_t launches_window_ms;	/* start of the current minute */
	unsigned launches;		/* recovery launches in it */
	uv_timer_t credit_tick;		/* charges sandboxes' time */
	uint64_t credit_cursor;		/* conn ids below it go first */
	bool tls;			/* serves https:// and wss:// */
	char *web_dir;			/* the web app's files, or NULL */
	struct web_code *login_codes;	/* one-time browser sign-ins */
};

/* server.c */
struct server_opts {
	const char *host;	/* address to listen on */
	int port;		/* 0: pick a free one */
	const char *tls_cert;	/* PEM files, checked; NULL: plain ws:// */
	const char *tls_key;
};
int server_start(struct relay *r, const struct server_opts *o,
		 int *bound_port, char **cause);
void server_shutdown(struct relay *r);
void server_free(struct relay *r);
void conn_send_text(struct conn *c, const char *text);
void conn_send_owned(struct conn *c, char *text);
void conn_send_binary(struct conn *c, const struct proto_bin *hdr,
		      const void *data, size_t len);
void conn_send_error(struct conn *c, const char *id, const char *session,
		     const char *code, const char *message);
/* Closes after what is queued has been written. */
void conn_close(struct conn *c, const char *reason);
size_t conn_queued(const struct conn *c);
/*
 * Refuses a request over a limit: sends `limited` with why (a sentence the
 * user can act on) and, with hang_up, closes. Logs at info at most once
 * every 10 s, at debug in between, so a flood cannot fill the disk.
 */
void conn_limited(struct conn *c, const char *id, const char *why,
		  bool hang_up);

/* auth.c: who a connection is (see the file's first comment) */
#define PAIR_TTL_DEFAULT_S 600
#define HELLO_TIMEOUT_DEFAULT_S 20
#define SETUP_TIMEOUT_DEFAULT_S 600
#define LAUNCH_TIMEOUT_DEFAULT_S 120
#define SANDBOX_IDLE_DEFAULT_S 900
void auth_hello(struct relay *r, struct conn *c, const struct proto_msg *m);
void auth_answer(struct relay *r, struct conn *c, const struct proto_msg *m);
void auth_pair_approve(struct relay *r, struct conn *c,
		       const struct proto_msg *m);
void auth_conn_free(struct conn *c);
#define AUTH_CODE_LEN 8
/* A one-time code (pairing, sign-in) and the form a typed one is kept in. */
void auth_code_new(char out[AUTH_CODE_LEN + 1]);
void auth_code_normalize(const char *in, char out[AUTH_CODE_LEN + 1]);
/* Takes one use of a credential from its allowance; false when over. */
bool auth_rate_take(struct relay *r, const char *cred, uint64_t *retry_ms);

/* web.c: the web app, browser sign-in (see the file's first comment) */
struct lws;
struct web_req;
/* Sends an HTTP answer with the relay's security headers; headers is
 * NULL or name, value, ..., NULL. Returns what an lws callback returns. */
int web_reply(struct relay *r, struct lws *wsi, unsigned status,
	      const char *type, const char *const *headers, const void *body,
	      size_t len);
/* An HTTP request other than the health checks: a file, or a POST
 * (sign-in, sign-out) whose body follows through web_http_body. */
int web_http(struct relay *r, struct lws *wsi, struct web_req **req,
	     const char *uri);
int web_http_body(struct relay *r, struct lws *wsi, struct web_req *req,
		  const void *in, size_t len);
int web_http_done(struct relay *r, struct lws *wsi, struct web_req *req);
void web_req_free(struct web_req **req);
/* At a WebSocket's upgrade: keeps a sign-in cookie sent by our page. */
void web_conn_open(struct relay *r, struct conn *c, struct lws *wsi);
/* login.new from a client: a one-time sign-in code for a browser. */
void web_login_new(struct relay *r, struct conn *c,
		   const struct proto_msg *m);
/* The app's folder when --web does not say (caller frees), or NULL. */
char *web_dir_default(void);
void web_free(struct relay *r);

/* env.c: the remote environment (see the file's first comment) */
struct scrub;
/* Loads or makes relay.key in the data folder; 0 or -errno with *cause. */
int env_init(struct relay *r, char **cause);
void env_clear(struct relay *r);
/* env.set, env.unset, env.list from a client. */
void env_handle(struct relay *r, struct conn *c, const struct proto_msg *m);
/* Sends a sandbox its workspace's values, sealed to its key. */
void env_send_sealed(struct relay *r, struct conn *c, const char *user,
		     const char *workspace, const char *pubkey);
/* One variable's value (caller frees, wipe first), or NULL. */
char *env_get(struct relay *r, const char *user, const char *workspace,
	      const char *name);
/* A scrubber of the workspace's values, or NULL when it has none. */
struct scrub *env_scrub(struct relay *r, const char *user,
			const char *workspace);

/* credits.c: sandbox credits (see the file's first comment) */
#define CREDIT_TICK_DEFAULT_S 10
/* Charges running sandboxes every tick_s seconds until credits_stop. */
void credits_start(struct relay *r, unsigned tick_s);
void credits_stop(struct relay *r);
/* A connection closes: a sandbox's is charged its last seconds. */
void credits_on_close(struct relay *r, struct conn *c);
/* True when the user's credits are spent; *why (caller frees) then says
 * so and what to do. No limit, or credits that cannot be read: false. */
bool credits_spent(struct relay *r, const char *user, char **why);
/* credits.get from a client: its user's balance. */
void credits_handle(struct relay *r, struct conn *c,
		    const struct proto_msg *m);
/* baton-relay credits set|show (argv[0] is "credits"); an exit status. */
int credits_main(int argc, char **argv);

/* main.c: opens the store for a command beside the server (token,
 * credits), or prints why not on stderr and returns NULL. */
struct store *relay_store_open_cli(const char *data);

/* Prometheus text metrics (caller frees). */
char *relay_metrics(struct relay *r);
/* Whether the relay can serve: not stopping, and its store answers. */
bool relay_ready(struct relay *r);

/* relay.c: what the relay does with messages */
/* Welcomes a connection auth.c has vouched for; held: a machine's
 * sessions from its hello. */
void relay_admit(struct relay *r, struct conn *c, const char *hello_id,
		 const cJSON *held);
/* Whether any session runs on, or is moving to or from, a machine (from
 * what the relay holds in memory). */
bool relay_machine_busy(struct relay *r, const char *machine_id);
void relay_on_text(struct relay *r, struct conn *c, const char *text,
		   size_t len);
void relay_on_binary(struct relay *r, struct conn *c, const void *data,
		     size_t len);
void relay_on_close(struct relay *r, struct conn *c);
/* The connection has room again: catch up its listeners that are behind. */
void relay_on_drain(struct relay *r, struct conn *c);
void relay_sessions_free(struct relay *r);
/*
 * Starts sandboxes that own live sessions but are gone (they died, or the
 * relay restarted after they stopped); the first check waits for the ones
 * that survived to reconnect. relay_recovery_stop closes its timer.
 */
void relay_recovery_start(struct relay *r);
void relay_recovery_stop(struct relay *r);
void relay_sandbox_exited(const char *machine_id, int status, void *arg);

/* bus.c: who is connected, and who listens to which session */
struct bus *bus_new(void);
void bus_free(struct bus *b);
/* Forgets a connection everywhere (machine registration, listeners). */
void bus_forget(struct bus *b, struct conn *c);
/* Makes c the connection of machine_id; returns the one it replaces. */
struct conn *bus_machine_set(struct bus *b, const char *machine_id,
			     struct conn *c);
struct conn *bus_machine(struct bus *b, const char *machine_id);
/*
 * A listener starts behind: it has seen the session's output up to `from`
 * and is caught up from the transcript (bus_catch_up) before it gets live
 * output. A listener whose connection has more than CONN_QUEUE_MAX bytes
 * waiting falls behind the same way, so a slow client costs the relay
 * only that much memory and slows nobody else.
 */
#define CONN_QUEUE_MAX (2u << 20)
void bus_subscribe(struct bus *b, const char *session, struct conn *c,
		   uint64_t from);
void bus_unsubscribe(struct bus *b, const char *session, struct conn *c);
/* Sends to every connection listening to the session. */
void bus_publish_text(struct bus *b, const char *session, const char *text);
/* Sends an output chunk to every listener that is caught up. */
void bus_publish_output(struct bus *b, const char *session,
			const struct proto_bin *hdr, const void *data,
			size_t len);
/*
 * Catches up c's listeners that are behind: read(session, c, &seen, arg)
 * sends what it can after `seen`, moves `seen` on, and returns 1 once
 * nothing is missing.
 */
typedef int (*bus_read_cb)(const char *session, struct conn *c,
			   uint64_t *seen, void *arg);
void bus_catch_up(struct bus *b, struct conn *c, bus_read_cb read,
		  void *arg);
bool bus_behind(struct bus *b, struct conn *c);

/*
 * launcher.c: starts sandboxes for machine records, as local processes
 * (the default) or with the operator's command (--sandbox-launcher).
 */
struct launcher_template;
/*
 * Parses "command:TEMPLATE": words split on blanks (no shell), where
 * {machine}, {generation}, {workspace}, {user}, {relay}, {home} and
 * {workdir} stand for the sandbox's values. 0, or -EINVAL with *cause.
 */
int launcher_template_parse(const char *spec,
			    struct launcher_template **out, char **cause);
void launcher_template_free(struct launcher_template *t);
typedef void (*launcher_exit_cb)(const char *machine_id, int status,
				 void *arg);
struct launcher *launcher_new(uv_loop_t *loop, const char *sandbox_bin,
			      const char *data_dir, launcher_exit_cb on_exit,
			      void *arg);
/*
 * What sandboxes get to reach the relay besides its URL: the CA file to
 * trust (NULL: the system's store) and whether plain ws:// beyond loopback
 * is allowed. Both are copied.
 */
void launcher_set_trust(struct launcher *l, const char *ca_file,
			bool insecure);
/*
 * Runs start instead of baton-sandbox, with the same environment, and stop
 * (or NULL) for each sandbox when the relay stops. A start command's exit
 * with status 0 is not reported: the sandbox it started runs on, and the
 * relay follows its connection. Takes both.
 */
void launcher_set_command(struct launcher *l,
			  struct launcher_template *start,
			  struct launcher_template *stop);
/* Starts a sandbox for machine m, its credential in the environment. */
int launcher_start(struct launcher *l, const struct store_machine *m,
		   const char *relay_url, const char *token, char **cause);
bool launcher_running(const struct launcher *l, const char *machine_id);
/*
 * Asks every sandbox to stop: runs its stop command, else SIGTERMs it;
 * SIGKILLs what still runs after grace_ms.
 */
void launcher_stop_all(struct launcher *l, unsigned grace_ms);
void launcher_free(struct launcher *l);

#endif
