/*
 * statefile.c: versioned JSON files in a daemon's state folder: reading
 * them, upgrading an older one after a copy, refusing a newer one (see
 * statefile.h).
 */
#define _GNU_SOURCE
#include "statefile.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STATEFILE_MAX (16u << 20)	/* the largest file we read */

/* The version a file says it has: 1 without the field, -1 when the field
 * is not a whole number from 1. */
static int file_version(const cJSON *obj)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "version");

	if (v == NULL)
		return 1;
	if (!cJSON_IsNumber(v) || v->valuedouble < 1 ||
	    v->valuedouble >= INT_MAX ||
	    v->valuedouble != (double)v->valueint)
		return -1;
	return v->valueint;
}

/* Writes all of data to fd, synced; 0 or -errno. */
static int write_synced(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		data += n;
		len -= (size_t)n;
	}
	return fsync(fd) < 0 ? -errno : 0;
}

/*
 * Keeps the bytes of a file of version `version` in a new private file
 * beside it, PATH.v<version>-<UTC time>.bak (a number after the time when
 * that name is taken), synced with its folder. Sets *copy to its path
 * (the caller frees). 0 or -errno, and then no partial copy is left.
 */
static int copy_aside(const char *path, const char *data, size_t len,
		      int version, char **copy)
{
	char *name;
	int fd = backup_file_create(path, version, &name), err;

	if (fd < 0)
		return fd;
	err = write_synced(fd, data, len);
	if (close(fd) < 0 && err == 0)
		err = -errno;
	if (err) {
		unlink(name);
		free(name);
		return err;
	}
	dir_sync_of(name);
	*copy = name;
	return 0;
}

/* The folder part of path, for messages (the caller frees). */
static char *folder_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup(".");
}

int statefile_load(const char *path, const char *program,
		   const char *dir_option, cJSON **out, char **cause)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	char *text = NULL, *copy = NULL, *dir = folder_of(path);
	cJSON *obj = NULL;
	size_t len = 0;
	int version, err;

	*out = NULL;
	err = file_read_all(path, STATEFILE_MAX, &text, &len);
	if (err == -ENOENT)
		goto out;
	if (err < 0) {
		*cause = xasprintf("cannot read %s: %s", path,
				   strerror(-err));
		goto out;
	}
	obj = cJSON_ParseWithLength(text ? text : "", len);
	version = cJSON_IsObject(obj) ? file_version(obj) : -1;
	if (!cJSON_IsObject(obj) || version < 0) {
		err = -EINVAL;
		*cause = xasprintf("%s is not a JSON object with a version "
				   "from 1", path);
		goto out;
	}
	if (version > STATEFILE_VERSION) {
		err = -EPROTO;
		*cause = xasprintf("the state folder %s was written by a newer "
				   "%s (state version %d in %s; this one "
				   "knows %d); upgrade %s or use another %s",
				   dir, program, version, base,
				   STATEFILE_VERSION, program, dir_option);
		goto out;
	}

	if (version < STATEFILE_VERSION) {
		err = copy_aside(path, text, len, version, &copy);
		if (err) {
			*cause = xasprintf("cannot copy %s before upgrading it "
					   "from state version %d: %s; it is "
					   "left as it was, not upgraded: make "
					   "room in %s and start again", path,
					   version, strerror(-err), dir);
			goto out;
		}
		log_info("state", "copied %s to %s before upgrading it from "
			 "state version %d to %d", path, copy, version,
			 STATEFILE_VERSION);
		err = statefile_save(path, obj);
		if (err) {
			unlink(copy);
			*cause = xasprintf("cannot upgrade %s from state "
					   "version %d: %s; it is left as it "
					   "was: make room in %s and start "
					   "again", path, version,
					   strerror(-err), dir);
			goto out;
		}
	}
	*out = obj;
	obj = NULL;
out:
	cJSON_Delete(obj);
	free(copy);
	free(text);
	free(dir);
	return err;
}

int statefile_save(const char *path, cJSON *obj)
{
	cJSON *version;
	char *text;
	int err;

	/* First in the file, where a reader looks for it. */
	cJSON_DeleteItemFromObjectCaseSensitive(obj, "version");
	version = cJSON_AddNumberToObject(obj, "version", STATEFILE_VERSION);
	cJSON_DetachItemViaPointer(obj, version);
	cJSON_InsertItemInArray(obj, 0, version);
	text = cJSON_Print(obj);
	err = file_write_atomic(path, text, strlen(text), 0600);
	free(text);
	return err;
}
