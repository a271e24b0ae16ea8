/*
 * test_identity.c: a laptop's machine.json (common/identity.c): what it
 * keeps, which relay it answers for, and its version: an older file is
 * upgraded after a copy, a newer one refused with what to do.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "identity.h"
#include "log.h"
#include "statefile.h"
#include "util.h"

#define RELAY "wss://relay.example.invalid:8443"

struct fixture {
	char *dir;
	char *path;		/* dir/machine.json */
};

static int setup(void **state)
{
	const char *base = getenv("TMPDIR");
	struct fixture *f = xcalloc(1, sizeof(*f));

	f->dir = xasprintf("%s/baton-identity-XXXXXX", base ? base : "/tmp");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->path = xasprintf("%s/machine.json", f->dir);
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

static void put(const struct fixture *f, const char *text)
{
	assert_int_equal(file_write_atomic(f->path, text, strlen(text), 0600),
			 0);
}

static char *get(const struct fixture *f)
{
	char *text = NULL;

	assert_int_equal(file_read_all(f->path, 1 << 20, &text, NULL), 0);
	return text;
}

/* How many files the state folder holds besides machine.json. */
static int others(const struct fixture *f)
{
	DIR *d = opendir(f->dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		     strcmp(e->d_name, "machine.json");
	closedir(d);
	return n;
}

/* What is saved loads back for its relay only; the file says its
 * version. */
static void test_save_load(void **state)
{
	struct fixture *f = *state;
	char *machine = NULL, *cause = NULL, *text, *want;

	assert_int_equal(identity_machine_save(f->path, RELAY, "m-7", "lap",
					       "ann"), 0);
	text = get(f);
	want = xasprintf("{\n\t\"version\":\t%d,\n\t\"relay\":\t\"" RELAY
			 "\",\n\t\"machine\":\t\"m-7\",\n\t\"name\":\t"
			 "\"lap\",\n\t\"user\":\t\"ann\"\n}",
			 STATEFILE_VERSION);
	assert_string_equal(text, want);

	assert_int_equal(identity_machine_load(f->path, RELAY, &machine,
					       &cause), 0);
	assert_string_equal(machine, "m-7");
	free(machine);
	assert_int_equal(identity_machine_load(f->path, "ws://127.0.0.1:9",
					       &machine, &cause), 0);
	assert_null(machine);
	assert_null(cause);
	assert_int_equal(others(f), 0);
	free(want);
	free(text);
}

/* No file, or one that is not JSON: not paired, and no error. */
static void test_missing_or_junk(void **state)
{
	struct fixture *f = *state;
	char *machine = (char *)1, *cause = NULL;

	assert_int_equal(identity_machine_load(f->path, RELAY, &machine,
					       &cause), 0);
	assert_null(machine);
	assert_null(cause);
	put(f, "{\"relay\": ");
	assert_int_equal(identity_machine_load(f->path, RELAY, &machine,
					       &cause), 0);
	assert_null(machine);
	assert_null(cause);
}

/* A machine.json from before versions still names the machine; it is
 * copied aside and rewritten with the version. */
static void test_old_upgraded(void **state)
{
	struct fixture *f = *state;
	char *machine = NULL, *cause = NULL, *text;

	put(f, "{\"relay\": \"" RELAY "\", \"machine\": \"m-1\", "
	       "\"name\": \"lap\", \"user\": \"ann\"}");
	assert_int_equal(identity_machine_load(f->path, RELAY, &machine,
					       &cause), 0);
	assert_null(cause);
	assert_string_equal(machine, "m-1");
	text = get(f);
	assert_non_null(strstr(text, "\"version\":\t2,"));
	assert_non_null(strstr(text, "\"user\":\t\"ann\""));
	assert_int_equal(others(f), 1);
	free(text);
	free(machine);
}

/* A machine.json from a newer baton-local stops this one, with what to
 * do; the file is left alone. */
static void test_newer_refused(void **state)
{
	struct fixture *f = *state;
	const char *newer = "{\"version\": 9, \"relay\": \"" RELAY "\", "
			    "\"machine\": \"m-1\"}";
	char *machine = NULL, *cause = NULL, *text;

	put(f, newer);
	assert_int_equal(identity_machine_load(f->path, RELAY, &machine,
					       &cause), -EPROTO);
	assert_null(machine);
	assert_non_null(strstr(cause, "was written by a newer baton-local "
				      "(state version 9 in machine.json"));
	assert_non_null(strstr(cause, "upgrade baton-local or use another "
				      "--state"));
	text = get(f);
	assert_string_equal(text, newer);
	assert_int_equal(others(f), 0);
	free(text);
	free(cause);
}

#define ID_TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		ID_TEST(test_save_load),
		ID_TEST(test_missing_or_junk),
		ID_TEST(test_old_upgraded),
		ID_TEST(test_newer_refused),
	};

	log_init("test-identity", LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
