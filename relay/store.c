/*
 * store.c: the embedded storage backend: SQLite for records, one file per
 * session for transcripts and one bare git repository per workspace for
 * checkpoint objects, all under the data directory:
 *
 *   baton.db                 users, tokens, machines, workspaces, sessions,
 *                            checkpoints (WAL mode, schema in user_version)
 *   transcripts/<id>.log     records: 8-byte seq, 4-byte length (both big
 *                            endian), payload; seqs count up from 1
 *   objects/<workspace>.git  bare repositories
 *
 * Transcript appends take an flock on the file, so handles in several
 * processes may append to one session; readers take no lock and stop at a
 * record still being written.
 */
#define _GNU_SOURCE
#include "store.h"
#include "proto.h"
#include "log.h"
#include "util.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SCHEMA_VERSION 5
#define BUSY_TIMEOUT_MS 5000
#define TOKEN_PREFIX "bt_"
#define BOOTSTRAP_PREFIX "bb_"
#define TOKEN_BYTES 32
#define TOKEN_LEN (3 + 43)		/* prefix and base64url of 32 bytes */
#define HASH_HEX (crypto_generichash_BYTES * 2 + 1)
#define USER_MAX 64
#define TEXT_SHORT 256			/* names, kinds, states, ids */
#define TEXT_LONG 4096			/* paths and URLs */
#define SANDBOX_PREFIX "sandbox-"

#define TR_HEADER 12			/* seq (8) and length (4) */
#define TR_MARK 256			/* records between index marks */
#define TR_BLOCK 65536			/* read size when scanning */

#define TOKENS_TABLE \
	"CREATE TABLE tokens (" \
	" hash TEXT PRIMARY KEY," \
	" id TEXT NOT NULL UNIQUE," \
	" user TEXT NOT NULL REFERENCES users (name)," \
	" kind TEXT NOT NULL CHECK (kind IN ('client', 'machine'))," \
	" scope TEXT NOT NULL CHECK (scope IN ('steer', 'read', 'machine')" \
	" AND (scope = 'machine') = (kind = 'machine'))," \
	" created INTEGER NOT NULL," \
	" expires INTEGER NOT NULL DEFAULT 0," \
	" revoked INTEGER NOT NULL DEFAULT 0);"

/* Version 5: a workspace's setup script, sandbox credits. */
#define V5_TABLES \
	"ALTER TABLE workspaces ADD COLUMN setup TEXT;" \
	"CREATE TABLE credits (" \
	" user TEXT PRIMARY KEY REFERENCES users (name)," \
	" seconds INTEGER NOT NULL," \
	" updated INTEGER NOT NULL);"

/* Version 4: workspace sync and what it last held. */
#define V4_COLUMNS \
	"ALTER TABLE workspaces ADD COLUMN sync INTEGER NOT NULL DEFAULT 0;" \
	"ALTER TABLE workspaces ADD COLUMN synced_checkpoint TEXT;" \
	"ALTER TABLE workspaces ADD COLUMN synced_session TEXT;" \
	"ALTER TABLE workspaces ADD COLUMN synced_at INTEGER;"

/* Version 3: machine keys, sandbox bootstrap credentials, remote env. */
#define V3_TABLES \
	"CREATE TABLE bootstraps (" \
	" hash TEXT PRIMARY KEY," \
	" machine TEXT NOT NULL REFERENCES machines (id)," \
	" generation INTEGER NOT NULL," \
	" expires INTEGER NOT NULL);" \
	"CREATE TABLE env (" \
	" workspace TEXT NOT NULL REFERENCES workspaces (id)," \
	" name TEXT NOT NULL," \
	" value TEXT NOT NULL," \
	" updated INTEGER NOT NULL," \
	" PRIMARY KEY (workspace, name));"

static const char schema_sql[] =
	"CREATE TABLE users ("
	" name TEXT PRIMARY KEY,"
	" created INTEGER NOT NULL);"
	TOKENS_TABLE
	"CREATE INDEX tokens_user ON tokens (user, created);"
	"CREATE TABLE machines ("
	" id TEXT PRIMARY KEY,"
	" user TEXT NOT NULL,"
	" name TEXT NOT NULL,"
	" kind TEXT NOT NULL CHECK (kind IN ('local', 'sandbox')),"
	" state TEXT NOT NULL,"
	" workspace TEXT,"
	" generation INTEGER NOT NULL DEFAULT 0,"
	" created INTEGER NOT NULL,"
	" pubkey TEXT,"
	" UNIQUE (user, name));"
	"CREATE UNIQUE INDEX machines_sandbox ON machines (user, workspace)"
	" WHERE kind = 'sandbox';"
	"CREATE TABLE workspaces ("
	" id TEXT PRIMARY KEY,"
	" user TEXT NOT NULL,"
	" key TEXT NOT NULL,"
	" created INTEGER NOT NULL,"
	" UNIQUE (user, key));"
	"CREATE TABLE sessions ("
	" id TEXT PRIMARY KEY,"
	" user TEXT NOT NULL,"
	" machine TEXT NOT NULL,"
	" workspace TEXT,"
	" agent TEXT NOT NULL,"
	" worktree TEXT NOT NULL,"
	" state TEXT NOT NULL,"
	" checkpoint TEXT,"
	" epoch INTEGER NOT NULL,"
	" seq INTEGER NOT NULL,"
	" exit_status INTEGER NOT NULL,"
	" created INTEGER NOT NULL,"
	" updated INTEGER NOT NULL);"
	"CREATE INDEX sessions_user ON sessions (user);"
	"CREATE TABLE checkpoints ("
	" n INTEGER PRIMARY KEY AUTOINCREMENT,"
	" workspace TEXT NOT NULL REFERENCES workspaces (id),"
	" session TEXT NOT NULL,"
	" oid TEXT NOT NULL,"
	" machine TEXT NOT NULL,"
	" created INTEGER NOT NULL);"
	"CREATE INDEX checkpoints_workspace ON checkpoints (workspace, n);"
	"CREATE TABLE session_profiles ("
	" session TEXT PRIMARY KEY,"
	" profile TEXT NOT NULL);"
	V3_TABLES
	V4_COLUMNS
	V5_TABLES
	"PRAGMA user_version = 5;";

/*
 * Upgrades, one per version: migrations[v] takes a database from version v
 * to v + 1, inside the transaction that opens it.
 */
static const char *const migrations[SCHEMA_VERSION] = {
	[1] = "ALTER TABLE tokens RENAME TO tokens_v1;"
	      TOKENS_TABLE
	      "INSERT INTO tokens (hash, id, user, kind, scope, created)"
	      " SELECT hash, lower(hex(randomblob(6))), user, kind,"
	      " CASE kind WHEN 'machine' THEN 'machine' ELSE 'steer' END,"
	      " created FROM tokens_v1;"
	      "DROP TABLE tokens_v1;"
	      "CREATE INDEX tokens_user ON tokens (user, created);"
	      "CREATE TABLE session_profiles ("
	      " session TEXT PRIMARY KEY,"
	      " profile TEXT NOT NULL);"
	      "PRAGMA user_version = 2;",
	[2] = "ALTER TABLE machines ADD COLUMN pubkey TEXT;"
	      V3_TABLES
	      "PRAGMA user_version = 3;",
	[3] = V4_COLUMNS
	      "PRAGMA user_version = 4;",
	[4] = V5_TABLES
	      "PRAGMA user_version = 5;",
};

#define TOKEN_COLS "id, user, kind, scope, created, expires, revoked"
#define MACHINE_COLS "id, user, name, kind, state, workspace, generation," \
	" pubkey"
#define SESSION_COLS "id, user, machine, workspace, agent, worktree, state," \
	" checkpoint, epoch, seq, exit_status"

/* Every statement the store runs, prepared once per handle. */
enum query {
	Q_BEGIN,
	Q_COMMIT,
	Q_ROLLBACK,
	Q_USER_ADD,
	Q_TOKEN_ADD,
	Q_TOKEN_GET,
	Q_TOKEN_LIST,
	Q_TOKEN_LIST_ALL,
	Q_TOKEN_REVOKE,
	Q_TOKEN_REVOKE_HASH,
	Q_MACHINE_ADD,
	Q_MACHINE_GET,
	Q_MACHINE_BY_NAME,
	Q_MACHINE_SANDBOX,
	Q_MACHINE_BUMP,
	Q_MACHINE_STATE,
	Q_MACHINE_LIST,
	Q_MACHINE_KEY,
	Q_BOOTSTRAP_ADD,
	Q_BOOTSTRAP_GET,
	Q_BOOTSTRAP_DROP,
	Q_WORKSPACE_FIND,
	Q_WORKSPACE_INFO,
	Q_WORKSPACE_SYNC,
	Q_WORKSPACE_SYNCED,
	Q_WORKSPACE_SETUP,
	Q_CREDITS_GET,
	Q_CREDITS_SET,
	Q_CREDITS_ADD,
	Q_CREDITS_LIST,
	Q_ENV_SET,
	Q_ENV_UNSET,
	Q_ENV_LIST,
	Q_WORKSPACE_ADD,
	Q_WORKSPACE_GET,
	Q_WORKSPACE_OWNER,
	Q_SESSION_PUT,
	Q_SESSION_OWNER,
	Q_SESSION_GET,
	Q_SESSION_LIST,
	Q_SESSION_LIVE_ON,
	Q_SESSION_LIVE,
	Q_PROFILE_SET,
	Q_PROFILE_GET,
	Q_CHECKPOINT_ADD,
	Q_CHECKPOINT_RECENT,
	Q_COUNT
};

static const char *const queries[Q_COUNT] = {
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_USER_ADD] = "INSERT INTO users (name, created) VALUES (?1, ?2)"
		" ON CONFLICT (name) DO NOTHING",
	[Q_TOKEN_ADD] = "INSERT INTO tokens (hash, id, user, kind, scope,"
		" created, expires) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[Q_TOKEN_GET] = "SELECT user, kind, scope, expires, revoked"
		" FROM tokens WHERE hash = ?1",
	[Q_TOKEN_LIST] = "SELECT " TOKEN_COLS " FROM tokens"
		" WHERE user = ?1 ORDER BY created, rowid",
	[Q_TOKEN_LIST_ALL] = "SELECT " TOKEN_COLS " FROM tokens"
		" ORDER BY user, created, rowid",
	[Q_TOKEN_REVOKE] = "UPDATE tokens SET revoked = 1 WHERE id = ?1",
	[Q_TOKEN_REVOKE_HASH] = "UPDATE tokens SET revoked = 1 WHERE hash = ?1",
	[Q_MACHINE_ADD] = "INSERT INTO machines (id, user, name, kind, state,"
		" workspace, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
		" ON CONFLICT DO NOTHING",
	[Q_MACHINE_GET] = "SELECT " MACHINE_COLS " FROM machines"
		" WHERE id = ?1",
	[Q_MACHINE_BY_NAME] = "SELECT " MACHINE_COLS " FROM machines"
		" WHERE user = ?1 AND name = ?2",
	[Q_MACHINE_SANDBOX] = "SELECT " MACHINE_COLS " FROM machines"
		" WHERE user = ?1 AND workspace = ?2 AND kind = 'sandbox'",
	[Q_MACHINE_BUMP] = "UPDATE machines SET generation = generation + 1,"
		" state = 'created', pubkey = NULL"
		" WHERE user = ?1 AND workspace = ?2 AND kind = 'sandbox'",
	[Q_MACHINE_STATE] = "UPDATE machines SET state = ?2 WHERE id = ?1",
	[Q_MACHINE_LIST] = "SELECT " MACHINE_COLS " FROM machines"
		" WHERE user = ?1 ORDER BY name",
	[Q_MACHINE_KEY] = "UPDATE machines SET pubkey = ?2 WHERE id = ?1",
	[Q_BOOTSTRAP_ADD] = "INSERT INTO bootstraps (hash, machine, generation,"
		" expires) VALUES (?1, ?2, ?3, ?4)",
	[Q_BOOTSTRAP_GET] = "SELECT machine, generation, expires"
		" FROM bootstraps WHERE hash = ?1",
	/* a credential works once; older ones of the machine go with it */
	[Q_BOOTSTRAP_DROP] = "DELETE FROM bootstraps WHERE hash = ?1"
		" OR machine = ?2 AND generation <= ?3 OR expires < ?4",
	[Q_WORKSPACE_FIND] = "SELECT id, key FROM workspaces"
		" WHERE user = ?1 AND (key = ?2 OR id = lower(?2))",
	[Q_WORKSPACE_INFO] = "SELECT id, user, key, sync, synced_checkpoint,"
		" synced_session, synced_at, setup FROM workspaces"
		" WHERE id = ?1",
	[Q_WORKSPACE_SETUP] = "UPDATE workspaces SET setup = ?2 WHERE id = ?1",
	[Q_CREDITS_GET] = "SELECT seconds FROM credits WHERE user = ?1",
	[Q_CREDITS_SET] = "INSERT INTO credits (user, seconds, updated)"
		" VALUES (?1, ?2, ?3) ON CONFLICT (user)"
		" DO UPDATE SET seconds = excluded.seconds,"
		" updated = excluded.updated",
	[Q_CREDITS_ADD] = "UPDATE credits SET seconds = max(seconds + ?2, 0),"
		" updated = ?3 WHERE user = ?1",
	[Q_CREDITS_LIST] = "SELECT user, seconds, updated FROM credits"
		" ORDER BY user",
	[Q_WORKSPACE_SYNC] = "UPDATE workspaces SET sync = ?2 WHERE id = ?1",
	[Q_WORKSPACE_SYNCED] = "UPDATE workspaces SET synced_checkpoint = ?2,"
		" synced_session = ?3, synced_at = ?4 WHERE id = ?1",
	[Q_ENV_SET] = "INSERT INTO env (workspace, name, value, updated)"
		" VALUES (?1, ?2, ?3, ?4) ON CONFLICT (workspace, name)"
		" DO UPDATE SET value = excluded.value,"
		" updated = excluded.updated",
	[Q_ENV_UNSET] = "DELETE FROM env WHERE workspace = ?1 AND name = ?2",
	[Q_ENV_LIST] = "SELECT e.workspace, w.key, e.name, e.value, e.updated"
		" FROM env e JOIN workspaces w ON w.id = e.workspace"
		" WHERE w.user = ?1 AND (?2 IS NULL OR e.workspace = ?2)"
		" ORDER BY w.key, e.name",
	[Q_WORKSPACE_ADD] = "INSERT INTO workspaces (id, user, key, created)"
		" VALUES (?1, ?2, ?3, ?4) ON CONFLICT (user, key) DO NOTHING",
	[Q_WORKSPACE_GET] = "SELECT id FROM workspaces"
		" WHERE user = ?1 AND key = ?2",
	[Q_WORKSPACE_OWNER] = "SELECT user FROM workspaces WHERE id = ?1",
	[Q_SESSION_PUT] = "INSERT INTO sessions (" SESSION_COLS ","
		" created, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
		" ?9, ?10, ?11, ?12, ?12)"
		" ON CONFLICT (id) DO UPDATE SET machine = excluded.machine,"
		" workspace = excluded.workspace, agent = excluded.agent,"
		" worktree = excluded.worktree, state = excluded.state,"
		" checkpoint = excluded.checkpoint, epoch = excluded.epoch,"
		" seq = excluded.seq, exit_status = excluded.exit_status,"
		" updated = excluded.updated"
		" WHERE sessions.user = excluded.user"
		" AND sessions.epoch <= excluded.epoch",
	[Q_SESSION_OWNER] = "SELECT user FROM sessions WHERE id = ?1",
	[Q_SESSION_GET] = "SELECT " SESSION_COLS " FROM sessions"
		" WHERE id = ?1",
	[Q_SESSION_LIST] = "SELECT " SESSION_COLS " FROM sessions"
		" WHERE user = ?1 ORDER BY rowid",
	[Q_SESSION_LIVE_ON] = "SELECT " SESSION_COLS " FROM sessions"
		" WHERE machine = ?1 AND state IN ('running', 'suspending',"
		" 'moving') ORDER BY rowid",
	[Q_PROFILE_SET] = "INSERT INTO session_profiles (session, profile)"
		" VALUES (?1, ?2) ON CONFLICT (session)"
		" DO UPDATE SET profile = excluded.profile",
	[Q_PROFILE_GET] = "SELECT profile FROM session_profiles"
		" WHERE session = ?1",
	[Q_SESSION_LIVE] = "SELECT " SESSION_COLS " FROM sessions"
		" WHERE state IN ('running', 'suspending', 'moving')"
		" ORDER BY rowid",
	[Q_CHECKPOINT_ADD] = "INSERT INTO checkpoints (workspace, session,"
		" oid, machine, created) VALUES (?1, ?2, ?3, ?4, ?5)",
	[Q_CHECKPOINT_RECENT] = "SELECT oid FROM checkpoints"
		" WHERE workspace = ?1 ORDER BY n DESC LIMIT ?2",
};

/* What the handle knows about one session's transcript file. */
struct tr_entry {
	uint8_t id[16];
	uint64_t last;		/* last seq in the file, 0 when none */
	off_t end;		/* offset just past the record of `last` */
	off_t *marks;		/* marks[i]: offset of seq i * TR_MARK + 1 */
	size_t nmarks;
	size_t capmarks;
	struct tr_entry *next;	/* bucket chain */
};

struct store {
	char *dir;
	char *transcripts;	/* <dir>/transcripts */
	char *objects;		/* <dir>/objects */
	sqlite3 *db;
	sqlite3_stmt *stmts[Q_COUNT];
	bool git_ready;		/* git_libgit2_init was called */
	uint8_t tr_key[crypto_shorthash_KEYBYTES];
	struct tr_entry **tr_buckets;
	size_t tr_nbuckets;	/* a power of two */
	size_t tr_count;
};

/* A sequential reader of transcript records between two offsets. */
struct tr_reader {
	int fd;
	off_t base;		/* file offset of buf[0] */
	off_t limit;		/* stop reading here */
	uint8_t *buf;
	size_t len;
	size_t pos;
	size_t cap;
};

/* Unix time in seconds, as SQLite stores it. */
static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

/* Text from a peer or a caller: present, short enough, no control bytes. */
static bool valid_text(const char *s, size_t max)
{
	size_t n;

	if (s == NULL)
		return false;
	n = strnlen(s, max + 1);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* User names: 1 to USER_MAX of [A-Za-z0-9._@+-]. */
static bool valid_user(const char *s)
{
	if (!valid_text(s, USER_MAX))
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("._@+-", *p)))
			return false;
	return true;
}

/* Parses a UUID and writes its lowercase form; -EINVAL when malformed. */
static int uuid_canon(const char *text, uint8_t raw[16],
		      char canon[PROTO_UUID_LEN + 1])
{
	if (text == NULL || proto_uuid_parse(text, raw) < 0)
		return -EINVAL;
	proto_uuid_format(raw, canon);
	return 0;
}

/* Sets *cause, when wanted, to a formatted sentence. */
static void set_cause(char **cause, const char *fmt, ...)
{
	va_list ap;

	if (cause == NULL)
		return;
	free(*cause);
	va_start(ap, fmt);
	*cause = xvasprintf(fmt, ap);
	va_end(ap);
}

/* Maps an SQLite result code to a negative errno. */
static int db_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_CONSTRAINT:
		if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
			return -ENOENT;
		return -EEXIST;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_PERM:
	case SQLITE_AUTH:
	case SQLITE_CANTOPEN:
		return -EACCES;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_TOOBIG:
		return -EMSGSIZE;
	default:
		return -EIO;
	}
}

/* Binds parameters described by fmt: 's' a string (NULL binds NULL), 'i'
 * an int64_t. */
static int db_bind(sqlite3_stmt *st, const char *fmt, va_list ap)
{
	int rc = SQLITE_OK;

	assert(strlen(fmt) == (size_t)sqlite3_bind_parameter_count(st));
	for (int i = 0; fmt[i] != '\0' && rc == SQLITE_OK; i++) {
		if (fmt[i] == 's') {
			const char *v = va_arg(ap, const char *);

			if (v == NULL)
				rc = sqlite3_bind_null(st, i + 1);
			else
				rc = sqlite3_bind_text(st, i + 1, v, -1,
						       SQLITE_STATIC);
		} else {
			rc = sqlite3_bind_int64(st, i + 1,
						va_arg(ap, int64_t));
		}
	}
	return rc;
}

/* Resets a statement after use and drops its bindings. */
static void db_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Prepares (once) and binds query q; the caller steps it, then db_done. */
static int db_vquery(struct store *s, enum query q, sqlite3_stmt **out,
		     const char *fmt, va_list ap)
{
	int rc;

	if (s->stmts[q] == NULL) {
		rc = sqlite3_prepare_v3(s->db, queries[q], -1,
					SQLITE_PREPARE_PERSISTENT,
					&s->stmts[q], NULL);
		if (rc != SQLITE_OK)
			return db_errno(rc);
	}
	rc = db_bind(s->stmts[q], fmt, ap);
	if (rc != SQLITE_OK) {
		db_done(s->stmts[q]);
		return db_errno(rc);
	}
	*out = s->stmts[q];
	return 0;
}

/* Prepares and binds query q (see db_bind for fmt). */
static int db_query(struct store *s, enum query q, sqlite3_stmt **out,
		    const char *fmt, ...)
{
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = db_vquery(s, q, out, fmt, ap);
	va_end(ap);
	return err;
}

/* Runs a statement that returns no rows. */
static int db_exec(struct store *s, enum query q, const char *fmt, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int err, rc;

	va_start(ap, fmt);
	err = db_vquery(s, q, &st, fmt, ap);
	va_end(ap);
	if (err)
		return err;
	rc = sqlite3_step(st);
	db_done(st);
	return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

/* Rolls back the open transaction, if SQLite has not already. */
static void db_rollback(struct store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		db_exec(s, Q_ROLLBACK, "");
}

/* Ends a transaction: commits when err is 0, rolls back otherwise. */
static int db_end(struct store *s, int err)
{
	if (err == 0)
		err = db_exec(s, Q_COMMIT, "");
	if (err)
		db_rollback(s);
	return err;
}

/* A copy of a text column, or NULL for SQL NULL. */
static char *col_str(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? xstrdup((const char *)t) : NULL;
}

/* Runs a one-row text pragma, such as journal_mode, into *out. */
static int db_pragma(sqlite3 *db, const char *sql, char **out)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (out)
			*out = col_str(st, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Reads the schema version (PRAGMA user_version). */
static int db_version(sqlite3 *db, long *version)
{
	char *text = NULL;
	int rc;

	rc = db_pragma(db, "PRAGMA user_version", &text);
	if (rc == SQLITE_OK)
		*version = text ? strtol(text, NULL, 10) : 0;
	free(text);
	return rc;
}

/* Says what to do about an SQLite failure while opening. */
static void db_cause(char **cause, const char *path, sqlite3 *db, int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		set_cause(cause, "the database %s stayed locked for %d s; "
			  "retry, or stop the process that holds it", path,
			  BUSY_TIMEOUT_MS / 1000);
		break;
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		set_cause(cause, "%s is not a usable SQLite database (%s); "
			  "restore it from a backup or choose another data "
			  "directory", path, sqlite3_errstr(rc));
		break;
	default:
		set_cause(cause, "cannot use the database %s: %s; check that "
			  "the data directory is writable and on a local file "
			  "system", path, db ? sqlite3_errmsg(db) :
			  sqlite3_errstr(rc));
		break;
	}
}

/*
 * Copies the database (the -wal file's pages included) into a new file
 * beside it, with SQLite's backup API, before an upgrade changes it; the
 * copy is one file in SQLite's rollback journal mode. The
 * caller holds the write lock, so the copy is what the upgrade starts
 * from. SQLite will not copy through a connection that is in a write
 * transaction; a second, read-only connection can, because in WAL mode
 * readers go on while a writer holds the lock. The copy is synced before
 * this returns. On failure no copy is left, and the cause says what to
 * do. Sets *copy to the copy's path (the caller frees). 0 or -errno.
 */
static int db_backup(const char *path, long version, char **copy,
		     char **cause)
{
	sqlite3 *src = NULL, *dst = NULL;
	sqlite3_backup *b;
	struct stat st;
	char *name;
	int rc, err = 0;

	rc = backup_file_create(path, version, &name);
	if (rc < 0) {
		err = rc;
		set_cause(cause, "cannot create a copy of %s before upgrading "
			  "it from schema version %ld: %s; it is left as it "
			  "was: make the data directory writable and start "
			  "again", path, version, strerror(-rc));
		return err;
	}
	close(rc);	/* SQLite opens it by name */
	rc = sqlite3_open_v2(path, &src, SQLITE_OPEN_READONLY, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_open_v2(name, &dst, SQLITE_OPEN_READWRITE, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(dst, "PRAGMA synchronous = FULL", NULL,
				  NULL, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(src, BUSY_TIMEOUT_MS);
		b = sqlite3_backup_init(dst, "main", src, "main");
		if (b == NULL) {
			rc = sqlite3_extended_errcode(dst);
		} else {
			rc = sqlite3_backup_step(b, -1);
			if (rc == SQLITE_DONE)
				rc = SQLITE_OK;
			if (sqlite3_backup_finish(b) != SQLITE_OK &&
			    rc == SQLITE_OK)
				rc = sqlite3_extended_errcode(dst);
		}
	}
	/* One file that stands alone, without -wal and -shm beside it. */
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(dst, "PRAGMA journal_mode = DELETE", NULL,
				  NULL, NULL);
	if (rc != SQLITE_OK) {
		err = db_errno(rc) ? db_errno(rc) : -EIO;
		if (stat(path, &st) < 0)
			st.st_size = 0;
		set_cause(cause, "cannot copy %s to %s before upgrading it "
			  "from schema version %ld (%s); it is left as it "
			  "was, not upgraded: make room for the copy (about "
			  "%lld KiB) in the data directory and start again",
			  path, name, version, dst ? sqlite3_errmsg(dst) :
			  sqlite3_errstr(rc),
			  (long long)st.st_size / 1024 + 1);
	}
	sqlite3_close(dst);
	sqlite3_close(src);
	if (err) {
		unlink(name);
		free(name);
		return err;
	}
	dir_sync_of(name);
	*copy = name;
	return 0;
}

/* Opens baton.db: WAL, busy timeout, foreign keys, schema. */
static int db_open(struct store *s, char **cause)
{
	char *path = xasprintf("%s/baton.db", s->dir);
	char *mode = NULL, *copy = NULL;
	long version = 0;
	int fd, rc, err = 0;

	/* Created here first, so SQLite (and its -wal file) gets mode 0600. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		set_cause(cause, "cannot open the database %s: %s; fix its "
			  "owner or permissions", path, strerror(errno));
		goto out;
	}
	close(fd);

	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);

	rc = db_pragma(s->db, "PRAGMA journal_mode = WAL", &mode);
	if (rc != SQLITE_OK)
		goto fail;
	if (mode == NULL || strcmp(mode, "wal") != 0) {
		err = -ENOTSUP;
		set_cause(cause, "the database %s cannot use write-ahead "
			  "logging; put the data directory on a local file "
			  "system", path);
		goto out;
	}
	/* FULL: a session's epoch (the move fence) must survive a crash. */
	rc = db_pragma(s->db, "PRAGMA synchronous = FULL", NULL);
	if (rc == SQLITE_OK)
		rc = db_pragma(s->db, "PRAGMA foreign_keys = ON", NULL);
	if (rc == SQLITE_OK)
		rc = db_version(s->db, &version);
	if (rc != SQLITE_OK)
		goto fail;

	if (version < SCHEMA_VERSION) {
		/* Another relay or `token create` may be doing the same: the
		 * version is read again under the write lock. */
		rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			rc = db_version(s->db, &version);
		if (rc == SQLITE_OK && version == 0) {
			rc = sqlite3_exec(s->db, schema_sql, NULL, NULL, NULL);
			version = SCHEMA_VERSION;
		}
		/* Safely first: a copy of the old database, or no upgrade. */
		if (rc == SQLITE_OK && version > 0 &&
		    version < SCHEMA_VERSION) {
			err = db_backup(path, version, &copy, cause);
			if (err) {
				sqlite3_exec(s->db, "ROLLBACK", NULL, NULL,
					     NULL);
				goto out;
			}
			log_info("store", "copied %s to %s before upgrading "
				 "it from schema version %ld to %d", path,
				 copy, version, SCHEMA_VERSION);
		}
		while (rc == SQLITE_OK && version > 0 &&
		       version < SCHEMA_VERSION) {
			log_info("store", "upgrading %s from schema version "
				 "%ld to %ld", path, version, version + 1);
			rc = sqlite3_exec(s->db, migrations[version], NULL,
					  NULL, NULL);
			if (rc != SQLITE_OK) {
				err = db_errno(rc) ? db_errno(rc) : -EIO;
				set_cause(cause, "cannot upgrade the database "
					  "%s from schema version %ld (%s); "
					  "it is left as it was: restore it "
					  "from a backup, or move the data "
					  "folder aside and start with an "
					  "empty one", path, version,
					  sqlite3_errmsg(s->db));
				sqlite3_exec(s->db, "ROLLBACK", NULL, NULL,
					     NULL);
				goto out;
			}
			version++;
		}
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			if (!sqlite3_get_autocommit(s->db))
				sqlite3_exec(s->db, "ROLLBACK", NULL, NULL,
					     NULL);
			goto fail;
		}
	}
	if (version > SCHEMA_VERSION) {
		err = -EPROTO;
		set_cause(cause, "the data directory %s was written by a "
			  "newer baton-relay (schema version %ld; this one "
			  "knows %d); upgrade baton-relay or use another "
			  "--data", s->dir, version, SCHEMA_VERSION);
	} else if (version != SCHEMA_VERSION) {
		err = -EPROTO;
		set_cause(cause, "the database %s has schema version %ld, "
			  "which no baton-relay writes; restore it from a "
			  "backup", path, version);
	}
	goto out;

fail:
	err = db_errno(rc);
	if (err == 0)
		err = -EIO;
	db_cause(cause, path, s->db, rc);
out:
	/* A copy of a database that was not upgraded only takes room. */
	if (copy && err && unlink(copy) == 0)
		log_info("store", "removed %s: %s was not upgraded", copy,
			 path);
	free(copy);
	free(mode);
	free(path);
	return err;
}

/* Creates a private directory (0700) unless it exists. */
static int make_dir(const char *path)
{
	struct stat st;

	if (mkdir(path, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	if (stat(path, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* Creates the data directory and the folders inside it. */
static int dirs_open(struct store *s, char **cause)
{
	const char *hint = "choose a data directory this user can write, or "
			   "fix its owner or permissions";
	int err;

	err = mkdir_p(s->dir, 0700);
	if (err == 0)
		err = make_dir(s->dir);
	if (err) {
		set_cause(cause, "cannot create the data directory %s: %s; %s",
			  s->dir, strerror(-err), hint);
		return err;
	}
	if (access(s->dir, R_OK | W_OK | X_OK) < 0) {
		err = -errno;
		set_cause(cause, "the data directory %s is not writable by "
			  "this user (%s); %s", s->dir, strerror(errno), hint);
		return err;
	}

	err = make_dir(s->transcripts);
	if (err == 0)
		err = make_dir(s->objects);
	if (err)
		set_cause(cause, "cannot create %s or %s: %s; %s",
			  s->transcripts, s->objects, strerror(-err), hint);
	return err;
}

int store_open(const char *data_dir, struct store **out, char **cause)
{
	struct store *s;
	int err;

	*out = NULL;
	if (cause)
		*cause = NULL;
	if (sodium_init() < 0) {
		set_cause(cause, "libsodium failed to initialise; check that "
			  "the system's random source is available");
		return -EIO;
	}
	if (!valid_text(data_dir, TEXT_LONG)) {
		set_cause(cause, "the data directory name is empty or "
			  "malformed; pass a directory path");
		return -EINVAL;
	}

	s = xcalloc(1, sizeof(*s));
	s->dir = xstrdup(data_dir);
	s->transcripts = xasprintf("%s/transcripts", data_dir);
	s->objects = xasprintf("%s/objects", data_dir);
	randombytes_buf(s->tr_key, sizeof(s->tr_key));
	s->tr_nbuckets = 16;
	s->tr_buckets = xcalloc(s->tr_nbuckets, sizeof(*s->tr_buckets));

	err = dirs_open(s, cause);
	if (err == 0)
		err = db_open(s, cause);
	if (err == 0 && git_libgit2_init() < 0) {
		err = -EIO;
		set_cause(cause, "libgit2 failed to initialise: %s",
			  git_error_last() ? git_error_last()->message : "");
	}
	if (err == 0)
		s->git_ready = true;
	if (err) {
		store_close(s);
		return err;
	}
	*out = s;
	return 0;
}

/* Frees one transcript entry. */
static void tr_entry_free(struct tr_entry *e)
{
	free(e->marks);
	free(e);
}

void store_close(struct store *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(s->stmts[i]);
	sqlite3_close(s->db);
	if (s->git_ready)
		git_libgit2_shutdown();
	for (size_t i = 0; i < s->tr_nbuckets; i++) {
		struct tr_entry *e = s->tr_buckets[i], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			tr_entry_free(e);
		}
	}
	free(s->tr_buckets);
	free(s->transcripts);
	free(s->objects);
	free(s->dir);
	free(s);
}

const char *store_data_dir(const struct store *s)
{
	return s->dir;
}

/* The hex BLAKE2b-256 of a token: what the database keeps. */
static void token_hash(const char *token, char hex[HASH_HEX])
{
	uint8_t h[crypto_generichash_BYTES];

	crypto_generichash(h, sizeof(h), (const uint8_t *)token,
			   strlen(token), NULL, 0);
	sodium_bin2hex(hex, HASH_HEX, h, sizeof(h));
}

/* Whether scope suits kind; NULL picks the default (steer or machine). */
static const char *token_scope(const char *kind, const char *scope)
{
	if (!strcmp(kind, "machine"))
		return scope == NULL || !strcmp(scope, "machine") ? "machine"
								  : NULL;
	if (scope == NULL || !strcmp(scope, "steer"))
		return "steer";
	return !strcmp(scope, "read") ? "read" : NULL;
}

/* Makes a token; only its hash and a random public id are stored. */
int store_token_create(struct store *s, const char *user, const char *kind,
		       const char *scope, int64_t expires, char **token)
{
	uint8_t raw[TOKEN_BYTES];
	char b64[sodium_base64_ENCODED_LEN(TOKEN_BYTES,
			sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
	uint8_t idraw[STORE_TOKEN_ID_LEN / 2];
	char id[STORE_TOKEN_ID_LEN + 1];
	char hash[HASH_HEX];
	char *t;
	int err;

	*token = NULL;
	if (!valid_user(user) || kind == NULL || expires < 0 ||
	    (strcmp(kind, "client") != 0 && strcmp(kind, "machine") != 0))
		return -EINVAL;
	scope = token_scope(kind, scope);
	if (scope == NULL)
		return -EINVAL;

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	t = xasprintf(TOKEN_PREFIX "%s", b64);
	sodium_memzero(raw, sizeof(raw));
	sodium_memzero(b64, sizeof(b64));
	token_hash(t, hash);
	/* The public id is random, not derived from the token or its hash. */
	randombytes_buf(idraw, sizeof(idraw));
	sodium_bin2hex(id, sizeof(id), idraw, sizeof(idraw));

	err = db_exec(s, Q_BEGIN, "");
	if (err == 0) {
		err = db_exec(s, Q_USER_ADD, "si", user, now_s());
		if (err == 0)
			err = db_exec(s, Q_TOKEN_ADD, "sssssii", hash, id,
				      user, kind, scope, now_s(), expires);
		err = db_end(s, err);
	}
	if (err) {
		sodium_memzero(t, strlen(t));
		free(t);
		return err;
	}
	*token = t;
	return 0;
}

/* Finds a live token by its hash; says why a dead one is refused. */
int store_token_check(struct store *s, const char *token, char **user,
		      char **kind, char **scope)
{
	char hash[HASH_HEX];
	sqlite3_stmt *st;
	int err, rc;

	*user = *kind = NULL;
	if (scope)
		*scope = NULL;
	if (token == NULL || strnlen(token, TOKEN_LEN + 1) != TOKEN_LEN ||
	    strncmp(token, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) != 0)
		return -ENOENT;
	token_hash(token, hash);

	err = db_query(s, Q_TOKEN_GET, &st, "s", hash);
	if (err)
		return err;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		err = rc == SQLITE_DONE ? -ENOENT : db_errno(rc);
	} else if (sqlite3_column_int64(st, 4) != 0) {
		err = -EKEYREVOKED;
	} else if (sqlite3_column_int64(st, 3) != 0 &&
		   sqlite3_column_int64(st, 3) <= now_s()) {
		err = -EKEYEXPIRED;
	} else {
		*user = col_str(st, 0);
		*kind = col_str(st, 1);
		if (scope)
			*scope = col_str(st, 2);
	}
	db_done(st);
	return err;
}

/* Lists tokens (never their secret) of one user or of all. */
int store_tokens_list(struct store *s, const char *user,
		      struct store_token **out, size_t *count)
{
	struct store_token *ts = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int err, rc;

	*out = NULL;
	*count = 0;
	if (user != NULL && !valid_user(user))
		return -EINVAL;
	err = user ? db_query(s, Q_TOKEN_LIST, &st, "s", user)
		   : db_query(s, Q_TOKEN_LIST_ALL, &st, "");
	if (err)
		return err;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_token *t;

		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			ts = xrealloc(ts, cap * sizeof(*ts));
		}
		t = &ts[n++];
		t->id = col_str(st, 0);
		t->user = col_str(st, 1);
		t->kind = col_str(st, 2);
		t->scope = col_str(st, 3);
		t->created = sqlite3_column_int64(st, 4);
		t->expires = sqlite3_column_int64(st, 5);
		t->revoked = sqlite3_column_int64(st, 6) != 0;
	}
	db_done(st);
	if (rc != SQLITE_DONE) {
		store_tokens_free(ts, n);
		return db_errno(rc);
	}
	*out = ts;
	*count = n;
	return 0;
}

/* Frees a list from store_tokens_list. */
void store_tokens_free(struct store_token *ts, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(ts[i].id);
		free(ts[i].user);
		free(ts[i].kind);
		free(ts[i].scope);
	}
	free(ts);
}

/* Marks a token revoked by its public id; idempotent. */
int store_token_revoke(struct store *s, const char *id)
{
	int err;

	if (!valid_text(id, TEXT_SHORT))
		return -EINVAL;
	err = db_exec(s, Q_TOKEN_REVOKE, "s", id);
	if (err == 0 && sqlite3_changes(s->db) == 0)
		err = -ENOENT;
	return err;
}

/* Marks a token revoked by its secret (a web sign-in's, on sign-out). */
int store_token_revoke_secret(struct store *s, const char *token)
{
	char hash[HASH_HEX];
	int err;

	if (token == NULL || strnlen(token, TOKEN_LEN + 1) != TOKEN_LEN)
		return -ENOENT;
	token_hash(token, hash);
	err = db_exec(s, Q_TOKEN_REVOKE_HASH, "s", hash);
	if (err == 0 && sqlite3_changes(s->db) == 0)
		err = -ENOENT;
	return err;
}

void store_machine_clear(struct store_machine *m)
{
	free(m->id);
	free(m->user);
	free(m->name);
	free(m->kind);
	free(m->state);
	free(m->workspace);
	free(m->pubkey);
	memset(m, 0, sizeof(*m));
}

/* Fills a machine from a row of MACHINE_COLS. */
static void machine_row(sqlite3_stmt *st, struct store_machine *m)
{
	m->id = col_str(st, 0);
	m->user = col_str(st, 1);
	m->name = col_str(st, 2);
	m->kind = col_str(st, 3);
	m->state = col_str(st, 4);
	m->workspace = col_str(st, 5);
	m->generation = sqlite3_column_int64(st, 6);
	m->pubkey = col_str(st, 7);
}

/* Runs a query that returns at most one machine; -ENOENT for none. */
static int machine_one(struct store *s, enum query q,
		       struct store_machine *out, const char *fmt, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int err, rc;

	va_start(ap, fmt);
	err = db_vquery(s, q, &st, fmt, ap);
	va_end(ap);
	if (err)
		return err;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		machine_row(st, out);
	else
		err = rc == SQLITE_DONE ? -ENOENT : db_errno(rc);
	db_done(st);
	return err;
}

int store_machine_local(struct store *s, const char *user, const char *name,
			struct store_machine *out)
{
	char id[PROTO_UUID_LEN + 1];
	int err;

	memset(out, 0, sizeof(*out));
	if (!valid_text(user, USER_MAX) || !valid_text(name, TEXT_SHORT) ||
	    strncmp(name, SANDBOX_PREFIX, strlen(SANDBOX_PREFIX)) == 0)
		return -EINVAL;

	proto_uuid_new(id);
	err = db_exec(s, Q_MACHINE_ADD, "ssssssi", id, user, name, "local",
		      "offline", NULL, now_s());
	if (err == 0)
		err = machine_one(s, Q_MACHINE_BY_NAME, out, "ss", user, name);
	if (err == 0 && strcmp(out->kind, "local") != 0) {
		store_machine_clear(out);
		err = -EEXIST;
	}
	return err;
}

/* Checks that a workspace exists and belongs to user (-ENOENT if not). */
static int workspace_owned(struct store *s, const char *workspace,
			   const char *user)
{
	sqlite3_stmt *st;
	int err, rc;

	err = db_query(s, Q_WORKSPACE_OWNER, &st, "s", workspace);
	if (err)
		return err;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *owner = (const char *)sqlite3_column_text(st, 0);

		if (user && (owner == NULL || strcmp(owner, user) != 0))
			err = -ENOENT;
	} else {
		err = rc == SQLITE_DONE ? -ENOENT : db_errno(rc);
	}
	db_done(st);
	return err;
}

int store_machine_sandbox(struct store *s, const char *user,
			  const char *workspace, int bump,
			  struct store_machine *out)
{
	char id[PROTO_UUID_LEN + 1];
	char *name;
	int err;

	memset(out, 0, sizeof(*out));
	if (!valid_text(user, USER_MAX) || !valid_text(workspace, TEXT_SHORT))
		return -EINVAL;
	err = workspace_owned(s, workspace, user);
	if (err)
		return err;

	proto_uuid_new(id);
	name = xasprintf(SANDBOX_PREFIX "%.8s", workspace);
	err = db_exec(s, Q_BEGIN, "");
	if (err)
		goto out;
	err = db_exec(s, Q_MACHINE_ADD, "ssssssi", id, user, name, "sandbox",
		      "created", workspace, now_s());
	if (err == 0 && bump)
		err = db_exec(s, Q_MACHINE_BUMP, "ss", user, workspace);
	if (err == 0) {
		err = machine_one(s, Q_MACHINE_SANDBOX, out, "ss", user,
				  workspace);
		if (err == -ENOENT)	/* the name was taken */
			err = -EEXIST;
	}
	err = db_end(s, err);
	if (err)
		store_machine_clear(out);
out:
	free(name);
	return err;
}

int store_machine_get(struct store *s, const char *id,
		      struct store_machine *out)
{
	memset(out, 0, sizeof(*out));
	if (!valid_text(id, TEXT_SHORT))
		return -EINVAL;
	return machine_one(s, Q_MACHINE_GET, out, "s", id);
}

int store_machine_by_name(struct store *s, const char *user,
			  const char *name, struct store_machine *out)
{
	memset(out, 0, sizeof(*out));
	if (!valid_text(user, USER_MAX) || !valid_text(name, TEXT_SHORT))
		return -EINVAL;
	return machine_one(s, Q_MACHINE_BY_NAME, out, "ss", user, name);
}

int store_machine_set_state(struct store *s, const char *id,
			    const char *state)
{
	int err;

	if (!valid_text(id, TEXT_SHORT) || !valid_text(state, TEXT_SHORT))
		return -EINVAL;
	err = db_exec(s, Q_MACHINE_STATE, "ss", id, state);
	if (err == 0 && sqlite3_changes(s->db) == 0)
		err = -ENOENT;
	return err;
}

int store_machines_list(struct store *s, const char *user,
			struct store_machine **out, size_t *count)
{
	struct store_machine *v = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int err, rc;

	*out = NULL;
	*count = 0;
	if (!valid_text(user, USER_MAX))
		return -EINVAL;
	err = db_query(s, Q_MACHINE_LIST, &st, "s", user);
	if (err)
		return err;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			v = xrealloc(v, cap * sizeof(*v));
		}
		machine_row(st, &v[n++]);
	}
	db_done(st);
	if (rc != SQLITE_DONE) {
		store_machines_free(v, n);
		return db_errno(rc);
	}
	*out = v;
	*count = n;
	return 0;
}

void store_machines_free(struct store_machine *ms, size_t count)
{
	for (size_t i = 0; i < count; i++)
		store_machine_clear(&ms[i]);
	free(ms);
}

int store_workspace_ensure(struct store *s, const char *user,
			   const char *key, char **id)
{
	char fresh[PROTO_UUID_LEN + 1];
	sqlite3_stmt *st;
	int err, rc;

	*id = NULL;
	if (!valid_text(user, USER_MAX) || !valid_text(key, TEXT_LONG))
		return -EINVAL;

	proto_uuid_new(fresh);
	err = db_exec(s, Q_WORKSPACE_ADD, "sssi", fresh, user, key, now_s());
	if (err)
		return err;
	err = db_query(s, Q_WORKSPACE_GET, &st, "ss", user, key);
	if (err)
		return err;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id = col_str(st, 0);
	else
		err = rc == SQLITE_DONE ? -ENOENT : db_errno(rc);
	db_done(st);
	return err;
}

/* Makes a random credential with PREFIX; returns it and its hash. */
static char *credential_new(const char *prefix, char hash[HASH_HEX])
{
	uint8_t raw[TOKEN_BYTES];
	char b64[sodium_base64_ENCODED_LEN(TOKEN_BYTES,
			sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
	char *t;

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	t = xasprintf("%s%s", prefix, b64);
	sodium_memzero(raw, sizeof(raw));
	sodium_memzero(b64, sizeof(b64));
	token_hash(t, hash);
	return t;
}

int store_machine_set_key(struct store *s, const char *id,
			  const char *pubkey)
{
	if (!valid_text(id, TEXT_SHORT) ||
	    (pubkey && !valid_text(pubkey, TEXT_SHORT)))
		return -EINVAL;
	return db_exec(s, Q_MACHINE_KEY, "ss", id, pubkey);
}

int store_machine_pair(struct store *s, const char *user, const char *name,
		       const char *pubkey, struct store_machine *out,
		       bool *replaced)
{
	int err;

	*replaced = false;
	if (!valid_text(pubkey, TEXT_SHORT))
		return -EINVAL;
	err = db_exec(s, Q_BEGIN, "");
	if (err)
		return err;
	err = db_exec(s, Q_USER_ADD, "si", user, now_s());
	if (err == 0)
		err = store_machine_local(s, user, name, out);
	if (err == 0) {
		*replaced = out->pubkey && strcmp(out->pubkey, pubkey);
		err = db_exec(s, Q_MACHINE_KEY, "ss", out->id, pubkey);
	}
	if (err == 0) {
		free(out->pubkey);
		out->pubkey = xstrdup(pubkey);
	}
	err = db_end(s, err);
	if (err)
		store_machine_clear(out);
	return err;
}

int store_bootstrap_create(struct store *s, const char *machine,
			   int64_t generation, int64_t expires,
			   char **credential)
{
	char hash[HASH_HEX];
	char *t;
	int err;

	*credential = NULL;
	if (!valid_text(machine, TEXT_SHORT))
		return -EINVAL;
	t = credential_new(BOOTSTRAP_PREFIX, hash);
	err = db_exec(s, Q_BOOTSTRAP_ADD, "ssii", hash, machine, generation,
		      expires);
	if (err) {
		sodium_memzero(t, strlen(t));
		free(t);
		return err;
	}
	*credential = t;
	return 0;
}

int store_bootstrap_take(struct store *s, const char *credential,
			 const char *machine, int64_t generation)
{
	char hash[HASH_HEX];
	sqlite3_stmt *st;
	int err, rc;

	if (credential == NULL ||
	    strnlen(credential, TOKEN_LEN + 1) != TOKEN_LEN ||
	    strncmp(credential, BOOTSTRAP_PREFIX, strlen(BOOTSTRAP_PREFIX)))
		return -ENOENT;
	if (!valid_text(machine, TEXT_SHORT))
		return -EINVAL;
	token_hash(credential, hash);

	err = db_exec(s, Q_BEGIN, "");
	if (err)
		return err;
	err = db_query(s, Q_BOOTSTRAP_GET, &st, "s", hash);
	if (err == 0) {
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW)
			err = rc == SQLITE_DONE ? -ENOENT : db_errno(rc);
		else if (strcmp((const char *)sqlite3_column_text(st, 0),
				machine) ||
			 sqlite3_column_int64(st, 1) != generation)
			err = -EPERM;
		else if (sqlite3_column_int64(st, 2) < now_s())
			err = -EKEYEXPIRED;
		db_done(st);
	}
	/* Only a credential used for its own machine is spent: one shown
	 * to the wrong record proves nothing and is left alone. */
	if (err == 0 || err == -EKEYEXPIRED) {
		int e = db_exec(s, Q_BOOTSTRAP_DROP, "ssii", hash, machine,
				generation, now_s());

		if (e)
			err = e;
	}
	if (err == -EKEYEXPIRED || err == -ENOENT || err == -EPERM) {
		/* a refusal, not a failure: keep what was dropped */
		int e = db_end(s, 0);

		return e ? e : err;
	}
	return db_end(s, err);
}

int store_workspace_find(struct store *s, const char *user,
			 const char *name, char **id, char **key)
{
	sqlite3_stmt *st;
	int err, rc;

	*id = NULL;
	if (key)
		*key = NULL;
	if (!valid_text(user, USER_MAX) || !valid_text(name, TEXT_LONG))
		return -EINVAL;
	err = db_query(s, Q_WORKSPACE_FIND, &st, "ss", user, name);
	if (err)
		return err;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id = col_str(st, 0);
		if (key)
			*key = col_str(st, 1);
	} else {
		err = rc == SQLITE_DONE ? -ENOENT : db_errno(rc);
	}
	db_done(st);
	return err;
}

int store_workspace_get(struct store *s, const char *id,
			struct store_workspace *out)
{
	sqlite3_stmt *st;
	int err, rc;

	memset(out, 0, sizeof(*out));
	if (!valid_text(id, TEXT_SHORT))
		return -EINVAL;
	err = db_query(s, Q_WORKSPACE_INFO, &st, "s", id);
	if (err)
		return err;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->id = col_str(st, 0);
		out->user = col_str(st, 1);
		out->key = col_str(st, 2);
		out->sync = sqlite3_column_int(st, 3) != 0;
		out->synced_checkpoint = col_str(st, 4);
		out->synced_session = col_str(st, 5);
		out->synced_at = sqlite3_column_int64(st, 6);
		out->setup = col_str(st, 7);
	} else {
		err = rc == SQLITE_DONE ? -ENOENT : db_errno(rc);
	}
	db_done(st);
	return err;
}

void store_workspace_clear(struct store_workspace *w)
{
	free(w->id);
	free(w->user);
	free(w->key);
	free(w->synced_checkpoint);
	free(w->synced_session);
	free(w->setup);
	memset(w, 0, sizeof(*w));
}

int store_workspace_set_sync(struct store *s, const char *id, bool on)
{
	int err;

	if (!valid_text(id, TEXT_SHORT))
		return -EINVAL;
	err = db_exec(s, Q_WORKSPACE_SYNC, "si", id, (int64_t)on);
	if (err == 0 && sqlite3_changes(s->db) == 0)
		err = -ENOENT;
	return err;
}

int store_workspace_set_setup(struct store *s, const char *id,
			      const char *script)
{
	int err;

	if (!valid_text(id, TEXT_SHORT))
		return -EINVAL;
	err = db_exec(s, Q_WORKSPACE_SETUP, "ss", id, script);
	if (err == 0 && sqlite3_changes(s->db) == 0)
		err = -ENOENT;
	return err;
}

int store_credits_get(struct store *s, const char *user, int64_t *seconds)
{
	sqlite3_stmt *st;
	int err, rc;

	if (!valid_user(user))
		return -EINVAL;
	err = db_query(s, Q_CREDITS_GET, &st, "s", user);
	if (err)
		return err;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*seconds = sqlite3_column_int64(st, 0);
	else
		err = rc == SQLITE_DONE ? -ENOENT : db_errno(rc);
	db_done(st);
	return err;
}

int store_credits_set(struct store *s, const char *user, int64_t seconds)
{
	int err;

	if (!valid_user(user) || seconds < 0)
		return -EINVAL;
	err = db_exec(s, Q_BEGIN, "");
	if (err)
		return err;
	err = db_exec(s, Q_USER_ADD, "si", user, now_s());
	if (err == 0)
		err = db_exec(s, Q_CREDITS_SET, "sii", user, seconds, now_s());
	return db_end(s, err);
}

int store_credits_add(struct store *s, const char *user, int64_t delta)
{
	int err;

	if (!valid_user(user))
		return -EINVAL;
	err = db_exec(s, Q_CREDITS_ADD, "sii", user, delta, now_s());
	if (err == 0 && sqlite3_changes(s->db) == 0)
		err = -ENOENT;
	return err;
}

int store_workspace_synced(struct store *s, const char *id,
			   const char *session, const char *checkpoint)
{
	if (!valid_text(id, TEXT_SHORT) || !valid_text(session, TEXT_SHORT) ||
	    !valid_text(checkpoint, TEXT_SHORT))
		return -EINVAL;
	return db_exec(s, Q_WORKSPACE_SYNCED, "sssi", id, checkpoint, session,
		       now_s());
}

/* Env names: what a POSIX shell accepts, [A-Za-z_][A-Za-z0-9_]*. */
static bool valid_env_name(const char *name)
{
	if (!valid_text(name, TEXT_SHORT) || (name[0] >= '0' && name[0] <= '9'))
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	return true;
}

int store_env_set(struct store *s, const char *workspace, const char *name,
		  const char *value)
{
	if (!valid_text(workspace, TEXT_SHORT) || !valid_env_name(name) ||
	    value == NULL)
		return -EINVAL;
	return db_exec(s, Q_ENV_SET, "sssi", workspace, name, value, now_s());
}

int store_env_unset(struct store *s, const char *workspace, const char *name)
{
	int err;

	if (!valid_text(workspace, TEXT_SHORT) || !valid_env_name(name))
		return -EINVAL;
	err = db_exec(s, Q_ENV_UNSET, "ss", workspace, name);
	if (err == 0 && sqlite3_changes(s->db) == 0)
		err = -ENOENT;
	return err;
}

int store_env_list(struct store *s, const char *user, const char *workspace,
		   struct store_env **out, size_t *count)
{
	struct store_env *vs = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int err, rc;

	*out = NULL;
	*count = 0;
	err = db_query(s, Q_ENV_LIST, &st, "ss", user, workspace);
	if (err)
		return err;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			vs = xrealloc(vs, cap * sizeof(*vs));
		}
		vs[n].workspace = col_str(st, 0);
		vs[n].key = col_str(st, 1);
		vs[n].name = col_str(st, 2);
		vs[n].value = col_str(st, 3);
		vs[n].updated = sqlite3_column_int64(st, 4);
		n++;
	}
	db_done(st);
	if (rc != SQLITE_DONE) {
		store_env_free(vs, n);
		return db_errno(rc);
	}
	*out = vs;
	*count = n;
	return 0;
}

void store_env_free(struct store_env *vs, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(vs[i].workspace);
		free(vs[i].key);
		free(vs[i].name);
		free(vs[i].value);
	}
	free(vs);
}

void store_session_clear(struct store_session *ss)
{
	free(ss->id);
	free(ss->user);
	free(ss->machine);
	free(ss->workspace);
	free(ss->agent);
	free(ss->worktree);
	free(ss->state);
	free(ss->checkpoint);
	memset(ss, 0, sizeof(*ss));
}

/* Fills a session from a row of SESSION_COLS. */
static void session_row(sqlite3_stmt *st, struct store_session *ss)
{
	ss->id = col_str(st, 0);
	ss->user = col_str(st, 1);
	ss->machine = col_str(st, 2);
	ss->workspace = col_str(st, 3);
	ss->agent = col_str(st, 4);
	ss->worktree = col_str(st, 5);
	ss->state = col_str(st, 6);
	ss->checkpoint = col_str(st, 7);
	ss->epoch = (uint64_t)sqlite3_column_int64(st, 8);
	ss->seq = (uint64_t)sqlite3_column_int64(st, 9);
	ss->exit_status = sqlite3_column_int(st, 10);
}

/* Tells why a session put changed nothing: -EPERM or -ESTALE. */
static int session_refused(struct store *s, const char *id,
			   const char *user)
{
	sqlite3_stmt *st;
	int err, rc;

	err = db_query(s, Q_SESSION_OWNER, &st, "s", id);
	if (err)
		return err;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *owner = (const char *)sqlite3_column_text(st, 0);

		err = owner && strcmp(owner, user) == 0 ? -ESTALE : -EPERM;
	} else {
		err = rc == SQLITE_DONE ? -EIO : db_errno(rc);
	}
	db_done(st);
	return err;
}

int store_session_put(struct store *s, const struct store_session *ss)
{
	char id[PROTO_UUID_LEN + 1];
	uint8_t raw[16];
	int err;

	if (uuid_canon(ss->id, raw, id) < 0 ||
	    !valid_text(ss->user, USER_MAX) ||
	    !valid_text(ss->machine, TEXT_SHORT) ||
	    (ss->workspace && !valid_text(ss->workspace, TEXT_SHORT)) ||
	    !valid_text(ss->agent, TEXT_SHORT) ||
	    !valid_text(ss->worktree, TEXT_LONG) ||
	    !valid_text(ss->state, TEXT_SHORT) ||
	    (ss->checkpoint && !proto_oid_valid(ss->checkpoint)))
		return -EINVAL;

	err = db_exec(s, Q_SESSION_PUT, "ssssssssiiii", id, ss->user,
		      ss->machine, ss->workspace, ss->agent, ss->worktree,
		      ss->state, ss->checkpoint, (int64_t)ss->epoch,
		      (int64_t)ss->seq, (int64_t)ss->exit_status, now_s());
	if (err == 0 && sqlite3_changes(s->db) == 0)
		err = session_refused(s, id, ss->user);
	return err;
}

int store_session_get(struct store *s, const char *id,
		      struct store_session *out)
{
	char canon[PROTO_UUID_LEN + 1];
	uint8_t raw[16];
	sqlite3_stmt *st;
	int err, rc;

	memset(out, 0, sizeof(*out));
	if (uuid_canon(id, raw, canon) < 0)
		return -EINVAL;
	err = db_query(s, Q_SESSION_GET, &st, "s", canon);
	if (err)
		return err;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		session_row(st, out);
	else
		err = rc == SQLITE_DONE ? -ENOENT : db_errno(rc);
	db_done(st);
	return err;
}

/* Runs a query of sessions with one text parameter (or none). */
static int sessions_query(struct store *s, enum query q, const char *arg,
			  struct store_session **out, size_t *count)
{
	struct store_session *v = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int err, rc;

	*out = NULL;
	*count = 0;
	err = arg ? db_query(s, q, &st, "s", arg) : db_query(s, q, &st, "");
	if (err)
		return err;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			v = xrealloc(v, cap * sizeof(*v));
		}
		session_row(st, &v[n++]);
	}
	db_done(st);
	if (rc != SQLITE_DONE) {
		store_sessions_free(v, n);
		return db_errno(rc);
	}
	*out = v;
	*count = n;
	return 0;
}

int store_sessions_list(struct store *s, const char *user,
			struct store_session **out, size_t *count)
{
	*out = NULL;
	*count = 0;
	if (!valid_text(user, USER_MAX))
		return -EINVAL;
	return sessions_query(s, Q_SESSION_LIST, user, out, count);
}

int store_sessions_live(struct store *s, const char *machine,
			struct store_session **out, size_t *count)
{
	return sessions_query(s, machine ? Q_SESSION_LIVE_ON : Q_SESSION_LIVE,
			      machine, out, count);
}

void store_sessions_free(struct store_session *ss, size_t count)
{
	for (size_t i = 0; i < count; i++)
		store_session_clear(&ss[i]);
	free(ss);
}

int store_session_profile_set(struct store *s, const char *session,
			      const char *profile)
{
	char canon[PROTO_UUID_LEN + 1];
	uint8_t raw[16];

	if (uuid_canon(session, raw, canon) < 0 ||
	    !valid_text(profile, TEXT_LONG * 4))
		return -EINVAL;
	return db_exec(s, Q_PROFILE_SET, "ss", canon, profile);
}

int store_session_profile_get(struct store *s, const char *session,
			      char **profile)
{
	char canon[PROTO_UUID_LEN + 1];
	uint8_t raw[16];
	sqlite3_stmt *st;
	int err, rc;

	*profile = NULL;
	if (uuid_canon(session, raw, canon) < 0)
		return -EINVAL;
	err = db_query(s, Q_PROFILE_GET, &st, "s", canon);
	if (err)
		return err;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*profile = xstrdup((const char *)sqlite3_column_text(st, 0));
	db_done(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : db_errno(rc);
}

int store_checkpoint_add(struct store *s, const char *workspace,
			 const char *session, const char *oid,
			 const char *machine)
{
	char canon[PROTO_UUID_LEN + 1];
	uint8_t raw[16];

	if (!valid_text(workspace, TEXT_SHORT) ||
	    uuid_canon(session, raw, canon) < 0 || oid == NULL ||
	    !proto_oid_valid(oid) || !valid_text(machine, TEXT_SHORT))
		return -EINVAL;
	return db_exec(s, Q_CHECKPOINT_ADD, "ssssi", workspace, canon, oid,
		       machine, now_s());
}

int store_checkpoints_recent(struct store *s, const char *workspace,
			     size_t max, char ***oids, size_t *count)
{
	char **v = NULL;
	size_t n = 0;
	sqlite3_stmt *st;
	int err, rc = SQLITE_DONE;

	*oids = NULL;
	*count = 0;
	if (!valid_text(workspace, TEXT_SHORT))
		return -EINVAL;
	if (max == 0)
		return 0;
	if (max > 4096)
		max = 4096;
	err = db_query(s, Q_CHECKPOINT_RECENT, &st, "si", workspace,
		       (int64_t)max);
	if (err)
		return err;
	v = xcalloc(max, sizeof(*v));
	while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW)
		v[n++] = col_str(st, 0);
	db_done(st);
	if (n < max && rc != SQLITE_DONE) {
		store_strv_free(v, n);
		return db_errno(rc);
	}
	*oids = v;
	*count = n;
	return 0;
}

void store_strv_free(char **v, size_t count)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free(v[i]);
	free(v);
}

int store_objects_open(struct store *s, const char *workspace,
		       git_repository **out)
{
	char canon[PROTO_UUID_LEN + 1];
	uint8_t raw[16];
	char *path;
	int err, rc;

	*out = NULL;
	if (uuid_canon(workspace, raw, canon) < 0 ||
	    strcmp(canon, workspace) != 0)
		return -EINVAL;
	err = workspace_owned(s, workspace, NULL);
	if (err)
		return err;

	path = xasprintf("%s/%s.git", s->objects, canon);
	rc = git_repository_open_bare(out, path);
	if (rc == GIT_ENOTFOUND)
		rc = git_repository_init(out, path, 1);
	free(path);
	if (rc < 0) {
		*out = NULL;
		return -EIO;
	}
	return 0;
}

/* The bucket of a session id: a keyed hash, so ids cannot be chosen to
 * collide. */
static size_t tr_bucket(const struct store *s, const uint8_t id[16])
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v = 0;

	crypto_shorthash(h, id, 16, s->tr_key);
	for (size_t i = 0; i < sizeof(h); i++)
		v = v << 8 | h[i];
	return (size_t)(v & (s->tr_nbuckets - 1));
}

/* Doubles the transcript table. */
static void tr_grow(struct store *s)
{
	struct tr_entry **old = s->tr_buckets;
	size_t nold = s->tr_nbuckets;

	s->tr_nbuckets *= 2;
	s->tr_buckets = xcalloc(s->tr_nbuckets, sizeof(*s->tr_buckets));
	for (size_t i = 0; i < nold; i++) {
		struct tr_entry *e = old[i], *next;

		for (; e != NULL; e = next) {
			size_t b = tr_bucket(s, e->id);

			next = e->next;
			e->next = s->tr_buckets[b];
			s->tr_buckets[b] = e;
		}
	}
	free(old);
}

/* The entry of a session, created empty (nothing scanned yet). */
static struct tr_entry *tr_entry(struct store *s, const uint8_t id[16])
{
	struct tr_entry *e;
	size_t b = tr_bucket(s, id);

	for (e = s->tr_buckets[b]; e != NULL; e = e->next)
		if (memcmp(e->id, id, 16) == 0)
			return e;
	if (s->tr_count >= s->tr_nbuckets) {
		tr_grow(s);
		b = tr_bucket(s, id);
	}
	e = xcalloc(1, sizeof(*e));
	memcpy(e->id, id, 16);
	e->next = s->tr_buckets[b];
	s->tr_buckets[b] = e;
	s->tr_count++;
	return e;
}

/* Notes that the record of seq e->last + 1 starts at off. */
static void tr_advance(struct tr_entry *e, off_t off, uint32_t len)
{
	if (e->last % TR_MARK == 0) {
		if (e->nmarks == e->capmarks) {
			e->capmarks = e->capmarks ? e->capmarks * 2 : 16;
			e->marks = xrealloc(e->marks,
					    e->capmarks * sizeof(*e->marks));
		}
		e->marks[e->nmarks++] = off;
	}
	e->last++;
	e->end = off + TR_HEADER + (off_t)len;
}

/* Starts reading records at offset `from`, up to `limit`. */
static void tr_reader_init(struct tr_reader *r, int fd, off_t from,
			   off_t limit)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->base = from;
	r->limit = limit;
}

/* Makes `need` bytes available at r->pos: 1 when done, 0 when the limit
 * comes first, or -errno. */
static int tr_fill(struct tr_reader *r, size_t need)
{
	if (r->len - r->pos >= need)
		return 1;
	if (r->pos > 0) {
		memmove(r->buf, r->buf + r->pos, r->len - r->pos);
		r->base += (off_t)r->pos;
		r->len -= r->pos;
		r->pos = 0;
	}
	if (need > r->cap) {
		r->cap = need > TR_BLOCK ? need : TR_BLOCK;
		r->buf = xrealloc(r->buf, r->cap);
	}
	while (r->len < need) {
		off_t at = r->base + (off_t)r->len;
		size_t want = r->cap - r->len;
		ssize_t n;

		if (at >= r->limit)
			return 0;
		if ((off_t)want > r->limit - at)
			want = (size_t)(r->limit - at);
		n = pread(r->fd, r->buf + r->len, want, at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		r->len += (size_t)n;
	}
	return 1;
}

/* Reads the record that should carry seq `expect`: 1 with *data and *len
 * set (valid until the next call), 0 when there is no such whole record
 * (the end, a record being written, or a crash's leftovers), or -errno. */
static int tr_next(struct tr_reader *r, uint64_t expect,
		   const uint8_t **data, uint32_t *len)
{
	const uint8_t *p;
	uint64_t seq = 0;
	uint32_t n = 0;
	int rc;

	rc = tr_fill(r, TR_HEADER);
	if (rc <= 0)
		return rc;
	p = r->buf + r->pos;
	for (int i = 0; i < 8; i++)
		seq = seq << 8 | p[i];
	for (int i = 8; i < TR_HEADER; i++)
		n = n << 8 | p[i];
	if (seq != expect || n > STORE_CHUNK_MAX)
		return 0;

	rc = tr_fill(r, TR_HEADER + (size_t)n);
	if (rc <= 0)
		return rc;
	*data = r->buf + r->pos + TR_HEADER;
	*len = n;
	r->pos += TR_HEADER + n;
	return 1;
}

/* The file offset of the next record the reader returns. */
static off_t tr_offset(const struct tr_reader *r)
{
	return r->base + (off_t)r->pos;
}

/* Brings an entry up to date with the file (scanning what it has not
 * seen); *size gets the file's size. */
static int tr_sync(struct tr_entry *e, int fd, off_t *size)
{
	struct tr_reader r;
	const uint8_t *data;
	struct stat st;
	uint32_t len;
	int rc;

	if (fstat(fd, &st) < 0)
		return -errno;
	*size = st.st_size;
	if (st.st_size == e->end)
		return 0;
	if (st.st_size < e->end) {	/* replaced behind our back */
		e->last = 0;
		e->end = 0;
		e->nmarks = 0;
	}

	tr_reader_init(&r, fd, e->end, st.st_size);
	for (;;) {
		off_t off = tr_offset(&r);

		rc = tr_next(&r, e->last + 1, &data, &len);
		if (rc <= 0)
			break;
		tr_advance(e, off, len);
	}
	free(r.buf);
	return rc < 0 ? rc : 0;
}

/* The path of a session's transcript; the id is checked first. */
static int tr_path(struct store *s, const char *session, uint8_t raw[16],
		   char **path)
{
	char canon[PROTO_UUID_LEN + 1];

	*path = NULL;
	if (uuid_canon(session, raw, canon) < 0)
		return -EINVAL;
	*path = xasprintf("%s/%s.log", s->transcripts, canon);
	return 0;
}

/* Writes all of buf at offset off. */
static int write_all_at(int fd, const uint8_t *buf, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, buf, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

int store_transcript_append(struct store *s, const char *session,
			    uint64_t seq, const void *data, size_t len)
{
	struct tr_entry *e;
	uint8_t raw[16], *rec = NULL;
	char *path;
	off_t size;
	int fd = -1, err;

	err = tr_path(s, session, raw, &path);
	if (err)
		return err;
	if (len > STORE_CHUNK_MAX) {
		err = -EMSGSIZE;
		goto out;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	while ((err = flock(fd, LOCK_EX)) < 0 && errno == EINTR)
		;
	if (err < 0) {
		err = -errno;
		goto out;
	}

	e = tr_entry(s, raw);
	err = tr_sync(e, fd, &size);
	if (err)
		goto out;
	if (seq <= e->last) {
		err = -EEXIST;
		goto out;
	}
	if (seq != e->last + 1) {
		err = -ERANGE;
		goto out;
	}
	/* Under the lock, bytes past the last whole record are a crash's
	 * leftovers, never a record another handle is writing. */
	if (size > e->end && ftruncate(fd, e->end) < 0) {
		err = -errno;
		goto out;
	}

	rec = xmalloc(TR_HEADER + len);
	for (int i = 0; i < 8; i++)
		rec[i] = (uint8_t)(seq >> (56 - 8 * i));
	for (int i = 0; i < 4; i++)
		rec[8 + i] = (uint8_t)((uint32_t)len >> (24 - 8 * i));
	if (len > 0)
		memcpy(rec + TR_HEADER, data, len);
	/* A partial write is left for the next append to truncate. */
	err = write_all_at(fd, rec, TR_HEADER + len, e->end);
	if (err == 0)
		tr_advance(e, e->end, (uint32_t)len);
out:
	if (fd >= 0)
		close(fd);
	free(rec);
	free(path);
	return err;
}

/* Opens a transcript for reading and syncs its entry; *fd is -1 when the
 * session has no transcript yet. */
static int tr_open_read(struct store *s, const char *session,
			struct tr_entry **e, int *fd)
{
	uint8_t raw[16];
	char *path;
	off_t size;
	int err;

	*e = NULL;
	*fd = -1;
	err = tr_path(s, session, raw, &path);
	if (err)
		return err;
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (*fd < 0)
		return errno == ENOENT ? 0 : -errno;
	*e = tr_entry(s, raw);
	err = tr_sync(*e, *fd, &size);
	if (err) {
		close(*fd);
		*fd = -1;
	}
	return err;
}

int store_transcript_read(struct store *s, const char *session,
			  uint64_t after, store_chunk_cb cb, void *arg)
{
	struct tr_reader r;
	struct tr_entry *e;
	const uint8_t *data;
	uint64_t expect, last;
	uint32_t len;
	size_t k;
	int fd, err;

	err = tr_open_read(s, session, &e, &fd);
	if (err || fd < 0)
		return err;
	last = e->last;
	if (after >= last) {
		close(fd);
		return 0;
	}

	/* Start at the last mark at or before seq after + 1. */
	k = (size_t)(after / TR_MARK);
	if (k >= e->nmarks)
		k = e->nmarks - 1;
	expect = (uint64_t)k * TR_MARK + 1;
	tr_reader_init(&r, fd, e->marks[k], e->end);
	for (; expect <= last; expect++) {
		err = tr_next(&r, expect, &data, &len);
		if (err == 0)		/* shrunk while we read */
			err = -EIO;
		if (err < 0)
			break;
		err = 0;
		if (expect <= after)
			continue;
		err = cb(expect, data, len, arg);
		if (err)
			break;
	}
	free(r.buf);
	close(fd);
	return err;
}

int store_transcript_last(struct store *s, const char *session,
			  uint64_t *seq)
{
	struct tr_entry *e;
	int fd, err;

	*seq = 0;
	err = tr_open_read(s, session, &e, &fd);
	if (err || fd < 0)
		return err;
	*seq = e->last;
	close(fd);
	return 0;
}

int store_credits_list(struct store *s, struct store_credits **out,
		       size_t *count)
{
	struct store_credits *cs = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int err, rc;

	*out = NULL;
	*count = 0;
	err = db_query(s, Q_CREDITS_LIST, &st, "");
	if (err)
		return err;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			cs = xrealloc(cs, cap * sizeof(*cs));
		}
		cs[n].user = col_str(st, 0);
		cs[n].seconds = sqlite3_column_int64(st, 1);
		cs[n].updated = sqlite3_column_int64(st, 2);
		n++;
	}
	db_done(st);
	if (rc != SQLITE_DONE) {
		store_credits_free(cs, n);
		return db_errno(rc);
	}
	*out = cs;
	*count = n;
	return 0;
}

/* Frees a list from store_credits_list. */
void store_credits_free(struct store_credits *cs, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(cs[i].user);
	free(cs);
}
