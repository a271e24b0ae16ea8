/*
 * workspace.c: a repository's workspace key, as the laptop daemon reports
 * it to the relay and as `baton doctor` looks it up.
 */
#include "workspace.h"
#include "util.h"

#include <sodium.h>
#include <string.h>

/*
 * Reads the origin URL from the config directly: git_remote_lookup in
 * libgit2 1.5 leaks its PCRE2 match data for every remote it finds.
 */
char *workspace_remote(git_repository *repo)
{
	git_config *cfg = NULL;
	git_buf url = { 0 };
	char *remote = NULL;

	if (git_repository_config_snapshot(&cfg, repo) == 0 &&
	    git_config_get_string_buf(&url, cfg, "remote.origin.url") == 0 &&
	    url.size > 0)
		remote = xstrdup(url.ptr);
	git_buf_dispose(&url);
	git_config_free(cfg);
	return remote;
}

/* The origin URL, or an id of this repository on this machine. */
char *workspace_key(git_repository *repo, const char *machine,
		    char **remote)
{
	unsigned char hash[16];
	char hex[33];
	char *seed;

	*remote = workspace_remote(repo);
	if (*remote)
		return xstrdup(*remote);
	seed = xasprintf("%s\n%s", machine, git_repository_commondir(repo));
	crypto_generichash(hash, sizeof(hash), (unsigned char *)seed,
			   strlen(seed), NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
	free(seed);
	return xasprintf("repo:%s", hex);
}
