/*
 * store.h: everything the relay remembers, behind one interface: users,
 * tokens, machines, workspaces, sessions, checkpoints, transcripts and the
 * per-workspace git object stores. The embedded backend is SQLite plus files
 * under the data directory; no other relay module knows which backend runs.
 *
 * All functions return 0 on success, -ENOENT when a record does not exist,
 * -EINVAL for a malformed argument, and another negative errno on failure
 * (-EBUSY when the database stayed locked by another process). Strings in
 * records are owned by the record; clear records with the matching _clear
 * function. A handle belongs to one thread; several handles, in one process
 * or several, may share a data directory.
 *
 * Session ids are UUIDs; they are accepted in any case and stored and
 * returned in lowercase.
 */
#ifndef BATON_STORE_H
#define BATON_STORE_H

#include <git2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest transcript chunk store_transcript_append accepts. */
#define STORE_CHUNK_MAX (1024 * 1024)

struct store;

/* Opens (creating when needed) the store under data_dir. On failure *cause
 * (when cause is not NULL) gets a sentence saying what to do; caller frees. */
int store_open(const char *data_dir, struct store **out, char **cause);
/* Closes the handle; NULL is allowed. */
void store_close(struct store *s);
const char *store_data_dir(const struct store *s);

/* The length of a token's public id (hex), which list and revoke use. */
#define STORE_TOKEN_ID_LEN 12

/* Tokens. kind is "client" or "machine". scope is "steer" (the default,
 * NULL) or "read" for client tokens, "machine" (or NULL) for machine
 * tokens; -EINVAL otherwise. expires is a unix time in seconds, 0 for
 * never. The user is created if new; user names are 1 to 64 of
 * [A-Za-z0-9._@+-]. The token is returned once, in clear (caller frees);
 * only its hash and a random public id are kept. */
int store_token_create(struct store *s, const char *user, const char *kind,
		       const char *scope, int64_t expires, char **token);
/* Looks a token up; fills *user, *kind and (when not NULL) *scope (caller
 * frees). -ENOENT for an unknown token, -EKEYREVOKED for a revoked one,
 * -EKEYEXPIRED for one past its expiry; nothing is filled then. */
int store_token_check(struct store *s, const char *token, char **user,
		      char **kind, char **scope);

/* What list shows of a token: never the token or its hash. */
struct store_token {
	char *id;		/* public id, STORE_TOKEN_ID_LEN hex digits */
	char *user;
	char *kind;		/* "client" or "machine" */
	char *scope;		/* "steer", "read" or "machine" */
	int64_t created;	/* unix seconds */
	int64_t expires;	/* unix seconds, 0 for never */
	int revoked;
};
/* The tokens of a user, or of all users (user NULL), oldest first; free
 * with store_tokens_free. */
int store_tokens_list(struct store *s, const char *user,
		      struct store_token **out, size_t *count);
void store_tokens_free(struct store_token *ts, size_t count);
/* Revokes a token by its public id (-ENOENT when none has it); revoking
 * twice is not an error. A revoked token is refused from then on. */
int store_token_revoke(struct store *s, const char *id);
/* Revokes a token given its secret; -ENOENT when no token has it. */
int store_token_revoke_secret(struct store *s, const char *token);

struct store_machine {
	char *id;
	char *user;
	char *name;
	char *kind;		/* "local" or "sandbox" */
	char *state;		/* local: online, offline; sandbox: lifecycle */
	char *workspace;	/* sandbox: the workspace it serves */
	int64_t generation;	/* sandbox: bumped on each new container */
	char *pubkey;		/* hex Ed25519 key it proves, or NULL */
};
void store_machine_clear(struct store_machine *m);

/* Finds or creates the local machine (user, name). Names starting with
 * "sandbox-" are reserved for sandboxes (-EINVAL). */
int store_machine_local(struct store *s, const char *user, const char *name,
			struct store_machine *out);
/* Finds or creates the sandbox machine of (user, workspace); the workspace
 * must be one of the user's (-ENOENT otherwise). A new record has generation
 * 0 and state "created"; when `bump` is set the generation is incremented
 * and the state reset to "created" (a new container). -EEXIST when another
 * machine of the user already has the name "sandbox-<8 chars of id>". */
int store_machine_sandbox(struct store *s, const char *user,
			  const char *workspace, int bump,
			  struct store_machine *out);
int store_machine_get(struct store *s, const char *id,
		      struct store_machine *out);
int store_machine_by_name(struct store *s, const char *user,
			  const char *name, struct store_machine *out);
int store_machine_set_state(struct store *s, const char *id,
			    const char *state);
/* Binds a machine to the public key it must prove from now on (hex);
 * NULL unbinds. A new sandbox generation starts unbound. */
int store_machine_set_key(struct store *s, const char *id,
			  const char *pubkey);
/* Pairs a laptop: finds or creates the local machine (user, name) and
 * binds it to pubkey; *replaced says that it had another key before. */
int store_machine_pair(struct store *s, const char *user, const char *name,
		       const char *pubkey, struct store_machine *out,
		       bool *replaced);

/* A sandbox's one-time bootstrap credential, bound to its machine record
 * and generation and valid until `expires` (unix seconds). Returned once,
 * in clear (caller frees); only its hash is kept. */
int store_bootstrap_create(struct store *s, const char *machine,
			   int64_t generation, int64_t expires,
			   char **credential);
/* Spends a bootstrap credential for (machine, generation): 0 once, then
 * -ENOENT. -EKEYEXPIRED past its time, -EPERM when it was made for
 * another machine or generation (it is not spent then). */
int store_bootstrap_take(struct store *s, const char *credential,
			 const char *machine, int64_t generation);
/* All machines of a user; free with store_machines_free. */
int store_machines_list(struct store *s, const char *user,
			struct store_machine **out, size_t *count);
void store_machines_free(struct store_machine *ms, size_t count);

/* Finds or creates the workspace (user, key); key is the remote URL or a
 * generated id. Returns its id (caller frees). */
int store_workspace_ensure(struct store *s, const char *user,
			   const char *key, char **id);
/* Finds a workspace of user by its key or its id; fills *id and, when
 * wanted, *key (caller frees). -ENOENT when the user has none such. */
int store_workspace_find(struct store *s, const char *user,
			 const char *name, char **id, char **key);

/* A workspace's settings and what its sync last held. */
struct store_workspace {
	char *id;
	char *user;
	char *key;		/* remote URL or generated id */
	bool sync;		/* the laptop uploads checkpoints as it works */
	char *synced_checkpoint;	/* last one uploaded, or NULL */
	char *synced_session;		/* the session it came from */
	int64_t synced_at;		/* unix seconds, 0 when never */
	char *setup;		/* its sandboxes' setup script, or NULL */
};
int store_workspace_get(struct store *s, const char *id,
			struct store_workspace *out);
void store_workspace_clear(struct store_workspace *w);
/* -ENOENT for an unknown workspace. */
int store_workspace_set_sync(struct store *s, const char *id, bool on);
/* Sets (NULL: clears) the setup script its sandboxes run instead of the
 * repository's .baton/setup. -ENOENT for an unknown workspace. */
int store_workspace_set_setup(struct store *s, const char *id,
			      const char *script);

/* Sandbox credits, in seconds of sandbox time. A user with no row has no
 * limit (-ENOENT from get); set makes the row; add changes it by delta
 * and never below 0 (-ENOENT when the user has no row). */
int store_credits_get(struct store *s, const char *user, int64_t *seconds);
int store_credits_set(struct store *s, const char *user, int64_t seconds);
int store_credits_add(struct store *s, const char *user, int64_t delta);
/* One user's credits row. */
struct store_credits {
	char *user;
	int64_t seconds;	/* left */
	int64_t updated;	/* unix seconds of the last set or add */
};
/* Every user that has a row, by name; users not listed have no limit.
 * Free with store_credits_free. */
int store_credits_list(struct store *s, struct store_credits **out,
		       size_t *count);
void store_credits_free(struct store_credits *cs, size_t count);

/* Records the checkpoint a sync uploaded, now. */
int store_workspace_synced(struct store *s, const char *id,
			   const char *session, const char *checkpoint);

/* A remote environment variable of a workspace. The value is stored as
 * the caller gives it: the relay encrypts it first. */
struct store_env {
	char *workspace;	/* id */
	char *key;		/* the workspace's key (remote URL or id) */
	char *name;
	char *value;
	int64_t updated;	/* unix seconds */
};
/* Names are [A-Za-z_][A-Za-z0-9_]* (-EINVAL otherwise). */
int store_env_set(struct store *s, const char *workspace, const char *name,
		  const char *value);
/* -ENOENT when the workspace has no such variable. */
int store_env_unset(struct store *s, const char *workspace,
		    const char *name);
/* The variables of a user's workspaces, or of one (workspace not NULL),
 * by workspace key then name; free with store_env_free. */
int store_env_list(struct store *s, const char *user, const char *workspace,
		   struct store_env **out, size_t *count);
void store_env_free(struct store_env *vs, size_t count);

struct store_session {
	char *id;
	char *user;
	char *machine;		/* current owner machine id */
	char *workspace;	/* NULL until the daemon reports it */
	char *agent;		/* profile name */
	char *worktree;		/* absolute path on the owner */
	char *state;		/* starting, running, moving, exited, stopped */
	char *checkpoint;	/* last checkpoint oid, or NULL */
	uint64_t epoch;		/* owner fence; bumped on every move */
	uint64_t seq;		/* last transcript seq stored */
	int exit_status;	/* -1 while running */
};
void store_session_clear(struct store_session *ss);

/* Inserts or replaces the whole record; only workspace and checkpoint may
 * be NULL (-EINVAL otherwise). A record never changes user (-EPERM) and its
 * epoch never goes down (-ESTALE); nothing is written then. */
int store_session_put(struct store *s, const struct store_session *ss);
int store_session_get(struct store *s, const char *id,
		      struct store_session *out);
/* All sessions of a user, oldest first; free with store_sessions_free. */
int store_sessions_list(struct store *s, const char *user,
			struct store_session **out, size_t *count);
/* Sessions that should be running somewhere (running, suspending or
 * moving), on one machine or (machine NULL) anywhere. */
int store_sessions_live(struct store *s, const char *machine,
			struct store_session **out, size_t *count);
void store_sessions_free(struct store_session *ss, size_t count);

/* The agent profile a session runs (JSON text), kept so a restarted relay
 * can still hand it to a sandbox; get returns -ENOENT when none is kept,
 * else a copy the caller frees. */
int store_session_profile_set(struct store *s, const char *session,
			      const char *profile);
int store_session_profile_get(struct store *s, const char *session,
			      char **profile);

/* Records a checkpoint of a workspace (-ENOENT when the workspace does
 * not exist); oid is 40 lowercase hex digits. */
int store_checkpoint_add(struct store *s, const char *workspace,
			 const char *session, const char *oid,
			 const char *machine);
/* The newest `max` checkpoint oids of a workspace, newest first; free with
 * store_strv_free. */
int store_checkpoints_recent(struct store *s, const char *workspace,
			     size_t max, char ***oids, size_t *count);
void store_strv_free(char **v, size_t count);

/* Opens the workspace's git object store (bare, created when needed);
 * caller frees with git_repository_free, before store_close (which drops
 * the store's reference to libgit2). -EINVAL when the id is not a
 * UUID, -ENOENT for an unknown workspace, -EIO when libgit2 fails. */
int store_objects_open(struct store *s, const char *workspace,
		       git_repository **out);

/* Transcripts: append-only, one per session, numbered chunks from 1.
 * Appending a seq that is not last+1 returns -EEXIST for a duplicate
 * (seq <= last) and -ERANGE for a gap, a chunk over STORE_CHUNK_MAX
 * -EMSGSIZE; nothing is written then. Chunks are not synced to disk one by
 * one: after a power loss the last ones may be gone (store_transcript_last
 * says where to resume). */
int store_transcript_append(struct store *s, const char *session,
			    uint64_t seq, const void *data, size_t len);
/* Calls cb for each chunk with seq > after, in order; stops early when cb
 * returns non-zero and returns that value. */
typedef int (*store_chunk_cb)(uint64_t seq, const void *data, size_t len,
			      void *arg);
int store_transcript_read(struct store *s, const char *session,
			  uint64_t after, store_chunk_cb cb, void *arg);
/* The last seq stored for a session (0 when none). */
int store_transcript_last(struct store *s, const char *session,
			  uint64_t *seq);

#endif
