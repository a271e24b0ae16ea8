/*
 * test_workspace.c: the workspace key never carries a URL's credentials.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "workspace.h"

static void expect_public(const char *url, const char *want)
{
	char *got = workspace_url_public(url);

	assert_string_equal(got, want);
	free(got);
}

static void test_url_public(void **state)
{
	(void)state;
	expect_public("https://ghp_tok@github.com/acme/app.git",
		      "https://github.com/acme/app.git");
	expect_public("https://me:secret@git.example.invalid:8443/a/b",
		      "https://git.example.invalid:8443/a/b");
	expect_public("http://u:p@host/x", "http://host/x");
	expect_public("https://github.com/acme/app.git",
		      "https://github.com/acme/app.git");
	/* an @ in the path is not user info */
	expect_public("https://host/a@b/c", "https://host/a@b/c");
	/* ssh's user is a name, not a secret, and the URL needs it */
	expect_public("ssh://git@github.com/acme/app.git",
		      "ssh://git@github.com/acme/app.git");
	expect_public("git@github.com:acme/app.git",
		      "git@github.com:acme/app.git");
	expect_public("/srv/git/app.git", "/srv/git/app.git");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_public),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
