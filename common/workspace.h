/*
 * workspace.h: how the relay knows a repository. A workspace's key is the
 * URL of the repository's origin remote, so every clone of it on every
 * machine shares one workspace (its sessions, checkpoints and remote
 * environment); a repository without a remote gets a key of its own.
 */
#ifndef BATON_WORKSPACE_H
#define BATON_WORKSPACE_H

#include <git2.h>

/* The URL of the origin remote (caller frees), or NULL when it has none. */
char *workspace_remote(git_repository *repo);
/* An http(s) URL without its user and password (https://user:pass@host/
 * ..., where a token hides); other URLs unchanged. Caller frees. */
char *workspace_url_public(const char *url);

/*
 * The workspace key of repo on the machine named machine (caller frees):
 * the origin URL, else "repo:" and a hash of the machine's name and the
 * repository's git folder. *remote gets the URL (caller frees) or NULL.
 */
char *workspace_key(git_repository *repo, const char *machine,
		    char **remote);

#endif
