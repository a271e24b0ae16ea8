/*
 * test_statefile.c: the versioned JSON files of a daemon's state folder
 * (common/statefile.c): saving with the version, upgrading an older file
 * after a copy, refusing a newer one and one with a broken version, and
 * leaving the file as it was when the copy cannot be made.
 *
 * Each test works in a fresh temporary folder.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "statefile.h"
#include "util.h"

/* A version 1 file: written before files had versions. */
#define OLD_TEXT "{\n\t\"relay\":\t\"ws://127.0.0.1:1\",\n" \
		 "\t\"machine\":\t\"m-1\"\n}"

struct fixture {
	char *dir;
	char *path;		/* dir/state.json */
};

static int setup(void **state)
{
	const char *base = getenv("TMPDIR");
	struct fixture *f = xcalloc(1, sizeof(*f));

	f->dir = xasprintf("%s/baton-statefile-XXXXXX", base ? base : "/tmp");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->path = xasprintf("%s/state.json", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	rm_rf(f->dir);
	free(f->path);
	free(f->dir);
	free(f);
	return 0;
}

/* Writes text to the fixture's file as it is. */
static void put(const struct fixture *f, const char *text)
{
	assert_int_equal(file_write_atomic(f->path, text, strlen(text), 0600),
			 0);
}

/* The fixture's file as it is now; the caller frees. */
static char *get(const char *path)
{
	char *text = NULL;

	assert_int_equal(file_read_all(path, 1 << 20, &text, NULL), 0);
	return text;
}

/* How many copies (state.json.v*.bak) the folder holds; the last one's
 * path goes to *path (caller frees) when path is not NULL. */
static int copies(const struct fixture *f, char **path)
{
	DIR *d = opendir(f->dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "state.json.", 11) != 0)
			continue;
		n++;
		if (path) {
			free(*path);
			*path = xasprintf("%s/%s", f->dir, e->d_name);
		}
	}
	closedir(d);
	return n;
}

/* Loads the fixture's file as baton-local's. */
static int load(const struct fixture *f, cJSON **out, char **cause)
{
	return statefile_load(f->path, "baton-local", "--state", out, cause);
}

/* The version a loaded object carries. */
static int version_of(const cJSON *o)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "version");

	assert_true(cJSON_IsNumber(v));
	return v->valueint;
}

/* No file: -ENOENT, nothing made, no cause. */
static void test_missing(void **state)
{
	struct fixture *f = *state;
	cJSON *o = (cJSON *)1;
	char *cause = NULL;

	assert_int_equal(load(f, &o, &cause), -ENOENT);
	assert_null(o);
	assert_null(cause);
	assert_int_equal(copies(f, NULL), 0);
	assert_int_equal(access(f->path, F_OK), -1);
}

/* A saved file carries the current version, first, is private, and loads
 * back as it was without a copy. */
static void test_save_load(void **state)
{
	struct fixture *f = *state;
	cJSON *o = cJSON_CreateObject(), *back = NULL;
	struct stat st;
	char *cause = NULL, *text, *want;

	cJSON_AddStringToObject(o, "relay", "ws://127.0.0.1:1");
	cJSON_AddNumberToObject(o, "version", 1);
	assert_int_equal(statefile_save(f->path, o), 0);
	cJSON_Delete(o);

	text = get(f->path);
	want = xasprintf("{\n\t\"version\":\t%d,\n\t\"relay\":\t"
			 "\"ws://127.0.0.1:1\"\n}", STATEFILE_VERSION);
	assert_string_equal(text, want);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	assert_int_equal(load(f, &back, &cause), 0);
	assert_null(cause);
	assert_int_equal(version_of(back), STATEFILE_VERSION);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(back,
				"relay")), "ws://127.0.0.1:1");
	assert_int_equal(copies(f, NULL), 0);
	cJSON_Delete(back);
	free(want);
	free(text);
}

/* Sends stderr into a file while fn runs; returns what was written. */
static char *stderr_of(const struct fixture *f,
		       int (*fn)(const struct fixture *, cJSON **, char **),
		       int *rc, cJSON **out, char **cause)
{
	char *path = xasprintf("%s/stderr", f->dir);
	int saved = dup(STDERR_FILENO);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	char *text;

	assert_true(saved >= 0 && fd >= 0);
	fflush(stderr);
	dup2(fd, STDERR_FILENO);
	close(fd);
	*rc = fn(f, out, cause);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	text = get(path);
	unlink(path);
	free(path);
	return text;
}

/* A file without a version is version 1: it is copied byte for byte into
 * a private file named for its version and the time, the copy is logged,
 * and the file is rewritten with the current version and the same
 * fields. A second load copies nothing more. */
static void test_upgrade_old(void **state)
{
	struct fixture *f = *state;
	cJSON *o = NULL;
	struct stat st;
	const char *re = "/state\\.json\\.v1-[0-9]{8}T[0-9]{6}Z\\.bak$";
	char *cause = NULL, *copy = NULL, *text, *logged;
	regex_t rx;
	int rc;

	put(f, OLD_TEXT);
	logged = stderr_of(f, load, &rc, &o, &cause);
	assert_int_equal(rc, 0);
	assert_null(cause);
	assert_int_equal(version_of(o), STATEFILE_VERSION);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(o,
				"machine")), "m-1");
	cJSON_Delete(o);

	assert_int_equal(copies(f, &copy), 1);
	assert_int_equal(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
	assert_int_equal(regexec(&rx, copy, 0, NULL, 0), 0);
	regfree(&rx);
	text = get(copy);
	assert_string_equal(text, OLD_TEXT);
	free(text);
	assert_int_equal(stat(copy, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_non_null(strstr(logged, "INFO"));
	assert_non_null(strstr(logged, copy));
	assert_non_null(strstr(logged, "before upgrading it from state "
				       "version 1 to 2"));

	text = get(f->path);
	assert_non_null(strstr(text, "\"version\":\t2"));
	assert_non_null(strstr(text, "\"machine\":\t\"m-1\""));
	free(text);

	assert_int_equal(load(f, &o, &cause), 0);
	cJSON_Delete(o);
	assert_int_equal(copies(f, NULL), 1);
	free(logged);
	free(copy);
}

/* "version": 1 written out is the same as none. */
static void test_upgrade_explicit_v1(void **state)
{
	struct fixture *f = *state;
	cJSON *o = NULL;
	char *cause = NULL;

	put(f, "{\"version\": 1, \"sessions\": {}}");
	assert_int_equal(load(f, &o, &cause), 0);
	assert_int_equal(version_of(o), STATEFILE_VERSION);
	assert_true(cJSON_IsObject(cJSON_GetObjectItem(o, "sessions")));
	cJSON_Delete(o);
	assert_int_equal(copies(f, NULL), 1);
}

/* A file from a newer program is refused with what to do, and left
 * alone: not copied, not rewritten. */
static void test_newer_refused(void **state)
{
	struct fixture *f = *state;
	const char *newer = "{\"version\": 3, \"relay\": \"x\", \"new\": 1}";
	cJSON *o = (cJSON *)1;
	char *cause = NULL, *want, *text;

	put(f, newer);
	assert_int_equal(load(f, &o, &cause), -EPROTO);
	assert_null(o);
	want = xasprintf("the state folder %s was written by a newer "
			 "baton-local (state version 3 in state.json; this "
			 "one knows %d); upgrade baton-local or use another "
			 "--state", f->dir, STATEFILE_VERSION);
	assert_string_equal(cause, want);
	text = get(f->path);
	assert_string_equal(text, newer);
	assert_int_equal(copies(f, NULL), 0);
	free(text);
	free(want);
	free(cause);
}

/* Not an object, or a version that is not a whole number from 1: -EINVAL
 * with a cause, and the file is left alone. */
static void test_broken(void **state)
{
	static const char *const texts[] = {
		"", "not json", "[1, 2]", "\"version\"", "{\"version\": \"2\"}",
		"{\"version\": 0}", "{\"version\": -1}", "{\"version\": 1.5}",
		"{\"version\": null}", "{\"version\": 1e300}", "{\"a\": 1",
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		cJSON *o = (cJSON *)1;
		char *cause = NULL, *text;

		put(f, texts[i]);
		if (load(f, &o, &cause) != -EINVAL)
			fail_msg("'%s' was not refused as broken", texts[i]);
		assert_null(o);
		assert_non_null(strstr(cause, "is not a JSON object with a "
					      "version"));
		text = get(f->path);
		assert_string_equal(text, texts[i]);
		free(text);
		free(cause);
	}
	assert_int_equal(copies(f, NULL), 0);
}

/* Loads in a child that may write no file past 4 KiB (a full disk, as the
 * copy sees it); the child exits 0 when the load was refused with a cause
 * that says the copy failed and the file is left as it was. */
static void test_copy_fails(void **state)
{
	struct fixture *f = *state;
	struct buf big = BUF_INIT;
	struct rlimit lim = { 4096, 4096 };
	char *text;
	int status;
	pid_t pid;

	buf_puts(&big, "{\"pad\": \"");
	for (int i = 0; i < 1000; i++)
		buf_puts(&big, "0123456789");
	buf_puts(&big, "\"}");
	put(f, big.data);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		cJSON *o = NULL;
		char *cause = NULL;
		int rc;

		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &lim) < 0)
			_exit(3);
		rc = load(f, &o, &cause);
		if (rc == 0)
			_exit(2);
		fprintf(stderr, "statefile_load: %s\n", cause);
		_exit(o == NULL && strstr(cause, "cannot copy") &&
		      strstr(cause, "left as it was, not upgraded") ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	text = get(f->path);
	assert_string_equal(text, big.data);
	assert_int_equal(copies(f, NULL), 0);
	free(text);
	buf_free(&big);
}

#define STATE_TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		STATE_TEST(test_missing),
		STATE_TEST(test_save_load),
		STATE_TEST(test_upgrade_old),
		STATE_TEST(test_upgrade_explicit_v1),
		STATE_TEST(test_newer_refused),
		STATE_TEST(test_broken),
		STATE_TEST(test_copy_fails),
	};

	log_init("test-statefile", LOG_LEVEL_INFO);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
