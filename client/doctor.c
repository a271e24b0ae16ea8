/*
 * doctor.c: `baton doctor`, the readiness check for moving a repository's
 * sessions to a sandbox. A sandbox gets the worktree as a checkpoint (the
 * files git ignores stay behind), the variables of the workspace's remote
 * environment, and runs .baton/setup with bash; this names what will be
 * missing or broken there, and how to fix it.
 *
 * doctor_new looks at the repository and keeps what it found; the client
 * asks the relay for the workspace's variable names, the sessions and the
 * credits and hands the answers over; doctor_report prints the checklist.
 */
#define _GNU_SOURCE
#include "doctor.h"
#include "proto.h"
#include "util.h"
#include "workspace.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define FILE_MAX (1024 * 1024)	/* the most of any file it reads */
#define SETUP ".baton/setup"
#define SANDBOX_JSON ".baton/sandbox.json"
#define MCP_JSON ".mcp.json"
#define NOT_YET "(not supported by this relay yet)"

enum verdict { V_OK, V_WARN, V_FAIL, V_SKIP };

static const char *const verdict_text[] = { "ok", "warn", "FAIL", "skip" };
static const char *const verdict_json[] = { "ok", "warn", "fail", "skip" };

/* One line of the checklist. */
struct item {
	enum verdict verdict;
	const char *check;	/* its group, for --json */
	char *text;		/* printable */
	char *fix;		/* printable, or NULL */
};

/* A list of variable names. */
struct names {
	char **v;
	size_t n;
};

/* A dotenv file git ignores, and the names it sets. */
struct dotenv {
	char *path;		/* relative to the worktree */
	struct names names;
};

/* The agent files a session may need, which git might ignore. */
static const struct {
	const char *path;
	const char *fix;
} agent_files[] = {
	{ ".claude/settings.local.json", "put what the sandbox needs in "
	  ".claude/settings.json and commit it" },
	{ "CLAUDE.local.md", "put what the sandbox needs in CLAUDE.md and "
	  "commit it" },
	{ ".claude/settings.json", "commit it: git add -f "
	  ".claude/settings.json" },
	{ MCP_JSON, "commit it: git add -f .mcp.json" },
	{ "CLAUDE.md", "commit it: git add -f CLAUDE.md" },
	{ "AGENTS.md", "commit it: git add -f AGENTS.md" },
};

/* The JSON files read for MCP servers and paths under the home folder. */
static const char *const config_files[] = {
	MCP_JSON, ".claude/settings.json", ".claude/settings.local.json",
};

/* Dotenv files that are templates, not secrets: never read. */
static const char *const dotenv_templates[] = {
	".example", ".sample", ".template", ".dist", ".defaults",
};

struct doctor {
	char *dir;		/* the folder asked about */
	char *workdir;		/* its worktree's top, or NULL: none */
	char *remote;		/* the origin URL, or NULL */
	char *key;		/* its workspace key: no user or password */
	char *remote_shown;	/* the URL without user info */
	char *ws_word;		/* the URL as a shell word, for fixes */
	char *home;		/* $HOME without a final '/', or NULL */
	cJSON *config[ARRAY_SIZE(config_files)];	/* NULL: absent */

	struct item *items;
	size_t nitems;

	struct names required;	/* .baton/sandbox.json "env" */
	char *required_error;	/* why .baton/sandbox.json is unusable */
	struct dotenv *dotenvs;
	size_t ndotenvs;

	/* the relay's answers */
	bool env_answered;
	bool workspace_known;
	struct names remote_names;
	bool sessions_answered;
	int session_here;	/* 0: none here; 1: one; 2: one with sync */
	bool sync_on;
	bool credits_answered;
	int credits;		/* -1: not kept; 0: no limit; 1: limited */
	uint64_t credit_seconds;	/* what is left, when limited */
};

/* Replaces control bytes so that text from files is safe to print. */
static char *printable(char *s)
{
	for (char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return s;
}

/* Adds an item; returns it so that a fix can be set. */
static struct item *item_add(struct doctor *d, enum verdict v,
			     const char *check, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static struct item *item_add(struct doctor *d, enum verdict v,
			     const char *check, const char *fmt, ...)
{
	struct item *it;
	va_list ap;

	d->items = xrealloc(d->items, (d->nitems + 1) * sizeof(*d->items));
	it = &d->items[d->nitems++];
	it->verdict = v;
	it->check = check;
	va_start(ap, fmt);
	it->text = printable(xvasprintf(fmt, ap));
	va_end(ap);
	it->fix = NULL;
	return it;
}

/* Sets how to fix an item. */
static void item_fix(struct item *it, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void item_fix(struct item *it, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	it->fix = printable(xvasprintf(fmt, ap));
	va_end(ap);
}

/* Whether the list holds name. */
static bool names_has(const struct names *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], name))
			return true;
	return false;
}

/* Adds a copy of name unless the list holds it already. */
static void names_add(struct names *l, const char *name)
{
	if (names_has(l, name))
		return;
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(char *));
	l->v[l->n++] = xstrdup(name);
}

/* Empties the list. */
static void names_clear(struct names *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Joins the names with ", " (caller frees). */
static char *names_join(const struct names *l)
{
	struct buf b = BUF_INIT;

	for (size_t i = 0; i < l->n; i++)
		buf_printf(&b, "%s%s", i ? ", " : "", l->v[i]);
	return b.data ? buf_detach(&b, NULL) : xstrdup("");
}

/* A shell variable name: [A-Za-z_][A-Za-z0-9_]*. */
static bool env_name_valid(const char *s, size_t len)
{
	if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!(s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}

/* Quotes a word for a shell command line (caller frees). */
static char *shell_word(const char *s)
{
	struct buf b = BUF_INIT;

	if (s[0] && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
			   "vwxyz0123456789@%+=:,./_-") == strlen(s))
		return xstrdup(s);
	buf_puts(&b, "'");
	for (; *s; s++) {
		if (*s == '\'')
			buf_puts(&b, "'\\''");
		else
			buf_append(&b, s, 1);
	}
	buf_puts(&b, "'");
	return buf_detach(&b, NULL);
}

/*
 * Reads the remote. A URL may carry a password or token before '@': it is
 * never printed, and fixes name the URL through git instead.
 */
static void check_remote(struct doctor *d, git_repository *repo)
{
	struct item *it;
	const char *auth, *at, *end;

	d->remote = workspace_remote(repo);
	d->key = d->remote ? workspace_url_public(d->remote) : NULL;
	if (d->remote == NULL) {
		it = item_add(d, V_FAIL, "repository", "%s is a git repository "
			      "without a remote (origin): the sandbox cannot "
			      "fetch or push, and the relay knows the "
			      "workspace by its remote URL", d->workdir);
		item_fix(it, "add a remote: git remote add origin URL");
		return;
	}
	auth = strstr(d->remote, "://");
	auth = auth ? auth + 3 : NULL;
	end = auth ? auth + strcspn(auth, "/?#") : NULL;
	at = auth ? memchr(auth, '@', (size_t)(end - auth)) : NULL;
	/* The fixes name the workspace by its key, which never holds the
	 * user or password a URL may carry. */
	d->ws_word = shell_word(d->key);
	if (at)
		d->remote_shown = xasprintf("%.*s***%s", (int)(auth -
					    d->remote), d->remote, at);
	else
		d->remote_shown = xstrdup(d->remote);
	item_add(d, V_OK, "repository", "%s is a git repository with remote "
		 "origin %s", d->workdir, d->remote_shown);
}

/* How git sees a file: its GIT_STATUS_* flags, or 0 when git cannot say. */
static unsigned file_status(git_repository *repo, const char *rel)
{
	unsigned flags = 0;

	if (git_status_file(&flags, repo, rel) < 0)
		return 0;
	return flags;
}

/*
 * Reads the program a script's #! line names (caller frees), or NULL when
 * there is none; *flags says whether options follow it.
 */
static char *script_interpreter(const char *path, bool *flags)
{
	char line[256], *p, *word;
	FILE *f = fopen(path, "r");
	size_t n;

	*flags = false;
	if (f == NULL)
		return NULL;
	n = fread(line, 1, sizeof(line) - 1, f);
	fclose(f);
	line[n] = '\0';
	if (strncmp(line, "#!", 2))
		return NULL;
	line[strcspn(line, "\r\n")] = '\0';
	p = line + 2 + strspn(line + 2, " \t");
	n = strcspn(p, " \t");
	if (n == 12 && !strncmp(p, "/usr/bin/env", 12)) {
		do {	/* env's own options, such as -S */
			p += n;
			p += strspn(p, " \t");
			n = strcspn(p, " \t");
		} while (p[0] == '-');
	}
	word = xstrndup(p, n);
	p += n;
	*flags = p[strspn(p, " \t")] != '\0';
	return word;
}

/* The setup script: present, a file git keeps, and something bash runs. */
static void check_setup(struct doctor *d, git_repository *repo)
{
	char *path = xasprintf("%s/" SETUP, d->workdir), *prog = NULL;
	const char *base;
	size_t before = d->nitems;
	bool flags_follow;
	struct item *it;
	unsigned flags;
	struct stat st;

	if (lstat(path, &st) < 0) {
		it = item_add(d, V_WARN, "setup", "no " SETUP ": the sandbox "
			      "runs no setup before the agent starts, unless "
			      "`baton workspace setup` gave the workspace a "
			      "script of its own");
		item_fix(it, "add " SETUP " (bash runs it in the sandbox's "
			 "worktree, with the remote environment) and commit "
			 "it");
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		it = item_add(d, V_FAIL, "setup", SETUP " is not a regular "
			      "file (%s): the sandbox runs only a regular "
			      "file", S_ISLNK(st.st_mode) ? "a symbolic link"
			      : "a folder or other");
		item_fix(it, "make " SETUP " a plain file and commit it");
		goto out;
	}
	flags = file_status(repo, SETUP);
	if (flags & GIT_STATUS_IGNORED) {
		it = item_add(d, V_FAIL, "setup", SETUP " is ignored by git, "
			      "so it never reaches the sandbox");
		item_fix(it, "git add -f " SETUP " && git commit (or remove "
			 "it from .gitignore)");
	}
	prog = script_interpreter(path, &flags_follow);
	base = prog ? strrchr(prog, '/') : NULL;
	base = base ? base + 1 : prog;
	if (base && strcmp(base, "bash") && strcmp(base, "sh")) {
		it = item_add(d, V_FAIL, "setup", SETUP " starts with #!%s, "
			      "but the sandbox runs it with bash", prog);
		item_fix(it, "write it in bash, or have it start the program: "
			 "exec %s rest-of-setup", base);
	} else if (base && flags_follow) {
		it = item_add(d, V_WARN, "setup", "the options on the #! line "
			      "of " SETUP " are not used: the sandbox starts "
			      "it with bash and options of its own");
		item_fix(it, "set them in the script instead (set -x, set -u, "
			 "...)");
	}
	if (!(st.st_mode & S_IXUSR)) {
		it = item_add(d, V_WARN, "setup", SETUP " is not executable "
			      "(the sandbox runs it with bash all the same)");
		item_fix(it, "chmod +x " SETUP " && git add " SETUP);
	}
	if (d->nitems == before && (flags & GIT_STATUS_WT_NEW))
		item_add(d, V_OK, "setup", SETUP " is executable; git does "
			 "not track it yet, but it travels with the worktree");
	else if (d->nitems == before)
		item_add(d, V_OK, "setup", SETUP " is executable and git "
			 "tracks it");
out:
	free(prog);
	free(path);
}

/* Agent files git ignores: they stay on this laptop. */
static void check_local_files(struct doctor *d, git_repository *repo)
{
	size_t before = d->nitems;
	struct item *it;
	struct stat st;

	for (size_t i = 0; i < ARRAY_SIZE(agent_files); i++) {
		char *path = xasprintf("%s/%s", d->workdir,
				       agent_files[i].path);
		bool present = lstat(path, &st) == 0;

		free(path);
		if (!present || !(file_status(repo, agent_files[i].path) &
				  GIT_STATUS_IGNORED))
			continue;
		it = item_add(d, V_WARN, "local-files", "%s is ignored by git "
			      "(this laptop's own): the sandbox will not have "
			      "it", agent_files[i].path);
		item_fix(it, "%s", agent_files[i].fix);
	}
	if (d->nitems == before)
		item_add(d, V_OK, "local-files", "no agent settings that git "
			 "ignores (they would stay on this laptop)");
}

/* Reads the JSON files checked below; a broken one is a warning. */
static void read_configs(struct doctor *d)
{
	for (size_t i = 0; i < ARRAY_SIZE(config_files); i++) {
		char *path = xasprintf("%s/%s", d->workdir, config_files[i]);
		char *text = NULL;
		struct item *it;
		size_t len;
		int e = file_read_all(path, FILE_MAX, &text, &len);

		free(path);
		if (e == -ENOENT)
			continue;
		d->config[i] = e < 0 ? NULL : cJSON_ParseWithLength(text, len);
		free(text);
		if (d->config[i] && cJSON_IsObject(d->config[i]))
			continue;
		cJSON_Delete(d->config[i]);
		d->config[i] = NULL;
		it = item_add(d, V_WARN, "config", "cannot read %s: %s",
			      config_files[i], e < 0 ? strerror(-e)
			      : "not a JSON object");
		item_fix(it, "fix %s; the agent cannot read it either",
			 config_files[i]);
	}
}

/* Characters that end a path inside a longer string. */
static bool path_end(char c)
{
	return c == '\0' || strchr(" \t\n\"'`,;:=()[]{}<>|&", c) != NULL;
}

/*
 * Finds the paths under the home folder (or ~/) that s mentions; adds each
 * to paths.
 */
static void home_paths_in(const struct doctor *d, const char *s,
			  struct names *paths)
{
	size_t hl = strlen(d->home);

	for (const char *p = s; *p; p++) {
		size_t n;
		char *path;

		if (p > s && !path_end(p[-1]))
			continue;
		if (!(strncmp(p, d->home, hl) == 0 && (p[hl] == '/' ||
						       path_end(p[hl]))) &&
		    strncmp(p, "~/", 2))
			continue;
		for (n = 0; !path_end(p[n]); n++)
			;
		path = xstrndup(p, n);
		names_add(paths, path);
		free(path);
		p += n - 1;
	}
}

/*
 * Walks a JSON value for paths under the home folder. Values of "env" and
 * "headers" may be secrets and are not read; in .mcp.json, a server's
 * "command" and "url" are check_mcp's.
 */
static void home_paths_walk(const struct doctor *d, const cJSON *v,
			    bool mcp, struct names *paths)
{
	const cJSON *e;

	if (cJSON_IsString(v)) {
		home_paths_in(d, v->valuestring, paths);
		return;
	}
	cJSON_ArrayForEach(e, v) {
		const char *key = e->string;

		if (key && (!strcmp(key, "env") || !strcmp(key, "headers")))
			continue;
		if (key && mcp && (!strcmp(key, "command") ||
				   !strcmp(key, "url")))
			continue;
		home_paths_walk(d, e, mcp, paths);
	}
}

/* Paths under this laptop's home folder in .mcp.json and Claude settings. */
static void check_home_paths(struct doctor *d)
{
	size_t before = d->nitems;
	struct item *it;

	if (d->home == NULL) {
		item_add(d, V_SKIP, "home-paths", "paths under the home "
			 "folder: HOME is not set");
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(config_files); i++) {
		struct names paths = { NULL, 0 };

		if (d->config[i] == NULL)
			continue;
		home_paths_walk(d, d->config[i], i == 0, &paths);
		for (size_t k = 0; k < paths.n; k++) {
			it = item_add(d, V_WARN, "home-paths", "%s mentions "
				      "%s, a path on this laptop only",
				      config_files[i], paths.v[k]);
			item_fix(it, "use a path relative to the repository, "
				 "or a program on the sandbox's PATH "
				 "(installed by " SETUP ")");
		}
		names_clear(&paths);
	}
	if (d->nitems == before)
		item_add(d, V_OK, "home-paths", "no paths under %s in " MCP_JSON
			 " or .claude/settings*.json", d->home);
}

/*
 * Whether a URL's host is this machine. *shown gets "host:port" without
 * user info, path or query, which may hold secrets (caller frees).
 */
static bool url_local(const char *url, char **shown)
{
	const char *p = strstr(url, "://"), *at, *host;
	size_t len, hlen;
	char *h;
	bool local;

	p = p ? p + 3 : url;
	len = strcspn(p, "/?#");
	at = memrchr(p, '@', len);
	if (at) {
		len -= (size_t)(at + 1 - p);
		p = at + 1;
	}
	*shown = xstrndup(p, len);
	host = *shown;
	if (host[0] == '[')
		hlen = strcspn(++host, "]");
	else
		hlen = strcspn(host, ":");
	h = xstrndup(host, hlen);
	local = !strcasecmp(h, "localhost") || !strcmp(h, "::1") ||
		!strcmp(h, "0.0.0.0") || !strncmp(h, "127.", 4) ||
		(hlen > 10 && !strcasecmp(h + hlen - 10, ".localhost"));
	free(h);
	return local;
}

/* Whether a program path is under the home folder. */
static bool under_home(const struct doctor *d, const char *path)
{
	size_t hl;

	if (!strncmp(path, "~/", 2))
		return true;
	if (d->home == NULL)
		return false;
	hl = strlen(d->home);
	return !strncmp(path, d->home, hl) && path[hl] == '/';
}

/* .mcp.json servers on this laptop: a local URL, or a program in ~. */
static void check_mcp(struct doctor *d)
{
	const cJSON *servers, *s;
	size_t before = d->nitems, count = 0;
	struct item *it;

	if (d->config[0] == NULL) {
		item_add(d, V_OK, "mcp", "no " MCP_JSON " (no MCP servers to "
			 "check)");
		return;
	}
	servers = cJSON_GetObjectItemCaseSensitive(d->config[0],
						   "mcpServers");
	if (servers && !cJSON_IsObject(servers)) {
		it = item_add(d, V_WARN, "mcp", MCP_JSON ": \"mcpServers\" "
			      "is not an object of servers by name");
		item_fix(it, "fix " MCP_JSON "; the agent cannot read it "
			 "either");
		return;
	}
	cJSON_ArrayForEach(s, servers) {
		const char *url = cJSON_GetStringValue(
			cJSON_GetObjectItemCaseSensitive(s, "url"));
		const char *cmd = cJSON_GetStringValue(
			cJSON_GetObjectItemCaseSensitive(s, "command"));
		char *shown = NULL;

		count++;
		if (url && url_local(url, &shown)) {
			it = item_add(d, V_FAIL, "mcp", MCP_JSON ": server "
				      "\"%s\" at %s is on this laptop and "
				      "cannot work in a sandbox", s->string,
				      shown);
			item_fix(it, "serve it where the sandbox can reach it "
				 "and point its url there, or remove it from "
				 MCP_JSON);
		}
		free(shown);
		if (cmd && under_home(d, cmd)) {
			it = item_add(d, V_FAIL, "mcp", MCP_JSON ": server "
				      "\"%s\" runs %s, a program on this "
				      "laptop, and cannot work in a sandbox",
				      s->string, cmd);
			item_fix(it, "install the program in " SETUP " and "
				 "name it without a path, or keep it in the "
				 "repository and give a relative path");
		}
	}
	if (d->nitems == before)
		item_add(d, V_OK, "mcp", MCP_JSON ": %zu server(s), none tied "
			 "to this laptop", count);
}

/* Reads the variables .baton/sandbox.json requires: {"env": [NAME...]}. */
static void read_required(struct doctor *d)
{
	char *path = xasprintf("%s/" SANDBOX_JSON, d->workdir), *text = NULL;
	const cJSON *env, *e;
	cJSON *root = NULL;
	size_t len;
	int err = file_read_all(path, FILE_MAX, &text, &len);

	free(path);
	if (err == -ENOENT)
		return;
	if (err < 0) {
		d->required_error = xasprintf("cannot be read: %s",
					      strerror(-err));
		return;
	}
	root = cJSON_ParseWithLength(text, len);
	free(text);
	env = cJSON_GetObjectItemCaseSensitive(root, "env");
	if (!cJSON_IsObject(root) || (env && !cJSON_IsArray(env))) {
		d->required_error = xstrdup("is not {\"env\": [\"NAME\", "
					    "...]}");
		goto out;
	}
	cJSON_ArrayForEach(e, env) {
		const char *name = cJSON_GetStringValue(e);

		if (name == NULL || !env_name_valid(name, strlen(name))) {
			d->required_error = xasprintf("names \"%s\", which is "
						      "not a variable name",
						      name ? name : "(not a "
						      "string)");
			goto out;
		}
		names_add(&d->required, name);
	}
out:
	cJSON_Delete(root);
}

/*
 * Reads the names a dotenv file sets, never keeping a value: NAME=VALUE
 * lines, maybe after "export ", values maybe quoted over several lines.
 */
static void dotenv_read(const char *path, struct names *names)
{
	char *text = NULL, *p, *end;
	char quote = 0;
	size_t len;

	if (file_read_all(path, FILE_MAX, &text, &len) < 0)
		return;
	for (p = text; p < text + len; p = end + 1) {
		size_t n;
		char *q;

		end = memchr(p, '\n', (size_t)(text + len - p));
		if (end == NULL)
			end = text + len;
		if (quote) {	/* inside a value that spans lines */
			q = memchr(p, quote, (size_t)(end - p));
			if (q)
				quote = 0;
			continue;
		}
		p += strspn(p, " \t");
		if (!strncmp(p, "export ", 7))
			p += 7 + strspn(p + 7, " \t");
		n = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrst"
			   "uvwxyz0123456789_");
		q = p + n + strspn(p + n, " \t");
		if (q >= end || *q != '=' || !env_name_valid(p, n))
			continue;
		q++;
		q += strspn(q, " \t");
		if (q < end && (*q == '"' || *q == '\'') &&
		    memchr(q + 1, *q, (size_t)(end - q - 1)) == NULL)
			quote = *q;
		p[n] = '\0';
		names_add(names, p);
	}
	sodium_memzero(text, len);
	free(text);
}

/* Whether a file name is a dotenv file that may hold secrets. */
static bool dotenv_name(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	if (strcmp(base, ".env") && strncmp(base, ".env.", 5))
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(dotenv_templates); i++) {
		size_t bl = strlen(base), tl = strlen(dotenv_templates[i]);

		if (bl > tl && !strcmp(base + bl - tl, dotenv_templates[i]))
			return false;
	}
	return true;
}

/* Finds the dotenv files git ignores: their values stay on this laptop. */
static void find_dotenvs(struct doctor *d, git_repository *repo)
{
	git_status_options opts = GIT_STATUS_OPTIONS_INIT;
	git_status_list *list = NULL;

	opts.show = GIT_STATUS_SHOW_WORKDIR_ONLY;
	opts.flags = GIT_STATUS_OPT_INCLUDE_IGNORED |
		     GIT_STATUS_OPT_INCLUDE_UNTRACKED |
		     GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS |
		     GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
	if (git_status_list_new(&list, repo, &opts) < 0) {
		item_add(d, V_SKIP, "dotenv", "ignored .env files: git cannot "
			 "list the worktree: %s", git_error_last() ?
			 git_error_last()->message : "unknown error");
		return;
	}
	for (size_t i = 0; i < git_status_list_entrycount(list); i++) {
		const git_status_entry *e = git_status_byindex(list, i);
		const char *rel = e->index_to_workdir ?
				  e->index_to_workdir->old_file.path : NULL;
		struct dotenv *de;
		char *path;

		if (!(e->status & GIT_STATUS_IGNORED) || rel == NULL ||
		    rel[strlen(rel) - 1] == '/' || !dotenv_name(rel))
			continue;
		d->dotenvs = xrealloc(d->dotenvs, (d->ndotenvs + 1) *
				      sizeof(*d->dotenvs));
		de = &d->dotenvs[d->ndotenvs++];
		de->path = xstrdup(rel);
		de->names.v = NULL;
		de->names.n = 0;
		path = xasprintf("%s/%s", d->workdir, rel);
		dotenv_read(path, &de->names);
		free(path);
	}
	git_status_list_free(list);
}

/* Looks at the repository that holds dir; keeps what it found. */
struct doctor *doctor_new(const char *dir)
{
	struct doctor *d = xcalloc(1, sizeof(*d));
	git_repository *repo = NULL;
	const char *home = getenv("HOME");
	char real[PATH_MAX];
	struct item *it;
	size_t len;

	d->dir = xstrdup(dir);
	if (home && home[0] == '/' && home[strspn(home, "/")] != '\0') {
		d->home = xstrdup(home);
		len = strlen(d->home);
		while (len > 1 && d->home[len - 1] == '/')
			d->home[--len] = '\0';
	}
	git_libgit2_init();
	if (realpath(dir, real) == NULL) {
		it = item_add(d, V_FAIL, "repository", "cannot open %s: %s",
			      dir, strerror(errno));
		item_fix(it, "name the repository's folder: baton doctor "
			 "--dir PATH");
		goto out;
	}
	if (git_repository_open_ext(&repo, real, 0, NULL) < 0 ||
	    git_repository_is_bare(repo)) {
		it = item_add(d, V_FAIL, "repository", "%s is not in a git "
			      "worktree; sessions run in git worktrees so "
			      "that they can move", real);
		item_fix(it, "git init, commit, then git remote add origin "
			 "URL");
		goto out;
	}
	d->workdir = xstrdup(git_repository_workdir(repo));
	len = strlen(d->workdir);
	if (len > 1 && d->workdir[len - 1] == '/')
		d->workdir[len - 1] = '\0';

	check_remote(d, repo);
	check_setup(d, repo);
	check_local_files(d, repo);
	read_configs(d);
	check_home_paths(d);
	check_mcp(d);
	read_required(d);
	find_dotenvs(d, repo);
out:
	git_repository_free(repo);
	git_libgit2_shutdown();
	return d;
}

/* Frees the checks and what they read. */
void doctor_free(struct doctor *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->nitems; i++) {
		free(d->items[i].text);
		free(d->items[i].fix);
	}
	free(d->items);
	for (size_t i = 0; i < ARRAY_SIZE(config_files); i++)
		cJSON_Delete(d->config[i]);
	for (size_t i = 0; i < d->ndotenvs; i++) {
		free(d->dotenvs[i].path);
		names_clear(&d->dotenvs[i].names);
	}
	free(d->dotenvs);
	names_clear(&d->required);
	names_clear(&d->remote_names);
	free(d->required_error);
	free(d->dir);
	free(d->workdir);
	free(d->remote);
	free(d->key);
	free(d->remote_shown);
	free(d->ws_word);
	free(d->home);
	free(d);
}

/* The workspace key is the remote's URL, as the laptop daemon says. */
const char *doctor_workspace(const struct doctor *d)
{
	return d->key;
}

/* Keeps the names of the workspace's variables (an answer may repeat). */
void doctor_env(struct doctor *d, const cJSON *vars)
{
	const cJSON *v;

	names_clear(&d->remote_names);
	d->env_answered = true;
	d->workspace_known = vars != NULL;
	cJSON_ArrayForEach(v, vars) {
		const char *name = cJSON_GetStringValue(
			cJSON_GetObjectItemCaseSensitive(v, "name"));

		if (name)
			names_add(&d->remote_names, name);
	}
}

/*
 * Sync is a workspace's, but the relay shows it only in the sessions: a
 * session of this laptop in this worktree tells.
 */
void doctor_sessions(struct doctor *d, const cJSON *sessions)
{
	const cJSON *s;

	d->sessions_answered = true;
	d->session_here = 0;
	cJSON_ArrayForEach(s, sessions) {
		const char *wt = cJSON_GetStringValue(
			cJSON_GetObjectItemCaseSensitive(s, "worktree"));
		const char *kind = cJSON_GetStringValue(
			cJSON_GetObjectItemCaseSensitive(s, "kind"));
		const cJSON *sync = cJSON_GetObjectItemCaseSensitive(s,
								     "sync");

		if (wt == NULL || kind == NULL || strcmp(wt, d->workdir) ||
		    strcmp(kind, "local"))
			continue;
		if (cJSON_IsBool(sync)) {
			d->session_here = 2;
			d->sync_on = cJSON_IsTrue(sync);
			return;
		}
		d->session_here = 1;
	}
}

/* A relay without credits has no limit to tell about. */
void doctor_credits(struct doctor *d, const cJSON *body)
{
	d->credits_answered = true;
	d->credits = -1;
	if (body == NULL)
		return;
	d->credits = proto_bool(body, "limited", false) ? 1 : 0;
	d->credit_seconds = 0;
	if (d->credits == 1)
		proto_u64(body, "seconds", &d->credit_seconds);
}

/* Whether the relay has answered all three questions. */
bool doctor_answered(const struct doctor *d)
{
	return d->env_answered && d->sessions_answered && d->credits_answered;
}

/* Says why the relay's checks were not made, for a skip line. */
static const char *relay_skipped(const struct doctor *d)
{
	if (d->remote == NULL)
		return "the relay is asked only about a repository with a "
		       "remote";
	return "the relay could not be asked (see the message above)";
}

/* The command that sets a variable of the workspace (caller frees). */
static char *env_set_command(const struct doctor *d, const char *name)
{
	return xasprintf("printf %%s VALUE | baton env set %s %s%s",
			 d->ws_word, name, d->workspace_known ? "" :
			 " (once a session has started here)");
}

/* The workspace, the required variables and the ignored dotenv files. */
static void report_env(struct doctor *d, bool asked, const char *why)
{
	struct names set = { NULL, 0 }, told = { NULL, 0 };
	struct item *it;
	char *list, *cmd;

	if (asked && d->workspace_known) {
		item_add(d, V_OK, "workspace", "the relay knows workspace %s",
			 d->remote_shown);
	} else if (asked) {
		it = item_add(d, V_WARN, "workspace", "the relay knows no "
			      "workspace %s yet: it is made when a session "
			      "first starts in this repository",
			      d->remote_shown);
		cmd = shell_word(d->workdir);
		item_fix(it, "baton start --machine LAPTOP --dir %s (LAPTOP: "
			 "see baton machines)", cmd);
		free(cmd);
	}

	if (d->required_error) {
		it = item_add(d, V_FAIL, "env", SANDBOX_JSON " %s",
			      d->required_error);
		item_fix(it, "write it as {\"env\": [\"NAME\", ...]}, naming "
			 "the variables the sandbox needs");
	} else if (d->required.n == 0) {
		item_add(d, V_OK, "env", "no required variables (" SANDBOX_JSON
			 " declares none)");
	} else if (!asked) {
		list = names_join(&d->required);
		item_add(d, V_SKIP, "env", "required variables %s: not "
			 "checked: %s", list, why);
		free(list);
	} else {
		for (size_t i = 0; i < d->required.n; i++) {
			if (names_has(&d->remote_names, d->required.v[i])) {
				names_add(&set, d->required.v[i]);
				continue;
			}
			it = item_add(d, V_FAIL, "env", "%s (required by "
				      SANDBOX_JSON ") is not set in the "
				      "remote environment", d->required.v[i]);
			cmd = env_set_command(d, d->required.v[i]);
			item_fix(it, "%s", cmd);
			free(cmd);
			names_add(&told, d->required.v[i]);
		}
		if (set.n > 0) {
			list = names_join(&set);
			item_add(d, V_OK, "env", "the remote environment has "
				 "%s", list);
			free(list);
		}
	}

	for (size_t i = 0; i < d->ndotenvs; i++) {
		const struct dotenv *de = &d->dotenvs[i];
		size_t missing = 0;

		for (size_t k = 0; k < de->names.n; k++)
			missing += !names_has(&d->remote_names,
					      de->names.v[k]);
		if (asked && missing == 0) {
			item_add(d, V_OK, "dotenv", "%s stays on this laptop "
				 "(git ignores it); the remote environment "
				 "has its variables", de->path);
			continue;
		}
		it = item_add(d, V_WARN, "dotenv", "%s is ignored by git: its "
			      "values stay on this laptop, and the sandbox "
			      "gets variables only from the remote "
			      "environment", de->path);
		item_fix(it, "set what the sandbox needs with `baton env set`"
			 "%s", asked ? " (below)" : "");
		if (!asked)
			continue;
		for (size_t k = 0; k < de->names.n; k++) {
			const char *name = de->names.v[k];

			if (names_has(&d->remote_names, name) ||
			    names_has(&told, name))
				continue;
			it = item_add(d, V_WARN, "dotenv", "%s (in %s) is not "
				      "in the remote environment", name,
				      de->path);
			cmd = env_set_command(d, name);
			item_fix(it, "%s", cmd);
			free(cmd);
			names_add(&told, name);
		}
	}
	names_clear(&set);
	names_clear(&told);
}

/* Workspace sync, as a session in this worktree shows it. */
static void report_sync(struct doctor *d)
{
	struct item *it;

	if (d->session_here == 0) {
		item_add(d, V_SKIP, "sync", "workspace sync: the relay shows "
			 "it with a session, and none of yours runs in this "
			 "worktree");
	} else if (d->session_here == 1) {
		item_add(d, V_SKIP, "sync", "workspace sync " NOT_YET);
	} else if (d->sync_on) {
		item_add(d, V_OK, "sync", "workspace sync is on: a move to a "
			 "sandbox works while this laptop is offline");
	} else {
		it = item_add(d, V_WARN, "sync", "workspace sync is off: a "
			      "move to a sandbox needs this laptop online");
		item_fix(it, "baton sync on %s", d->ws_word);
	}
}

/* The user's sandbox credits: a move to a sandbox needs some left. */
static void report_credits(struct doctor *d)
{
	struct item *it;

	if (d->credits < 0) {
		item_add(d, V_SKIP, "credits", "sandbox credits left " NOT_YET);
	} else if (d->credits == 0) {
		item_add(d, V_OK, "credits", "sandbox credits: this relay sets "
			 "you no limit");
	} else if (d->credit_seconds == 0) {
		it = item_add(d, V_FAIL, "credits", "your sandbox credits are "
			      "spent: the relay refuses moves to a sandbox");
		item_fix(it, "ask the relay's operator for more (baton-relay "
			 "credits set)");
	} else {
		item_add(d, V_OK, "credits", "sandbox credits: %" PRIu64 " s "
			 "of sandbox time left", d->credit_seconds);
	}
}

/* Prints the items as lines, and a verdict. */
static void print_text(const struct doctor *d, bool asked, size_t fails,
		       size_t warns)
{
	for (size_t i = 0; i < d->nitems; i++) {
		const struct item *it = &d->items[i];

		printf("%-4s %s\n", verdict_text[it->verdict], it->text);
		if (it->fix)
			printf("     fix: %s\n", it->fix);
	}
	if (fails > 0)
		printf("\nnot ready: %zu check(s) failed, %zu warning(s)\n",
		       fails, warns);
	else if (!asked)
		printf("\nnothing failed here, but the relay's checks did not "
		       "run; %zu warning(s)\n", warns);
	else
		printf("\nnothing failed; %zu warning(s)\n", warns);
}

/* Prints the items as one JSON object. */
static void print_json_report(const struct doctor *d, bool ready)
{
	cJSON *root = cJSON_CreateObject(), *arr;
	char *text;

	cJSON_AddStringToObject(root, "dir", d->workdir ? d->workdir
							: d->dir);
	if (d->remote_shown)
		cJSON_AddStringToObject(root, "workspace", d->remote_shown);
	else
		cJSON_AddNullToObject(root, "workspace");
	cJSON_AddBoolToObject(root, "ready", ready);
	arr = cJSON_AddArrayToObject(root, "checks");
	for (size_t i = 0; i < d->nitems; i++) {
		const struct item *it = &d->items[i];
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "check", it->check);
		cJSON_AddStringToObject(o, "status",
					verdict_json[it->verdict]);
		cJSON_AddStringToObject(o, "message", it->text);
		if (it->fix)
			cJSON_AddStringToObject(o, "fix", it->fix);
		cJSON_AddItemToArray(arr, o);
	}
	text = cJSON_Print(root);
	if (text == NULL)
		abort();	/* cJSON fails only when out of memory */
	puts(text);
	free(text);
	cJSON_Delete(root);
}

/*
 * The workspace's git account: a cloud start clones and pushes with
 * GIT_USERNAME and GIT_PASSWORD from its remote environment.
 */
static void report_git_account(struct doctor *d)
{
	struct item *it;

	if (names_has(&d->remote_names, "GIT_USERNAME") &&
	    names_has(&d->remote_names, "GIT_PASSWORD")) {
		item_add(d, V_OK, "git-account", "a git account is connected "
			 "(GIT_USERNAME and GIT_PASSWORD are set)");
		return;
	}
	it = item_add(d, V_WARN, "git-account", "no git account is connected: "
		      "a sandbox can fetch and push only what needs no login");
	item_fix(it, "printf %%s NAME | baton env set %s GIT_USERNAME; "
		 "printf %%s TOKEN | baton env set %s GIT_PASSWORD",
		 d->ws_word, d->ws_word);
}

/* Adds what the relay said to the checks, prints them, and judges. */
int doctor_report(struct doctor *d, bool json, int relay_code)
{
	bool asked = d->remote && relay_code == 0 && doctor_answered(d);
	const char *why = relay_skipped(d);
	size_t fails = 0, warns = 0;

	if (d->workdir) {
		report_env(d, asked, why);
		if (asked)
			report_sync(d);
		else
			item_add(d, V_SKIP, "sync", "workspace sync: %s", why);
	}
	if (asked)
		report_git_account(d);
	else
		item_add(d, V_SKIP, "git-account", "git account connected: %s",
			 why);
	if (asked)
		report_credits(d);
	else
		item_add(d, V_SKIP, "credits", "sandbox credits left: %s", why);

	for (size_t i = 0; i < d->nitems; i++) {
		fails += d->items[i].verdict == V_FAIL;
		warns += d->items[i].verdict == V_WARN;
	}
	if (json)
		print_json_report(d, fails == 0 && relay_code == 0);
	else
		print_text(d, asked, fails, warns);
	fflush(stdout);
	return fails > 0 ? 1 : relay_code;
}
