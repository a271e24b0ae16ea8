/*
 * test_store.c: the relay's embedded store: layout, tokens, machines,
 * workspaces, sessions, checkpoints, transcripts and object stores, each
 * test in a fresh data directory under $TMPDIR.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"
#include "store.h"
#include "util.h"

/* Each test's temporary folder, data directory and open store. */
struct fixture {
	char *tmp;
	char *data;
	struct store *s;
};

/* Creates a temporary folder and opens a store in a data directory that
 * does not exist yet (two levels deep, so store_open creates parents). */
static int setup(void **state)
{
	const char *base = getenv("TMPDIR");
	struct fixture *f = xcalloc(1, sizeof(*f));
	char *cause = NULL;

	f->tmp = xasprintf("%s/baton-store-XXXXXX", base ? base : "/tmp");
	if (mkdtemp(f->tmp) == NULL)
		return -1;
	f->data = xasprintf("%s/relay/data", f->tmp);
	if (store_open(f->data, &f->s, &cause) != 0) {
		fprintf(stderr, "store_open: %s\n", cause);
		free(cause);
		return -1;
	}
	*state = f;
	return 0;
}

/* Closes the store and removes the temporary folder. */
static int teardown(void **state)
{
	struct fixture *f = *state;

	store_close(f->s);
	rm_rf(f->tmp);
	free(f->data);
	free(f->tmp);
	free(f);
	return 0;
}

/* Opens a second handle on the fixture's data directory. */
static struct store *open_again(const struct fixture *f)
{
	struct store *s = NULL;
	char *cause = NULL;

	assert_int_equal(store_open(f->data, &s, &cause), 0);
	assert_null(cause);
	return s;
}

/* A path under the data directory; caller frees. */
static char *data_path(const struct fixture *f, const char *name)
{
	return xasprintf("%s/%s", f->data, name);
}

/* The permission bits of a path. */
static mode_t mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

/* Whether a file holds the bytes of `needle`; a missing file holds none. */
static bool file_contains(const char *path, const char *needle)
{
	char *data;
	size_t len;
	bool found;

	if (file_read_all(path, 256 << 20, &data, &len) != 0)
		return false;
	found = memmem(data, len, needle, strlen(needle)) != NULL;
	free(data);
	return found;
}

/* The number of copies made before upgrades (baton.db.v*.bak) in the data
 * directory; the name of the last one found goes to *name (caller frees)
 * when name is not NULL. */
static int backups(const struct fixture *f, char **name)
{
	DIR *d = opendir(f->data);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "baton.db.v", 10) != 0)
			continue;
		/* The copy stands alone: no -wal or -shm beside it. */
		assert_non_null(strstr(e->d_name, ".bak"));
		assert_string_equal(strstr(e->d_name, ".bak"), ".bak");
		n++;
		if (name) {
			free(*name);
			*name = xstrdup(e->d_name);
		}
	}
	closedir(d);
	return n;
}

/* A one-number query on the database file at path, outside the store. */
static long raw_number(const char *path, const char *sql)
{
	sqlite3 *raw;
	sqlite3_stmt *st;
	long n;

	assert_int_equal(sqlite3_open_v2(path, &raw, SQLITE_OPEN_READONLY,
					 NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(raw, sql, -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = (long)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(raw);
	return n;
}

/* The data directory, its folders and the database, with private modes. */
static void test_layout(void **state)
{
	struct fixture *f = *state;
	char *db = data_path(f, "baton.db");
	char *tr = data_path(f, "transcripts");
	char *obj = data_path(f, "objects");
	char *wal = data_path(f, "baton.db-wal");
	char *token;

	assert_string_equal(store_data_dir(f->s), f->data);
	assert_int_equal(mode_of(f->data), 0700);
	assert_int_equal(mode_of(tr), 0700);
	assert_int_equal(mode_of(obj), 0700);
	assert_int_equal(mode_of(db) & 077, 0);
	assert_int_equal(store_token_create(f->s, "alice", "client", NULL, 0,
					    &token), 0);
	assert_int_equal(mode_of(wal) & 077, 0);
	free(token);

	/* Reopening an existing directory works and keeps the records. */
	store_close(f->s);
	f->s = open_again(f);
	free(db);
	free(tr);
	free(obj);
	free(wal);
}

/* A data directory that cannot be created fails with a reason. */
static void test_open_fails(void **state)
{
	struct fixture *f = *state;
	char *file = xasprintf("%s/plain", f->tmp);
	char *bad = xasprintf("%s/data", file);
	struct store *s = (struct store *)1;
	char *cause = NULL;

	assert_int_equal(file_write_atomic(file, "x", 1, 0600), 0);
	assert_int_equal(store_open(bad, &s, &cause), -ENOTDIR);
	assert_null(s);
	assert_non_null(cause);
	assert_non_null(strstr(cause, "data directory"));
	free(cause);

	/* NULL cause is allowed. */
	assert_int_equal(store_open(bad, &s, NULL), -ENOTDIR);
	free(bad);
	free(file);
}

/* A database written by a newer schema is refused with a reason. */
static void test_open_newer_schema(void **state)
{
	struct fixture *f = *state;
	char *db = data_path(f, "baton.db");
	struct store *s = NULL;
	char *cause = NULL;
	sqlite3 *raw;

	store_close(f->s);
	f->s = NULL;
	assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
	assert_int_equal(sqlite3_exec(raw, "PRAGMA user_version = 7", NULL,
				      NULL, NULL), SQLITE_OK);
	sqlite3_close(raw);

	assert_int_equal(store_open(f->data, &s, &cause), -EPROTO);
	assert_null(s);
	assert_non_null(strstr(cause, "written by a newer baton-relay "
				      "(schema version 7; this one knows 5)"));
	assert_non_null(strstr(cause, "upgrade baton-relay or use another "
				      "--data"));
	free(cause);

	/* Left as it was, and not copied. */
	assert_int_equal(raw_number(db, "PRAGMA user_version"), 7);
	assert_int_equal(backups(f, NULL), 0);
	free(db);
}

/* A file that is not a database is refused with a reason. */
static void test_open_not_db(void **state)
{
	struct fixture *f = *state;
	char *db = data_path(f, "baton.db");
	char junk[4096];
	struct store *s = NULL;
	char *cause = NULL;

	store_close(f->s);
	f->s = NULL;
	memset(junk, 'j', sizeof(junk));
	assert_int_equal(file_write_atomic(db, junk, sizeof(junk), 0600), 0);
	assert_int_equal(store_open(f->data, &s, &cause), -EIO);
	assert_null(s);
	assert_non_null(strstr(cause, "not a usable SQLite database"));
	free(cause);
	free(db);
}

/* Tokens: format, check, refusal, and only a hash on disk. */
static void test_tokens(void **state)
{
	struct fixture *f = *state;
	char *db = data_path(f, "baton.db");
	char *wal = data_path(f, "baton.db-wal");
	uint8_t h[crypto_generichash_BYTES];
	char hex[sizeof(h) * 2 + 1];
	char *token, *other, *user, *kind;

	assert_int_equal(store_token_create(f->s, "alice", "client", NULL, 0,
					    &token), 0);
	assert_int_equal(strlen(token), 46);
	assert_memory_equal(token, "bt_", 3);
	for (const char *p = token + 3; *p; p++)
		assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				       "abcdefghijklmnopqrstuvwxyz"
				       "0123456789-_", *p));
	assert_int_equal(store_token_create(f->s, "alice", "machine", NULL, 0,
					    &other), 0);
	assert_string_not_equal(token, other);

	assert_int_equal(store_token_check(f->s, token, &user, &kind, NULL), 0);
	assert_string_equal(user, "alice");
	assert_string_equal(kind, "client");
	free(user);
	free(kind);
	assert_int_equal(store_token_check(f->s, other, &user, &kind, NULL), 0);
	assert_string_equal(kind, "machine");
	free(user);
	free(kind);

	/* One changed character, a cut token, junk: all unknown. */
	token[10] = token[10] == 'A' ? 'B' : 'A';
	assert_int_equal(store_token_check(f->s, token, &user, &kind, NULL),
			 -ENOENT);
	assert_null(user);
	assert_null(kind);
	token[10] = '\0';
	assert_int_equal(store_token_check(f->s, token, &user, &kind, NULL),
			 -ENOENT);
	assert_int_equal(store_token_check(f->s, "", &user, &kind, NULL),
			 -ENOENT);
	free(token);

	assert_int_equal(store_token_create(f->s, "alice", "root", NULL, 0,
					    &token), -EINVAL);
	assert_null(token);
	assert_int_equal(store_token_create(f->s, "al ice", "client", NULL, 0,
					    &token), -EINVAL);
	assert_int_equal(store_token_create(f->s, "", "client", NULL, 0,
					    &token), -EINVAL);

	/* The database (and its log) holds the hash, never the token. */
	crypto_generichash(h, sizeof(h), (const uint8_t *)other,
			   strlen(other), NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	assert_true(file_contains(db, hex) || file_contains(wal, hex));
	assert_false(file_contains(db, other));
	assert_false(file_contains(wal, other));
	assert_false(file_contains(db, other + 3));
	store_close(f->s);
	f->s = open_again(f);
	assert_true(file_contains(db, hex));
	assert_false(file_contains(db, other + 3));
	assert_false(file_contains(wal, other + 3));

	free(other);
	free(wal);
	free(db);
}

/* Scopes: client tokens steer (default) or read; machine tokens have none. */
static void test_token_scope(void **state)
{
	struct fixture *f = *state;
	char *steer, *ro, *mt, *t = NULL, *user, *kind, *scope;

	assert_int_equal(store_token_create(f->s, "alice", "client", NULL, 0,
					    &steer), 0);
	assert_int_equal(store_token_create(f->s, "alice", "client", "read",
					    0, &ro), 0);
	assert_int_equal(store_token_create(f->s, "alice", "machine", NULL,
					    0, &mt), 0);
	assert_int_equal(store_token_check(f->s, steer, &user, &kind,
					   &scope), 0);
	assert_string_equal(scope, "steer");
	free(user);
	free(kind);
	free(scope);
	assert_int_equal(store_token_check(f->s, ro, &user, &kind, &scope),
			 0);
	assert_string_equal(kind, "client");
	assert_string_equal(scope, "read");
	free(user);
	free(kind);
	free(scope);
	assert_int_equal(store_token_check(f->s, mt, &user, &kind, &scope),
			 0);
	assert_string_equal(scope, "machine");
	free(user);
	free(kind);
	free(scope);

	/* No read machine tokens, no machine client tokens, no others. */
	assert_int_equal(store_token_create(f->s, "alice", "machine", "read",
					    0, &t), -EINVAL);
	assert_int_equal(store_token_create(f->s, "alice", "client",
					    "machine", 0, &t), -EINVAL);
	assert_int_equal(store_token_create(f->s, "alice", "client", "admin",
					    0, &t), -EINVAL);
	assert_int_equal(store_token_create(f->s, "alice", "client", NULL,
					    -1, &t), -EINVAL);
	assert_null(t);
	free(steer);
	free(ro);
	free(mt);
}

/* An expired token is refused with -EKEYEXPIRED; a future one works. */
static void test_token_expiry(void **state)
{
	struct fixture *f = *state;
	int64_t now = (int64_t)time(NULL);
	char *past, *future, *user, *kind, *scope;

	assert_int_equal(store_token_create(f->s, "alice", "client", NULL,
					    now - 1, &past), 0);
	assert_int_equal(store_token_create(f->s, "alice", "client", "read",
					    now + 3600, &future), 0);
	assert_int_equal(store_token_check(f->s, past, &user, &kind, &scope),
			 -EKEYEXPIRED);
	assert_null(user);
	assert_null(kind);
	assert_null(scope);
	assert_int_equal(store_token_check(f->s, future, &user, &kind,
					   &scope), 0);
	assert_string_equal(scope, "read");
	free(user);
	free(kind);
	free(scope);

	/* A 1 s lifetime runs out while we wait. */
	free(past);
	assert_int_equal(store_token_create(f->s, "alice", "client", NULL,
					    now + 1, &past), 0);
	for (int i = 0; i < 30 && store_token_check(f->s, past, &user,
						     &kind, NULL) == 0; i++) {
		free(user);
		free(kind);
		usleep(100 * 1000);
	}
	assert_int_equal(store_token_check(f->s, past, &user, &kind, NULL),
			 -EKEYEXPIRED);
	free(past);
	free(future);
}

/* The token of the list entry whose id is not in `seen`. */
static const struct store_token *new_entry(const struct store_token *ts,
					   size_t n, const char *seen)
{
	for (size_t i = 0; i < n; i++)
		if (seen == NULL || strstr(seen, ts[i].id) == NULL)
			return &ts[i];
	return NULL;
}

/* list shows ids, never tokens; revoke refuses a token from then on. */
static void test_token_list_revoke(void **state)
{
	struct fixture *f = *state;
	char *db = data_path(f, "baton.db");
	char *a, *b, *c, *user, *kind, *scope, ids[64] = "";
	struct store_token *ts;
	const struct store_token *e;
	struct store *other = open_again(f);
	size_t n;

	assert_int_equal(store_tokens_list(f->s, NULL, &ts, &n), 0);
	assert_int_equal(n, 0);
	store_tokens_free(ts, n);

	assert_int_equal(store_token_create(f->s, "alice", "client", "read",
					    12345678, &a), 0);
	assert_int_equal(store_token_create(f->s, "bob", "client", NULL, 0,
					    &b), 0);
	assert_int_equal(store_token_create(f->s, "alice", "machine", NULL,
					    0, &c), 0);

	assert_int_equal(store_tokens_list(f->s, "alice", &ts, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(ts[0].user, "alice");
	assert_string_equal(ts[0].kind, "client");
	assert_string_equal(ts[0].scope, "read");
	assert_int_equal(ts[0].expires, 12345678);
	assert_false(ts[0].revoked);
	assert_true(ts[0].created > 0);
	assert_string_equal(ts[1].kind, "machine");
	assert_string_equal(ts[1].scope, "machine");
	assert_int_equal(ts[1].expires, 0);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(strlen(ts[i].id), STORE_TOKEN_ID_LEN);
		assert_null(strstr(a, ts[i].id));
		assert_null(strstr(c, ts[i].id));
	}
	assert_string_not_equal(ts[0].id, ts[1].id);
	store_tokens_free(ts, n);

	/* All users; revoke bob's by its id, from another handle. */
	assert_int_equal(store_tokens_list(f->s, NULL, &ts, &n), 0);
	assert_int_equal(n, 3);
	snprintf(ids, sizeof(ids), "%s %s", ts[0].id, ts[1].id);
	e = new_entry(ts, n, ids);
	assert_non_null(e);
	assert_string_equal(e->user, "bob");
	assert_int_equal(store_token_check(f->s, b, &user, &kind, &scope), 0);
	free(user);
	free(kind);
	free(scope);
	assert_int_equal(store_token_revoke(other, e->id), 0);
	assert_int_equal(store_token_revoke(other, e->id), 0);
	assert_int_equal(store_token_check(f->s, b, &user, &kind, &scope),
			 -EKEYREVOKED);
	assert_null(user);
	assert_null(scope);
	store_tokens_free(ts, n);
	assert_int_equal(store_tokens_list(f->s, "bob", &ts, &n), 0);
	assert_int_equal(n, 1);
	assert_true(ts[0].revoked);
	store_tokens_free(ts, n);
	/* The others still work. */
	assert_int_equal(store_token_check(f->s, c, &user, &kind, NULL), 0);
	free(user);
	free(kind);

	assert_int_equal(store_token_revoke(f->s, "000000000000"), -ENOENT);
	assert_int_equal(store_token_revoke(f->s, ""), -EINVAL);
	assert_int_equal(store_tokens_list(f->s, "b ob", &ts, &n), -EINVAL);
	assert_int_equal(store_tokens_list(f->s, "nobody", &ts, &n), 0);
	assert_int_equal(n, 0);
	store_tokens_free(ts, n);

	/* Nothing on disk holds a token. */
	store_close(other);
	store_close(f->s);
	f->s = open_again(f);
	assert_false(file_contains(db, a + 3));
	assert_false(file_contains(db, b + 3));
	assert_false(file_contains(db, c + 3));
	free(a);
	free(b);
	free(c);
	free(db);
}

/* Credits: none means no limit; they never go below zero. */
static void test_credits(void **state)
{
	struct fixture *f = *state;
	int64_t left = -1;

	assert_int_equal(store_credits_get(f->s, "ann", &left), -ENOENT);
	assert_int_equal(store_credits_add(f->s, "ann", -5), -ENOENT);
	assert_int_equal(store_credits_set(f->s, "ann", 100), 0);
	assert_int_equal(store_credits_add(f->s, "ann", -30), 0);
	assert_int_equal(store_credits_get(f->s, "ann", &left), 0);
	assert_int_equal(left, 70);
	assert_int_equal(store_credits_add(f->s, "ann", -500), 0);
	assert_int_equal(store_credits_get(f->s, "ann", &left), 0);
	assert_int_equal(left, 0);
	assert_int_equal(store_credits_set(f->s, "ann", -1), -EINVAL);
	assert_int_equal(store_credits_set(f->s, "bad user", 1), -EINVAL);
}

/* The list holds exactly the users with a row, by name, as they stand. */
static void test_credits_list(void **state)
{
	struct fixture *f = *state;
	struct store_credits *cs = NULL;
	size_t n = 9;

	assert_int_equal(store_credits_list(f->s, &cs, &n), 0);
	assert_int_equal(n, 0);
	store_credits_free(cs, n);

	assert_int_equal(store_credits_set(f->s, "zed", 5), 0);
	assert_int_equal(store_credits_set(f->s, "ann", 100), 0);
	assert_int_equal(store_credits_add(f->s, "ann", -40), 0);
	assert_int_equal(store_credits_add(f->s, "bob", -1), -ENOENT);
	assert_int_equal(store_credits_list(f->s, &cs, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(cs[0].user, "ann");
	assert_int_equal(cs[0].seconds, 60);
	assert_true(cs[0].updated > 0);
	assert_string_equal(cs[1].user, "zed");
	assert_int_equal(cs[1].seconds, 5);
	store_credits_free(cs, n);
}

/* A workspace's setup script is kept, replaced and cleared. */
static void test_workspace_setup(void **state)
{
	struct fixture *f = *state;
	struct store_workspace w;
	char *id = NULL;

	assert_int_equal(store_workspace_ensure(f->s, "ann", "u://r", &id),
			 0);
	assert_int_equal(store_workspace_get(f->s, id, &w), 0);
	assert_null(w.setup);
	store_workspace_clear(&w);
	assert_int_equal(store_workspace_set_setup(f->s, id, "echo hi\n"), 0);
	assert_int_equal(store_workspace_get(f->s, id, &w), 0);
	assert_string_equal(w.setup, "echo hi\n");
	store_workspace_clear(&w);
	assert_int_equal(store_workspace_set_setup(f->s, id, NULL), 0);
	assert_int_equal(store_workspace_get(f->s, id, &w), 0);
	assert_null(w.setup);
	store_workspace_clear(&w);
	assert_int_equal(store_workspace_set_setup(f->s,
		"00000000-0000-4000-8000-000000000000", "x"), -ENOENT);
	free(id);
}

/* Turns the fixture's database back into schema version 1 by hand. */
static void downgrade_to_v1(struct fixture *f, const char *tokens_sql)
{
	char *db = data_path(f, "baton.db");
	sqlite3 *raw;
	char *sql;

	store_close(f->s);
	f->s = NULL;
	assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
	sql = xasprintf("ALTER TABLE tokens RENAME TO t3;%s"
			"DROP TABLE t3; DROP TABLE session_profiles;"
			"DROP TABLE bootstraps; DROP TABLE env;"
			"ALTER TABLE machines DROP COLUMN pubkey;"
			"ALTER TABLE workspaces DROP COLUMN sync;"
			"ALTER TABLE workspaces DROP COLUMN synced_checkpoint;"
			"ALTER TABLE workspaces DROP COLUMN synced_session;"
			"ALTER TABLE workspaces DROP COLUMN synced_at;"
			"ALTER TABLE workspaces DROP COLUMN setup;"
			"DROP TABLE credits;"
			"PRAGMA user_version = 1", tokens_sql);
	assert_int_equal(sqlite3_exec(raw, sql, NULL, NULL, NULL),
			 SQLITE_OK);
	free(sql);
	sqlite3_close(raw);
	free(db);
}

/* A data folder from schema version 1 is upgraded, its tokens still work
 * (as steer tokens), and the new columns and tables are there. */
static void test_upgrade_from_v1(void **state)
{
	struct fixture *f = *state;
	struct store_machine m = { 0 };
	char *token = NULL, *user = NULL, *kind = NULL, *scope = NULL;
	char *cause = NULL;

	assert_int_equal(store_token_create(f->s, "ann", "client", NULL, 0,
					    &token), 0);
	assert_int_equal(store_machine_local(f->s, "ann", "lap", &m), 0);
	store_machine_clear(&m);
	downgrade_to_v1(f, "CREATE TABLE tokens (hash TEXT PRIMARY KEY,"
			" user TEXT NOT NULL REFERENCES users (name),"
			" kind TEXT NOT NULL, created INTEGER NOT NULL);"
			"INSERT INTO tokens SELECT hash, user, kind, created"
			" FROM t3;");

	assert_int_equal(store_open(f->data, &f->s, &cause), 0);
	assert_null(cause);
	assert_int_equal(store_token_check(f->s, token, &user, &kind, &scope),
			 0);
	assert_string_equal(user, "ann");
	assert_string_equal(scope, "steer");
	assert_int_equal(store_machine_by_name(f->s, "ann", "lap", &m), 0);
	assert_null(m.pubkey);
	assert_int_equal(store_machine_set_key(f->s, m.id, "ab12"), 0);
	store_machine_clear(&m);
	assert_int_equal(store_machine_by_name(f->s, "ann", "lap", &m), 0);
	assert_string_equal(m.pubkey, "ab12");
	store_machine_clear(&m);
	free(token);
	free(user);
	free(kind);
	free(scope);
}

/* An upgrade that cannot run leaves the database as it was and says what
 * to do. */
static void test_upgrade_fails_cleanly(void **state)
{
	struct fixture *f = *state;
	struct store *s = NULL;
	char *cause = NULL;

	downgrade_to_v1(f, "CREATE TABLE tokens (hash TEXT);");
	assert_int_not_equal(store_open(f->data, &s, &cause), 0);
	assert_null(s);
	assert_non_null(strstr(cause, "cannot upgrade"));
	assert_non_null(strstr(cause, "version 1"));
	assert_non_null(strstr(cause, "move the data folder aside"));
	free(cause);
	cause = NULL;
	/* nothing changed: the same refusal again, not a half-upgraded db */
	assert_int_not_equal(store_open(f->data, &s, &cause), 0);
	assert_non_null(strstr(cause, "version 1"));
	free(cause);
	/* and the copies made before each try are gone with them */
	assert_int_equal(backups(f, NULL), 0);
}

/* Before an upgrade the old database is copied beside it, privately and
 * whole (the copy still has the old version and the old rows); the copy
 * is made once, not at every later open, and never for a new database. */
static void test_upgrade_copies_first(void **state)
{
	struct fixture *f = *state;
	char *token = NULL, *name = NULL, *copy, *db = data_path(f, "baton.db");
	regex_t rx;

	assert_int_equal(backups(f, NULL), 0);
	assert_int_equal(store_token_create(f->s, "ann", "client", NULL, 0,
					    &token), 0);
	downgrade_to_v1(f, "CREATE TABLE tokens (hash TEXT PRIMARY KEY,"
			" user TEXT NOT NULL REFERENCES users (name),"
			" kind TEXT NOT NULL, created INTEGER NOT NULL);"
			"INSERT INTO tokens SELECT hash, user, kind, created"
			" FROM t3;");
	f->s = open_again(f);

	assert_int_equal(backups(f, &name), 1);
	assert_int_equal(regcomp(&rx, "^baton\\.db\\.v1-[0-9]{8}T[0-9]{6}Z"
				 "\\.bak$", REG_EXTENDED | REG_NOSUB), 0);
	assert_int_equal(regexec(&rx, name, 0, NULL, 0), 0);
	regfree(&rx);
	copy = data_path(f, name);
	assert_int_equal(mode_of(copy) & 077, 0);
	assert_int_equal(raw_number(copy, "PRAGMA user_version"), 1);
	assert_int_equal(raw_number(copy, "SELECT count(*) FROM tokens"), 1);
	assert_int_equal(raw_number(copy, "SELECT count(*) FROM "
				    "sqlite_schema WHERE name = 'credits'"),
			 0);
	assert_int_equal(raw_number(db, "PRAGMA user_version"), 5);

	store_close(f->s);
	f->s = open_again(f);
	assert_int_equal(backups(f, NULL), 1);
	free(copy);
	free(name);
	free(db);
	free(token);
}

/* Opens the store in a child process that may write no file past 64 KiB
 * (a full disk, as the copy sees it); returns the child's exit status:
 * 0 when store_open refused with a cause that says the copy failed and
 * what to do, 1 when it refused otherwise, 2 when it opened. */
static int open_on_full_disk(const struct fixture *f)
{
	struct rlimit lim = { 64 << 10, 64 << 10 };
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *s = NULL;
		char *cause = NULL;

		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &lim) < 0)
			_exit(3);
		if (store_open(f->data, &s, &cause) == 0)
			_exit(2);
		fprintf(stderr, "store_open: %s\n", cause);
		_exit(strstr(cause, "cannot copy") &&
		      strstr(cause, "left as it was, not upgraded") &&
		      strstr(cause, "make room") ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* When the copy cannot be made the database is not upgraded: it keeps its
 * version and rows, and no partial copy is left. With room again, the
 * same database upgrades. */
static void test_upgrade_refused_without_copy(void **state)
{
	struct fixture *f = *state;
	char *db = data_path(f, "baton.db");
	sqlite3 *raw;

	downgrade_to_v1(f, "CREATE TABLE tokens (hash TEXT PRIMARY KEY,"
			" user TEXT NOT NULL, kind TEXT NOT NULL,"
			" created INTEGER NOT NULL);");
	assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
	assert_int_equal(sqlite3_exec(raw, "CREATE TABLE padding (x);"
				      "INSERT INTO padding VALUES"
				      " (zeroblob(300000));", NULL, NULL,
				      NULL), SQLITE_OK);
	sqlite3_close(raw);

	assert_int_equal(open_on_full_disk(f), 0);
	assert_int_equal(raw_number(db, "PRAGMA user_version"), 1);
	assert_int_equal(raw_number(db, "SELECT length(x) FROM padding"),
			 300000);
	assert_int_equal(backups(f, NULL), 0);

	f->s = open_again(f);
	assert_int_equal(backups(f, NULL), 1);
	assert_int_equal(raw_number(db, "PRAGMA user_version"), 5);
	free(db);
}

/* Two handles on one data directory see each other's tokens. */
static void test_two_handles(void **state)
{
	struct fixture *f = *state;
	struct store *b = open_again(f);
	char *t1, *t2, *user, *kind;

	assert_int_equal(store_token_create(f->s, "alice", "client", NULL, 0,
					    &t1), 0);
	assert_int_equal(store_token_check(b, t1, &user, &kind, NULL), 0);
	assert_string_equal(user, "alice");
	free(user);
	free(kind);

	assert_int_equal(store_token_create(b, "bob", "machine", NULL, 0,
					    &t2), 0);
	assert_int_equal(store_token_check(f->s, t2, &user, &kind, NULL), 0);
	assert_string_equal(user, "bob");
	assert_string_equal(kind, "machine");
	free(user);
	free(kind);

	store_close(b);
	free(t1);
	free(t2);
}

/* Runs fn(f, arg) in a child process with its own handle; returns what
 * the child exits with (0 when fn returned 0). */
static pid_t spawn(const struct fixture *f,
		   int (*fn)(struct store *, const void *), const void *arg)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *s = NULL;
		int rc;

		if (store_open(f->data, &s, NULL) != 0)
			_exit(100);
		rc = fn(s, arg);
		store_close(s);
		_exit(rc ? 101 : 0);
	}
	return pid;
}

/* Waits for a child of spawn and checks that it succeeded. */
static void reap(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

#define RACE_TOKENS 40

/* Creates RACE_TOKENS tokens for the user named by arg, and checks them. */
static int create_tokens(struct store *s, const void *arg)
{
	for (int i = 0; i < RACE_TOKENS; i++) {
		char *t, *user, *kind;
		int rc = store_token_create(s, arg, "client", NULL, 0, &t);

		if (rc)
			return rc;
		rc = store_token_check(s, t, &user, &kind, NULL);
		if (rc == 0 && strcmp(user, arg) != 0)
			rc = -EIO;
		free(t);
		free(user);
		free(kind);
		if (rc)
			return rc;
	}
	return 0;
}

/* Two processes write to one data directory at the same time. */
static void test_two_processes(void **state)
{
	struct fixture *f = *state;
	pid_t a, b;
	char *t, *user, *kind;

	a = spawn(f, create_tokens, "alice");
	b = spawn(f, create_tokens, "bob");
	assert_int_equal(create_tokens(f->s, "carol"), 0);
	reap(a);
	reap(b);

	/* What the children wrote is visible to the parent's handle. */
	assert_int_equal(store_token_create(f->s, "dave", "client", NULL, 0,
					    &t), 0);
	assert_int_equal(store_token_check(f->s, t, &user, &kind, NULL), 0);
	free(t);
	free(user);
	free(kind);
	{
		char *db = data_path(f, "baton.db");
		sqlite3 *raw;
		sqlite3_stmt *st;

		assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(raw,
			"SELECT count(*) FROM tokens", -1, &st, NULL),
			SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(st, 0),
				 3 * RACE_TOKENS + 1);
		sqlite3_finalize(st);
		sqlite3_close(raw);
		free(db);
	}
}

/* Local machines: one per (user, name), reused, with state changes. */
static void test_machines_local(void **state)
{
	struct fixture *f = *state;
	struct store_machine m1, m2, m3, got, *list;
	size_t n;

	assert_int_equal(store_machine_local(f->s, "alice", "laptop", &m1),
			 0);
	assert_int_equal(proto_uuid_parse(m1.id, (uint8_t[16]){ 0 }), 0);
	assert_string_equal(m1.user, "alice");
	assert_string_equal(m1.name, "laptop");
	assert_string_equal(m1.kind, "local");
	assert_string_equal(m1.state, "offline");
	assert_null(m1.workspace);

	assert_int_equal(store_machine_local(f->s, "alice", "laptop", &m2),
			 0);
	assert_string_equal(m2.id, m1.id);
	assert_int_equal(store_machine_local(f->s, "bob", "laptop", &m3), 0);
	assert_string_not_equal(m3.id, m1.id);

	assert_int_equal(store_machine_set_state(f->s, m1.id, "online"), 0);
	assert_int_equal(store_machine_get(f->s, m1.id, &got), 0);
	assert_string_equal(got.state, "online");
	store_machine_clear(&got);
	assert_int_equal(store_machine_by_name(f->s, "alice", "laptop", &got),
			 0);
	assert_string_equal(got.id, m1.id);
	store_machine_clear(&got);
	assert_int_equal(store_machine_by_name(f->s, "bob", "desk", &got),
			 -ENOENT);
	assert_int_equal(store_machine_get(f->s, "nope", &got), -ENOENT);
	assert_int_equal(store_machine_set_state(f->s, "nope", "online"),
			 -ENOENT);
	assert_int_equal(store_machine_local(f->s, "alice", "sandbox-1",
					     &got), -EINVAL);
	assert_int_equal(store_machine_local(f->s, "alice", "a\nb", &got),
			 -EINVAL);

	store_machine_clear(&m2);
	assert_int_equal(store_machine_local(f->s, "alice", "desk", &m2), 0);
	assert_int_equal(store_machines_list(f->s, "alice", &list, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "desk");
	assert_string_equal(list[1].name, "laptop");
	store_machines_free(list, n);
	assert_int_equal(store_machines_list(f->s, "carol", &list, &n), 0);
	assert_int_equal(n, 0);
	store_machines_free(list, n);

	store_machine_clear(&m1);
	store_machine_clear(&m2);
	store_machine_clear(&m3);
}

/* Sandbox machines: one per (user, workspace), generation bumps. */
static void test_machines_sandbox(void **state)
{
	struct fixture *f = *state;
	struct store_machine m, again, got;
	char *ws, *ws_bob, *name;

	assert_int_equal(store_workspace_ensure(f->s, "alice",
		"https://example.com/a.git", &ws), 0);
	assert_int_equal(store_workspace_ensure(f->s, "bob",
		"https://example.com/a.git", &ws_bob), 0);

	assert_int_equal(store_machine_sandbox(f->s, "alice", ws, 0, &m), 0);
	name = xasprintf("sandbox-%.8s", ws);
	assert_string_equal(m.name, name);
	assert_string_equal(m.kind, "sandbox");
	assert_string_equal(m.state, "created");
	assert_string_equal(m.workspace, ws);
	assert_int_equal(m.generation, 0);

	assert_int_equal(store_machine_set_state(f->s, m.id, "ready"), 0);
	assert_int_equal(store_machine_sandbox(f->s, "alice", ws, 1, &again),
			 0);
	assert_string_equal(again.id, m.id);
	assert_int_equal(again.generation, 1);
	assert_string_equal(again.state, "created");
	store_machine_clear(&again);
	assert_int_equal(store_machine_sandbox(f->s, "alice", ws, 1, &again),
			 0);
	assert_int_equal(again.generation, 2);
	store_machine_clear(&again);
	assert_int_equal(store_machine_sandbox(f->s, "alice", ws, 0, &again),
			 0);
	assert_string_equal(again.id, m.id);
	assert_int_equal(again.generation, 2);
	store_machine_clear(&again);
	assert_int_equal(store_machine_by_name(f->s, "alice", name, &got), 0);
	assert_string_equal(got.id, m.id);
	store_machine_clear(&got);

	/* Not for another user's workspace, nor an unknown one. */
	assert_int_equal(store_machine_sandbox(f->s, "alice", ws_bob, 1,
					       &again), -ENOENT);
	assert_int_equal(store_machine_sandbox(f->s, "alice",
		"00000000-0000-4000-8000-000000000000", 0, &again), -ENOENT);
	assert_int_equal(store_machine_sandbox(f->s, "bob", ws_bob, 1,
					       &again), 0);
	assert_string_not_equal(again.id, m.id);
	assert_int_equal(again.generation, 1);
	store_machine_clear(&again);

	store_machine_clear(&m);
	free(name);
	free(ws);
	free(ws_bob);
}

/* Workspaces: one per (user, key), with a UUID id. */
static void test_workspaces(void **state)
{
	struct fixture *f = *state;
	char *a, *b, *c;

	assert_int_equal(store_workspace_ensure(f->s, "alice", "git@x:y.git",
						&a), 0);
	assert_int_equal(proto_uuid_parse(a, (uint8_t[16]){ 0 }), 0);
	assert_int_equal(store_workspace_ensure(f->s, "alice", "git@x:y.git",
						&b), 0);
	assert_string_equal(a, b);
	free(b);
	assert_int_equal(store_workspace_ensure(f->s, "bob", "git@x:y.git",
						&b), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(store_workspace_ensure(f->s, "alice", "", &c),
			 -EINVAL);
	assert_null(c);
	free(a);
	free(b);
}

/* A session record for tests; strings are literals, not owned. */
static struct store_session session_of(const char *id, const char *user)
{
	struct store_session ss = {
		.id = (char *)id,
		.user = (char *)user,
		.machine = "m-1",
		.workspace = "w-1",
		.agent = "claude",
		.worktree = "/home/dev/project",
		.state = "running",
		.checkpoint = NULL,
		.epoch = 1,
		.seq = 0,
		.exit_status = -1,
	};

	return ss;
}

/* Sessions: put, replace, get, list per user, and the guards. */
static void test_sessions(void **state)
{
	struct fixture *f = *state;
	char a1[PROTO_UUID_LEN + 1], a2[PROTO_UUID_LEN + 1];
	char b1[PROTO_UUID_LEN + 1], upper[PROTO_UUID_LEN + 1];
	struct store_session ss, got, *list;
	size_t n;

	proto_uuid_new(a1);
	proto_uuid_new(a2);
	proto_uuid_new(b1);
	ss = session_of(a1, "alice");
	assert_int_equal(store_session_put(f->s, &ss), 0);
	ss = session_of(a2, "alice");
	ss.workspace = NULL;	/* not reported by the daemon yet */
	assert_int_equal(store_session_put(f->s, &ss), 0);
	ss = session_of(b1, "bob");
	assert_int_equal(store_session_put(f->s, &ss), 0);

	assert_int_equal(store_session_get(f->s, a1, &got), 0);
	assert_string_equal(got.id, a1);
	assert_string_equal(got.user, "alice");
	assert_string_equal(got.machine, "m-1");
	assert_string_equal(got.workspace, "w-1");
	assert_string_equal(got.agent, "claude");
	assert_string_equal(got.worktree, "/home/dev/project");
	assert_string_equal(got.state, "running");
	assert_null(got.checkpoint);
	assert_int_equal(got.epoch, 1);
	assert_int_equal(got.seq, 0);
	assert_int_equal(got.exit_status, -1);
	store_session_clear(&got);

	/* Replace: a move to another machine with a higher epoch. */
	ss = session_of(a1, "alice");
	ss.machine = "m-2";
	ss.state = "exited";
	ss.checkpoint = "0123456789abcdef0123456789abcdef01234567";
	ss.epoch = 5000000000ULL;
	ss.seq = 42;
	ss.exit_status = 3;
	assert_int_equal(store_session_put(f->s, &ss), 0);
	for (size_t i = 0; i <= PROTO_UUID_LEN; i++)
		upper[i] = (char)(a1[i] >= 'a' && a1[i] <= 'f' ?
				  a1[i] - 32 : a1[i]);
	assert_int_equal(store_session_get(f->s, upper, &got), 0);
	assert_string_equal(got.id, a1);
	assert_string_equal(got.machine, "m-2");
	assert_string_equal(got.state, "exited");
	assert_string_equal(got.checkpoint, ss.checkpoint);
	assert_int_equal(got.epoch, 5000000000ULL);
	assert_int_equal(got.seq, 42);
	assert_int_equal(got.exit_status, 3);
	store_session_clear(&got);

	/* Never to another user, never back to an older epoch. */
	ss = session_of(a1, "bob");
	ss.epoch = 6000000000ULL;
	assert_int_equal(store_session_put(f->s, &ss), -EPERM);
	ss = session_of(a1, "alice");
	assert_int_equal(store_session_put(f->s, &ss), -ESTALE);
	assert_int_equal(store_session_get(f->s, a1, &got), 0);
	assert_string_equal(got.user, "alice");
	assert_int_equal(got.epoch, 5000000000ULL);
	store_session_clear(&got);

	assert_int_equal(store_sessions_list(f->s, "alice", &list, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].id, a1);
	assert_string_equal(list[1].id, a2);
	assert_null(list[1].workspace);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(list[i].user, "alice");
	store_sessions_free(list, n);
	assert_int_equal(store_sessions_list(f->s, "bob", &list, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].id, b1);
	store_sessions_free(list, n);

	ss = session_of("not-a-uuid", "alice");
	assert_int_equal(store_session_put(f->s, &ss), -EINVAL);
	ss = session_of(a2, "alice");
	ss.checkpoint = "HEAD";
	assert_int_equal(store_session_put(f->s, &ss), -EINVAL);
	ss = session_of(a2, "alice");
	ss.worktree = NULL;
	assert_int_equal(store_session_put(f->s, &ss), -EINVAL);
	assert_int_equal(store_session_get(f->s, "../x", &got), -EINVAL);
	proto_uuid_new(upper);
	assert_int_equal(store_session_get(f->s, upper, &got), -ENOENT);
}

/* Checkpoints: appended per workspace, recent ones newest first. */
static void test_checkpoints(void **state)
{
	struct fixture *f = *state;
	static const char *const oids[] = {
		"1111111111111111111111111111111111111111",
		"2222222222222222222222222222222222222222",
		"3333333333333333333333333333333333333333",
	};
	char session[PROTO_UUID_LEN + 1];
	char *ws, *other, **v;
	size_t n;

	proto_uuid_new(session);
	assert_int_equal(store_workspace_ensure(f->s, "alice", "k1", &ws), 0);
	assert_int_equal(store_workspace_ensure(f->s, "alice", "k2", &other),
			 0);
	for (size_t i = 0; i < ARRAY_SIZE(oids); i++)
		assert_int_equal(store_checkpoint_add(f->s, ws, session,
						      oids[i], "m-1"), 0);
	assert_int_equal(store_checkpoint_add(f->s, other, session,
		"4444444444444444444444444444444444444444", "m-1"), 0);

	assert_int_equal(store_checkpoints_recent(f->s, ws, 2, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0], oids[2]);
	assert_string_equal(v[1], oids[1]);
	store_strv_free(v, n);
	assert_int_equal(store_checkpoints_recent(f->s, ws, 10, &v, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(v[2], oids[0]);
	store_strv_free(v, n);
	assert_int_equal(store_checkpoints_recent(f->s, ws, 0, &v, &n), 0);
	assert_int_equal(n, 0);
	store_strv_free(v, n);

	assert_int_equal(store_checkpoint_add(f->s,
		"00000000-0000-4000-8000-000000000000", session, oids[0],
		"m-1"), -ENOENT);
	assert_int_equal(store_checkpoint_add(f->s, ws, session, "abc",
					      "m-1"), -EINVAL);
	free(ws);
	free(other);
}

/* Chunks a read delivers, checked against what was appended. */
struct collect {
	uint64_t first;
	uint64_t next;		/* the seq expected next */
	size_t count;
	uint64_t stop_at;	/* return 7 after this seq; 0: never */
};

/* The payload of seq n in the long transcript: n bytes of (n & 0xff),
 * capped at 700, so records straddle read blocks. */
static size_t payload_of(uint64_t seq, uint8_t *out)
{
	size_t len = (size_t)(seq % 700);

	memset(out, (int)(seq & 0xff), len);
	return len;
}

/* A store_chunk_cb that checks order and content. */
static int collect_cb(uint64_t seq, const void *data, size_t len,
		      void *arg)
{
	struct collect *c = arg;
	uint8_t want[700];

	if (c->count == 0)
		c->first = seq;
	else
		assert_int_equal(seq, c->next);
	assert_int_equal(len, payload_of(seq, want));
	if (len)
		assert_memory_equal(data, want, len);
	c->next = seq + 1;
	c->count++;
	return c->stop_at == seq ? 7 : 0;
}

/* Appends seqs from..to of the long transcript. */
static void append_range(struct store *s, const char *id, uint64_t from,
			 uint64_t to)
{
	uint8_t buf[700];

	for (uint64_t seq = from; seq <= to; seq++)
		assert_int_equal(store_transcript_append(s, id, seq, buf,
			payload_of(seq, buf)), 0);
}

/* Reads after `after` and checks that seqs after+1..last arrive. */
static void check_read(struct store *s, const char *id, uint64_t after,
		       uint64_t last)
{
	struct collect c = { 0 };

	assert_int_equal(store_transcript_read(s, id, after, collect_cb, &c),
			 0);
	assert_int_equal(c.count, last > after ? last - after : 0);
	if (c.count)
		assert_int_equal(c.first, after + 1);
}

/* Transcripts: append, duplicate, gap, last, reads from any seq. */
static void test_transcript(void **state)
{
	struct fixture *f = *state;
	static const uint64_t afters[] = {
		0, 1, 2, 255, 256, 257, 511, 512, 513, 698, 699, 700, 1000,
	};
	char id[PROTO_UUID_LEN + 1], *path, *name;
	struct collect c = { 0 };
	uint8_t buf[700];
	struct store *b;
	uint64_t last;

	proto_uuid_new(id);
	assert_int_equal(store_transcript_last(f->s, id, &last), 0);
	assert_int_equal(last, 0);
	assert_int_equal(store_transcript_read(f->s, id, 0, collect_cb, &c),
			 0);
	assert_int_equal(c.count, 0);
	assert_int_equal(store_transcript_append(f->s, id, 2, buf, 2),
			 -ERANGE);
	assert_int_equal(store_transcript_append(f->s, id, 0, buf, 0),
			 -EEXIST);

	append_range(f->s, id, 1, 3);
	assert_int_equal(store_transcript_append(f->s, id, 3, buf, 3),
			 -EEXIST);
	assert_int_equal(store_transcript_append(f->s, id, 1, buf, 1),
			 -EEXIST);
	assert_int_equal(store_transcript_append(f->s, id, 5, buf, 5),
			 -ERANGE);
	assert_int_equal(store_transcript_append(f->s, id, 4, buf,
			 STORE_CHUNK_MAX + 1), -EMSGSIZE);
	assert_int_equal(store_transcript_last(f->s, id, &last), 0);
	assert_int_equal(last, 3);

	append_range(f->s, id, 4, 700);
	for (size_t i = 0; i < ARRAY_SIZE(afters); i++)
		check_read(f->s, id, afters[i], 700);

	/* A callback that stops early: its value comes back. */
	c = (struct collect){ .stop_at = 300 };
	assert_int_equal(store_transcript_read(f->s, id, 250, collect_cb, &c),
			 7);
	assert_int_equal(c.count, 50);

	/* A fresh handle scans the file and reads the same. */
	b = open_again(f);
	assert_int_equal(store_transcript_last(b, id, &last), 0);
	assert_int_equal(last, 700);
	for (size_t i = 0; i < ARRAY_SIZE(afters); i++)
		check_read(b, id, afters[i], 700);
	store_close(b);

	/* The file is exactly the records: 12 bytes of header each. */
	name = xasprintf("transcripts/%s.log", id);
	path = data_path(f, name);
	{
		struct stat st;
		off_t want = 0;

		for (uint64_t seq = 1; seq <= 700; seq++)
			want += 12 + (off_t)payload_of(seq, buf);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_size, want);
		assert_int_equal(st.st_mode & 077, 0);
	}
	free(path);
	free(name);
}

/* One handle appends while another reads and appends. */
static void test_transcript_two_handles(void **state)
{
	struct fixture *f = *state;
	char id[PROTO_UUID_LEN + 1];
	struct store *b = open_again(f);
	uint8_t buf[700];
	uint64_t last;

	proto_uuid_new(id);
	append_range(f->s, id, 1, 10);
	check_read(b, id, 0, 10);
	append_range(f->s, id, 11, 300);
	check_read(b, id, 5, 300);
	assert_int_equal(store_transcript_last(b, id, &last), 0);
	assert_int_equal(last, 300);

	/* b appends; a's idea of the end is stale and must catch up. */
	append_range(b, id, 301, 320);
	assert_int_equal(store_transcript_append(f->s, id, 320, buf, 1),
			 -EEXIST);
	assert_int_equal(store_transcript_append(f->s, id, 322, buf, 1),
			 -ERANGE);
	append_range(f->s, id, 321, 330);
	check_read(b, id, 0, 330);
	check_read(f->s, id, 255, 330);
	store_close(b);
}

#define RACE_CHUNKS 200

/* Appends RACE_CHUNKS chunks of the byte arg[36] to the session arg
 * (a UUID and a marker byte), racing another writer for each seq. */
static int race_append(struct store *s, const void *arg)
{
	char id[PROTO_UUID_LEN + 1];
	const char *text = arg;
	int done = 0;

	memcpy(id, text, PROTO_UUID_LEN);
	id[PROTO_UUID_LEN] = '\0';
	while (done < RACE_CHUNKS) {
		uint64_t last;
		int rc = store_transcript_last(s, id, &last);

		if (rc == 0)
			rc = store_transcript_append(s, id, last + 1,
						     text + PROTO_UUID_LEN, 1);
		if (rc == 0)
			done++;
		else if (rc != -EEXIST && rc != -ERANGE)
			return rc;
	}
	return 0;
}

/* Counts chunks by their marker byte, checking that seqs have no gaps. */
static int count_markers(uint64_t seq, const void *data, size_t len,
			 void *arg)
{
	size_t *counts = arg;

	assert_int_equal(seq, counts[2] + 1);
	assert_int_equal(len, 1);
	counts[((const char *)data)[0] == 'b']++;
	counts[2] = seq;
	return 0;
}

/* Two processes append to one transcript; every chunk lands once. */
static void test_transcript_two_processes(void **state)
{
	struct fixture *f = *state;
	char a[PROTO_UUID_LEN + 2], b[PROTO_UUID_LEN + 2];
	size_t counts[3] = { 0 };	/* 'a' chunks, 'b' chunks, last */
	pid_t pa, pb;
	uint64_t last;

	proto_uuid_new(a);
	memcpy(b, a, PROTO_UUID_LEN);
	a[PROTO_UUID_LEN] = 'a';
	b[PROTO_UUID_LEN] = 'b';
	a[PROTO_UUID_LEN + 1] = b[PROTO_UUID_LEN + 1] = '\0';
	pa = spawn(f, race_append, a);
	pb = spawn(f, race_append, b);
	reap(pa);
	reap(pb);

	a[PROTO_UUID_LEN] = '\0';
	assert_int_equal(store_transcript_last(f->s, a, &last), 0);
	assert_int_equal(last, 2 * RACE_CHUNKS);
	assert_int_equal(store_transcript_read(f->s, a, 0, count_markers,
					       counts), 0);
	assert_int_equal(counts[0], RACE_CHUNKS);
	assert_int_equal(counts[1], RACE_CHUNKS);
}

/* Writes raw bytes at the end of a file. */
static void append_bytes(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_APPEND);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* The size of a file. */
static off_t size_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* A record cut short by a crash is ignored, then truncated away. */
static void test_transcript_truncated(void **state)
{
	struct fixture *f = *state;
	/* seq 4, length 100, and only 10 of the 100 bytes */
	static const uint8_t cut[] = {
		0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 100,
		1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
	};
	char id[PROTO_UUID_LEN + 1], *name, *path;
	struct store *b;
	uint8_t buf[700];
	uint64_t last;
	off_t whole;

	proto_uuid_new(id);
	name = xasprintf("transcripts/%s.log", id);
	path = data_path(f, name);
	append_range(f->s, id, 1, 3);
	store_close(f->s);
	f->s = NULL;
	whole = size_of(path);

	/* A cut payload, read by a fresh handle. */
	append_bytes(path, cut, sizeof(cut));
	b = open_again(f);
	assert_int_equal(store_transcript_last(b, id, &last), 0);
	assert_int_equal(last, 3);
	check_read(b, id, 0, 3);
	assert_int_equal(size_of(path), whole + (off_t)sizeof(cut));
	append_range(b, id, 4, 4);
	whole += 12 + (off_t)payload_of(4, buf);
	assert_int_equal(size_of(path), whole);
	check_read(b, id, 0, 4);

	/* A cut header, met by a handle that had the file cached. */
	append_bytes(path, cut, 5);
	assert_int_equal(store_transcript_last(b, id, &last), 0);
	assert_int_equal(last, 4);
	append_range(b, id, 5, 6);
	check_read(b, id, 0, 6);
	whole += 24 + (off_t)(payload_of(5, buf) + payload_of(6, buf));
	assert_int_equal(size_of(path), whole);
	store_close(b);

	f->s = open_again(f);
	check_read(f->s, id, 2, 6);
	free(path);
	free(name);
}

/* Session ids that are not UUIDs never reach a path. */
static void test_transcript_bad_id(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
		"", "not-a-uuid", "../../../../../../tmp/evil",
		"00000000-0000-4000-8000-00000000000/",
		"00000000-0000-4000-8000-0000000000000",
	};
	struct collect c = { 0 };
	uint64_t last;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(store_transcript_append(f->s, bad[i], 1,
							 "x", 1), -EINVAL);
		assert_int_equal(store_transcript_read(f->s, bad[i], 0,
						       collect_cb, &c),
				 -EINVAL);
		assert_int_equal(store_transcript_last(f->s, bad[i], &last),
				 -EINVAL);
	}
	assert_int_equal(store_transcript_append(f->s, NULL, 1, "x", 1),
			 -EINVAL);
	assert_int_equal(c.count, 0);
	assert_int_equal(access("/tmp/evil.log", F_OK), -1);
}

/* Object stores: a bare repository per workspace, created once. */
static void test_objects(void **state)
{
	struct fixture *f = *state;
	git_repository *repo, *again;
	char *ws, *name, *path;

	assert_int_equal(store_workspace_ensure(f->s, "alice", "k", &ws), 0);
	assert_int_equal(store_objects_open(f->s, ws, &repo), 0);
	assert_true(git_repository_is_bare(repo));
	name = xasprintf("objects/%s.git", ws);
	path = data_path(f, name);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(store_objects_open(f->s, ws, &again), 0);
	assert_string_equal(git_repository_path(repo),
			    git_repository_path(again));
	git_repository_free(again);
	git_repository_free(repo);

	assert_int_equal(store_objects_open(f->s,
		"00000000-0000-4000-8000-000000000000", &repo), -ENOENT);
	assert_null(repo);
	assert_int_equal(store_objects_open(f->s, "../k", &repo), -EINVAL);
	free(path);
	free(name);
	free(ws);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_fails, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_open_newer_schema, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_open_not_db, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_scope, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_token_expiry, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_token_list_revoke, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_credits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credits_list, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_workspace_setup, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_from_v1, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_fails_cleanly,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_copies_first,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_upgrade_refused_without_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_handles, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_two_processes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_machines_local, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_machines_sandbox, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_workspaces, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_sessions, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_checkpoints, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_transcript, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_transcript_two_handles,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_transcript_two_processes,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_transcript_truncated,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_transcript_bad_id, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_objects, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
