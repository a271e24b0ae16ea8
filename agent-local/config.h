/*
 * config.h: local.conf, baton-local's settings file.
 *
 * One `key = value` a line, `#` comments; the keys are baton-local's long
 * options (relay, name, ca, insecure, state, agents, log-level,
 * log-format, ping-interval, dead-after), `_` and `-` alike. Flags
 * override the environment, which overrides the file. A secret (a key
 * such as token or password, or a value that looks like a token) is
 * refused: the laptop proves who it is by pairing, with its own key.
 */
#ifndef BATON_LOCAL_CONFIG_H
#define BATON_LOCAL_CONFIG_H

#include <stdbool.h>

struct local_conf;

/* $XDG_CONFIG_HOME/baton/local.conf, else ~/.config/baton/local.conf
 * (caller frees). */
char *local_conf_path(void);

/*
 * Reads PATH into *out (free with local_conf_free). A missing file is an
 * empty configuration. 0, or -EINVAL for a line that is not `key = value`,
 * an unknown key, a key given twice, a value of the wrong kind or a
 * secret, or another -errno when the file cannot be read; *cause then
 * says which line and what to do (caller frees) and *out is NULL.
 */
int local_conf_load(const char *path, struct local_conf **out, char **cause);
void local_conf_free(struct local_conf *conf);

/* The file's value of KEY, or NULL. KEY must be a known key. */
const char *local_conf_get(const struct local_conf *conf, const char *key);
/* The environment's ENV when set and not empty, else the file's KEY. */
const char *local_conf_pick(const struct local_conf *conf, const char *key,
			    const char *env);
/* A yes/no key (insecure): false when not set. */
bool local_conf_flag(const struct local_conf *conf, const char *key);
/* A seconds key (ping-interval, dead-after): 0 when not set. */
unsigned local_conf_seconds(const struct local_conf *conf, const char *key);

/*
 * Sets KEY to VALUE in the file at PATH, in place of its line if it has
 * one, else on a new line at the end; other lines stay as they are. Makes
 * the file (and its folder) when missing. 0, or -errno with *cause set
 * (caller frees): a VALUE that is a secret or holds a line break is
 * refused with -EINVAL.
 */
int local_conf_set(const char *path, const char *key, const char *value,
		   char **cause);

#endif
