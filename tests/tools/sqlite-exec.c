/*
 * sqlite-exec.c: runs SQL on an SQLite database file for the tests, which
 * cannot count on the sqlite3 program being installed.
 *
 *   sqlite-exec DB SQL      runs SQL (several statements may follow each
 *                           other); SQL "-" reads them from stdin
 *
 * Each row a statement returns is printed as one line, its columns joined
 * by '|' (NULL prints as nothing). The database is made when missing.
 * Exits 0, or 1 with SQLite's message on the first failing statement.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads all of stdin; the caller frees. NULL when it cannot. */
static char *read_stdin(void)
{
	size_t len = 0, cap = 65536, n;
	char *text = malloc(cap);

	while (text && (n = fread(text + len, 1, cap - len - 1, stdin)) > 0) {
		len += n;
		if (cap - len - 1 == 0) {
			char *more = realloc(text, cap * 2);

			if (more == NULL) {
				free(text);
				return NULL;
			}
			text = more;
			cap *= 2;
		}
	}
	if (text)
		text[len] = '\0';
	return text;
}

/* Steps one prepared statement to its end, printing its rows. */
static int run(sqlite3_stmt *st)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		for (int i = 0; i < sqlite3_column_count(st); i++) {
			const unsigned char *v = sqlite3_column_text(st, i);

			printf("%s%s", i ? "|" : "", v ? (const char *)v : "");
		}
		putchar('\n');
	}
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int main(int argc, char **argv)
{
	const char *sql, *tail = "";
	char *input = NULL;
	sqlite3_stmt *st;
	sqlite3 *db;
	int rc = SQLITE_OK;

	if (argc != 3) {
		fprintf(stderr, "usage: sqlite-exec DB SQL|-\n");
		return 2;
	}
	if (!strcmp(argv[2], "-")) {
		input = read_stdin();
		if (input == NULL) {
			fprintf(stderr, "sqlite-exec: cannot read stdin\n");
			return 1;
		}
	}
	if (sqlite3_open(argv[1], &db) != SQLITE_OK) {
		fprintf(stderr, "sqlite-exec: %s: %s\n", argv[1],
			sqlite3_errmsg(db));
		return 1;
	}
	sqlite3_busy_timeout(db, 5000);
	for (sql = input ? input : argv[2]; rc == SQLITE_OK && *sql;
	     sql = tail) {
		rc = sqlite3_prepare_v2(db, sql, -1, &st, &tail);
		if (rc != SQLITE_OK || st == NULL)
			continue;	/* an error, or only a comment left */
		rc = run(st);
		sqlite3_finalize(st);
	}
	if (rc != SQLITE_OK)
		fprintf(stderr, "sqlite-exec: %s: %s\n", argv[1],
			sqlite3_errmsg(db));
	sqlite3_close(db);
	free(input);
	return rc == SQLITE_OK ? 0 : 1;
}
