/*
 * test_local_conf.c: unit tests for agent-local/config.c, baton-local's
 * settings file: parsing (comments, quotes, '_' for '-', kinds of value),
 * refusals with their line, secrets kept out, the environment over the
 * file, and local_conf_set rewriting one line and keeping the others.
 * Each test works in a fresh folder under $TMPDIR.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "util.h"

struct fixture {
	char *dir;
	char *path;	/* DIR/baton/local.conf */
};

static int setup(void **state)
{
	const char *base = getenv("TMPDIR");
	struct fixture *f = xcalloc(1, sizeof(*f));

	f->dir = xasprintf("%s/baton-conf-XXXXXX", base ? base : "/tmp");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->path = xasprintf("%s/baton/local.conf", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char *cmd = xasprintf("rm -rf '%s'", f->dir);
	int r = system(cmd);

	free(cmd);
	free(f->path);
	free(f->dir);
	free(f);
	return r == 0 ? 0 : -1;
}

static void write_conf(const struct fixture *f, const char *text)
{
	char *dir = xasprintf("%s/baton", f->dir);

	assert_int_equal(mkdir_p(dir, 0700), 0);
	assert_int_equal(file_write_atomic(f->path, text, strlen(text), 0644),
			 0);
	free(dir);
}

/* Loads TEXT; expects the load to fail with a cause that holds WHAT. */
static void expect_refused(const struct fixture *f, const char *text,
			   const char *what)
{
	struct local_conf *conf = (struct local_conf *)1;
	char *cause = NULL;

	write_conf(f, text);
	assert_int_equal(local_conf_load(f->path, &conf, &cause), -EINVAL);
	assert_null(conf);
	assert_non_null(cause);
	if (strstr(cause, what) == NULL)
		fail_msg("cause '%s' does not say '%s'", cause, what);
	free(cause);
}

static void test_missing_file_is_empty(void **state)
{
	struct fixture *f = *state;
	struct local_conf *conf = NULL;
	char *cause = NULL;

	assert_int_equal(local_conf_load(f->path, &conf, &cause), 0);
	assert_null(cause);
	assert_null(local_conf_get(conf, "relay"));
	assert_false(local_conf_flag(conf, "insecure"));
	assert_int_equal(local_conf_seconds(conf, "dead-after"), 0);
	local_conf_free(conf);
}

static void test_parse(void **state)
{
	struct fixture *f = *state;
	struct local_conf *conf = NULL;
	char *cause = NULL;

	write_conf(f, "# settings\n\n  relay = wss://r.example:8443  \n"
		      "name=\"my laptop\"\nINSECURE = Yes\n"
		      "ping_interval = 15\nlog-level = debug\n"
		      "log_format = JSON\nstate = /home/me/st\n"
		      "agents = /home/me/agents.json");
	assert_int_equal(local_conf_load(f->path, &conf, &cause), 0);
	assert_string_equal(local_conf_get(conf, "relay"),
			    "wss://r.example:8443");
	assert_string_equal(local_conf_get(conf, "name"), "my laptop");
	assert_true(local_conf_flag(conf, "insecure"));
	assert_int_equal(local_conf_seconds(conf, "ping-interval"), 15);
	assert_string_equal(local_conf_get(conf, "log-level"), "debug");
	assert_string_equal(local_conf_get(conf, "log-format"), "JSON");
	assert_string_equal(local_conf_get(conf, "state"), "/home/me/st");
	assert_string_equal(local_conf_get(conf, "agents"),
			    "/home/me/agents.json");
	assert_null(local_conf_get(conf, "ca"));
	local_conf_free(conf);
}

static void test_environment_first(void **state)
{
	struct fixture *f = *state;
	struct local_conf *conf = NULL;
	char *cause = NULL;

	write_conf(f, "relay = ws://127.0.0.1:1\n");
	assert_int_equal(local_conf_load(f->path, &conf, &cause), 0);
	setenv("BATON_TEST_RELAY", "ws://127.0.0.1:2", 1);
	assert_string_equal(local_conf_pick(conf, "relay", "BATON_TEST_RELAY"),
			    "ws://127.0.0.1:2");
	setenv("BATON_TEST_RELAY", "", 1);	/* empty: as if unset */
	assert_string_equal(local_conf_pick(conf, "relay", "BATON_TEST_RELAY"),
			    "ws://127.0.0.1:1");
	unsetenv("BATON_TEST_RELAY");
	assert_null(local_conf_pick(conf, "ca", "BATON_TEST_RELAY"));
	local_conf_free(conf);
}

static void test_secrets_refused(void **state)
{
	struct fixture *f = *state;

	expect_refused(f, "token = abc\n", ":1: 'token' is a secret");
	expect_refused(f, "relay = ws://x\nMachine_Token = abc\n",
		       ":2: 'Machine_Token' is a secret");
	expect_refused(f, "api_key = abc\n", "is a secret");
	expect_refused(f, "password = hunter2\n", "pair it with");
	/* A value shaped like a token, under any key. */
	expect_refused(f, "name = bt_short\n", "looks like a token");
	expect_refused(f, "agents = Zk81mQ0pWc7Rt5yNb2Xe9Lh4Vd6Gs3Ja\n",
		       "looks like a token");
}

static void test_not_secrets(void **state)
{
	struct fixture *f = *state;
	struct local_conf *conf = NULL;
	char *cause = NULL;

	/* Long, but a path, a URL, or letters alone: not tokens. */
	write_conf(f, "agents = /home/me/projects/a1b2c3d4e5f6a7b8c9d0e1f2/x\n"
		      "relay = wss://relay-0123456789abcdef.example:8443\n"
		      "name = averyveryveryverylongmachinenamewithoutdigits\n");
	assert_int_equal(local_conf_load(f->path, &conf, &cause), 0);
	local_conf_free(conf);
}

static void test_bad_lines_refused(void **state)
{
	struct fixture *f = *state;

	expect_refused(f, "relay ws://x\n", ":1: expected `key = value`");
	expect_refused(f, " = x\n", "expected `key = value`");
	expect_refused(f, "\n\nrelays = x\n", ":3: unknown key 'relays'");
	expect_refused(f, "relay =\n", "relay has no value");
	expect_refused(f, "name = a\nname = b\n", ":2: name is set twice");
	expect_refused(f, "name = a\nNAME = b\n", "set twice");
	expect_refused(f, "insecure = maybe\n", "insecure takes yes or no");
	expect_refused(f, "ping-interval = 0\n", "takes seconds");
	expect_refused(f, "dead_after = 70000\n", "takes seconds");
	expect_refused(f, "log-level = loud\n", "log-level is error");
	expect_refused(f, "log-format = xml\n", "log-format is text or json");
}

static void test_set(void **state)
{
	struct fixture *f = *state;
	struct local_conf *conf = NULL;
	char *cause = NULL, *text = NULL;

	/* A missing file is made, with a header. */
	assert_int_equal(local_conf_set(f->path, "relay", "ws://127.0.0.1:1",
					&cause), 0);
	assert_int_equal(file_read_all(f->path, 65536, &text, NULL), 0);
	assert_non_null(strstr(text, "# baton-local's settings"));
	assert_non_null(strstr(text, "\nrelay = ws://127.0.0.1:1\n"));
	free(text);

	/* Its line is replaced, whatever its spelling; the rest stays. */
	write_conf(f, "# mine\nname = a\n\n  RELAY=ws://old\n"
		      "log-level = warn");
	assert_int_equal(local_conf_set(f->path, "relay", "ws://new", &cause),
			 0);
	assert_int_equal(file_read_all(f->path, 65536, &text, NULL), 0);
	assert_string_equal(text, "# mine\nname = a\n\n"
				  "relay = ws://new\nlog-level = warn\n");
	free(text);

	/* A key not there yet goes at the end. */
	write_conf(f, "name = a\n");
	assert_int_equal(local_conf_set(f->path, "state", "/s", &cause), 0);
	assert_int_equal(local_conf_load(f->path, &conf, &cause), 0);
	assert_string_equal(local_conf_get(conf, "name"), "a");
	assert_string_equal(local_conf_get(conf, "state"), "/s");
	local_conf_free(conf);

	/* Secrets and line breaks are refused; the file is left alone. */
	assert_int_equal(local_conf_set(f->path, "name", "bt_x", &cause),
			 -EINVAL);
	assert_non_null(strstr(cause, "looks like a token"));
	free(cause);
	assert_int_equal(local_conf_set(f->path, "name", "a\nb", &cause),
			 -EINVAL);
	free(cause);
	assert_int_equal(local_conf_set(f->path, "token", "x", &cause),
			 -EINVAL);
	free(cause);
	assert_int_equal(file_read_all(f->path, 65536, &text, NULL), 0);
	assert_string_equal(text, "name = a\nstate = /s\n");
	free(text);
}

static void test_path(void **state)
{
	char *path;

	setenv("XDG_CONFIG_HOME", "/x/config", 1);
	path = local_conf_path();
	assert_string_equal(path, "/x/config/baton/local.conf");
	free(path);
	/* A relative one is ignored, as XDG says. */
	setenv("XDG_CONFIG_HOME", "relative", 1);
	setenv("HOME", "/home/me", 1);
	path = local_conf_path();
	assert_string_equal(path, "/home/me/.config/baton/local.conf");
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_missing_file_is_empty,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_environment_first, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_secrets_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_not_secrets, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_lines_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_set, setup, teardown),
		cmocka_unit_test(test_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
