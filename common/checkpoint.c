/*
 * checkpoint.c: snapshots a worktree into a checkpoint commit, carries its
 * objects between repositories in packs, and restores it exactly, setting
 * aside whatever the restore would replace. checkpoint.h has the layout.
 *
 * Working files are stored as their raw bytes (no clean filter, no line
 * ending conversion), so a restore writes back exactly what was read.
 */
#define _GNU_SOURCE
#include "checkpoint.h"

#include <git2/sys/repository.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define META_VERSION 1
#define META_MAX (1024 * 1024)		/* largest meta.json we parse */
#define SIG_NAME "Baton"
#define SIG_EMAIL "baton@localhost"
#define COPY_CHUNK 65536
#define TREE_ENTRIES_MAX 5000000	/* refuse trees bigger than this */
#define TREE_DEPTH_MAX 90		/* libgit2 cannot scan past 100 */
#define NAME_BYTES_MAX 255		/* one path component on disk */
#define SUFFIX_MAX 1000			/* numbered set-aside names */
#define SET_ASIDE_REFS "refs/baton/set-aside/"

/* The state of a worktree as trees and HEAD, before it becomes a commit. */
struct snapshot {
	git_oid worktree;	/* tree of the working files */
	git_oid index;		/* tree of the index */
	int has_head;		/* 0 when HEAD is unborn */
	git_oid head;		/* HEAD commit */
	char *branch;		/* short branch name; NULL when detached */
};

/* A growable list of strings. */
struct strv {
	char **v;
	size_t len;
	size_t cap;
};

/* What one restore works with. */
struct restore {
	git_repository *repo;
	const struct checkpoint_restore_opts *opts;
	struct checkpoint_restore_result *res;
	char **cause;
};

/* Checks a tree that came from a peer before anything is written. */
struct check {
	git_repository *repo;
	git_odb *odb;		/* repo's objects, to find missing blobs */
	const char *what;	/* "worktree", "index" or "agent state" */
	size_t entries;		/* seen so far (TREE_ENTRIES_MAX) */
	char **cause;
};

struct checkpoint_unpack {
	git_odb *odb;
	git_odb_writepack *wp;
	git_indexer_progress progress;
	size_t received;	/* bytes appended so far */
};

/* Sets *cause unless an inner step already did; returns -1. */
__attribute__((format(printf, 2, 3)))
static int fail(char **cause, const char *fmt, ...)
{
	va_list ap;

	if (*cause != NULL)
		return -1;
	va_start(ap, fmt);
	*cause = xvasprintf(fmt, ap);
	va_end(ap);
	return -1;
}

/* Like fail(), with libgit2's last error message appended. */
__attribute__((format(printf, 2, 3)))
static int fail_git(char **cause, const char *fmt, ...)
{
	const git_error *e = git_error_last();
	va_list ap;
	char *what;

	if (*cause != NULL)
		return -1;
	va_start(ap, fmt);
	what = xvasprintf(fmt, ap);
	va_end(ap);
	*cause = xasprintf("%s (libgit2: %s)", what,
			   e && e->message ? e->message : "no detail");
	free(what);
	return -1;
}

/* Appends a copy of s to the list. */
static void strv_push(struct strv *l, const char *s)
{
	if (l->len == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->len++] = xstrdup(s);
}

/* Frees the list and its strings. */
static void strv_free(struct strv *l)
{
	for (size_t i = 0; i < l->len; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Joins a folder and a relative path with exactly one slash. */
static char *path_join(const char *dir, const char *rel)
{
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	return xasprintf("%.*s/%s", (int)n, dir, rel);
}

/* Returns the worktree folder without its trailing slash, or NULL. */
static char *workdir_of(git_repository *repo)
{
	const char *wd = git_repository_workdir(repo);
	size_t n;

	if (wd == NULL)
		return NULL;
	n = strlen(wd);
	while (n > 1 && wd[n - 1] == '/')
		n--;
	return xstrndup(wd, n);
}

/* Returns the folder part of a path (a copy), "." when it has none. */
static char *path_dir(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

/* Writes all of data to fd; 0 or -errno. */
static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Stores the bytes of the regular file at path as a blob, streaming. */
static int blob_from_file(git_odb *odb, const char *path, git_oid *out,
			  char **cause)
{
	git_odb_stream *stream = NULL;
	char *chunk = NULL;
	struct stat st;
	off_t total = 0;
	ssize_t n;
	int fd, err = -1;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return fail(cause, "cannot read %s (%s); check its permissions",
			    path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		fail(cause, "cannot stat %s (%s)", path, strerror(errno));
		goto out;
	}
	if (git_odb_open_wstream(&stream, odb, (git_object_size_t)st.st_size,
				 GIT_OBJECT_BLOB) < 0) {
		fail_git(cause, "cannot store %s in the object database", path);
		goto out;
	}

	chunk = xmalloc(COPY_CHUNK);
	while ((n = read(fd, chunk, COPY_CHUNK)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fail(cause, "cannot read %s (%s)", path,
			     strerror(errno));
			goto out;
		}
		total += n;
		if (total > st.st_size)
			break;
		if (git_odb_stream_write(stream, chunk, (size_t)n) < 0) {
			fail_git(cause, "cannot store %s", path);
			goto out;
		}
	}
	if (total != st.st_size) {
		fail(cause, "%s changed while it was being saved; "
		     "try again when it is quiet", path);
		goto out;
	}
	if (git_odb_stream_finalize_write(out, stream) < 0) {
		fail_git(cause, "cannot store %s", path);
		goto out;
	}
	err = 0;

out:
	git_odb_stream_free(stream);
	free(chunk);
	close(fd);
	return err;
}

/* Stores the target text of the symbolic link at path as a blob. */
static int blob_from_link(git_repository *repo, const char *path,
			  git_oid *out, char **cause)
{
	char target[PATH_MAX];
	ssize_t n;

	n = readlink(path, target, sizeof(target));
	if (n < 0)
		return fail(cause, "cannot read the link %s (%s)", path,
			    strerror(errno));
	if ((size_t)n == sizeof(target))
		return fail(cause, "the target of the link %s is too long",
			    path);
	if (git_blob_create_from_buffer(out, repo, target, (size_t)n) < 0)
		return fail_git(cause, "cannot store the link %s", path);
	return 0;
}

/* Reads where HEAD points: a commit and a branch, either may be absent. */
static int head_read(git_repository *repo, struct snapshot *s, char **cause)
{
	git_reference *head = NULL;
	const char *target;
	int err;

	if (git_reference_lookup(&head, repo, "HEAD") < 0)
		return fail_git(cause, "cannot read HEAD in %s",
				git_repository_path(repo));
	if (git_reference_type(head) == GIT_REFERENCE_SYMBOLIC) {
		target = git_reference_symbolic_target(head);
		if (!strncmp(target, "refs/heads/", 11))
			s->branch = xstrdup(target + 11);
	}
	git_reference_free(head);

	err = git_reference_name_to_id(&s->head, repo, "HEAD");
	if (err == 0) {
		s->has_head = 1;
	} else if (err == GIT_ENOTFOUND) {
		s->has_head = 0;
		err = 0;
	} else {
		fail_git(cause, "cannot resolve HEAD in %s",
			 git_repository_path(repo));
	}
	return err;
}

/* Tells whether an index entry is as new as the index file (racy git). */
static int entry_racy(const git_index_entry *e, const struct timespec *stamp)
{
	if ((int64_t)e->mtime.seconds != (int64_t)stamp->tv_sec)
		return (int64_t)e->mtime.seconds > (int64_t)stamp->tv_sec;
	return (long)e->mtime.nanoseconds >= stamp->tv_nsec;
}

/*
 * Copies the user's stage-0 index entries into the private index. The stat
 * data of entries as new as the index file is dropped, so their content is
 * hashed again: an in-memory index has no timestamp to catch racy edits.
 */
static int index_seed(git_index *mem, git_index *real, const char *path,
		      char **cause)
{
	struct timespec stamp = { 0, 0 };
	struct stat st;
	size_t count = git_index_entrycount(real);

	if (stat(path, &st) == 0)
		stamp = st.st_mtim;
	for (size_t i = 0; i < count; i++) {
		const git_index_entry *e = git_index_get_byindex(real, i);
		git_index_entry copy;

		if (git_index_entry_stage(e) != 0)
			continue;
		copy = *e;
		copy.flags &= (uint16_t)~GIT_INDEX_ENTRY_VALID;
		if (entry_racy(e, &stamp)) {
			copy.mtime.seconds = 0;
			copy.mtime.nanoseconds = 0;
			copy.file_size = 0;
		}
		if (git_index_add(mem, &copy) < 0)
			return fail_git(cause, "cannot copy index entry %s",
					e->path);
	}
	return 0;
}

/* Tells whether a path names an attributes file. */
static int is_attributes(const char *path)
{
	const char *slash = strrchr(path, '/');

	return !strcmp(slash ? slash + 1 : path, ".gitattributes");
}

/* Tells whether file (under each folder of a libgit2 search path) exists. */
static int search_path_has(int level, const char *file)
{
	git_buf dirs = { 0 };
	char *list, *dir, *save = NULL, *path;
	int found = 0;

	if (git_libgit2_opts(GIT_OPT_GET_SEARCH_PATH, level, &dirs) < 0)
		return 1;
	list = xstrndup(dirs.ptr ? dirs.ptr : "", dirs.size);
	for (dir = strtok_r(list, ":", &save); dir && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		path = path_join(dir, file);
		found = access(path, F_OK) == 0;
		free(path);
	}
	free(list);
	git_buf_dispose(&dirs);
	return found;
}

/*
 * Tells whether git could filter any file of repo: line ending settings
 * or an attributes file where libgit2 reads one. When it cannot, the index
 * ids of unchanged files are the ids of their raw bytes.
 */
static int filters_possible(git_repository *repo, git_index *mem,
			    const struct strv *changed)
{
	git_config_entry *entry = NULL;
	git_config *cfg = NULL;
	char *info;
	int value, off, possible = 1;

	if (git_repository_config_snapshot(&cfg, repo) < 0)
		return 1;
	if (git_config_get_entry(&entry, cfg, "core.autocrlf") == 0) {
		off = git_config_parse_bool(&value, entry->value) == 0 &&
		      !value;
		git_config_entry_free(entry);
		if (!off)
			goto out;
	}
	if (git_config_get_entry(&entry, cfg, "core.attributesfile") == 0) {
		git_config_entry_free(entry);
		goto out;
	}
	info = xasprintf("%sinfo/attributes", git_repository_commondir(repo));
	possible = access(info, F_OK) == 0 ||
		   search_path_has(GIT_CONFIG_LEVEL_XDG, "attributes") ||
		   search_path_has(GIT_CONFIG_LEVEL_SYSTEM, "gitattributes");
	free(info);
	for (size_t i = 0; !possible && i < git_index_entrycount(mem); i++)
		possible = is_attributes(git_index_get_byindex(mem, i)->path);
	for (size_t i = 0; !possible && i < changed->len; i++)
		possible = is_attributes(changed->v[i]);

out:
	git_config_free(cfg);
	return possible;
}

/*
 * Lists tracked paths that git would filter (line endings, ident, ...):
 * their index ids are of the filtered bytes, so they are hashed again raw.
 */
static int filtered_paths(git_repository *repo, git_index *mem,
			  struct strv *out, char **cause)
{
	size_t count = git_index_entrycount(mem);

	for (size_t i = 0; i < count; i++) {
		const git_index_entry *e = git_index_get_byindex(mem, i);
		git_filter_list *fl = NULL;

		if (!S_ISREG(e->mode))
			continue;
		if (git_filter_list_load(&fl, repo, NULL, e->path,
					 GIT_FILTER_TO_ODB,
					 GIT_FILTER_DEFAULT) < 0)
			return fail_git(cause, "cannot read the attributes "
					"of %s", e->path);
		if (fl != NULL)
			strv_push(out, e->path);
		git_filter_list_free(fl);
	}
	return 0;
}

/* add_all callback: records a changed path; we add its raw bytes later. */
static int collect_path(const char *path, const char *matched, void *payload)
{
	strv_push(payload, path);
	return 1;
}

/* Makes the private index's entry for rel match what is on disk now. */
static int snapshot_update(git_repository *repo, git_odb *odb,
			   git_index *mem, const char *root, const char *rel,
			   char **cause)
{
	const git_index_entry *old;
	git_index_entry e;
	struct stat st;
	size_t len = strlen(rel);
	char *abs;
	int err = 0;

	/* A folder as a whole: an untracked nested repository. */
	if (len == 0 || rel[len - 1] == '/')
		return 0;

	abs = path_join(root, rel);
	memset(&e, 0, sizeof(e));
	e.path = rel;
	if (lstat(abs, &st) < 0) {
		if (errno == ENOENT || errno == ENOTDIR) {
			if (git_index_remove_bypath(mem, rel) < 0)
				err = fail_git(cause, "cannot drop %s", rel);
		} else {
			err = fail(cause, "cannot stat %s (%s)", abs,
				   strerror(errno));
		}
	} else if (S_ISREG(st.st_mode)) {
		e.mode = (st.st_mode & S_IXUSR) ? GIT_FILEMODE_BLOB_EXECUTABLE
						: GIT_FILEMODE_BLOB;
		e.file_size = (uint32_t)st.st_size;
		err = blob_from_file(odb, abs, &e.id, cause);
	} else if (S_ISLNK(st.st_mode)) {
		e.mode = GIT_FILEMODE_LINK;
		err = blob_from_link(repo, abs, &e.id, cause);
	} else if (S_ISDIR(st.st_mode)) {
		/* A tracked file that became a folder is gone as a file. */
		old = git_index_get_bypath(mem, rel, 0);
		if (old && old->mode != GIT_FILEMODE_COMMIT &&
		    git_index_remove_bypath(mem, rel) < 0)
			err = fail_git(cause, "cannot drop %s", rel);
	}
	/* Sockets and pipes are left out, as git does. */

	if (err == 0 && e.mode != 0 && git_index_add(mem, &e) < 0)
		err = fail_git(cause, "cannot record %s", rel);
	free(abs);
	return err;
}

/* Frees what a snapshot holds. */
static void snapshot_clear(struct snapshot *s)
{
	free(s->branch);
	memset(s, 0, sizeof(*s));
}

/*
 * Snapshots repo's working files, index and HEAD into trees written to its
 * object database. Touches no file: a private in-memory index (seeded from
 * the user's for its stat data) is updated from the worktree.
 */
static int snapshot_take(git_repository *repo, struct snapshot *s,
			 char **cause)
{
	git_repository *priv = NULL;
	git_index *real = NULL, *mem = NULL;
	git_odb *odb = NULL;
	struct strv changed = { 0 };
	char *root, *index_path = NULL;
	int err = -1;

	memset(s, 0, sizeof(*s));
	root = workdir_of(repo);
	if (root == NULL)
		return fail(cause, "%s has no working tree; only a worktree "
			    "can be checkpointed", git_repository_path(repo));
	if (head_read(repo, s, cause) < 0)
		goto out;

	index_path = xasprintf("%sindex", git_repository_path(repo));
	if (git_index_open(&real, index_path) < 0) {
		fail_git(cause, "cannot read the index %s", index_path);
		goto out;
	}
	if (git_index_write_tree_to(&s->index, real, repo) < 0) {
		fail_git(cause, "cannot save the index of %s; resolve any "
			 "merge conflict (git add or git rm) and try again",
			 root);
		goto out;
	}

	if (git_repository_open_ext(&priv, root,
				    GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
		fail_git(cause, "cannot open the worktree %s", root);
		goto out;
	}
	if (strcmp(git_repository_path(priv), git_repository_path(repo))) {
		fail(cause, "the worktree %s belongs to %s, not to %s; open "
		     "the repository from its worktree", root,
		     git_repository_path(priv), git_repository_path(repo));
		goto out;
	}
	if (git_index_new(&mem) < 0 ||
	    git_repository_set_index(priv, mem) < 0) {
		fail_git(cause, "cannot create an index in memory");
		goto out;
	}
	if (index_seed(mem, real, index_path, cause) < 0)
		goto out;
	if (git_index_add_all(mem, NULL, GIT_INDEX_ADD_DEFAULT, collect_path,
			      &changed) < 0) {
		fail_git(cause, "cannot scan the worktree %s", root);
		goto out;
	}
	if (filters_possible(priv, mem, &changed) &&
	    filtered_paths(priv, mem, &changed, cause) < 0)
		goto out;

	if (git_repository_odb(&odb, priv) < 0) {
		fail_git(cause, "cannot open the objects of %s", root);
		goto out;
	}
	for (size_t i = 0; i < changed.len; i++)
		if (snapshot_update(priv, odb, mem, root, changed.v[i],
				    cause) < 0)
			goto out;
	if (git_index_write_tree_to(&s->worktree, mem, repo) < 0) {
		fail_git(cause, "cannot save the working files of %s", root);
		goto out;
	}
	err = 0;

out:
	if (err)
		snapshot_clear(s);
	strv_free(&changed);
	git_odb_free(odb);
	git_index_free(mem);
	git_index_free(real);
	git_repository_free(priv);
	free(index_path);
	free(root);
	return err;
}

/* Stores a folder's files, links and subfolders (recursively) as a tree. */
static int dir_tree_build(git_repository *repo, git_odb *odb,
			  const char *dir, git_oid *out, char **cause)
{
	git_treebuilder *tb = NULL;
	struct dirent *de;
	DIR *d;
	int err = -1;

	d = opendir(dir);
	if (d == NULL)
		return fail(cause, "cannot read the folder %s (%s)", dir,
			    strerror(errno));
	if (git_treebuilder_new(&tb, repo, NULL) < 0) {
		fail_git(cause, "cannot build a tree for %s", dir);
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		git_filemode_t mode = GIT_FILEMODE_BLOB;
		struct stat st;
		git_oid id;
		char *child;
		int e;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		child = path_join(dir, de->d_name);
		if (lstat(child, &st) < 0) {
			e = fail(cause, "cannot stat %s (%s)", child,
				 strerror(errno));
		} else if (S_ISREG(st.st_mode)) {
			mode = (st.st_mode & S_IXUSR)
				? GIT_FILEMODE_BLOB_EXECUTABLE
				: GIT_FILEMODE_BLOB;
			e = blob_from_file(odb, child, &id, cause);
		} else if (S_ISLNK(st.st_mode)) {
			mode = GIT_FILEMODE_LINK;
			e = blob_from_link(repo, child, &id, cause);
		} else if (S_ISDIR(st.st_mode)) {
			mode = GIT_FILEMODE_TREE;
			e = dir_tree_build(repo, odb, child, &id, cause);
		} else {
			free(child);
			continue;	/* sockets and pipes hold no state */
		}
		if (e == 0 && git_treebuilder_insert(NULL, tb, de->d_name,
						     &id, mode) < 0)
			e = fail_git(cause, "cannot save %s", child);
		free(child);
		if (e < 0)
			goto out;
	}
	if (git_treebuilder_write(out, tb) < 0) {
		fail_git(cause, "cannot save the folder %s", dir);
		goto out;
	}
	err = 0;

out:
	git_treebuilder_free(tb);
	closedir(d);
	return err;
}

/* Builds agent/: entry i holds the file or folder at paths[i] if any. */
static int agent_tree_build(git_repository *repo, const char *const *paths,
			    size_t count, git_oid *out, int *has,
			    char **cause)
{
	git_treebuilder *tb = NULL;
	git_odb *odb = NULL;
	int err = -1;

	*has = 0;
	if (count == 0)
		return 0;
	if (git_repository_odb(&odb, repo) < 0 ||
	    git_treebuilder_new(&tb, repo, NULL) < 0) {
		fail_git(cause, "cannot prepare the agent state");
		goto out;
	}
	for (size_t i = 0; i < count; i++) {
		git_filemode_t mode;
		struct stat st;
		char name[32];
		git_oid id;
		int e;

		if (paths[i] == NULL || paths[i][0] != '/') {
			fail(cause, "agent state path %zu (%s) is not an "
			     "absolute path", i, paths[i] ? paths[i] : "NULL");
			goto out;
		}
		if (stat(paths[i], &st) < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				continue;
			fail(cause, "cannot stat the agent state %s (%s)",
			     paths[i], strerror(errno));
			goto out;
		}
		if (S_ISREG(st.st_mode)) {
			mode = (st.st_mode & S_IXUSR)
				? GIT_FILEMODE_BLOB_EXECUTABLE
				: GIT_FILEMODE_BLOB;
			e = blob_from_file(odb, paths[i], &id, cause);
		} else if (S_ISDIR(st.st_mode)) {
			mode = GIT_FILEMODE_TREE;
			e = dir_tree_build(repo, odb, paths[i], &id, cause);
		} else {
			fail(cause, "the agent state %s is neither a file nor "
			     "a folder", paths[i]);
			goto out;
		}
		snprintf(name, sizeof(name), "%zu", i);
		if (e == 0 && git_treebuilder_insert(NULL, tb, name, &id,
						     mode) < 0)
			e = fail_git(cause, "cannot save %s", paths[i]);
		if (e < 0)
			goto out;
	}
	if (git_treebuilder_entrycount(tb) > 0) {
		if (git_treebuilder_write(out, tb) < 0) {
			fail_git(cause, "cannot save the agent state");
			goto out;
		}
		*has = 1;
	}
	err = 0;

out:
	git_treebuilder_free(tb);
	git_odb_free(odb);
	return err;
}

/* Adds key: string, or key: null when s is NULL. */
static void json_add_string(cJSON *o, const char *key, const char *s)
{
	if (s)
		cJSON_AddStringToObject(o, key, s);
	else
		cJSON_AddNullToObject(o, key);
}

/* Writes meta.json for a snapshot as a blob. */
static int meta_write(git_repository *repo, const struct snapshot *s,
		      const char *session, const char *worktree, git_oid *out,
		      char **cause)
{
	char hex[GIT_OID_HEXSZ + 1];
	cJSON *o = cJSON_CreateObject();
	char *text;
	int err = 0;

	cJSON_AddNumberToObject(o, "version", META_VERSION);
	json_add_string(o, "head",
			s->has_head ? git_oid_tostr(hex, sizeof(hex), &s->head)
				    : NULL);
	json_add_string(o, "branch", s->branch);
	json_add_string(o, "session", session);
	json_add_string(o, "worktree", worktree);
	text = cJSON_PrintUnformatted(o);
	if (text == NULL)
		err = fail(cause, "cannot encode the checkpoint metadata");
	else if (git_blob_create_from_buffer(out, repo, text,
					     strlen(text)) < 0)
		err = fail_git(cause, "cannot store the checkpoint metadata");
	cJSON_free(text);
	cJSON_Delete(o);
	return err;
}

/* Snapshots repo and writes the checkpoint commit (no ref moves). */
int checkpoint_create(git_repository *repo, const char *session,
		      const char *const *agent_paths, size_t agent_count,
		      git_oid *out, char **cause)
{
	git_treebuilder *tb = NULL;
	git_signature *sig = NULL;
	git_commit *parent = NULL;
	git_tree *tree = NULL;
	struct snapshot s;
	git_oid agent, meta, tree_id;
	char *root = NULL, *msg = NULL;
	int has_agent = 0, err = -1;

	*cause = NULL;
	if (snapshot_take(repo, &s, cause) < 0)
		return -1;
	root = workdir_of(repo);
	if (agent_tree_build(repo, agent_paths, agent_count, &agent,
			     &has_agent, cause) < 0 ||
	    meta_write(repo, &s, session, root, &meta, cause) < 0)
		goto out;

	if (git_treebuilder_new(&tb, repo, NULL) < 0 ||
	    git_treebuilder_insert(NULL, tb, "worktree", &s.worktree,
				   GIT_FILEMODE_TREE) < 0 ||
	    git_treebuilder_insert(NULL, tb, "index", &s.index,
				   GIT_FILEMODE_TREE) < 0 ||
	    (has_agent && git_treebuilder_insert(NULL, tb, "agent", &agent,
						 GIT_FILEMODE_TREE) < 0) ||
	    git_treebuilder_insert(NULL, tb, "meta.json", &meta,
				   GIT_FILEMODE_BLOB) < 0 ||
	    git_treebuilder_write(&tree_id, tb) < 0 ||
	    git_tree_lookup(&tree, repo, &tree_id) < 0) {
		fail_git(cause, "cannot write the checkpoint tree for %s",
			 root);
		goto out;
	}
	if (s.has_head && git_commit_lookup(&parent, repo, &s.head) < 0) {
		fail_git(cause, "HEAD of %s is not a readable commit", root);
		goto out;
	}
	if (git_signature_now(&sig, SIG_NAME, SIG_EMAIL) < 0) {
		fail_git(cause, "cannot make the checkpoint signature");
		goto out;
	}
	msg = xasprintf("Baton checkpoint of session %s\n",
			session ? session : "(none)");
	if (git_commit_create(out, repo, NULL, sig, sig, NULL, msg, tree,
			      parent ? 1 : 0,
			      (const git_commit **)&parent) < 0) {
		fail_git(cause, "cannot write the checkpoint commit for %s",
			 root);
		goto out;
	}
	err = 0;

out:
	free(msg);
	git_signature_free(sig);
	git_commit_free(parent);
	git_tree_free(tree);
	git_treebuilder_free(tb);
	snapshot_clear(&s);
	free(root);
	return err;
}

/* Reads meta.json field key as a string (or NULL when null allowed). */
static int meta_string(const cJSON *o, const char *key, int nullable,
		       char **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	*out = NULL;
	if (cJSON_IsString(v) && v->valuestring != NULL) {
		*out = xstrdup(v->valuestring);
		return 0;
	}
	return (nullable && cJSON_IsNull(v)) ? 0 : -1;
}

/* Parses meta.json into info. */
static int meta_parse(const char *text, size_t len,
		      struct checkpoint_info *info, const char *hex,
		      char **cause)
{
	const cJSON *version;
	cJSON *o;
	char *head = NULL;
	int err = -1;

	o = cJSON_ParseWithLength(text, len);
	if (!cJSON_IsObject(o)) {
		fail(cause, "checkpoint %s has unreadable metadata", hex);
		goto out;
	}
	version = cJSON_GetObjectItemCaseSensitive(o, "version");
	if (!cJSON_IsNumber(version) || version->valuedouble != META_VERSION) {
		fail(cause, "checkpoint %s has metadata version other than %d; "
		     "update Baton on this machine", hex, META_VERSION);
		goto out;
	}
	if (meta_string(o, "head", 1, &head) < 0 ||
	    meta_string(o, "branch", 1, &info->branch) < 0 ||
	    meta_string(o, "session", 1, &info->session) < 0 ||
	    meta_string(o, "worktree", 1, &info->worktree) < 0) {
		fail(cause, "checkpoint %s has a malformed metadata field",
		     hex);
		goto out;
	}
	if (head) {
		if (strlen(head) != GIT_OID_HEXSZ ||
		    git_oid_fromstr(&info->head, head) < 0) {
			fail(cause, "checkpoint %s names an invalid head "
			     "commit", hex);
			goto out;
		}
		info->has_head = 1;
	}
	err = 0;

out:
	free(head);
	cJSON_Delete(o);
	return err;
}

/* Finds a root entry of a checkpoint tree with the expected type. */
static const git_tree_entry *root_entry(const git_tree *t, const char *name,
					git_object_t type)
{
	const git_tree_entry *e = git_tree_entry_byname(t, name);

	return (e && git_tree_entry_type(e) == type) ? e : NULL;
}

/* Reads a checkpoint commit's metadata. */
int checkpoint_read(git_repository *repo, const git_oid *id,
		    struct checkpoint_info *out, char **cause)
{
	const git_tree_entry *wt, *ix, *ag, *mj;
	char hex[GIT_OID_HEXSZ + 1];
	git_commit *commit = NULL;
	git_tree *tree = NULL, *agent = NULL;
	git_blob *blob = NULL;
	int err = -1;

	*cause = NULL;
	memset(out, 0, sizeof(*out));
	git_oid_tostr(hex, sizeof(hex), id);
	if (git_commit_lookup(&commit, repo, id) < 0) {
		fail_git(cause, "checkpoint %s is not in %s; fetch its "
			 "objects first", hex, git_repository_path(repo));
		goto out;
	}
	if (git_commit_tree(&tree, commit) < 0) {
		fail_git(cause, "the tree of checkpoint %s is missing", hex);
		goto out;
	}
	wt = root_entry(tree, "worktree", GIT_OBJECT_TREE);
	ix = root_entry(tree, "index", GIT_OBJECT_TREE);
	mj = root_entry(tree, "meta.json", GIT_OBJECT_BLOB);
	ag = git_tree_entry_byname(tree, "agent");
	if (!wt || !ix || !mj ||
	    (ag && git_tree_entry_type(ag) != GIT_OBJECT_TREE)) {
		fail(cause, "commit %s is not a Baton checkpoint (its tree "
		     "lacks worktree/, index/ or meta.json)", hex);
		goto out;
	}
	git_oid_cpy(&out->worktree_tree, git_tree_entry_id(wt));
	git_oid_cpy(&out->index_tree, git_tree_entry_id(ix));
	if (ag) {
		if (git_tree_lookup(&agent, repo, git_tree_entry_id(ag)) < 0) {
			fail_git(cause, "the agent state of checkpoint %s is "
				 "missing", hex);
			goto out;
		}
		out->agent_count = git_tree_entrycount(agent);
	}

	if (git_blob_lookup(&blob, repo, git_tree_entry_id(mj)) < 0) {
		fail_git(cause, "the metadata of checkpoint %s is missing",
			 hex);
		goto out;
	}
	if (git_blob_rawsize(blob) > META_MAX) {
		fail(cause, "the metadata of checkpoint %s is too large", hex);
		goto out;
	}
	if (meta_parse(git_blob_rawcontent(blob),
		       (size_t)git_blob_rawsize(blob), out, hex, cause) < 0)
		goto out;
	err = 0;

out:
	if (err)
		checkpoint_info_clear(out);
	git_blob_free(blob);
	git_tree_free(agent);
	git_tree_free(tree);
	git_commit_free(commit);
	return err;
}

/* Frees what checkpoint_read filled in. */
void checkpoint_info_clear(struct checkpoint_info *info)
{
	free(info->branch);
	free(info->session);
	free(info->worktree);
	memset(info, 0, sizeof(*info));
}

/* Packs want's objects minus those reachable from the haves repo holds. */
int checkpoint_pack(git_repository *repo, const git_oid *want,
		    const git_oid *haves, size_t have_count, struct buf *out,
		    char **cause)
{
	char hex[GIT_OID_HEXSZ + 1];
	git_packbuilder *pb = NULL;
	git_revwalk *walk = NULL;
	git_buf packed = { 0 };
	git_odb *odb = NULL;
	int err = -1;

	*cause = NULL;
	git_oid_tostr(hex, sizeof(hex), want);
	if (git_repository_odb(&odb, repo) < 0 ||
	    git_revwalk_new(&walk, repo) < 0) {
		fail_git(cause, "cannot walk the history of %s",
			 git_repository_path(repo));
		goto out;
	}
	if (git_revwalk_push(walk, want) < 0) {
		fail_git(cause, "checkpoint %s is not a commit in %s", hex,
			 git_repository_path(repo));
		goto out;
	}
	for (size_t i = 0; i < have_count; i++) {
		git_object_t type;
		size_t size;

		if (git_odb_read_header(&size, &type, odb, &haves[i]) < 0 ||
		    type != GIT_OBJECT_COMMIT)
			continue;
		if (git_revwalk_hide(walk, &haves[i]) < 0) {
			fail_git(cause, "cannot use a have of %s", hex);
			goto out;
		}
	}

	if (git_packbuilder_new(&pb, repo) < 0 ||
	    git_packbuilder_insert_walk(pb, walk) < 0 ||
	    git_packbuilder_write_buf(&packed, pb) < 0) {
		fail_git(cause, "cannot pack checkpoint %s", hex);
		goto out;
	}
	buf_append(out, packed.ptr, packed.size);
	err = 0;

out:
	git_buf_dispose(&packed);
	git_packbuilder_free(pb);
	git_revwalk_free(walk);
	git_odb_free(odb);
	return err;
}

/* Starts receiving a pack into repo's object database. */
int checkpoint_unpack_new(git_repository *repo, struct checkpoint_unpack **out,
			  char **cause)
{
	struct checkpoint_unpack *u = xcalloc(1, sizeof(*u));

	*cause = NULL;
	if (git_repository_odb(&u->odb, repo) < 0 ||
	    git_odb_write_pack(&u->wp, u->odb, NULL, NULL) < 0) {
		fail_git(cause, "cannot receive objects into %s",
			 git_repository_path(repo));
		checkpoint_unpack_free(u);
		return -1;
	}
	*out = u;
	return 0;
}

/* Feeds the next piece of the pack. */
int checkpoint_unpack_append(struct checkpoint_unpack *u, const void *data,
			     size_t len, char **cause)
{
	*cause = NULL;
	if (u->wp->append(u->wp, data, len, &u->progress) < 0)
		return fail_git(cause, "the received pack is damaged in the "
				"piece starting at byte %zu; nothing was "
				"stored, send it again", u->received);
	u->received += len;
	return 0;
}

/* Checks the whole pack and stores its objects. */
int checkpoint_unpack_commit(struct checkpoint_unpack *u, char **cause)
{
	*cause = NULL;
	if (u->wp->commit(u->wp, &u->progress) < 0)
		return fail_git(cause, "the received pack (%zu bytes) is "
				"incomplete or damaged; nothing was stored, "
				"send it again", u->received);
	return 0;
}

/* Frees a receiver; an uncommitted pack is thrown away. */
void checkpoint_unpack_free(struct checkpoint_unpack *u)
{
	if (u == NULL)
		return;
	if (u->wp)
		u->wp->free(u->wp);
	git_odb_free(u->odb);
	free(u);
}

/* Tells why a tree entry name may not be restored, or NULL if it may. */
static const char *name_refused(const char *name)
{
	if (*name == '\0')
		return "an empty name";
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return "a . or .. component";
	if (strchr(name, '/'))
		return "a slash inside a name";
	if (!strcasecmp(name, ".git"))
		return "a .git component";
	return NULL;
}

/* qsort comparison of two C strings. */
static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Checks that a link's target text can be written as a symbolic link. */
static int link_check(struct check *c, const git_oid *id, const char *path)
{
	git_blob *blob = NULL;
	git_object_size_t size;
	int err = 0;

	if (git_blob_lookup(&blob, c->repo, id) < 0)
		return fail_git(c->cause, "the %s link %s is missing its "
				"target", c->what, path);
	size = git_blob_rawsize(blob);
	if (size == 0 || size >= PATH_MAX ||
	    memchr(git_blob_rawcontent(blob), '\0', (size_t)size))
		err = fail(c->cause, "the %s link %s has an invalid target; "
			   "refusing to restore it", c->what, path);
	git_blob_free(blob);
	return err;
}

/*
 * Checks every entry of a tree from a peer: names that could leave the
 * folder or reach .git, unknown modes, and duplicate names (the only way a
 * path can pass through a link of the same tree: "a" a link and "a/x").
 */
static int tree_check(struct check *c, const git_oid *id, const char *prefix)
{
	const char **names = NULL;
	git_tree *tree = NULL;
	size_t count, depth = 0;
	int err = -1;

	for (const char *p = prefix; *p; p++)
		depth += *p == '/';
	if (git_tree_lookup(&tree, c->repo, id) < 0)
		return fail_git(c->cause, "the %s folder '%s' is missing or "
				"damaged; refusing to restore it", c->what,
				prefix[0] ? prefix : "(top)");
	count = git_tree_entrycount(tree);
	names = xcalloc(count, sizeof(*names));
	for (size_t i = 0; i < count; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(tree, i);
		const char *name = git_tree_entry_name(e);
		const char *why = name_refused(name);
		char *path = xasprintf("%s%s", prefix, name);
		int bad = 0;

		names[i] = name;
		if (++c->entries > TREE_ENTRIES_MAX) {
			bad = fail(c->cause, "the %s holds more than %d "
				   "entries; refusing it", c->what,
				   TREE_ENTRIES_MAX);
		} else if (why) {
			bad = fail(c->cause, "the %s path '%s' has %s; "
				   "refusing to restore it", c->what, path,
				   why);
		} else if (strlen(path) >= PATH_MAX / 2 ||
			   strlen(name) > NAME_BYTES_MAX) {
			bad = fail(c->cause, "the %s path '%.64s...' is too "
				   "long", c->what, path);
		} else if (depth > TREE_DEPTH_MAX) {
			bad = fail(c->cause, "the %s path '%.64s...' nests "
				   "more than %d folders deep; refusing it",
				   c->what, path, TREE_DEPTH_MAX);
		} else {
			switch (git_tree_entry_filemode_raw(e)) {
			case GIT_FILEMODE_TREE: {
				char *sub = xasprintf("%s/", path);

				bad = tree_check(c, git_tree_entry_id(e), sub);
				free(sub);
				break;
			}
			case GIT_FILEMODE_LINK:
				bad = link_check(c, git_tree_entry_id(e), path);
				break;
			case GIT_FILEMODE_BLOB:
			case GIT_FILEMODE_BLOB_EXECUTABLE:
				if (!git_odb_exists(c->odb,
						    git_tree_entry_id(e)))
					bad = fail(c->cause, "the content of "
						   "the %s file %s is missing; "
						   "fetch the checkpoint's "
						   "objects again", c->what,
						   path);
				break;
			case GIT_FILEMODE_COMMIT:
				break;
			default:
				bad = fail(c->cause, "the %s path '%s' has the "
					   "unknown mode %o; refusing it",
					   c->what, path,
					   git_tree_entry_filemode_raw(e));
			}
		}
		free(path);
		if (bad < 0)
			goto out;
	}

	qsort(names, count, sizeof(*names), name_cmp);
	for (size_t i = 1; i < count; i++) {
		if (strcmp(names[i - 1], names[i]))
			continue;
		fail(c->cause, "the %s folder '%s' holds '%s' twice (a link "
		     "and a folder?); refusing to restore it", c->what,
		     prefix[0] ? prefix : "(top)", names[i]);
		goto out;
	}
	err = 0;

out:
	free(names);
	git_tree_free(tree);
	return err;
}

/* Parses an agent/ entry name into its index; -1 when not a number. */
static long agent_index(const char *name)
{
	char *end;
	long n;

	if (name[0] < '0' || name[0] > '9' || (name[0] == '0' && name[1]))
		return -1;
	errno = 0;
	n = strtol(name, &end, 10);
	return (errno || *end) ? -1 : n;
}

/* Checks agent/ and that every entry has somewhere to go. */
static int agent_check(struct restore *r, git_tree *agent)
{
	struct check c = { r->repo, NULL, "agent state", 0, r->cause };
	int err;
	size_t count = git_tree_entrycount(agent);

	if (git_repository_odb(&c.odb, r->repo) < 0)
		return fail_git(r->cause, "cannot open the objects of %s",
				git_repository_path(r->repo));
	err = tree_check(&c, git_tree_id(agent), "");
	git_odb_free(c.odb);
	if (err < 0)
		return -1;
	for (size_t i = 0; i < count; i++) {
		const char *name = git_tree_entry_name(
			git_tree_entry_byindex(agent, i));
		long n = agent_index(name);
		const char *dest;

		if (n < 0 || (size_t)n >= r->opts->agent_count)
			return fail(r->cause, "the checkpoint carries agent "
				    "state %s but this side gave no path for "
				    "it", name);
		dest = r->opts->agent_paths[n];
		if (dest == NULL || dest[0] != '/')
			return fail(r->cause, "agent state path %ld (%s) is "
				    "not an absolute path", n,
				    dest ? dest : "NULL");
	}
	return 0;
}

/*
 * Calls fn(src/NAME, dst/NAME) for each entry of the folder src, stopping
 * at the first failure; 0 or that failure's -errno.
 */
static int each_child(const char *src, const char *dst,
		      int (*fn)(const char *src, const char *dst))
{
	struct dirent *de;
	DIR *d = opendir(src);
	int err = 0;

	if (d == NULL)
		return -errno;
	while (err == 0 && (de = readdir(d)) != NULL) {
		char *s, *t;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		s = path_join(src, de->d_name);
		t = path_join(dst, de->d_name);
		err = fn(s, t);
		free(s);
		free(t);
	}
	closedir(d);
	return err;
}

/* Copies a file, link or folder without following links; 0 or -errno. */
static int copy_path(const char *src, const char *dst)
{
	char target[PATH_MAX];
	struct stat st;
	ssize_t n;
	int in, out, err = 0;

	if (lstat(src, &st) < 0)
		return -errno;
	if (S_ISLNK(st.st_mode)) {
		n = readlink(src, target, sizeof(target) - 1);
		if (n < 0)
			return -errno;
		target[n] = '\0';
		return symlink(target, dst) < 0 ? -errno : 0;
	}
	if (S_ISDIR(st.st_mode)) {
		if (mkdir(dst, (st.st_mode & 07777) | 0700) < 0)
			return -errno;
		return each_child(src, dst, copy_path);
	}
	if (!S_ISREG(st.st_mode))
		return -EINVAL;

	in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return -errno;
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		   st.st_mode & 07777);
	if (out < 0) {
		err = -errno;
		close(in);
		return err;
	}
	while (err == 0 && (n = read(in, target, sizeof(target))) != 0) {
		if (n < 0)
			err = errno == EINTR ? 0 : -errno;
		else
			err = write_all(out, target, (size_t)n);
	}
	if (err == 0 && fchmod(out, st.st_mode & 07777) < 0)
		err = -errno;
	if (close(out) < 0 && err == 0)
		err = -errno;
	close(in);
	return err;
}

/* One move attempt that never replaces dst; 0, -EEXIST or -errno. */
static int move_once(const char *src, const char *dst)
{
	struct stat st;
	int err;

	if (renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_NOREPLACE) == 0)
		return 0;
	err = errno;
	if (err == EINVAL || err == ENOSYS) {
		/* A file system without RENAME_NOREPLACE. */
		if (lstat(dst, &st) == 0)
			return -EEXIST;
		if (rename(src, dst) == 0)
			return 0;
		err = errno;
	}
	if (err != EXDEV)
		return -err;
	if (lstat(dst, &st) == 0)
		return -EEXIST;
	if ((err = copy_path(src, dst)) < 0) {
		rm_rf(dst);
		return err;
	}
	return rm_rf(src);
}

/*
 * Moves src to dst without replacing anything there: folders are merged,
 * and a name already taken gets a numbered suffix. 0 or -errno.
 */
static int move_path(const char *src, const char *dst)
{
	struct stat ss, ds;
	int err;

	err = move_once(src, dst);
	if (err != -EEXIST)
		return err;

	if (lstat(src, &ss) == 0 && lstat(dst, &ds) == 0 &&
	    S_ISDIR(ss.st_mode) && S_ISDIR(ds.st_mode)) {
		err = each_child(src, dst, move_path);
		if (err == 0 && rmdir(src) < 0)
			err = -errno;
		return err;
	}

	for (int i = 1; i <= SUFFIX_MAX && err == -EEXIST; i++) {
		char *alt = xasprintf("%s.%d", dst, i);

		err = move_once(src, alt);
		free(alt);
	}
	return err;
}

/* Moves whatever is at abs into the set-aside folder as sa_rel. */
static int set_aside(struct restore *r, const char *abs, const char *sa_rel)
{
	char *dst = path_join(r->opts->set_aside_dir, sa_rel);
	char *parent = path_dir(dst);
	int err;

	err = mkdir_p(parent, 0700);
	if (err < 0) {
		fail(r->cause, "cannot create the set-aside folder %s (%s)",
		     parent, strerror(-err));
		goto out;
	}
	err = move_path(abs, dst);
	if (err < 0) {
		fail(r->cause, "cannot set aside %s into %s (%s); it was not "
		     "replaced", abs, dst, strerror(-err));
		goto out;
	}
	if (r->res->set_aside == NULL)
		r->res->set_aside = xstrdup(r->opts->set_aside_dir);
	r->res->files_set_aside++;

out:
	free(parent);
	free(dst);
	return err < 0 ? -1 : 0;
}

/* Returns the set-aside name of rel: under prefix when there is one. */
static char *sa_name(const char *prefix, const char *rel)
{
	return prefix ? path_join(prefix, rel) : xstrdup(rel);
}

/*
 * Makes every folder above rel inside root a real folder (and rel itself
 * when whole is set), setting aside any file or link in the way, so that
 * no write below can pass through a link and leave root.
 */
static int folders_make(struct restore *r, const char *root, const char *rel,
			int whole, const char *sa_prefix)
{
	char *path = path_join(root, rel);
	char *start = path + strlen(path) - strlen(rel);
	int err = 0;

	for (char *p = start; err == 0; p++) {
		struct stat st;
		char *name;
		int found;
		char c;

		p = strchr(p, '/');
		if (p == NULL && !whole)
			break;
		if (p == NULL)
			p = path + strlen(path);
		c = *p;
		*p = '\0';
		found = lstat(path, &st) == 0;
		if (found && S_ISDIR(st.st_mode)) {
			*p = c;
			if (c == '\0')
				break;
			continue;
		}
		if (found) {
			name = sa_name(sa_prefix, start);
			err = set_aside(r, path, name);
			free(name);
		} else if (errno != ENOENT) {
			err = fail(r->cause, "cannot stat %s (%s)", path,
				   strerror(errno));
		}
		if (err == 0 && mkdir(path, 0777) < 0)
			err = fail(r->cause, "cannot create the folder %s (%s)",
				   path, strerror(errno));
		*p = c;
		if (c == '\0')
			break;
	}
	free(path);
	return err;
}

/* Tells whether the regular file at path holds exactly data. */
static int file_equals(const char *path, const void *data, size_t len)
{
	char *chunk = xmalloc(COPY_CHUNK);
	const char *want = data;
	size_t seen = 0;
	ssize_t n;
	int fd, same = 0;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		goto out;
	while ((n = read(fd, chunk, COPY_CHUNK)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || seen + (size_t)n > len ||
		    memcmp(chunk, want + seen, (size_t)n))
			goto out;
		seen += (size_t)n;
	}
	same = seen == len;

out:
	if (fd >= 0)
		close(fd);
	free(chunk);
	return same;
}

/*
 * Compares what is on disk with an entry: 1 when equal, 2 when only the
 * exec bit differs, 0 otherwise.
 */
static int disk_same(const char *abs, const struct stat *st,
		     git_filemode_t mode, const void *data, size_t len)
{
	char target[PATH_MAX];
	ssize_t n;
	int exec;

	if (mode == GIT_FILEMODE_LINK) {
		if (!S_ISLNK(st->st_mode))
			return 0;
		n = readlink(abs, target, sizeof(target));
		return n >= 0 && (size_t)n == len && !memcmp(target, data, len);
	}
	if (!S_ISREG(st->st_mode) || (size_t)st->st_size != len ||
	    !file_equals(abs, data, len))
		return 0;
	exec = (st->st_mode & S_IXUSR) != 0;
	return exec == (mode == GIT_FILEMODE_BLOB_EXECUTABLE) ? 1 : 2;
}

/* Creates a file or link at abs (where nothing is) holding data. */
static int entry_write(const char *abs, git_filemode_t mode, const void *data,
		       size_t len)
{
	mode_t perm = mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0755 : 0644;
	char *target;
	int fd, err;

	if (mode == GIT_FILEMODE_LINK) {
		target = xstrndup(data, len);
		err = symlink(target, abs) < 0 ? -errno : 0;
		free(target);
		return err;
	}
	fd = open(abs, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0)
		return -errno;
	err = write_all(fd, data, len);
	if (err == 0 && fchmod(fd, perm) < 0)
		err = -errno;
	if (close(fd) < 0 && err == 0)
		err = -errno;
	if (err)
		unlink(abs);
	return err;
}

/* Replaces each occurrence of from by to in data, into out. */
static void bytes_rewrite(struct buf *out, const char *data, size_t len,
			  const char *from, const char *to)
{
	size_t flen = strlen(from), tlen = strlen(to);
	const char *p = data, *end = data + len, *hit;

	while ((hit = memmem(p, (size_t)(end - p), from, flen)) != NULL) {
		buf_append(out, p, (size_t)(hit - p));
		buf_append(out, to, tlen);
		p = hit + flen;
	}
	buf_append(out, p, (size_t)(end - p));
}

/*
 * Makes root/rel hold blob id with mode: an equal file is left alone, a
 * different one (or anything else in the way) is set aside first. With
 * rewrite, the restore's rewrite_from/rewrite_to apply to the content.
 */
static int entry_place(struct restore *r, const char *root, const char *rel,
		       const char *sa_prefix, const git_oid *id,
		       git_filemode_t mode, int rewrite)
{
	const struct checkpoint_restore_opts *o = r->opts;
	struct buf rewritten = BUF_INIT;
	git_blob *blob = NULL;
	const void *data;
	struct stat st;
	char *abs = path_join(root, rel), *name = NULL;
	size_t len;
	int same, err = -1;

	if (mode == GIT_FILEMODE_COMMIT) {
		/* A submodule: only its folder can be restored. */
		err = folders_make(r, root, rel, 1, sa_prefix);
		goto out;
	}
	if (folders_make(r, root, rel, 0, sa_prefix) < 0)
		goto out;
	if (git_blob_lookup(&blob, r->repo, id) < 0) {
		fail_git(r->cause, "the content of %s is missing from the "
			 "checkpoint", abs);
		goto out;
	}
	data = git_blob_rawcontent(blob);
	len = (size_t)git_blob_rawsize(blob);
	if (rewrite && mode != GIT_FILEMODE_LINK && o->rewrite_from &&
	    o->rewrite_to && o->rewrite_from[0]) {
		bytes_rewrite(&rewritten, data, len, o->rewrite_from,
			      o->rewrite_to);
		data = rewritten.data;
		len = rewritten.len;
	}

	if (lstat(abs, &st) == 0) {
		same = disk_same(abs, &st, mode, data, len);
		if (same == 1) {
			err = 0;
			goto out;
		}
		if (same == 2) {
			if (chmod(abs, mode == GIT_FILEMODE_BLOB_EXECUTABLE
					       ? 0755 : 0644) < 0) {
				fail(r->cause, "cannot change the mode of %s "
				     "(%s)", abs, strerror(errno));
				goto out;
			}
			r->res->files_written++;
			err = 0;
			goto out;
		}
		name = sa_name(sa_prefix, rel);
		if (set_aside(r, abs, name) < 0)
			goto out;
	} else if (errno != ENOENT) {
		fail(r->cause, "cannot stat %s (%s)", abs, strerror(errno));
		goto out;
	}

	err = entry_write(abs, mode, data, len);
	if (err < 0) {
		fail(r->cause, "cannot write %s (%s)", abs, strerror(-err));
		goto out;
	}
	r->res->files_written++;

out:
	buf_free(&rewritten);
	git_blob_free(blob);
	free(name);
	free(abs);
	return err < 0 ? -1 : 0;
}

/* Removes the folders above rel inside root that are now empty. */
static void folders_prune(const char *root, const char *rel)
{
	char *path = path_join(root, rel);
	size_t stop = strlen(path) - strlen(rel);
	char *slash;

	while ((slash = strrchr(path + stop, '/')) != NULL) {
		*slash = '\0';
		if (rmdir(path) < 0)
			break;
	}
	free(path);
}

/*
 * Turns the worktree from the current snapshot's tree into the
 * checkpoint's: files it lacks are set aside, then every added or changed
 * entry is placed.
 */
static int worktree_restore(struct restore *r, const char *root,
			    const git_oid *from, const git_oid *to)
{
	git_tree *old = NULL, *new = NULL;
	git_diff *diff = NULL;
	size_t count;
	int err = -1;

	if (git_tree_lookup(&old, r->repo, from) < 0 ||
	    git_tree_lookup(&new, r->repo, to) < 0 ||
	    git_diff_tree_to_tree(&diff, r->repo, old, new, NULL) < 0) {
		fail_git(r->cause, "cannot compare %s with the checkpoint",
			 root);
		goto out;
	}
	count = git_diff_num_deltas(diff);

	for (size_t i = 0; i < count; i++) {
		const git_diff_delta *d = git_diff_get_delta(diff, i);
		const char *rel = d->old_file.path;
		struct stat st;
		char *abs;
		int e = 0;

		if (d->status != GIT_DELTA_DELETED &&
		    d->status != GIT_DELTA_TYPECHANGE)
			continue;
		abs = path_join(root, rel);
		if (lstat(abs, &st) == 0)
			e = set_aside(r, abs, rel);
		free(abs);
		if (e < 0)
			goto out;
		folders_prune(root, rel);
	}

	for (size_t i = 0; i < count; i++) {
		const git_diff_delta *d = git_diff_get_delta(diff, i);

		if (d->status == GIT_DELTA_DELETED)
			continue;
		if (entry_place(r, root, d->new_file.path, NULL,
				&d->new_file.id, d->new_file.mode, 0) < 0)
			goto out;
	}
	err = 0;

out:
	git_diff_free(diff);
	git_tree_free(new);
	git_tree_free(old);
	return err;
}

/* Loads the checkpoint's index tree into repo's index file. */
static int index_restore(struct restore *r, const git_oid *id)
{
	git_index *index = NULL;
	git_tree *tree = NULL;
	int err = 0;

	/*
	 * Start from an empty index: read_tree keeps the stat data of an old
	 * entry with the same path and blob, and when the file was edited in
	 * the same second with the same size, git would then take the stale
	 * entry as clean and hide the edit. Without stat data, git re-reads.
	 */
	if (git_tree_lookup(&tree, r->repo, id) < 0 ||
	    git_repository_index(&index, r->repo) < 0 ||
	    git_index_clear(index) < 0 ||
	    git_index_read_tree(index, tree) < 0 ||
	    git_index_write(index) < 0)
		err = fail_git(r->cause, "cannot write the index of %s",
			       git_repository_path(r->repo));
	git_index_free(index);
	git_tree_free(tree);
	return err;
}

/* The length of the longest '/'-separated part of a name. */
static size_t longest_part(const char *name)
{
	size_t longest = 0;

	while (*name) {
		size_t n = strcspn(name, "/");

		if (n > longest)
			longest = n;
		name += n;
		if (*name == '/')
			name++;
	}
	return longest;
}

/* Checks that HEAD and the branch can be restored before any change.
 * (A ref part must leave room for git's ".lock" on disk.) */
static int head_check(struct restore *r, const struct checkpoint_info *info,
		      const struct snapshot *cur)
{
	git_reference *ref = NULL;
	git_commit *commit = NULL;
	char *name = NULL;
	int valid = 0, err = -1;

	if (!info->has_head && !info->branch)
		return fail(r->cause, "the checkpoint has neither a head "
			    "commit nor a branch");
	if (info->has_head &&
	    git_commit_lookup(&commit, r->repo, &info->head) < 0) {
		fail_git(r->cause, "the head commit of the checkpoint is not "
			 "in %s; fetch its objects first",
			 git_repository_path(r->repo));
		goto out;
	}
	if (info->branch == NULL) {
		err = 0;
		goto out;
	}
	name = xasprintf("refs/heads/%s", info->branch);
	if (git_reference_name_is_valid(&valid, name) < 0 || !valid ||
	    longest_part(info->branch) > NAME_BYTES_MAX - 5) {
		fail(r->cause, "the checkpoint's branch name '%s' is not "
		     "valid; refusing it", info->branch);
		goto out;
	}
	if (git_reference_lookup(&ref, r->repo, name) == 0 &&
	    git_branch_is_checked_out(ref) == 1 &&
	    !(cur->branch && !strcmp(cur->branch, info->branch))) {
		fail(r->cause, "branch %s is checked out in another worktree "
		     "of %s; restore into a new worktree instead",
		     info->branch, git_repository_path(r->repo));
		goto out;
	}
	err = 0;

out:
	git_reference_free(ref);
	git_commit_free(commit);
	free(name);
	return err;
}

/* Keeps a tip the restore would drop, unless `head` contains it. */
static int tip_keep(struct restore *r, const git_oid *tip,
		    const struct checkpoint_info *info, const char *what)
{
	char hex[GIT_OID_HEXSZ + 1];
	git_reference *ref = NULL;
	char *name, *msg, *old;
	int err = 0;

	if (info->has_head && (git_oid_equal(tip, &info->head) ||
	    git_graph_descendant_of(r->repo, &info->head, tip) == 1))
		return 0;
	name = xasprintf(SET_ASIDE_REFS "%s",
			 git_oid_tostr(hex, sizeof(hex), tip));
	msg = xasprintf("baton: set aside %s before a restore", what);
	if (git_reference_create(&ref, r->repo, name, tip, 1, msg) < 0) {
		err = fail_git(r->cause, "cannot keep %s (%s) before the "
			       "restore", what, hex);
	} else if (r->res->set_aside_ref == NULL) {
		r->res->set_aside_ref = xstrdup(name);
	} else {
		old = r->res->set_aside_ref;
		r->res->set_aside_ref = xasprintf("%s %s", old, name);
		free(old);
	}
	git_reference_free(ref);
	free(msg);
	free(name);
	return err;
}

/*
 * Points HEAD and the checkpoint's branch where the checkpoint says; a
 * branch tip or detached HEAD that would be lost is kept as a ref.
 */
static int head_restore(struct restore *r, const struct checkpoint_info *info,
			const struct snapshot *cur)
{
	const char *msg = "baton: restore checkpoint";
	git_reference *ref = NULL;
	char *name = NULL;
	git_oid tip;
	int err = -1;

	if (cur->has_head && cur->branch == NULL &&
	    tip_keep(r, &cur->head, info, "the detached HEAD") < 0)
		goto out;
	if (info->branch == NULL) {
		if (git_repository_set_head_detached(r->repo,
						     &info->head) < 0) {
			fail_git(r->cause, "cannot detach HEAD in %s",
				 git_repository_path(r->repo));
			goto out;
		}
		err = 0;
		goto out;
	}

	name = xasprintf("refs/heads/%s", info->branch);
	if (git_reference_name_to_id(&tip, r->repo, name) == 0) {
		if (tip_keep(r, &tip, info, name) < 0)
			goto out;
		if (!info->has_head &&
		    git_reference_remove(r->repo, name) < 0) {
			fail_git(r->cause, "cannot make %s unborn", name);
			goto out;
		}
	}
	if (info->has_head && git_reference_create(&ref, r->repo, name,
						   &info->head, 1, msg) < 0) {
		fail_git(r->cause, "cannot set branch %s", info->branch);
		goto out;
	}
	if (git_repository_set_head(r->repo, name) < 0) {
		fail_git(r->cause, "cannot point HEAD at %s", name);
		goto out;
	}
	err = 0;

out:
	git_reference_free(ref);
	free(name);
	return err;
}

/* Places every file of an agent/ folder tree below dest. */
static int agent_tree_place(struct restore *r, const git_oid *id,
			    const char *dest, const char *rel,
			    const char *sa_prefix)
{
	git_tree *tree = NULL;
	int err = 0;

	if (git_tree_lookup(&tree, r->repo, id) < 0)
		return fail_git(r->cause, "agent state folder %s is missing",
				rel);
	if (rel[0] && folders_make(r, dest, rel, 1, sa_prefix) < 0)
		err = -1;
	for (size_t i = 0; err == 0 && i < git_tree_entrycount(tree); i++) {
		const git_tree_entry *e = git_tree_entry_byindex(tree, i);
		git_filemode_t mode = git_tree_entry_filemode_raw(e);
		char *sub = rel[0] ? xasprintf("%s/%s", rel,
					       git_tree_entry_name(e))
				   : xstrdup(git_tree_entry_name(e));

		if (mode == GIT_FILEMODE_TREE)
			err = agent_tree_place(r, git_tree_entry_id(e), dest,
					       sub, sa_prefix);
		else if (mode != GIT_FILEMODE_COMMIT)
			err = entry_place(r, dest, sub, sa_prefix,
					  git_tree_entry_id(e), mode, 1);
		free(sub);
	}
	git_tree_free(tree);
	return err;
}

/* Writes each agent/N to opts->agent_paths[N]. */
static int agent_restore(struct restore *r, git_tree *agent)
{
	for (size_t i = 0; i < git_tree_entrycount(agent); i++) {
		const git_tree_entry *e = git_tree_entry_byindex(agent, i);
		const char *name = git_tree_entry_name(e);
		const char *dest = r->opts->agent_paths[agent_index(name)];
		git_filemode_t mode = git_tree_entry_filemode_raw(e);
		char *parent = path_dir(dest);
		char *leaf = xstrdup(strrchr(dest, '/') + 1);
		char *prefix = xasprintf("agent/%s", name);
		int err = mkdir_p(parent, 0777);
		struct stat st;

		if (err < 0) {
			err = fail(r->cause, "cannot create the folder %s "
				   "(%s)", parent, strerror(-err));
		} else if (leaf[0] == '\0') {
			err = fail(r->cause, "agent state path %s names no "
				   "file", dest);
		} else if (mode == GIT_FILEMODE_TREE) {
			/* The folder itself may be a link the user made. */
			if (stat(dest, &st) < 0 || !S_ISDIR(st.st_mode))
				err = folders_make(r, parent, leaf, 1, prefix);
			if (err == 0)
				err = agent_tree_place(r, git_tree_entry_id(e),
						       dest, "", prefix);
		} else if (mode != GIT_FILEMODE_COMMIT) {
			err = entry_place(r, parent, leaf, prefix,
					  git_tree_entry_id(e), mode, 1);
		}
		free(prefix);
		free(leaf);
		free(parent);
		if (err < 0)
			return -1;
	}
	return 0;
}

/* Makes repo's worktree, index, HEAD and agent state equal checkpoint id. */
int checkpoint_restore(git_repository *repo, const git_oid *id,
		       const struct checkpoint_restore_opts *opts,
		       struct checkpoint_restore_result *out, char **cause)
{
	struct restore r = { repo, opts, out, cause };
	struct checkpoint_info info;
	struct check c = { repo, NULL, "worktree", 0, cause };
	struct snapshot cur;
	git_commit *commit = NULL;
	git_tree *root_tree = NULL, *agent = NULL;
	const git_tree_entry *ag;
	char *root = NULL;
	int err = -1;

	*cause = NULL;
	memset(out, 0, sizeof(*out));
	memset(&cur, 0, sizeof(cur));
	memset(&info, 0, sizeof(info));
	if (opts == NULL || opts->set_aside_dir == NULL ||
	    opts->set_aside_dir[0] == '\0')
		return fail(cause, "a restore needs a set-aside folder for the "
			    "files it replaces");
	root = workdir_of(repo);
	if (root == NULL)
		return fail(cause, "%s has no working tree to restore into",
			    git_repository_path(repo));
	if (checkpoint_read(repo, id, &info, cause) < 0)
		goto out;

	/* Everything from the peer is checked before anything changes. */
	if (git_repository_odb(&c.odb, repo) < 0) {
		fail_git(cause, "cannot open the objects of %s", root);
		goto out;
	}
	if (tree_check(&c, &info.worktree_tree, "") < 0)
		goto out;
	c.what = "index";
	c.entries = 0;
	if (tree_check(&c, &info.index_tree, "") < 0)
		goto out;
	if (git_commit_lookup(&commit, repo, id) < 0 ||
	    git_commit_tree(&root_tree, commit) < 0) {
		fail_git(cause, "cannot read the checkpoint");
		goto out;
	}
	ag = git_tree_entry_byname(root_tree, "agent");
	if (ag && git_tree_lookup(&agent, repo, git_tree_entry_id(ag)) < 0) {
		fail_git(cause, "the agent state of the checkpoint is missing");
		goto out;
	}
	if (agent && agent_check(&r, agent) < 0)
		goto out;
	if (snapshot_take(repo, &cur, cause) < 0 ||
	    head_check(&r, &info, &cur) < 0)
		goto out;

	if (worktree_restore(&r, root, &cur.worktree,
			     &info.worktree_tree) < 0 ||
	    index_restore(&r, &info.index_tree) < 0 ||
	    head_restore(&r, &info, &cur) < 0 ||
	    (agent && agent_restore(&r, agent) < 0))
		goto out;
	err = 0;

out:
	git_odb_free(c.odb);
	git_tree_free(agent);
	git_tree_free(root_tree);
	git_commit_free(commit);
	snapshot_clear(&cur);
	checkpoint_info_clear(&info);
	free(root);
	return err;
}

/* Frees what a restore reported. */
void checkpoint_restore_result_clear(struct checkpoint_restore_result *r)
{
	free(r->set_aside);
	free(r->set_aside_ref);
	memset(r, 0, sizeof(*r));
}

/* Compares repo's current state with checkpoint id. */
int checkpoint_matches(git_repository *repo, const git_oid *id, int *matches,
		       char **cause)
{
	struct checkpoint_info info;
	struct snapshot s;

	*cause = NULL;
	*matches = 0;
	if (checkpoint_read(repo, id, &info, cause) < 0)
		return -1;
	if (snapshot_take(repo, &s, cause) < 0) {
		checkpoint_info_clear(&info);
		return -1;
	}
	*matches = git_oid_equal(&s.worktree, &info.worktree_tree) &&
		   git_oid_equal(&s.index, &info.index_tree) &&
		   s.has_head == info.has_head &&
		   (!s.has_head || git_oid_equal(&s.head, &info.head)) &&
		   !s.branch == !info.branch &&
		   (!s.branch || !strcmp(s.branch, info.branch));
	snapshot_clear(&s);
	checkpoint_info_clear(&info);
	return 0;
}

/*
 * Names remote_url as origin, written straight into the config: libgit2
 * 1.5.1's remote functions match config names with a regex that leaks
 * when nothing matches (git_regexp_match with PCRE2).
 */
static int origin_set(git_repository *repo, const char *url, char **cause)
{
	git_config *cfg = NULL;
	int err = 0;

	if (git_repository_config(&cfg, repo) < 0 ||
	    git_config_set_string(cfg, "remote.origin.url", url) < 0 ||
	    git_config_set_string(cfg, "remote.origin.fetch",
				  "+refs/heads/*:refs/remotes/origin/*") < 0)
		err = fail_git(cause, "cannot set origin to %s in %s", url,
			       git_repository_path(repo));
	git_config_free(cfg);
	return err;
}

/* Creates and opens an empty repository, optionally borrowing objects. */
int checkpoint_repo_init(const char *dir, const char *remote_url,
			 git_repository *objects_from, git_repository **out,
			 char **cause)
{
	git_repository_init_options o = GIT_REPOSITORY_INIT_OPTIONS_INIT;
	git_repository *repo = NULL;
	char *alt = NULL, *line = NULL, *info = NULL;
	int err;

	*cause = NULL;
	*out = NULL;
	o.flags = GIT_REPOSITORY_INIT_MKPATH | GIT_REPOSITORY_INIT_NO_REINIT;
	o.initial_head = "main";
	if (git_repository_init_ext(&repo, dir, &o) < 0)
		return fail_git(cause, "cannot create a repository in %s; "
				"choose an empty folder", dir);
	if (remote_url && origin_set(repo, remote_url, cause) < 0) {
		git_repository_free(repo);
		return -1;
	}
	if (objects_from == NULL) {
		*out = repo;
		return 0;
	}

	info = xasprintf("%sobjects/info", git_repository_commondir(repo));
	alt = xasprintf("%s/alternates", info);
	line = xasprintf("%sobjects\n", git_repository_commondir(objects_from));
	git_repository_free(repo);
	repo = NULL;
	err = mkdir_p(info, 0777);
	if (err == 0)
		err = file_write_atomic(alt, line, strlen(line), 0644);
	if (err < 0) {
		fail(cause, "cannot write %s (%s)", alt, strerror(-err));
		goto out;
	}
	if (git_repository_open(&repo, dir) < 0) {
		fail_git(cause, "cannot open the new repository %s", dir);
		goto out;
	}
	*out = repo;

out:
	free(line);
	free(alt);
	free(info);
	return *out ? 0 : -1;
}
