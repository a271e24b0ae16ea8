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
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define META_VERSION 1
#define META_MAX (1024 * 1024)		/* largest meta.json we parse */
#define SIG_NAME "Baton"
#define SIG_EMAIL "baton@localhost"
#define COPY_CHUNK 65536
#define WHOLE_READ_MAX (1 << 20)	/* files read whole to hash first */
#define TREE_ENTRIES_MAX 5000000	/* refuse trees bigger than this */
#define TREE_DEPTH_MAX 90		/* libgit2 cannot scan past 100 */
#define NAME_BYTES_MAX 255		/* one path component on disk */
#define SUFFIX_MAX 1000			/* numbered set-aside names */
#define SET_ASIDE_REFS "refs/baton/set-aside/"
#define PACK_FAST_ABOVE (4u << 20)	/* raw bytes: zlib's fastest level */
#define PACK_THREADS 4			/* at most, deflating a big pack */

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

/* Stores a file of `size` bytes, open as fd, read whole; see below. */
static int blob_from_small(git_odb *odb, int fd, const char *path,
			   size_t size, git_oid *out, char **cause)
{
	char *data = xmalloc(size + 1);
	size_t got = 0;
	ssize_t n;
	int err = -1;

	while ((n = read(fd, data + got, size + 1 - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fail(cause, "cannot read %s (%s)", path,
			     strerror(errno));
			goto out;
		}
		got += (size_t)n;
		if (got > size)
			break;
	}
	if (got != size) {
		fail(cause, "%s changed while it was being saved; "
		     "try again when it is quiet", path);
		goto out;
	}
	if (git_odb_hash(out, data, size, GIT_OBJECT_BLOB) < 0 ||
	    (!git_odb_exists(odb, out) &&
	     git_odb_write(out, odb, data, size, GIT_OBJECT_BLOB) < 0)) {
		fail_git(cause, "cannot store %s", path);
		goto out;
	}
	err = 0;

out:
	free(data);
	return err;
}

/*
 * Stores the bytes of the regular file at path as a blob: read whole when
 * small, else streamed.
 */
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

	/* A small file is read whole and hashed first: when its blob is
	 * stored already (a snapshot without stat data reads every file),
	 * writing it again would only deflate it into a temporary file. */
	if (st.st_size <= WHOLE_READ_MAX) {
		err = blob_from_small(odb, fd, path, (size_t)st.st_size, out,
				      cause);
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

/*
 * libgit2's strict object creation reads the header of every object an
 * index entry or a tree names, to check that it is there and of the right
 * type: a loose object each, so 5,000 file opens and inflates (and as many
 * error messages formatted and dropped) for each index copied or tree
 * written in a 5,000-file worktree. The ids a snapshot or a restore
 * handles come from the user's index, from blobs just stored or from
 * trees already checked (tree_check), so the check is turned off around
 * them, and only there: Baton keeps libgit2's default, on, elsewhere.
 */
static void strict_objects(int on)
{
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_OBJECT_CREATION, on);
}

/*
 * Drops the assume-unchanged bit of every entry, so the snapshot looks at
 * every file. The bit is plain data in the entry, changed in place: going
 * through git_index_add would throw away the index's tree cache.
 */
static void index_valid_clear(git_index *index)
{
	size_t count = git_index_entrycount(index);

	for (size_t i = 0; i < count; i++) {
		git_index_entry *e =
			(git_index_entry *)git_index_get_byindex(index, i);

		e->flags &= (uint16_t)~GIT_INDEX_ENTRY_VALID;
	}
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
 * object database. Touches no file: a private copy of the user's index, in
 * memory, is updated from the worktree.
 */
static int snapshot_build(git_repository *repo, struct snapshot *s,
			  char **cause)
{
	git_repository *priv = NULL;
	git_index *real = NULL;
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
	/*
	 * The user's index, read on its own and never written back, is
	 * updated from the worktree. Its stat data spares reading unchanged
	 * files (libgit2 compares a file as new as the index file by its
	 * content, as git does with racy entries), and its tree cache spares
	 * writing the trees of unchanged folders again.
	 */
	index_valid_clear(real);
	if (git_repository_set_index(priv, real) < 0) {
		fail_git(cause, "cannot use the index of %s", root);
		goto out;
	}
	if (git_index_add_all(real, NULL, GIT_INDEX_ADD_DEFAULT, collect_path,
			      &changed) < 0) {
		fail_git(cause, "cannot scan the worktree %s", root);
		goto out;
	}
	if (filters_possible(priv, real, &changed) &&
	    filtered_paths(priv, real, &changed, cause) < 0)
		goto out;

	if (git_repository_odb(&odb, priv) < 0) {
		fail_git(cause, "cannot open the objects of %s", root);
		goto out;
	}
	for (size_t i = 0; i < changed.len; i++)
		if (snapshot_update(priv, odb, real, root, changed.v[i],
				    cause) < 0)
			goto out;
	if (git_index_write_tree_to(&s->worktree, real, repo) < 0) {
		fail_git(cause, "cannot save the working files of %s", root);
		goto out;
	}
	err = 0;

out:
	if (err)
		snapshot_clear(s);
	strv_free(&changed);
	git_odb_free(odb);
	git_index_free(real);
	git_repository_free(priv);
	free(index_path);
	free(root);
	return err;
}

/* snapshot_build, without strict object creation (see strict_objects). */
static int snapshot_take(git_repository *repo, struct snapshot *s,
			 char **cause)
{
	int err;

	strict_objects(0);
	err = snapshot_build(repo, s, cause);
	strict_objects(1);
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

/*
 * A set of object ids (open addressing; ids are hashes already, so their
 * first bytes spread well).
 */
struct oidset {
	git_oid *slots;
	unsigned char *used;
	size_t cap;		/* a power of two */
	size_t len;
};

static size_t oidset_slot(const struct oidset *set, const git_oid *id)
{
	size_t h;

	memcpy(&h, id->id, sizeof(h));
	return h & (set->cap - 1);
}

/* Adds id; 1 when it is new, 0 when it was there. */
static int oidset_add(struct oidset *set, const git_oid *id)
{
	size_t i;

	if ((set->len + 1) * 2 > set->cap) {
		struct oidset big = { 0 };

		big.cap = set->cap ? set->cap * 2 : 1024;
		big.slots = xcalloc(big.cap, sizeof(*big.slots));
		big.used = xcalloc(big.cap, 1);
		for (size_t j = 0; j < set->cap; j++)
			if (set->used[j])
				oidset_add(&big, &set->slots[j]);
		free(set->slots);
		free(set->used);
		*set = big;
	}
	for (i = oidset_slot(set, id); set->used[i];
	     i = (i + 1) & (set->cap - 1))
		if (git_oid_equal(&set->slots[i], id))
			return 0;
	set->used[i] = 1;
	git_oid_cpy(&set->slots[i], id);
	set->len++;
	return 1;
}

static int oidset_has(const struct oidset *set, const git_oid *id)
{
	if (set->cap == 0)
		return 0;
	for (size_t i = oidset_slot(set, id); set->used[i];
	     i = (i + 1) & (set->cap - 1))
		if (git_oid_equal(&set->slots[i], id))
			return 1;
	return 0;
}

static void oidset_free(struct oidset *set)
{
	free(set->slots);
	free(set->used);
	memset(set, 0, sizeof(*set));
}

/* The objects of one pack, in the order they are written. */
struct pack_list {
	git_oid *ids;
	size_t len;
	size_t cap;
	struct oidset seen;	/* in the list, or the other side has it */
};

static void pack_list_push(struct pack_list *l, const git_oid *id)
{
	if (l->len == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		l->ids = xrealloc(l->ids, l->cap * sizeof(*l->ids));
	}
	git_oid_cpy(&l->ids[l->len++], id);
}

/*
 * Adds a tree and everything below it to `set`, skipping subtrees already
 * there. With `out`, also lists each object that was not in `set`, a tree
 * before what it holds: what the other side lacks.
 */
static int tree_walk(git_repository *repo, const git_oid *id,
		     struct oidset *set, struct pack_list *out)
{
	git_tree *tree = NULL;

	if (!oidset_add(set, id))
		return 0;
	if (git_tree_lookup(&tree, repo, id) < 0)
		return -1;
	if (out)
		pack_list_push(out, id);
	for (size_t i = 0; i < git_tree_entrycount(tree); i++) {
		const git_tree_entry *e = git_tree_entry_byindex(tree, i);

		if (git_tree_entry_type(e) == GIT_OBJECT_TREE) {
			if (tree_walk(repo, git_tree_entry_id(e), set,
				      out) < 0) {
				git_tree_free(tree);
				return -1;
			}
		} else if (git_tree_entry_type(e) == GIT_OBJECT_BLOB &&
			   oidset_add(set, git_tree_entry_id(e)) && out) {
			pack_list_push(out, git_tree_entry_id(e));
		}
	}
	git_tree_free(tree);
	return 0;
}

/* What a tree the other side holds brings: it and all below it. */
static int tree_mark(git_repository *repo, const git_oid *id,
		     struct oidset *set)
{
	return tree_walk(repo, id, set, NULL);
}

/* Lists a tree and what is below it that the other side lacks. */
static int tree_collect(git_repository *repo, const git_oid *id,
			struct pack_list *l)
{
	return tree_walk(repo, id, &l->seen, l);
}

/* Marks what a commit the other side holds brings: its tree. */
static int commit_mark(git_repository *repo, const git_oid *id,
		       struct oidset *set)
{
	git_commit *c = NULL;
	int err;

	if (git_commit_lookup(&c, repo, id) < 0)
		return -1;
	err = tree_mark(repo, git_commit_tree_id(c), set);
	git_commit_free(c);
	return err;
}

/*
 * Lists the objects reachable from want and not from the haves: the
 * commits the walk yields, and their trees and blobs minus everything in
 * the trees of the haves and of the walk's boundary (the hidden parents).
 */
static int pack_enumerate(git_repository *repo, const git_oid *want,
			  const git_oid *haves, size_t have_count,
			  struct pack_list *l, char **cause)
{
	git_odb *odb = NULL;
	git_revwalk *walk = NULL;
	struct oidset walked = { 0 };
	git_oid *commits = NULL;
	size_t ncommits = 0, cap = 0;
	git_oid id;
	int err = -1, r;

	if (git_repository_odb(&odb, repo) < 0 ||
	    git_revwalk_new(&walk, repo) < 0 ||
	    git_revwalk_push(walk, want) < 0) {
		fail_git(cause, "cannot walk the history of %s",
			 git_repository_path(repo));
		goto out;
	}
	for (size_t i = 0; i < have_count; i++) {
		git_object_t type;
		size_t size;

		if (git_odb_read_header(&size, &type, odb, &haves[i]) < 0 ||
		    type != GIT_OBJECT_COMMIT)
			continue;
		if (git_revwalk_hide(walk, &haves[i]) < 0 ||
		    commit_mark(repo, &haves[i], &l->seen) < 0) {
			fail_git(cause, "cannot use a have of %s",
				 git_repository_path(repo));
			goto out;
		}
	}
	while ((r = git_revwalk_next(&id, walk)) == 0) {
		if (ncommits == cap) {
			cap = cap ? cap * 2 : 64;
			commits = xrealloc(commits, cap * sizeof(*commits));
		}
		git_oid_cpy(&commits[ncommits++], &id);
		oidset_add(&walked, &id);
	}
	if (r != GIT_ITEROVER) {
		fail_git(cause, "cannot walk the history of %s",
			 git_repository_path(repo));
		goto out;
	}

	/* The boundary: parents the walk did not yield are the other
	 * side's, and so is everything in their trees. */
	for (size_t i = 0; i < ncommits; i++) {
		git_commit *c = NULL;

		if (git_commit_lookup(&c, repo, &commits[i]) < 0) {
			fail_git(cause, "cannot read a commit to pack");
			goto out;
		}
		for (unsigned p = 0; p < git_commit_parentcount(c); p++) {
			const git_oid *pid = git_commit_parent_id(c, p);

			if (oidset_has(&walked, pid) ||
			    !oidset_add(&l->seen, pid))
				continue;
			if (commit_mark(repo, pid, &l->seen) < 0) {
				git_commit_free(c);
				fail_git(cause, "cannot read a commit the "
					 "other side has");
				goto out;
			}
		}
		git_commit_free(c);
	}

	for (size_t i = 0; i < ncommits; i++) {
		git_commit *c = NULL;

		oidset_add(&l->seen, &commits[i]);
		pack_list_push(l, &commits[i]);
		if (git_commit_lookup(&c, repo, &commits[i]) < 0 ||
		    tree_collect(repo, git_commit_tree_id(c), l) < 0) {
			git_commit_free(c);
			fail_git(cause, "cannot read the objects to pack");
			goto out;
		}
		git_commit_free(c);
	}
	err = 0;

out:
	free(commits);
	oidset_free(&walked);
	git_revwalk_free(walk);
	git_odb_free(odb);
	return err;
}

/*
 * A pack file of the repository and its index (version 2), mapped, so an
 * object stored whole in it can be copied into a new pack as it is,
 * without inflating and deflating it again (git calls it pack reuse).
 */
struct pack_map {
	const unsigned char *idx;
	size_t idx_len;
	const unsigned char *pack;
	size_t pack_len;
	uint32_t count;
	uint64_t *offsets;	/* every entry's offset, ascending */
	struct pack_map *next;
};

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The offset of entry i of an index; UINT64_MAX when it is damaged. */
static uint64_t pack_map_offset(const struct pack_map *m, uint32_t i)
{
	const unsigned char *offs = m->idx + 8 + 1024 + (size_t)m->count * 24;
	const unsigned char *large = offs + (size_t)m->count * 4;
	uint32_t o = be32(offs + (size_t)i * 4);
	size_t at;

	if (!(o & 0x80000000u))
		return o;
	at = (size_t)(o & 0x7fffffffu) * 8;
	if ((size_t)(large - m->idx) + at + 8 > m->idx_len - 40)
		return UINT64_MAX;
	return (uint64_t)be32(large + at) << 32 | be32(large + at + 4);
}

static void pack_maps_free(struct pack_map *m)
{
	while (m) {
		struct pack_map *next = m->next;

		if (m->idx)
			munmap((void *)m->idx, m->idx_len);
		if (m->pack)
			munmap((void *)m->pack, m->pack_len);
		free(m->offsets);
		free(m);
		m = next;
	}
}

/* Maps a whole file read-only; NULL when it cannot. */
static const unsigned char *file_map(const char *path, size_t *len)
{
	struct stat st;
	void *p;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || st.st_size <= 0) {
		close(fd);
		return NULL;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return NULL;
	*len = (size_t)st.st_size;
	return p;
}

/* Maps pack NAME.pack and NAME.idx under dir; NULL when either is not
 * usable (an unknown index version, a size that does not add up). */
static struct pack_map *pack_map_open(const char *dir, const char *name)
{
	struct pack_map *m = xcalloc(1, sizeof(*m));
	char *path = xasprintf("%s/%s.idx", dir, name);
	int ok = 0;

	m->idx = file_map(path, &m->idx_len);
	free(path);
	path = xasprintf("%s/%s.pack", dir, name);
	m->pack = file_map(path, &m->pack_len);
	free(path);
	if (m->idx == NULL || m->pack == NULL || m->idx_len < 8 + 1024 + 40 ||
	    memcmp(m->idx, "\377tOc\0\0\0\2", 8) ||
	    m->pack_len < 32 || memcmp(m->pack, "PACK", 4))
		goto out;
	m->count = be32(m->idx + 8 + 1020);
	if ((uint64_t)m->count * 28 + 8 + 1024 + 40 > m->idx_len ||
	    be32(m->pack + 8) != m->count)
		goto out;
	m->offsets = xcalloc((size_t)m->count + 1, sizeof(*m->offsets));
	for (uint32_t i = 0; i < m->count; i++) {
		m->offsets[i] = pack_map_offset(m, i);
		if (m->offsets[i] < 12 || m->offsets[i] >= m->pack_len - 20)
			goto out;
	}
	qsort(m->offsets, m->count, sizeof(*m->offsets), u64_cmp);
	m->offsets[m->count] = m->pack_len - 20;	/* the trailer */
	ok = 1;
out:
	if (!ok) {
		pack_maps_free(m);
		return NULL;
	}
	return m;
}

/* Maps every pack of repo's object database. */
static struct pack_map *pack_maps_open(git_repository *repo)
{
	struct pack_map *list = NULL;
	struct dirent *de;
	char *dir = xasprintf("%sobjects/pack", git_repository_commondir(repo));
	DIR *d = opendir(dir);

	while (d && (de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		struct pack_map *m;
		char *name;

		if (n < 5 || strcmp(de->d_name + n - 4, ".idx"))
			continue;
		name = xstrndup(de->d_name, n - 4);
		m = pack_map_open(dir, name);
		free(name);
		if (m) {
			m->next = list;
			list = m;
		}
	}
	if (d)
		closedir(d);
	free(dir);
	return list;
}

/*
 * Finds id stored whole (not as a delta) in one of the packs: its raw
 * entry, header and zlib stream, checked against the index's CRC.
 */
static int pack_maps_find(const struct pack_map *m, const git_oid *id,
			  const unsigned char **raw, size_t *len)
{
	for (; m; m = m->next) {
		const unsigned char *ids = m->idx + 8 + 1024;
		const unsigned char *fan = m->idx + 8;
		uint32_t lo = id->id[0] ? be32(fan + (id->id[0] - 1) * 4) : 0;
		uint32_t hi = be32(fan + id->id[0] * 4);
		uint64_t off, end;
		size_t a, b;
		int type;

		while (lo < hi && hi <= m->count) {
			uint32_t mid = lo + (hi - lo) / 2;
			int c = memcmp(ids + (size_t)mid * 20, id->id, 20);

			if (c < 0) {
				lo = mid + 1;
				continue;
			}
			if (c > 0) {
				hi = mid;
				continue;
			}
			off = pack_map_offset(m, mid);
			a = 0;
			b = m->count;
			while (a < b) {	/* the offset's place, then the next */
				size_t k = a + (b - a) / 2;

				if (m->offsets[k] <= off)
					a = k + 1;
				else
					b = k;
			}
			end = m->offsets[a];
			type = (m->pack[off] >> 4) & 7;
			if (off >= end || type < GIT_OBJECT_COMMIT ||
			    type > GIT_OBJECT_TAG ||
			    crc32(0, m->pack + off, (uInt)(end - off)) !=
			    be32(ids + (size_t)m->count * 20 + (size_t)mid * 4))
				return 0;
			*raw = m->pack + off;
			*len = (size_t)(end - off);
			return 1;
		}
	}
	return 0;
}

/* Appends a pack entry header: type and size, 7 bits a byte. */
static void pack_entry_header(struct buf *out, git_object_t type,
			      size_t size)
{
	unsigned char h[16];
	size_t n = 0;

	h[n] = (unsigned char)((type << 4) | (size & 15));
	size >>= 4;
	while (size) {
		h[n++] |= 0x80;
		h[n] = size & 0x7f;
		size >>= 7;
	}
	buf_append(out, h, n + 1);
}

/*
 * Appends data deflated at `level`, with a window and hash table no bigger
 * than the data needs: zlib clears its hash table for every stream, and
 * the default one (64 KiB) costs more than a small file's compression.
 */
static int pack_deflate(struct buf *out, const void *data, size_t len,
			int level)
{
	int bits = 9, mem;
	z_stream z;
	int r;

	while (bits < 15 && ((size_t)1 << bits) < len)
		bits++;
	mem = bits - 7 < 1 ? 1 : bits - 7;
	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, level, Z_DEFLATED, bits, mem > 8 ? 8 : mem,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	buf_grow(out, deflateBound(&z, (uLong)len));
	z.next_in = (Bytef *)data;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)out->data + out->len;
	z.avail_out = (uInt)(out->cap - out->len - 1);
	r = deflate(&z, Z_FINISH);
	out->len += z.total_out;
	deflateEnd(&z);
	return r == Z_STREAM_END ? 0 : -1;
}

/*
 * Appends the pack entries of ids[from..to): copied whole from a pack of
 * the repository when one holds the object undeltified, else read and
 * deflated at `level`.
 */
static int pack_entries(git_odb *odb, const struct pack_map *maps,
			const git_oid *ids, size_t from, size_t to, int level,
			struct buf *out, char **cause)
{
	for (size_t i = from; i < to; i++) {
		git_odb_object *o = NULL;
		const unsigned char *entry;
		size_t entry_len;
		int e;

		if (pack_maps_find(maps, &ids[i], &entry, &entry_len)) {
			buf_append(out, entry, entry_len);
			continue;
		}
		if (git_odb_read(&o, odb, &ids[i]) < 0)
			return fail_git(cause, "cannot read an object to pack");
		pack_entry_header(out, git_odb_object_type(o),
				  git_odb_object_size(o));
		e = pack_deflate(out, git_odb_object_data(o),
				 git_odb_object_size(o), level);
		git_odb_object_free(o);
		if (e < 0)
			return fail(cause, "cannot compress an object to pack");
	}
	return 0;
}

/* One thread's share of a big pack: its own odb, its own buffer. */
struct pack_job {
	const char *objects_dir;
	const struct pack_map *maps;
	const git_oid *ids;
	size_t from, to;
	int level;
	struct buf out;
	char *cause;
	int err;
};

static void *pack_job_run(void *arg)
{
	struct pack_job *j = arg;
	git_odb *odb = NULL;

	if (git_odb_open(&odb, j->objects_dir) < 0)
		j->err = fail_git(&j->cause, "cannot open the objects in %s",
				  j->objects_dir);
	else
		j->err = pack_entries(odb, j->maps, j->ids, j->from, j->to,
				      j->level, &j->out, &j->cause);
	git_odb_free(odb);
	return NULL;
}

/*
 * Appends the entries of a big pack, the objects split in runs among up
 * to PACK_THREADS threads (deflating is most of the time of a first
 * pack). Object reads skip libgit2's hash check meanwhile: whoever
 * receives the pack hashes every object anyway.
 */
static int pack_entries_parallel(git_repository *repo,
				 const struct pack_map *maps,
				 const struct pack_list *l, struct buf *out,
				 char **cause)
{
	struct pack_job jobs[PACK_THREADS];
	pthread_t tids[PACK_THREADS];
	int started[PACK_THREADS] = { 0 };
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t n = cpus < 1 ? 1 : (size_t)cpus;
	char *dir = xasprintf("%sobjects", git_repository_commondir(repo));
	int err = 0;

	if (n > PACK_THREADS)
		n = PACK_THREADS;
	memset(jobs, 0, sizeof(jobs));
	for (size_t t = 0; t < n; t++) {
		jobs[t].objects_dir = dir;
		jobs[t].maps = maps;
		jobs[t].ids = l->ids;
		jobs[t].from = l->len * t / n;
		jobs[t].to = l->len * (t + 1) / n;
		jobs[t].level = Z_BEST_SPEED;
	}
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0);
	for (size_t t = 1; t < n; t++)
		started[t] = pthread_create(&tids[t], NULL, pack_job_run,
					    &jobs[t]) == 0;
	pack_job_run(&jobs[0]);
	for (size_t t = 1; t < n; t++) {
		if (started[t])
			pthread_join(tids[t], NULL);
		else
			pack_job_run(&jobs[t]);	/* no thread: here */
	}
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 1);

	for (size_t t = 0; t < n; t++) {
		if (err == 0 && jobs[t].err < 0) {
			*cause = jobs[t].cause;
			jobs[t].cause = NULL;
			err = -1;
		}
		if (err == 0)
			buf_append(out, jobs[t].out.data, jobs[t].out.len);
		buf_free(&jobs[t].out);
		free(jobs[t].cause);
	}
	free(dir);
	return err;
}

/*
 * Packs want's objects minus those reachable from the haves repo holds.
 * Each object is stored whole, zlib-compressed, never as a delta: the
 * delta search of a first pack of a 60 MB worktree takes seconds, and the
 * objects a move adds later are new files, which have no base in the
 * pack. A big pack copies the objects repo's packs hold whole as they
 * are there (the relay's store, a cloned repository) and compresses the
 * others at zlib's fastest level.
 */
int checkpoint_pack(git_repository *repo, const git_oid *want,
		    const git_oid *haves, size_t have_count, struct buf *out,
		    char **cause)
{
	struct pack_list l = { 0 };
	struct pack_map *maps = NULL;
	git_odb *odb = NULL;
	EVP_MD_CTX *sha = NULL;
	unsigned char head[12] = { 'P', 'A', 'C', 'K', 0, 0, 0, 2 };
	unsigned char sum[EVP_MAX_MD_SIZE];
	unsigned sum_len = 0;
	size_t start = out->len, raw = 0;
	int level = Z_DEFAULT_COMPRESSION, err = -1;

	*cause = NULL;
	if (pack_enumerate(repo, want, haves, have_count, &l, cause) < 0)
		goto out;
	if (git_repository_odb(&odb, repo) < 0) {
		fail_git(cause, "cannot open the objects of %s",
			 git_repository_path(repo));
		goto out;
	}
	if (l.len > UINT32_MAX) {
		fail(cause, "too many objects for one pack");
		goto out;
	}
	for (size_t i = 0; i < l.len; i++) {
		size_t size;
		git_object_t type;

		if (git_odb_read_header(&size, &type, odb, &l.ids[i]) == 0)
			raw += size;
	}
	if (raw > PACK_FAST_ABOVE) {
		level = Z_BEST_SPEED;
		maps = pack_maps_open(repo);
	}

	head[8] = (unsigned char)(l.len >> 24);
	head[9] = (unsigned char)(l.len >> 16);
	head[10] = (unsigned char)(l.len >> 8);
	head[11] = (unsigned char)l.len;
	buf_append(out, head, sizeof(head));
	if ((raw > PACK_FAST_ABOVE
	     ? pack_entries_parallel(repo, maps, &l, out, cause)
	     : pack_entries(odb, maps, l.ids, 0, l.len, level, out,
			    cause)) < 0)
		goto out;
	sha = EVP_MD_CTX_new();
	if (sha == NULL || EVP_DigestInit_ex(sha, EVP_sha1(), NULL) != 1 ||
	    EVP_DigestUpdate(sha, out->data + start, out->len - start) != 1 ||
	    EVP_DigestFinal_ex(sha, sum, &sum_len) != 1) {
		fail(cause, "cannot checksum the pack");
		goto out;
	}
	buf_append(out, sum, sum_len);
	err = 0;

out:
	if (err)
		out->len = start;
	EVP_MD_CTX_free(sha);
	pack_maps_free(maps);
	git_odb_free(odb);
	free(l.ids);
	oidset_free(&l.seen);
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
 * `known` (or NULL) is the tree at the same path in a snapshot of this
 * worktree: a folder that is the same there was made here, from files on
 * this disk, and is not checked again.
 */
static int tree_check(struct check *c, const git_oid *id, const char *prefix,
		      const git_oid *known)
{
	const char **names = NULL;
	git_tree *tree = NULL, *here = NULL;
	size_t count, depth = 0;
	int err = -1;

	if (known && git_oid_equal(id, known))
		return 0;
	for (const char *p = prefix; *p; p++)
		depth += *p == '/';
	if (git_tree_lookup(&tree, c->repo, id) < 0)
		return fail_git(c->cause, "the %s folder '%s' is missing or "
				"damaged; refusing to restore it", c->what,
				prefix[0] ? prefix : "(top)");
	if (known && git_tree_lookup(&here, c->repo, known) < 0)
		here = NULL;
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
				const git_tree_entry *k = here ?
					git_tree_entry_byname(here, name) :
					NULL;

				bad = tree_check(c, git_tree_entry_id(e), sub,
						 k && git_tree_entry_type(k) ==
						 GIT_OBJECT_TREE ?
						 git_tree_entry_id(k) : NULL);
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
	git_tree_free(here);
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
	err = tree_check(&c, git_tree_id(agent), "", NULL);
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

/*
 * Gives an index entry the stat data of the file the restore left at its
 * path, when that file holds the entry's blob (the worktree tree has the
 * same id and mode there; NULL: the index and worktree trees are one).
 * Otherwise the entry keeps none, and git reads the file to compare. The
 * stat fields are plain data in the entry, set in place: going through
 * git_index_add would throw away the tree cache read_tree made.
 */
static void entry_stat_fill(git_index_entry *e, git_tree *worktree,
			    const char *root)
{
	git_tree_entry *te = NULL;
	struct stat st;
	char *abs;

	if (e->mode != GIT_FILEMODE_BLOB &&
	    e->mode != GIT_FILEMODE_BLOB_EXECUTABLE &&
	    e->mode != GIT_FILEMODE_LINK)
		return;
	if (worktree && git_tree_entry_bypath(&te, worktree, e->path) < 0)
		return;
	if (te && (!git_oid_equal(git_tree_entry_id(te), &e->id) ||
		   git_tree_entry_filemode_raw(te) != e->mode)) {
		git_tree_entry_free(te);
		return;
	}
	git_tree_entry_free(te);
	abs = path_join(root, e->path);
	if (lstat(abs, &st) == 0) {
		e->ctime.seconds = (int32_t)st.st_ctim.tv_sec;
		e->ctime.nanoseconds = (uint32_t)st.st_ctim.tv_nsec;
		e->mtime.seconds = (int32_t)st.st_mtim.tv_sec;
		e->mtime.nanoseconds = (uint32_t)st.st_mtim.tv_nsec;
		e->dev = (uint32_t)st.st_dev;
		e->ino = (uint32_t)st.st_ino;
		e->uid = st.st_uid;
		e->gid = st.st_gid;
		e->file_size = (uint32_t)st.st_size;
	}
	free(abs);
}

/*
 * Loads the checkpoint's index tree into repo's index file, with the stat
 * data of the files the restore just placed or found equal, so the next
 * status or snapshot need not read every file again.
 */
static int index_restore(struct restore *r, const char *root,
			 const git_oid *id, const git_oid *worktree_id)
{
	git_index *index = NULL;
	git_tree *tree = NULL, *worktree = NULL;
	char *path;
	int same = git_oid_equal(id, worktree_id), err = -1;

	/*
	 * Start from an empty index: read_tree keeps the stat data of an old
	 * entry with the same path and blob, and when the file was edited in
	 * the same second with the same size, git would then take the stale
	 * entry as clean and hide the edit. The stat data comes from lstat
	 * after the restore instead, as git checkout does, and the index
	 * file is written after it, so git takes an entry as clean only
	 * when the file is older than the index. The index is opened on its
	 * own, not as the repository's: libgit2 would compare every file
	 * the restore wrote by content again before writing (its racy-entry
	 * check, a diff with their paths as a pathspec, which grows with
	 * files times changed files).
	 */
	path = xasprintf("%sindex", git_repository_path(r->repo));
	strict_objects(0);	/* tree_check saw every blob */
	if (git_tree_lookup(&tree, r->repo, id) < 0 ||
	    git_tree_lookup(&worktree, r->repo, worktree_id) < 0 ||
	    git_index_open(&index, path) < 0 ||
	    git_index_clear(index) < 0 ||
	    git_index_read_tree(index, tree) < 0) {
		fail_git(r->cause, "cannot write the index of %s",
			 git_repository_path(r->repo));
		goto out;
	}
	for (size_t i = 0; i < git_index_entrycount(index); i++) {
		git_index_entry *e =
			(git_index_entry *)git_index_get_byindex(index, i);

		entry_stat_fill(e, same ? NULL : worktree, root);
	}
	if (git_index_write(index) < 0) {
		fail_git(r->cause, "cannot write the index of %s",
			 git_repository_path(r->repo));
		goto out;
	}
	err = 0;

out:
	strict_objects(1);
	free(path);
	git_index_free(index);
	git_tree_free(worktree);
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

	/*
	 * Everything from the peer is checked before anything changes (a
	 * snapshot only adds objects), except what this worktree holds the
	 * same already.
	 */
	if (git_repository_odb(&c.odb, repo) < 0) {
		fail_git(cause, "cannot open the objects of %s", root);
		goto out;
	}
	if (snapshot_take(repo, &cur, cause) < 0 ||
	    tree_check(&c, &info.worktree_tree, "", &cur.worktree) < 0)
		goto out;
	c.what = "index";
	c.entries = 0;
	if (!git_oid_equal(&info.index_tree, &info.worktree_tree) &&
	    tree_check(&c, &info.index_tree, "", &cur.index) < 0)
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
	if (head_check(&r, &info, &cur) < 0)
		goto out;

	/*
	 * Blobs are read without libgit2 hashing each one again, as git
	 * checkout reads them: those from the peer were hashed when their
	 * pack was received, and a restore reads every file's blob.
	 */
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0);
	err = worktree_restore(&r, root, &cur.worktree, &info.worktree_tree);
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 1);
	if (err < 0 ||
	    index_restore(&r, root, &info.index_tree,
			  &info.worktree_tree) < 0 ||
	    head_restore(&r, &info, &cur) < 0 ||
	    (agent && agent_restore(&r, agent) < 0)) {
		err = -1;
		goto out;
	}
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

static int lib_started;	/* checkpoint_lib_start ran */

void checkpoint_lib_start(void)
{
	if (lib_started)
		return;
	git_libgit2_init();
	lib_started = 1;
}

void checkpoint_lib_stop(void)
{
	if (!lib_started)
		return;
	git_libgit2_shutdown();
	lib_started = 0;
}
