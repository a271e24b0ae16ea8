/*
 * agent.h: agent profiles: how to start an agent, how to resume it, and
 * which state files hold its conversation.
 *
 * Templates may use {session}, {home}, {worktree} and {cwd_slug} (the
 * worktree's absolute path with every byte outside [A-Za-z0-9] replaced by
 * '-', as Claude Code names its project folders). Built-in profiles are
 * shell, claude and codex; a user's JSON file adds or replaces profiles:
 *   {"profiles": [{"name": "...", "start": ["..."], "resume": ["..."],
 *                  "state": ["{home}/..."], "rewrite_cwd": true}]}
 * name ([A-Za-z0-9._-], up to 64) and start are required; resume defaults
 * to start, state to none, rewrite_cwd to false.
 */
#ifndef BATON_AGENT_H
#define BATON_AGENT_H

#include <stdbool.h>
#include <stddef.h>

struct agent_profile {
	char *name;
	char **start;		/* NULL-terminated argv templates */
	char **resume;		/* NULL-terminated argv templates */
	char **state;		/* NULL-terminated path templates */
	size_t state_count;
	bool rewrite_cwd;	/* rewrite the recorded worktree in state */
};

struct agent_profiles;

struct agent_vars {
	const char *session;
	const char *home;
	const char *worktree;	/* absolute */
};

/*
 * Loads the built-ins plus `user_file` (may be NULL). On failure *cause
 * (caller frees) names the file and the bad field.
 */
int agent_profiles_load(const char *user_file, struct agent_profiles **out,
			char **cause);
const struct agent_profile *
agent_profile_find(const struct agent_profiles *ps, const char *name);
void agent_profiles_free(struct agent_profiles *ps);

/*
 * Expands one template; caller frees. Unknown placeholders, and those whose
 * value is NULL, are kept as written.
 */
char *agent_expand(const char *tmpl, const struct agent_vars *vars);
/* Expands a NULL-terminated template list; free with agent_strv_free. */
char **agent_expand_all(char *const *tmpl, const struct agent_vars *vars);
void agent_strv_free(char **v);
/*
 * Claude Code's project-folder name for a path; caller frees. Past 200
 * bytes the slug is cut to 200 and given '-' and 8 hex digits of a hash of
 * the whole path. That hash (FNV-1a) is ours, not Claude Code's: long paths
 * will not match its folders.
 */
char *agent_cwd_slug(const char *path);

/* A profile as JSON (sent with a session so a target runs the same agent);
 * caller frees with cJSON_Delete. */
struct cJSON *agent_profile_to_json(const struct agent_profile *p);
/* Reads a profile from JSON in the user file's format; free the result
 * with agent_profile_free. */
int agent_profile_from_json(const struct cJSON *json,
			    struct agent_profile **out, char **cause);
void agent_profile_free(struct agent_profile *p);

#endif
