/*
 * agent.c: agent profiles (built-in and from the user's JSON file) and the
 * expansion of their templates.
 */
#define _GNU_SOURCE
#include "agent.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define AGENT_FILE_MAX (1024 * 1024)	/* bytes of a user profile file */
#define AGENT_NAME_MAX 64
#define AGENT_SLUG_MAX 200		/* slug bytes kept before the hash */

struct agent_profiles {
	struct agent_profile *v;
	size_t n;
};

/* Copies a NULL-terminated string list. */
static char **agent_strv_dup(const char *const *v)
{
	size_t n = 0;
	char **out;

	while (v[n] != NULL)
		n++;
	out = xcalloc(n + 1, sizeof(*out));
	for (size_t i = 0; i < n; i++)
		out[i] = xstrdup(v[i]);
	return out;
}

/* Counts a NULL-terminated string list. */
static size_t agent_strv_len(char *const *v)
{
	size_t n = 0;

	while (v != NULL && v[n] != NULL)
		n++;
	return n;
}

void agent_strv_free(char **v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

/* Releases what one profile owns (not the struct itself). */
static void agent_profile_clear(struct agent_profile *p)
{
	free(p->name);
	agent_strv_free(p->start);
	agent_strv_free(p->resume);
	agent_strv_free(p->state);
	memset(p, 0, sizeof(*p));
}

/* Adds a profile, replacing one of the same name; takes ownership. */
static void agent_profiles_put(struct agent_profiles *ps,
			       struct agent_profile *p)
{
	for (size_t i = 0; i < ps->n; i++) {
		if (!strcmp(ps->v[i].name, p->name)) {
			agent_profile_clear(&ps->v[i]);
			ps->v[i] = *p;
			return;
		}
	}
	ps->v = xrealloc(ps->v, (ps->n + 1) * sizeof(*ps->v));
	ps->v[ps->n++] = *p;
}

/* Adds one built-in profile from static lists. */
static void agent_builtin(struct agent_profiles *ps, const char *name,
			  const char *const *start, const char *const *resume,
			  const char *const *state, bool rewrite_cwd)
{
	struct agent_profile p;

	p.name = xstrdup(name);
	p.start = agent_strv_dup(start);
	p.resume = agent_strv_dup(resume);
	p.state = agent_strv_dup(state);
	p.state_count = agent_strv_len(p.state);
	p.rewrite_cwd = rewrite_cwd;
	agent_profiles_put(ps, &p);
}

/* Adds shell, claude and codex. */
static void agent_builtins(struct agent_profiles *ps)
{
	static const char *const none[] = { NULL };
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
	const char *const *shell = access("/bin/bash", X_OK) == 0 ? bash : sh;

	agent_builtin(ps, "shell", shell, shell, none, false);
	agent_builtin(ps, "claude", claude_start, claude_resume, claude_state,
		      true);
	agent_builtin(ps, "codex", codex_start, codex_resume, codex_state,
		      true);
}

/* Tells whether a profile name is 1-64 bytes of [A-Za-z0-9._-]. */
static bool agent_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > AGENT_NAME_MAX)
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		      "0123456789._-") == n;
}

/*
 * Reads a JSON array of strings into a NULL-terminated list. `required`
 * refuses a missing or empty array. Sets *cause naming the field.
 */
static int agent_parse_strv(const cJSON *obj, const char *field,
			    bool required, const char *where, char ***out,
			    char **cause)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, field);
	const cJSON *item;
	size_t n, i = 0;
	char **v;

	*out = NULL;
	if (arr == NULL && !required)
		return 0;
	if (arr == NULL) {
		*cause = xasprintf("%s.%s: missing", where, field);
		return -EINVAL;
	}
	if (!cJSON_IsArray(arr)) {
		*cause = xasprintf("%s.%s: expected an array of strings",
				   where, field);
		return -EINVAL;
	}
	n = (size_t)cJSON_GetArraySize(arr);
	if (n == 0 && required) {
		*cause = xasprintf("%s.%s: must not be empty", where, field);
		return -EINVAL;
	}

	v = xcalloc(n + 1, sizeof(*v));
	cJSON_ArrayForEach(item, arr) {
		if (!cJSON_IsString(item) || item->valuestring[0] == '\0') {
			*cause = xasprintf("%s.%s[%zu]: expected a non-empty "
					   "string", where, field, i);
			agent_strv_free(v);
			return -EINVAL;
		}
		v[i++] = xstrdup(item->valuestring);
	}
	*out = v;
	return 0;
}

/*
 * Parses one profile object; `where` names it in a cause. resume defaults
 * to start, state to none.
 */
static int agent_parse_profile(const cJSON *obj, const char *where,
			       struct agent_profile *p, char **cause)
{
	const cJSON *name, *rewrite;
	int err = -EINVAL;

	memset(p, 0, sizeof(*p));
	if (!cJSON_IsObject(obj)) {
		*cause = xasprintf("%s: expected an object", where);
		goto out;
	}
	name = cJSON_GetObjectItemCaseSensitive(obj, "name");
	if (!cJSON_IsString(name) || !agent_name_valid(name->valuestring)) {
		*cause = xasprintf("%s.name: expected 1 to %d characters of "
				   "[A-Za-z0-9._-]", where, AGENT_NAME_MAX);
		goto out;
	}
	p->name = xstrdup(name->valuestring);

	err = agent_parse_strv(obj, "start", true, where, &p->start, cause);
	if (err == 0)
		err = agent_parse_strv(obj, "resume", false, where,
				       &p->resume, cause);
	if (err == 0)
		err = agent_parse_strv(obj, "state", false, where, &p->state,
				       cause);
	if (err)
		goto out;
	if (p->resume == NULL)
		p->resume = agent_strv_dup((const char *const *)p->start);
	if (p->state == NULL)
		p->state = xcalloc(1, sizeof(*p->state));
	p->state_count = agent_strv_len(p->state);

	rewrite = cJSON_GetObjectItemCaseSensitive(obj, "rewrite_cwd");
	if (rewrite != NULL && !cJSON_IsBool(rewrite)) {
		*cause = xasprintf("%s.rewrite_cwd: expected true or false",
				   where);
		err = -EINVAL;
		goto out;
	}
	p->rewrite_cwd = cJSON_IsTrue(rewrite);
out:
	if (err)
		agent_profile_clear(p);
	return err;
}

/* Turns a byte offset into "line L, column C" for a parse error. */
static char *agent_json_where(const char *text, const char *at)
{
	size_t line = 1, col = 1;

	for (const char *s = text; s < at && *s != '\0'; s++) {
		if (*s == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	return xasprintf("line %zu, column %zu", line, col);
}

/* Tells whether an item before `item` in the list has this name. */
static bool agent_name_earlier(const cJSON *list, const cJSON *item,
			       const char *name)
{
	const cJSON *e, *n;

	for (e = list->child; e != NULL && e != item; e = e->next) {
		n = cJSON_GetObjectItemCaseSensitive(e, "name");
		if (cJSON_IsString(n) && !strcmp(n->valuestring, name))
			return true;
	}
	return false;
}

/* Reads the user's file and adds its profiles over the built-ins. */
static int agent_load_file(struct agent_profiles *ps, const char *path,
			   char **cause)
{
	const cJSON *list, *item;
	const char *end = NULL;
	char *text = NULL, *why = NULL;
	cJSON *root = NULL;
	size_t len, index = 0;
	int err;

	err = file_read_all(path, AGENT_FILE_MAX, &text, &len);
	if (err) {
		*cause = xasprintf("%s: cannot read: %s", path,
				   strerror(-err));
		return err;
	}
	if (strlen(text) != len) {
		*cause = xasprintf("%s: contains a NUL byte", path);
		err = -EINVAL;
		goto out;
	}

	root = cJSON_ParseWithOpts(text, &end, true);
	if (root == NULL) {
		why = agent_json_where(text, end != NULL ? end : text);
		*cause = xasprintf("%s: not valid JSON near %s", path, why);
		err = -EINVAL;
		goto out;
	}
	if (!cJSON_IsObject(root)) {
		*cause = xasprintf("%s: expected a JSON object", path);
		err = -EINVAL;
		goto out;
	}
	list = cJSON_GetObjectItemCaseSensitive(root, "profiles");
	if (!cJSON_IsArray(list)) {
		*cause = xasprintf("%s: profiles: expected an array", path);
		err = -EINVAL;
		goto out;
	}

	cJSON_ArrayForEach(item, list) {
		struct agent_profile p;
		char where[32];

		snprintf(where, sizeof(where), "profiles[%zu]", index);
		err = agent_parse_profile(item, where, &p, &why);
		if (err) {
			*cause = xasprintf("%s: %s", path, why);
			goto out;
		}

		if (agent_name_earlier(list, item, p.name)) {
			*cause = xasprintf("%s: profiles[%zu].name: \"%s\" "
					   "appears twice", path, index,
					   p.name);
			agent_profile_clear(&p);
			err = -EINVAL;
			goto out;
		}
		agent_profiles_put(ps, &p);
		index++;
	}
out:
	cJSON_Delete(root);
	free(why);
	free(text);
	return err;
}

int agent_profiles_load(const char *user_file, struct agent_profiles **out,
			char **cause)
{
	struct agent_profiles *ps = xcalloc(1, sizeof(*ps));
	int err;

	*cause = NULL;
	agent_builtins(ps);
	if (user_file != NULL) {
		err = agent_load_file(ps, user_file, cause);
		if (err) {
			agent_profiles_free(ps);
			return err;
		}
	}
	*out = ps;
	return 0;
}

const struct agent_profile *
agent_profile_find(const struct agent_profiles *ps, const char *name)
{
	for (size_t i = 0; i < ps->n; i++)
		if (!strcmp(ps->v[i].name, name))
			return &ps->v[i];
	return NULL;
}

void agent_profiles_free(struct agent_profiles *ps)
{
	if (ps == NULL)
		return;
	for (size_t i = 0; i < ps->n; i++)
		agent_profile_clear(&ps->v[i]);
	free(ps->v);
	free(ps);
}

/* Adds a string list to a JSON object as an array. */
static void agent_json_strv(cJSON *obj, const char *field, char *const *v)
{
	cJSON *arr = cJSON_AddArrayToObject(obj, field);

	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(v[i]));
}

cJSON *agent_profile_to_json(const struct agent_profile *p)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL)
		abort();
	cJSON_AddStringToObject(o, "name", p->name);
	agent_json_strv(o, "start", p->start);
	agent_json_strv(o, "resume", p->resume);
	agent_json_strv(o, "state", p->state);
	cJSON_AddBoolToObject(o, "rewrite_cwd", p->rewrite_cwd);
	return o;
}

int agent_profile_from_json(const cJSON *json, struct agent_profile **out,
			    char **cause)
{
	struct agent_profile *p = xcalloc(1, sizeof(*p));
	int err;

	*out = NULL;
	*cause = NULL;
	err = agent_parse_profile(json, "profile", p, cause);
	if (err) {
		free(p);
		return err;
	}
	*out = p;
	return 0;
}

void agent_profile_free(struct agent_profile *p)
{
	if (p == NULL)
		return;
	agent_profile_clear(p);
	free(p);
}

/* FNV-1a, 32 bits: our own suffix for long slugs, not Claude Code's. */
static uint32_t agent_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

char *agent_cwd_slug(const char *path)
{
	size_t len = strlen(path);
	struct buf b = BUF_INIT;

	for (size_t i = 0; i < len && i < AGENT_SLUG_MAX; i++) {
		unsigned char c = (unsigned char)path[i];
		bool alnum = (c >= 'A' && c <= 'Z') ||
			     (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		buf_append(&b, alnum ? &path[i] : "-", 1);
	}
	if (len > AGENT_SLUG_MAX)
		buf_printf(&b, "-%08x", agent_hash(path));
	return buf_detach(&b, NULL);
}

char *agent_expand(const char *tmpl, const struct agent_vars *vars)
{
	struct buf b = BUF_INIT;
	const char *s = tmpl, *open, *close;

	while ((open = strchr(s, '{')) != NULL) {
		const char *value = NULL;
		char *slug = NULL;
		size_t len;

		close = strchr(open + 1, '}');
		if (close == NULL)
			break;
		buf_append(&b, s, (size_t)(open - s));
		len = (size_t)(close - open - 1);

		if (len == 7 && !strncmp(open + 1, "session", len))
			value = vars->session;
		else if (len == 4 && !strncmp(open + 1, "home", len))
			value = vars->home;
		else if (len == 8 && !strncmp(open + 1, "worktree", len))
			value = vars->worktree;
		else if (len == 8 && !strncmp(open + 1, "cwd_slug", len) &&
			 vars->worktree != NULL)
			value = slug = agent_cwd_slug(vars->worktree);

		if (value != NULL) {
			buf_puts(&b, value);
			s = close + 1;
		} else {
			/* Unknown, or no value: kept as written. */
			buf_append(&b, open, 1);
			s = open + 1;
		}
		free(slug);
	}
	buf_puts(&b, s);
	return buf_detach(&b, NULL);
}

char **agent_expand_all(char *const *tmpl, const struct agent_vars *vars)
{
	size_t n = agent_strv_len(tmpl);
	char **out;

	if (tmpl == NULL)
		return NULL;
	out = xcalloc(n + 1, sizeof(*out));
	for (size_t i = 0; i < n; i++)
		out[i] = agent_expand(tmpl[i], vars);
	return out;
}
