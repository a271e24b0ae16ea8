/*
 * config.c: reads and edits local.conf, baton-local's settings file, and
 * keeps secrets out of it.
 */
#define _GNU_SOURCE
#include "config.h"

#include "log.h"
#include "util.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONF_MAX (64 * 1024)	/* a settings file is never larger */
#define TOKEN_LOOKALIKE 32	/* this many token characters in a row */

enum conf_kind {
	CONF_TEXT,
	CONF_FLAG,
	CONF_SECONDS,
	CONF_LEVEL,
	CONF_FORMAT,
};

static const struct conf_key {
	const char *name;
	enum conf_kind kind;
} conf_keys[] = {
	{ "relay", CONF_TEXT },
	{ "name", CONF_TEXT },
	{ "ca", CONF_TEXT },
	{ "insecure", CONF_FLAG },
	{ "state", CONF_TEXT },
	{ "agents", CONF_TEXT },
	{ "log-level", CONF_LEVEL },
	{ "log-format", CONF_FORMAT },
	{ "ping-interval", CONF_SECONDS },
	{ "dead-after", CONF_SECONDS },
};

/* Words that make a key a secret's, whatever else it says. */
static const char *const secret_words[] = {
	"token", "password", "passwd", "secret", "credential", "bootstrap",
	"api-key", "private-key",
};

struct local_conf {
	char *values[ARRAY_SIZE(conf_keys)];	/* NULL: not in the file */
};

static const char pair_instead[] =
	"secrets never go in local.conf; the laptop proves who it is with "
	"its own key: pair it with `baton-local pair --relay URL` (a "
	"never-paired laptop may take a machine token from BATON_TOKEN)";

char *local_conf_path(void)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");

	if (xdg && xdg[0] == '/')
		return xasprintf("%s/baton/local.conf", xdg);
	return xasprintf("%s/.config/baton/local.conf", home ? home : ".");
}

/* The index of key NAME (with '_' read as '-'), or -1. */
static int key_index(const char *name)
{
	char norm[32];
	size_t n = strlen(name);

	if (n >= sizeof(norm))
		return -1;
	for (size_t i = 0; i <= n; i++)
		norm[i] = name[i] == '_' ? '-' : (char)tolower(name[i]);
	for (size_t i = 0; i < ARRAY_SIZE(conf_keys); i++)
		if (!strcmp(norm, conf_keys[i].name))
			return (int)i;
	return -1;
}

static bool key_is_secret(const char *name)
{
	char *norm = xstrdup(name);
	bool secret = false;

	for (char *p = norm; *p; p++)
		*p = *p == '_' ? '-' : (char)tolower(*p);
	for (size_t i = 0; i < ARRAY_SIZE(secret_words) && !secret; i++)
		secret = strstr(norm, secret_words[i]) != NULL;
	free(norm);
	return secret;
}

/*
 * True for a value shaped like a token: a relay token (bt_...), or a long
 * run of letters and digits, both present, with nothing of a path, URL or
 * host name (no '/', ':' or '.') in it.
 */
static bool value_is_secret(const char *value)
{
	size_t run = 0;
	bool alpha = false, digit = false;

	if (!strncmp(value, "bt_", 3))
		return true;
	if (strpbrk(value, "/:.") != NULL)
		return false;
	for (const char *p = value; *p; p++) {
		if (isalnum((unsigned char)*p) || strchr("_-+=", *p)) {
			run++;
			alpha |= isalpha((unsigned char)*p) != 0;
			digit |= isdigit((unsigned char)*p) != 0;
			if (run >= TOKEN_LOOKALIKE && alpha && digit)
				return true;
		} else {
			run = 0;
			alpha = digit = false;
		}
	}
	return false;
}

static bool flag_parse(const char *v, bool *out)
{
	if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1"))
		*out = true;
	else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") ||
		 !strcmp(v, "0"))
		*out = false;
	else
		return false;
	return true;
}

/* Checks VALUE against its key's kind; NULL, or why not (caller frees). */
static char *value_check(const struct conf_key *k, const char *value)
{
	unsigned seconds;
	bool flag;

	switch (k->kind) {
	case CONF_FLAG:
		if (!flag_parse(value, &flag))
			return xasprintf("%s takes yes or no, not '%s'",
					 k->name, value);
		break;
	case CONF_SECONDS:
		if (parse_seconds(value, &seconds) < 0)
			return xasprintf("%s takes seconds from 1 to 65535, "
					 "not '%s'", k->name, value);
		break;
	case CONF_LEVEL:
		if (log_level_parse(value) < 0)
			return xasprintf("log-level is error, warn, info or "
					 "debug, not '%s'", value);
		break;
	case CONF_FORMAT:
		if (strcasecmp(value, "text") && strcasecmp(value, "json"))
			return xasprintf("log-format is text or json, not "
					 "'%s'", value);
		break;
	case CONF_TEXT:
		break;
	}
	return NULL;
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/*
 * Splits LINE (changed in place) into *key and *value; a value in double
 * quotes loses them. 1 for a setting, 0 for a blank or comment line, -1
 * for anything else.
 */
static int line_split(char *line, char **key, char **value)
{
	char *eq, *v;
	size_t n;

	line = trim(line);
	if (line[0] == '\0' || line[0] == '#')
		return 0;
	eq = strchr(line, '=');
	if (eq == NULL)
		return -1;
	*eq = '\0';
	*key = trim(line);
	v = trim(eq + 1);
	n = strlen(v);
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		v[n - 1] = '\0';
		v++;
	}
	*value = v;
	return (*key)[0] ? 1 : -1;
}

/* Says KEY is unknown, and which keys there are (caller frees). */
static char *unknown_key(const char *key)
{
	struct buf b = BUF_INIT;

	buf_printf(&b, "unknown key '%s' (the keys are", key);
	for (size_t i = 0; i < ARRAY_SIZE(conf_keys); i++)
		buf_printf(&b, "%s %s", i == 0 ? ""
				   : i + 1 < ARRAY_SIZE(conf_keys) ? ","
								   : " and",
			   conf_keys[i].name);
	buf_puts(&b, ")");
	return buf_detach(&b, NULL);
}

/* Checks one setting; NULL, or why it is refused (caller frees). */
static char *setting_check(const char *key, const char *value, int *index)
{
	if (key_is_secret(key))
		return xasprintf("'%s' is a secret: %s", key, pair_instead);
	*index = key_index(key);
	if (*index < 0)
		return unknown_key(key);
	if (value_is_secret(value))
		return xasprintf("the value of %s looks like a token: %s",
				 conf_keys[*index].name, pair_instead);
	if (value[0] == '\0')
		return xasprintf("%s has no value (leave the line out for the "
				 "default)", conf_keys[*index].name);
	return value_check(&conf_keys[*index], value);
}

int local_conf_load(const char *path, struct local_conf **out, char **cause)
{
	struct local_conf *conf = xcalloc(1, sizeof(*conf));
	char *text = NULL, *line, *next, *key, *value, *why = NULL;
	int e, kind, index = -1, lineno = 0;

	*out = NULL;
	e = file_read_all(path, CONF_MAX, &text, NULL);
	if (e == -ENOENT) {
		*out = conf;
		return 0;
	}
	if (e < 0) {
		*cause = xasprintf("cannot read %s: %s", path, strerror(-e));
		goto fail;
	}

	for (line = text; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		kind = line_split(line, &key, &value);
		if (kind == 0)
			continue;
		if (kind < 0)
			why = xstrdup("expected `key = value`");
		else
			why = setting_check(key, value, &index);
		if (why == NULL && conf->values[index])
			why = xasprintf("%s is set twice", key);
		if (why) {
			*cause = xasprintf("%s:%d: %s", path, lineno, why);
			free(why);
			e = -EINVAL;
			goto fail;
		}
		conf->values[index] = xstrdup(value);
	}
	free(text);
	*out = conf;
	return 0;

fail:
	free(text);
	local_conf_free(conf);
	return e;
}

void local_conf_free(struct local_conf *conf)
{
	if (conf == NULL)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(conf->values); i++)
		free(conf->values[i]);
	free(conf);
}

const char *local_conf_get(const struct local_conf *conf, const char *key)
{
	int i = key_index(key);

	assert(i >= 0);
	return conf->values[i];
}

const char *local_conf_pick(const struct local_conf *conf, const char *key,
			    const char *env)
{
	const char *v = getenv(env);

	return v && v[0] ? v : local_conf_get(conf, key);
}

bool local_conf_flag(const struct local_conf *conf, const char *key)
{
	const char *v = local_conf_get(conf, key);
	bool flag = false;

	if (v)
		flag_parse(v, &flag);
	return flag;
}

unsigned local_conf_seconds(const struct local_conf *conf, const char *key)
{
	const char *v = local_conf_get(conf, key);
	unsigned seconds = 0;

	if (v)
		parse_seconds(v, &seconds);
	return seconds;
}

static const char conf_header[] =
"# baton-local's settings: one `key = value` a line. The keys are\n"
"# baton-local's long options (see baton-local(1)); its flags and the\n"
"# environment override them. Never put a token here: pair the laptop\n"
"# with `baton-local pair` instead.\n";

int local_conf_set(const char *path, const char *key, const char *value,
		   char **cause)
{
	struct buf out = BUF_INIT;
	char *text = NULL, *line, *next, *copy, *k, *v, *why, *dir;
	int index = -1, e;
	bool done = false;

	why = strpbrk(value, "\r\n") ? xstrdup("a value is one line")
				     : setting_check(key, value, &index);
	if (why) {
		*cause = xasprintf("cannot set %s in %s: %s", key, path, why);
		free(why);
		return -EINVAL;
	}

	e = file_read_all(path, CONF_MAX, &text, NULL);
	if (e == -ENOENT) {
		buf_puts(&out, conf_header);
	} else if (e < 0) {
		*cause = xasprintf("cannot read %s: %s", path, strerror(-e));
		return e;
	}
	for (line = text; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		else if (*line == '\0')
			break;	/* nothing after the last line break */
		copy = xstrdup(line);
		if (!done && line_split(copy, &k, &v) == 1 &&
		    key_index(k) == index) {
			buf_printf(&out, "%s = %s\n", conf_keys[index].name,
				   value);
			done = true;
		} else {
			buf_printf(&out, "%s\n", line);
		}
		free(copy);
	}
	if (!done)
		buf_printf(&out, "%s = %s\n", conf_keys[index].name, value);
	free(text);

	dir = xstrdup(path);
	if (strrchr(dir, '/'))
		*strrchr(dir, '/') = '\0';
	e = mkdir_p(dir, 0700);
	free(dir);
	if (e == 0)
		e = file_write_atomic(path, out.data, out.len, 0644);
	if (e < 0)
		*cause = xasprintf("cannot write %s: %s", path, strerror(-e));
	buf_free(&out);
	return e;
}
