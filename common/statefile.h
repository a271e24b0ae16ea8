/*
 * statefile.h: the JSON files a daemon keeps in its state folder
 * (machine.json, sessions.json), and the version of their format.
 *
 * Each file carries a "version" field; one without it was written before
 * files had versions and is version 1. A newer program upgrades an older
 * file in place, after copying it beside itself (NAME.v<old>-<UTC time>.bak);
 * an older program refuses a newer file rather than lose what it cannot
 * read or write it back in the old format.
 */
#ifndef BATON_STATEFILE_H
#define BATON_STATEFILE_H

#include <cjson/cJSON.h>

/* Version 2: the files say their version. */
#define STATEFILE_VERSION 2

/*
 * Reads the JSON object in PATH into *out (the caller deletes it), an
 * older file upgraded first (copy, log line, rewrite). PROGRAM and
 * DIR_OPTION name the program and the option that picks another state
 * folder, for the message that refuses a newer file.
 * Returns 0; -ENOENT when there is no file (no cause); -EINVAL when it is
 * not a JSON object with a usable version; -EPROTO when a newer program
 * wrote it; another -errno when it cannot be read, copied or rewritten
 * (then it is left as it was). Every failure but -ENOENT sets *cause.
 */
int statefile_load(const char *path, const char *program,
		   const char *dir_option, cJSON **out, char **cause);

/* Sets OBJ's version to STATEFILE_VERSION and writes it to PATH
 * atomically, mode 0600. 0 or -errno. */
int statefile_save(const char *path, cJSON *obj);

#endif
