/*
 * test_agent.c: unit tests for common/agent.c (agent profiles, the user's
 * profile file, profiles as JSON, template expansion and the project-folder
 * slug).
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
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "agent.h"
#include "util.h"

/* Asserts that a NULL-terminated list equals the expected one. */
static void assert_strv(char *const *got, const char *const *want)
{
	size_t i;

	assert_non_null(got);
	for (i = 0; want[i] != NULL; i++) {
		assert_non_null(got[i]);
		assert_string_equal(got[i], want[i]);
	}
	assert_null(got[i]);
}

/* Writes `text` to a new temporary file; the caller unlinks and frees. */
static char *temp_file(const char *text)
{
	char *path = xstrdup("/tmp/baton-test-agent-XXXXXX.json");
	int fd = mkstemps(path, 5);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

/* The three built-ins, exactly. */
static void test_builtins(void **state)
{
	static const char *const bash[] = { "/bin/bash", "-i", NULL };
	static const char *const sh[] = { "/bin/sh", "-i", NULL };
	static const char *const claude_start[] = {
		"claude", "--session-id", "{session}", NULL };
	static const char *const claude_resume[] = {
		"claude", "--resume", "{session}", NULL };
	static const char *const claude_state[] = {
		"{home}/.claude/projects/{cwd_slug}/{session}.jsonl",
		"{home}/.claude/projects/{cwd_slug}/{session}", NULL };
	static const char *const codex_start[] = { "codex", NULL };
	static const char *const codex_resume[] = {
		"codex", "resume", "--last", NULL };
	static const char *const codex_state[] = {
		"{home}/.codex/sessions", "{home}/.codex/session_index.jsonl",
		NULL };
	static const char *const none[] = { NULL };
	const char *const *shell = access("/bin/bash", X_OK) == 0 ? bash : sh;
	const struct agent_profile *p;
	struct agent_profiles *ps;
	char *cause = NULL;

	assert_int_equal(agent_profiles_load(NULL, &ps, &cause), 0);
	assert_null(cause);

	p = agent_profile_find(ps, "shell");
	assert_non_null(p);
	assert_string_equal(p->name, "shell");
	assert_strv(p->start, shell);
	assert_strv(p->resume, shell);
	assert_strv(p->state, none);
	assert_int_equal(p->state_count, 0);
	assert_false(p->rewrite_cwd);

	p = agent_profile_find(ps, "claude");
	assert_non_null(p);
	assert_strv(p->start, claude_start);
	assert_strv(p->resume, claude_resume);
	assert_strv(p->state, claude_state);
	assert_int_equal(p->state_count, 2);
	assert_true(p->rewrite_cwd);

	p = agent_profile_find(ps, "codex");
	assert_non_null(p);
	assert_strv(p->start, codex_start);
	assert_strv(p->resume, codex_resume);
	assert_strv(p->state, codex_state);
	assert_int_equal(p->state_count, 2);
	assert_true(p->rewrite_cwd);

	assert_null(agent_profile_find(ps, "Claude"));
	assert_null(agent_profile_find(ps, "aider"));
	agent_profiles_free(ps);
}

/* Every placeholder, unknown ones, unclosed braces and missing values. */
static void test_expand(void **state)
{
	static const struct {
		const char *tmpl, *want;
	} cases[] = {
		{ "{session}", "0f3c" },
		{ "{home}/.claude/projects/{cwd_slug}/{session}.jsonl",
		  "/home/ann/.claude/projects/-src-my-app-v2/0f3c.jsonl" },
		{ "cd {worktree} && ls", "cd /src/my app.v2 && ls" },
		{ "{session}{session}", "0f3c0f3c" },
		{ "{{session}}", "{0f3c}" },
		{ "{unknown} {Session} {}", "{unknown} {Session} {}" },
		{ "tail {session", "tail {session" },
		{ "}{home}{", "}/home/ann{" },
		{ "plain", "plain" },
		{ "", "" },
	};
	struct agent_vars vars = {
		.session = "0f3c", .home = "/home/ann",
		.worktree = "/src/my app.v2",
	};
	struct agent_vars partial = { .session = "0f3c" };
	char *const tmpl[] = { "claude", "--resume", "{session}", NULL };
	static const char *const want[] = { "claude", "--resume", "0f3c",
					    NULL };
	char **v, *s;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		s = agent_expand(cases[i].tmpl, &vars);
		assert_string_equal(s, cases[i].want);
		free(s);
	}

	/* A placeholder with no value is kept as written. */
	s = agent_expand("{home}/{cwd_slug}/{worktree}/{session}", &partial);
	assert_string_equal(s, "{home}/{cwd_slug}/{worktree}/0f3c");
	free(s);

	v = agent_expand_all(tmpl, &vars);
	assert_strv(v, want);
	agent_strv_free(v);
	assert_null(agent_expand_all(NULL, &vars));
	agent_strv_free(NULL);
}

/* The slug: non-alphanumeric bytes become '-', long paths get a hash. */
static void test_slug(void **state)
{
	static const struct {
		const char *path, *want;
	} cases[] = {
		{ "/home/ann/src/app", "-home-ann-src-app" },
		{ "/a b/c.d_e-f", "-a-b-c-d-e-f" },
		{ "/x//y", "-x--y" },
		{ "/caf\xc3\xa9", "-caf--" },
		{ "AZaz09", "AZaz09" },
		{ "", "" },
	};
	char p200[201], p250[251], p250b[251];
	char *s, *t;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		s = agent_cwd_slug(cases[i].path);
		assert_string_equal(s, cases[i].want);
		free(s);
	}

	/* 200 bytes: kept whole, no hash. */
	memset(p200, 'a', 200);
	p200[0] = '/';
	p200[200] = '\0';
	s = agent_cwd_slug(p200);
	assert_int_equal(strlen(s), 200);
	assert_int_equal(s[0], '-');
	assert_int_equal(strspn(s + 1, "a"), 199);
	free(s);

	/* Over 200: the first 200, '-', 8 hex digits of the whole path. */
	memset(p250, 'a', 250);
	p250[0] = '/';
	p250[250] = '\0';
	memcpy(p250b, p250, sizeof(p250));
	p250b[240] = 'b';
	s = agent_cwd_slug(p250);
	t = agent_cwd_slug(p250b);
	assert_int_equal(strlen(s), 209);
	assert_memory_equal(s, t, 200);
	assert_int_equal(s[200], '-');
	assert_int_equal(strspn(s + 201, "0123456789abcdef"), 8);
	assert_string_not_equal(s, t);
	free(t);

	/* The same path always gives the same slug. */
	t = agent_cwd_slug(p250);
	assert_string_equal(s, t);
	free(s);
	free(t);
}

/* A user file adds a profile and replaces a built-in of the same name. */
static void test_user_file(void **state)
{
	static const char *const aider[] = { "aider", "--yes", NULL };
	static const char *const zsh[] = { "/bin/zsh", "-l", NULL };
	static const char *const shell_state[] = { "{home}/.zsh_history",
						   NULL };
	static const char *const none[] = { NULL };
	char *path = temp_file(
		"{\"profiles\": ["
		" {\"name\": \"aider\", \"start\": [\"aider\", \"--yes\"]},"
		" {\"name\": \"shell\", \"start\": [\"/bin/zsh\", \"-l\"],"
		"  \"resume\": [\"/bin/zsh\", \"-l\"],"
		"  \"state\": [\"{home}/.zsh_history\"],"
		"  \"rewrite_cwd\": true, \"comment\": \"ignored\"}]}");
	const struct agent_profile *p;
	struct agent_profiles *ps;
	char *cause = NULL;

	assert_int_equal(agent_profiles_load(path, &ps, &cause), 0);
	assert_null(cause);

	/* resume defaults to start, state to none. */
	p = agent_profile_find(ps, "aider");
	assert_non_null(p);
	assert_strv(p->start, aider);
	assert_strv(p->resume, aider);
	assert_strv(p->state, none);
	assert_int_equal(p->state_count, 0);
	assert_false(p->rewrite_cwd);

	p = agent_profile_find(ps, "shell");
	assert_non_null(p);
	assert_strv(p->start, zsh);
	assert_strv(p->resume, zsh);
	assert_strv(p->state, shell_state);
	assert_int_equal(p->state_count, 1);
	assert_true(p->rewrite_cwd);

	assert_non_null(agent_profile_find(ps, "claude"));
	assert_non_null(agent_profile_find(ps, "codex"));
	agent_profiles_free(ps);
	unlink(path);
	free(path);
}

/* Damaged files are refused with a cause naming the file and the field. */
static void test_user_file_bad(void **state)
{
	static const struct {
		const char *text, *field;
	} cases[] = {
		{ "{\"profiles\": [", "not valid JSON near line 1" },
		{ "{\"profiles\": []}\n}", "not valid JSON near line 2" },
		{ "", "not valid JSON" },
		{ "[]", "expected a JSON object" },
		{ "{}", "profiles" },
		{ "{\"Profiles\": []}", "profiles" },
		{ "{\"profiles\": {}}", "profiles" },
		{ "{\"profiles\": [3]}", "profiles[0]" },
		{ "{\"profiles\": [{\"start\": [\"x\"]}]}",
		  "profiles[0].name" },
		{ "{\"profiles\": [{\"name\": 7, \"start\": [\"x\"]}]}",
		  "profiles[0].name" },
		{ "{\"profiles\": [{\"name\": \"a b\", \"start\": [\"x\"]}]}",
		  "profiles[0].name" },
		{ "{\"profiles\": [{\"name\": \"a\"}]}", "profiles[0].start" },
		{ "{\"profiles\": [{\"name\": \"a\", \"start\": \"x\"}]}",
		  "profiles[0].start" },
		{ "{\"profiles\": [{\"name\": \"a\", \"start\": []}]}",
		  "profiles[0].start" },
		{ "{\"profiles\": [{\"name\": \"a\", \"start\": [\"x\"]},"
		  " {\"name\": \"b\", \"start\": [\"x\", 1]}]}",
		  "profiles[1].start[1]" },
		{ "{\"profiles\": [{\"name\": \"a\", \"start\": [\"x\"],"
		  " \"resume\": [null]}]}", "profiles[0].resume[0]" },
		{ "{\"profiles\": [{\"name\": \"a\", \"start\": [\"x\"],"
		  " \"state\": \"~/.a\"}]}", "profiles[0].state" },
		{ "{\"profiles\": [{\"name\": \"a\", \"start\": [\"x\"],"
		  " \"rewrite_cwd\": \"yes\"}]}", "profiles[0].rewrite_cwd" },
		{ "{\"profiles\": [{\"name\": \"a\", \"start\": [\"x\"],"
		  " \"rewrite_cwd\": 1}]}", "profiles[0].rewrite_cwd" },
		{ "{\"profiles\": [{\"name\": \"a\", \"start\": [\"x\"]},"
		  " {\"name\": \"a\", \"start\": [\"y\"]}]}",
		  "profiles[1].name" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *path = temp_file(cases[i].text);
		struct agent_profiles *ps = NULL;
		char *cause = NULL;

		assert_int_equal(agent_profiles_load(path, &ps, &cause),
				 -EINVAL);
		assert_null(ps);
		assert_non_null(cause);
		if (strncmp(cause, path, strlen(path)) ||
		    strstr(cause, cases[i].field) == NULL)
			fail_msg("case %zu: cause \"%s\" lacks \"%s\"", i,
				 cause, cases[i].field);
		free(cause);
		unlink(path);
		free(path);
	}
}

/* A named file that does not exist is an error that names it. */
static void test_user_file_missing(void **state)
{
	const char *path = "/nonexistent/baton/agents.json";
	struct agent_profiles *ps = NULL;
	char *cause = NULL;

	assert_int_equal(agent_profiles_load(path, &ps, &cause), -ENOENT);
	assert_null(ps);
	assert_non_null(strstr(cause, path));
	free(cause);
}

/* A profile survives JSON and back; bad JSON profiles are refused. */
static void test_profile_json(void **state)
{
	static const char *const bad[][2] = {
		{ "[]", "profile: expected an object" },
		{ "{\"start\": [\"x\"]}", "profile.name" },
		{ "{\"name\": \"a\", \"start\": [\"\"]}",
		  "profile.start[0]" },
		{ "{\"name\": \"a\", \"start\": [\"x\"], "
		  "\"state\": [false]}", "profile.state[0]" },
	};
	static struct agent_profile sentinel;
	const struct agent_profile *claude;
	struct agent_profiles *ps;
	struct agent_profile *p;
	char *cause = NULL;
	cJSON *j;

	assert_int_equal(agent_profiles_load(NULL, &ps, &cause), 0);
	claude = agent_profile_find(ps, "claude");
	j = agent_profile_to_json(claude);
	assert_non_null(j);
	assert_int_equal(agent_profile_from_json(j, &p, &cause), 0);
	assert_null(cause);
	cJSON_Delete(j);

	assert_string_equal(p->name, "claude");
	assert_strv(p->start, (const char *const *)claude->start);
	assert_strv(p->resume, (const char *const *)claude->resume);
	assert_strv(p->state, (const char *const *)claude->state);
	assert_int_equal(p->state_count, claude->state_count);
	assert_true(p->rewrite_cwd);
	agent_profile_free(p);
	agent_profiles_free(ps);

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		j = cJSON_Parse(bad[i][0]);
		assert_non_null(j);
		p = &sentinel;
		assert_int_equal(agent_profile_from_json(j, &p, &cause),
				 -EINVAL);
		assert_null(p);
		if (strstr(cause, bad[i][1]) == NULL)
			fail_msg("case %zu: cause \"%s\" lacks \"%s\"", i,
				 cause, bad[i][1]);
		free(cause);
		cJSON_Delete(j);
	}
	agent_profile_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtins),
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_slug),
		cmocka_unit_test(test_user_file),
		cmocka_unit_test(test_user_file_bad),
		cmocka_unit_test(test_user_file_missing),
		cmocka_unit_test(test_profile_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
