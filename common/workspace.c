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

char *workspace_url_public(const char *url)
{
	const char *scheme = strstr(url, "://");
	const char *host, *at;

	/* Only http(s) carries secrets there; ssh's user is just a name. */
	if (scheme == NULL || (strncmp(url, "https://", 8) &&
			       strncmp(url, "http://", 7)))
		return xstrdup(url);
	host = scheme + 3;
	at = strchr(host, '@');
	if (at == NULL || at > host + strcspn(host, "/"))
		return xstrdup(url);
	return xasprintf("%.*s%s", (int)(host - url), url, at + 1);
}

/* The origin URL, or an id of this repository on this machine. */
char *workspace_key(git_repository *repo, const char *machine,
		    char **remote)
{
	unsigned char hash[16];
	char hex[33];
	char *seed, *raw;

	/* Credentials in the URL stay on this laptop: the key is logged and
	 * stored, and the sandbox gets its own through the environment. */
	raw = workspace_remote(repo);
	*remote = raw ? workspace_url_public(raw) : NULL;
	if (raw)
		sodium_memzero(raw, strlen(raw));
	free(raw);
	if (*remote)
		return xstrdup(*remote);
	seed = xasprintf("%s\n%s", machine, git_repository_commondir(repo));
	crypto_generichash(hash, sizeof(hash), (unsigned char *)seed,
			   strlen(seed), NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
	free(seed);
	return xasprintf("repo:%s", hex);
}
