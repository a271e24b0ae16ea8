/*
 * fuzz_restore.c: fuzz target for checkpoint_restore. The input describes
 * a checkpoint in a compact text form; the target writes its trees, its
 * meta.json and its commit straight into the repository of a target
 * worktree (raw objects, none of the checks a real snapshot makes), may
 * put files and links in the worktree first, restores, and checks:
 *
 *   - the sentinel folder beside the worktree is untouched (the trees may
 *     hold links to it, which must never be written through), and nothing
 *     appears outside the worktree but the set-aside and agent folders;
 *   - nothing in .git changes but the index, HEAD, refs, logs and objects;
 *   - nothing is lost: whatever was in the worktree is still there or in
 *     the set-aside folder;
 *   - a checkpoint that breaks a rule the restore must enforce (.., ., a
 *     name with a slash, .git in any case, an unknown mode, a name twice in
 *     a folder, missing content, a bad link target, a path too long, a bad
 *     branch or head) is refused with a cause before anything changes;
 *   - a restore that succeeds leaves the worktree and agent files equal to
 *     the checkpoint's trees.
 *
 * The description is a list of lines, "OP[WHERE]PATH[<tab>DATA]". PATH is
 * split into names at '/'; in PATH and DATA, \/ is a slash inside a name,
 * and \\ \n \t \0 \xHH mean what they do in C. Tree operations (lowercase)
 * take WHERE: w the worktree tree, i the index tree, b both, a agent state
 * (the first name is the agent/ entry, "0" and "1" have paths here).
 *
 *   f file, DATA its bytes        x executable file      d folder
 *   l link, DATA its target ("@S" the sentinel, "@K" a file in it, "@B" the
 *     folder holding the worktree; other targets climb at most 4 levels)
 *   m submodule (gitlink)         g file whose content was never stored
 *   o entry of raw mode DATA      r DATA "N[:BYTES]": N files PATH0...
 *   e DATA "N": N empty folders PATH0...
 *   n DATA "N": the last name of PATH nested N deep, a file at the bottom
 *   s DATA "N:BYTES": a file of N bytes repeating BYTES
 *
 * Other operations take no WHERE: F X L M a file, executable, link or
 * folder put in the worktree before the restore; I a line (PATH) of
 * .git/info/exclude; B the branch (PATH; empty for none); H the head:
 * "commit" (an empty commit), "missing", "blob", else none; J PATH is the
 * whole meta.json; U trees keep the entries' order (unsorted); T "blob"
 * (worktree/ is a file), "noindex", "nometa" or "agentblob".
 *
 * Each run stays small: at most LINES_MAX lines and ENTRIES_MAX entries;
 * a checkpoint that is not refused and would write more than WRITE_MAX
 * files is not restored. BATON_FUZZ_VERBOSE=1 prints each verdict and
 * cause; BATON_FUZZ_STRICT=1 also stops when a checkpoint expected to
 * restore fails.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <git2.h>
#include <git2/sys/mempack.h>

#include "checkpoint.h"

#define LINES_MAX 512		/* description lines read */
#define ENTRIES_MAX 150000	/* tree entries over all trees */
#define REPEAT_MAX 30000	/* N of r and e */
#define NEST_MAX 4096		/* N of n */
#define BIG_MAX (2 << 20)	/* N of s */
#define CONTENT_MAX (4 << 20)	/* bytes of all s files */
#define WRITE_MAX 1000		/* files a restore may write */
#define DISK_MAX 256		/* F X L M I operations */
#define DISK_DEPTH_MAX 110	/* names in the path of one of those */
#define CLIMB_MAX 4		/* leading .. of a link target */
#define GIT_DEPTH_MAX 100	/* folders libgit2 scans into */
#define JAIL_DEPTH 8		/* folders between the temp root and base */
#define REWRITE_FROM "/FROM"
#define REWRITE_TO "/TO/x"
#define KEEP_TEXT "sentinel: must never change\n"

/* Stops the run with a message: an invariant of the restore broke. */
#define CHECK(cond, ...) do {						\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_restore: %s: ", #cond);	\
			fprintf(stderr, __VA_ARGS__);			\
			fputc('\n', stderr);				\
			abort();					\
		}							\
	} while (0)

/* What a tree entry of the description is. */
enum kind {
	K_BLOB = 1,	/* 100644 */
	K_EXEC,		/* 100755 */
	K_LINK,		/* 120000 */
	K_TREE,		/* 40000 */
	K_COMMIT,	/* 160000 */
	K_MISSING,	/* 100644, content never stored */
	K_RAW,		/* mode text from the input */
};

/* What the target expects of a restore, worst first. */
enum verdict {
	V_VALID,	/* must restore, unless BATON_FUZZ_STRICT is off */
	V_MAYFAIL,	/* the file system may refuse a name */
	V_UNKNOWN,	/* the objects parse in ways not predicted here */
	V_HOSTILE,	/* must be refused before anything changes */
};

/* One tree entry of the description. */
struct node {
	char *name;
	size_t name_len;
	enum kind kind;
	char *mode;		/* K_RAW: the mode text */
	git_oid id;		/* blob or gitlink id; trees get theirs */
	int bad_target;		/* K_LINK: empty, a NUL or too long */
	int written;		/* K_TREE: id is set */
	int shuffled;		/* K_TREE: kids are not in git order */
	struct node **kids;
	size_t count;
	size_t cap;
};

/* One file, link or folder found on disk. */
struct obj {
	char *rel;		/* path below the walked folder */
	char type;		/* 'f' file, 'l' link, 'd' folder */
	int exec;		/* owner may execute */
	char *data;		/* file bytes or link target */
	size_t len;
	ino_t ino;
	int ignored;		/* git ignored it before the restore */
};

/* A list of what was on disk. */
struct objs {
	struct obj *v;
	size_t len;
	size_t cap;
};

/* A checkpoint as described by one input. */
struct desc {
	struct node *worktree;
	struct node *index;
	struct node *agent;
	size_t entries;		/* over all trees */
	size_t content;		/* bytes of s files */
	int unsorted;		/* U */
	int no_index;		/* T noindex */
	int no_meta;		/* T nometa */
	int worktree_blob;	/* T blob */
	int agent_blob;		/* T agentblob */
	char *branch;		/* NULL for none */
	const char *head;	/* "commit", "missing", "blob" or NULL */
	struct buf meta;	/* J */
	int meta_raw;
	size_t disk_ops;
	int disk_deep;		/* a worktree file too deep for libgit2 */
};

/* Paths and state kept for the whole process. */
static struct {
	char *root;		/* the temp root, removed at exit */
	char *base;		/* holds wt, sentinel, sa, agent */
	char *wt;
	char *sentinel;
	char *keep;		/* sentinel/keep */
	char *sa;		/* set-aside folder */
	char *agent_dir;
	char *agent_paths[2];
	char *pristine;		/* a fresh .git, copied to wt each run */
	struct stat sentinel_st;
	struct stat keep_st;
	git_oid empty_tree;	/* written into each run's objects */
	int verbose;
	int strict;
} env;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Joins a folder and a name. */
static char *join(const char *dir, const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

/* Writes a file; aborts when it cannot. */
static void file_put(const char *path, const void *data, size_t len,
		     mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, mode);

	CHECK(fd >= 0, "cannot create %s (%s)", path, strerror(errno));
	CHECK(write(fd, data, len) == (ssize_t)len, "cannot write %s", path);
	CHECK(close(fd) == 0, "cannot write %s", path);
}

/* Copies a folder of plain files and folders (a fresh .git). */
static void copy_tree(const char *src, const char *dst)
{
	struct dirent *de;
	DIR *d = opendir(src);

	CHECK(d != NULL, "cannot open %s", src);
	CHECK(mkdir(dst, 0755) == 0, "cannot create %s", dst);
	while ((de = readdir(d)) != NULL) {
		char *s, *t, *data = NULL;
		struct stat st;
		size_t len = 0;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		s = join(src, de->d_name);
		t = join(dst, de->d_name);
		CHECK(lstat(s, &st) == 0, "cannot stat %s", s);
		if (S_ISDIR(st.st_mode)) {
			copy_tree(s, t);
		} else {
			CHECK(file_read_all(s, 1 << 20, &data, &len) == 0,
			      "cannot read %s", s);
			file_put(t, data, len, st.st_mode & 0777);
			free(data);
		}
		free(t);
		free(s);
	}
	closedir(d);
}

/* Removes the temp root at exit. */
static void env_cleanup(void)
{
	if (env.root != NULL)
		rm_rf(env.root);
	git_libgit2_shutdown();
}

/*
 * Makes the temp root: ROOT/j/.../j (the base, deep enough that a link
 * climbing CLIMB_MAX levels from anywhere inside stays in ROOT) holding
 * wt and the sentinel, plus a fresh .git to copy and an empty config
 * folder so the user's git settings play no part.
 */
static void env_init(void)
{
	const char *tmp = getenv("TMPDIR");
	git_repository *repo = NULL;
	char *dir, *cause = NULL, *noconfig, *git;

	if (tmp == NULL || tmp[0] == '\0')
		tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	env.root = xasprintf("%s/baton-fuzz-restore.XXXXXX", tmp);
	CHECK(mkdtemp(env.root) != NULL, "cannot create a folder in %s", tmp);
	atexit(env_cleanup);
	umask(022);
	env.verbose = getenv("BATON_FUZZ_VERBOSE") != NULL;
	env.strict = getenv("BATON_FUZZ_STRICT") != NULL;

	git_libgit2_init();
	noconfig = join(env.root, "noconfig");
	CHECK(mkdir(noconfig, 0755) == 0, "cannot create %s", noconfig);
	for (int level = GIT_CONFIG_LEVEL_PROGRAMDATA;
	     level <= GIT_CONFIG_LEVEL_GLOBAL; level++)
		git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, level, noconfig);
	free(noconfig);

	dir = xstrdup(env.root);
	for (int i = 0; i < JAIL_DEPTH; i++) {
		char *next = join(dir, "j");

		CHECK(mkdir(next, 0755) == 0, "cannot create %s", next);
		free(dir);
		dir = next;
	}
	env.base = dir;
	env.wt = join(env.base, "wt");
	env.sentinel = join(env.base, "sentinel");
	env.keep = join(env.sentinel, "keep");
	env.sa = join(env.base, "set-aside");
	env.agent_dir = join(env.base, "agent");
	env.agent_paths[0] = join(env.agent_dir, "0");
	env.agent_paths[1] = join(env.agent_dir, "1");
	env.pristine = join(env.root, "pristine.git");

	CHECK(mkdir(env.sentinel, 0755) == 0, "cannot create the sentinel");
	file_put(env.keep, KEEP_TEXT, strlen(KEEP_TEXT), 0644);
	CHECK(lstat(env.sentinel, &env.sentinel_st) == 0, "sentinel");
	CHECK(lstat(env.keep, &env.keep_st) == 0, "sentinel/keep");

	CHECK(checkpoint_repo_init(env.wt, NULL, NULL, &repo, &cause) == 0,
	      "cannot create the target repository: %s", cause);
	git_repository_free(repo);
	git = join(env.wt, ".git");
	copy_tree(git, env.pristine);
	free(git);
}

/* Appends a copy of one object record. */
static void objs_push(struct objs *l, const struct obj *o)
{
	if (l->len == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 32;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->len++] = *o;
}

/* Frees a list of object records. */
static void objs_free(struct objs *l)
{
	for (size_t i = 0; i < l->len; i++) {
		free(l->v[i].rel);
		free(l->v[i].data);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Orders object records by path. */
static int obj_cmp(const void *a, const void *b)
{
	return strcmp(((const struct obj *)a)->rel,
		      ((const struct obj *)b)->rel);
}

/* Reads a file's bytes or a link's target into o. */
static void obj_read(const char *abs, struct obj *o)
{
	char target[PATH_MAX];
	ssize_t n;
	int err;

	if (o->type == 'l') {
		n = readlink(abs, target, sizeof(target));
		CHECK(n >= 0, "cannot read the link %s", abs);
		o->data = xstrndup(target, (size_t)n);
		o->len = (size_t)n;
	} else if (o->type == 'f') {
		err = file_read_all(abs, 64 << 20, &o->data, &o->len);
		CHECK(err == 0, "cannot read %s (%s)", abs, strerror(-err));
	}
}

/*
 * Lists everything below dir without following links, in path order;
 * skip names one top-level entry to leave out (".git"), or NULL.
 */
static void walk(const char *dir, const char *rel, const char *skip,
		 struct objs *out)
{
	struct dirent *de;
	DIR *d = opendir(dir);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		struct obj o = { 0 };
		struct stat st;
		char *abs;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (skip && !strcmp(de->d_name, skip))
			continue;
		abs = join(dir, de->d_name);
		CHECK(lstat(abs, &st) == 0, "cannot stat %s", abs);
		o.rel = rel[0] ? xasprintf("%s/%s", rel, de->d_name)
			       : xstrdup(de->d_name);
		o.type = S_ISDIR(st.st_mode) ? 'd' :
			 S_ISLNK(st.st_mode) ? 'l' : 'f';
		o.exec = (st.st_mode & S_IXUSR) != 0;
		o.ino = st.st_ino;
		obj_read(abs, &o);
		objs_push(out, &o);
		if (o.type == 'd')
			walk(abs, out->v[out->len - 1].rel, NULL, out);
		free(abs);
	}
	closedir(d);
	if (rel[0] == '\0' && out->len > 1)
		qsort(out->v, out->len, sizeof(*out->v), obj_cmp);
}

/* Tells whether two records say the same thing (ino too when asked). */
static int obj_same(const struct obj *a, const struct obj *b, int ino)
{
	return a->type == b->type && a->len == b->len &&
	       (a->type == 'd' || a->exec == b->exec || a->type == 'l') &&
	       (!ino || a->ino == b->ino) &&
	       (a->len == 0 || !memcmp(a->data, b->data, a->len));
}

/* Checks that two listings are identical. */
static void objs_same(const char *what, const struct objs *a,
		      const struct objs *b)
{
	CHECK(a->len == b->len, "%s: %zu entries became %zu", what, a->len,
	      b->len);
	for (size_t i = 0; i < a->len; i++)
		CHECK(!strcmp(a->v[i].rel, b->v[i].rel) &&
		      obj_same(&a->v[i], &b->v[i], 1),
		      "%s: %s changed", what, a->v[i].rel);
}

/*
 * Lists .git without its objects (a snapshot adds some) and, unless all,
 * without what a restore changes.
 */
static void git_walk(struct objs *out, int all_refs)
{
	static const char *const free_names[] = {
		"objects", "index", "HEAD", "ORIG_HEAD", "refs", "logs",
		"packed-refs", "FETCH_HEAD",
	};
	size_t names = all_refs ? 1 : ARRAY_SIZE(free_names);
	struct objs all = { 0 };
	char *git = join(env.wt, ".git");

	walk(git, "", NULL, &all);
	for (size_t i = 0; i < all.len; i++) {
		size_t top = strcspn(all.v[i].rel, "/");
		int skip = 0;

		for (size_t k = 0; k < names; k++)
			skip |= strlen(free_names[k]) == top &&
				!strncmp(all.v[i].rel, free_names[k], top);
		if (skip) {
			free(all.v[i].rel);
			free(all.v[i].data);
		} else {
			objs_push(out, &all.v[i]);
		}
	}
	free(all.v);
	free(git);
}

/* Checks a folder holds exactly the names given (NULL-terminated). */
static void dir_only(const char *dir, const char *const *names, int subset)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	size_t seen = 0, want = 0;

	CHECK(d != NULL, "%s is gone", dir);
	while (names[want])
		want++;
	while ((de = readdir(d)) != NULL) {
		int known = 0;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		for (size_t i = 0; names[i]; i++)
			known |= !strcmp(names[i], de->d_name);
		CHECK(known, "%s/%s appeared", dir, de->d_name);
		seen++;
	}
	closedir(d);
	CHECK(subset || seen == want, "%s lost an entry", dir);
}

/* Checks nothing appeared outside the worktree and the sentinel holds. */
static void outside_check(void)
{
	static const char *const top[] = { "j", "noconfig", "pristine.git",
					   NULL };
	static const char *const jail[] = { "j", NULL };
	static const char *const base[] = { "wt", "sentinel", "set-aside",
					    "agent", NULL };
	static const char *const sentinel[] = { "keep", NULL };
	char *data = NULL, *dir = xstrdup(env.root);
	struct stat st;
	size_t len = 0;

	dir_only(dir, top, 0);
	for (int i = 1; i < JAIL_DEPTH; i++) {
		char *next = join(dir, "j");

		free(dir);
		dir = next;
		dir_only(dir, jail, 0);
	}
	free(dir);
	dir_only(env.base, base, 1);
	dir_only(env.sentinel, sentinel, 0);

	CHECK(lstat(env.sentinel, &st) == 0 && S_ISDIR(st.st_mode) &&
	      st.st_ino == env.sentinel_st.st_ino &&
	      st.st_mode == env.sentinel_st.st_mode, "the sentinel changed");
	CHECK(lstat(env.keep, &st) == 0 && S_ISREG(st.st_mode) &&
	      st.st_ino == env.keep_st.st_ino &&
	      st.st_mode == env.keep_st.st_mode &&
	      st.st_mtim.tv_nsec == env.keep_st.st_mtim.tv_nsec &&
	      st.st_mtim.tv_sec == env.keep_st.st_mtim.tv_sec,
	      "the sentinel's file changed");
	CHECK(file_read_all(env.keep, 4096, &data, &len) == 0 &&
	      !strcmp(data, KEEP_TEXT), "the sentinel's file was written");
	free(data);
}

/* Makes a new tree entry. */
static struct node *node_new(const char *name, size_t len, enum kind kind)
{
	struct node *n = xcalloc(1, sizeof(*n));

	n->name = xstrndup(name, len);
	n->name_len = len;
	n->kind = kind;
	return n;
}

/* Frees an entry and everything below it. */
static void node_free(struct node *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->count; i++)
		node_free(n->kids[i]);
	free(n->kids);
	free(n->mode);
	free(n->name);
	free(n);
}

/* Orders entries as git does: a folder's name compares with a '/' after. */
static int node_cmp(const void *a, const void *b)
{
	const struct node *x = *(struct node *const *)a;
	const struct node *y = *(struct node *const *)b;
	size_t len = x->name_len < y->name_len ? x->name_len : y->name_len;
	int c = memcmp(x->name, y->name, len);
	unsigned char cx, cy;

	if (c != 0)
		return c;
	cx = len < x->name_len ? (unsigned char)x->name[len] :
	     x->kind == K_TREE ? '/' : 0;
	cy = len < y->name_len ? (unsigned char)y->name[len] :
	     y->kind == K_TREE ? '/' : 0;
	return cx - cy;
}

/* Adds kid below parent, last. */
static void node_add(struct desc *d, struct node *parent, struct node *kid)
{
	if (parent->count == parent->cap) {
		parent->cap = parent->cap ? parent->cap * 2 : 4;
		parent->kids = xrealloc(parent->kids,
					parent->cap * sizeof(*parent->kids));
	}
	parent->kids[parent->count++] = kid;
	parent->shuffled |= parent->count > 1 &&
			    node_cmp(&parent->kids[parent->count - 2],
				     &kid) > 0;
	d->entries++;
}

/* Finds the newest folder entry of that name below parent, or adds one. */
static struct node *node_dir(struct desc *d, struct node *parent,
			     const struct buf *name)
{
	struct node *n;

	for (size_t i = parent->count; i-- > 0;) {
		n = parent->kids[i];
		if (n->kind == K_TREE && n->name_len == name->len &&
		    !memcmp(n->name, name->data, name->len))
			return n;
	}
	n = node_new(name->data, name->len, K_TREE);
	node_add(d, parent, n);
	return n;
}

/*
 * Decodes the escapes of [s, end) into out[0]; with names, splits at each
 * unescaped '/' into out[0..max-1] (the rest of a longer path is dropped).
 * Returns how many buffers were filled.
 */
static size_t unescape(const char *s, const char *end, struct buf *out,
		       size_t max, int names)
{
	size_t count = 0;

	buf_reset(&out[0]);
	buf_append(&out[0], "", 0);
	for (; s < end; s++) {
		char c = *s;

		if (c == '/' && names) {
			if (count + 1 == max)
				break;
			buf_reset(&out[++count]);
			buf_append(&out[count], "", 0);
			continue;
		}
		if (c == '\\' && s + 1 < end) {
			c = *++s;
			if (c == 'n') {
				c = '\n';
			} else if (c == 't') {
				c = '\t';
			} else if (c == '0') {
				c = '\0';
			} else if (c == 'x' && end - s > 2) {
				char hex[3] = { s[1], s[2], 0 };

				c = (char)strtol(hex, NULL, 16);
				s += 2;
			}
		}
		buf_append(&out[count], &c, 1);
	}
	return count + 1;
}

/* Parses "N" or "N:REST" of DATA, N capped at max. */
static size_t count_parse(const struct buf *data, size_t max,
			  const char **rest, size_t *rest_len)
{
	size_t n = 0, i = 0;

	while (i < data->len && data->data[i] >= '0' &&
	       data->data[i] <= '9') {
		n = n * 10 + (size_t)(data->data[i++] - '0');
		if (n > max)
			n = max;
	}
	if (i < data->len && data->data[i] == ':')
		i++;
	*rest = data->data + i;
	*rest_len = data->len - i;
	return n;
}

/* Makes a link target safe to follow: see the comment at the top. */
static void target_safe(const struct buf *in, struct buf *out)
{
	const char *p = in->data, *end = in->data + in->len;
	int climbs = 0, named = 0;

	buf_reset(out);
	if (in->len == 2 && !memcmp(p, "@S", 2)) {
		buf_puts(out, env.sentinel);
		return;
	}
	if (in->len == 2 && !memcmp(p, "@K", 2)) {
		buf_puts(out, env.keep);
		return;
	}
	if (in->len == 2 && !memcmp(p, "@B", 2)) {
		buf_puts(out, env.base);
		return;
	}
	while (p < end && *p == '/')
		p++;
	while (p < end) {
		const char *slash = memchr(p, '/', (size_t)(end - p));
		const char *stop = slash ? slash : end;
		int up = stop - p == 2 && p[0] == '.' && p[1] == '.';

		if (!up || (!named && climbs++ < CLIMB_MAX)) {
			named |= !up;
			if (out->len > 0)
				buf_append(out, "/", 1);
			buf_append(out, p, (size_t)(stop - p));
		}
		p = slash ? slash + 1 : end;
	}
}

/* Stores bytes as a blob. */
static void blob_put(git_odb *odb, const void *data, size_t len,
		     git_oid *out)
{
	CHECK(git_odb_write(out, odb, data, len, GIT_OBJECT_BLOB) == 0,
	      "cannot store a blob");
}

/* Adds the entries one tree operation describes. */
static void tree_op(struct desc *d, git_odb *odb, char op, struct node *root,
		    struct buf *names, size_t count, const struct buf *data)
{
	struct node *parent = root, *n;
	const struct buf *leaf = &names[count - 1];
	const char *rest;
	size_t rest_len, many;
	struct buf tmp = BUF_INIT;
	int width;
	git_oid id;

	for (size_t i = 0; i + 1 < count; i++)
		parent = node_dir(d, parent, &names[i]);

	switch (op) {
	case 'f': case 'x': case 'l': case 'g': case 'm': case 'o':
		n = node_new(leaf->data, leaf->len,
			     op == 'f' ? K_BLOB : op == 'x' ? K_EXEC :
			     op == 'l' ? K_LINK : op == 'g' ? K_MISSING :
			     op == 'm' ? K_COMMIT : K_RAW);
		if (op == 'l') {
			target_safe(data, &tmp);
			n->bad_target = tmp.len == 0 || tmp.len >= PATH_MAX ||
					memchr(tmp.data, '\0', tmp.len);
			blob_put(odb, tmp.data ? tmp.data : "", tmp.len,
				 &n->id);
		} else if (op == 'g' || op == 'm') {
			buf_printf(&tmp, "%c:", op);
			buf_append(&tmp, data->data, data->len);
			git_odb_hash(&n->id, tmp.data, tmp.len,
				     GIT_OBJECT_BLOB);
		} else if (op == 'o') {
			n->mode = xstrndup(data->data, data->len);
			blob_put(odb, "odd\n", 4, &n->id);
		} else {
			blob_put(odb, data->data, data->len, &n->id);
		}
		node_add(d, parent, n);
		break;
	case 'd':
		node_add(d, parent, node_new(leaf->data, leaf->len, K_TREE));
		break;
	case 'r': case 'e':
		many = count_parse(data, REPEAT_MAX, &rest, &rest_len);
		if (many > ENTRIES_MAX - d->entries)
			many = ENTRIES_MAX - d->entries;
		blob_put(odb, rest, rest_len, &id);
		width = snprintf(NULL, 0, "%zu", many ? many - 1 : 0);
		for (size_t i = 0; i < many; i++) {
			/* zero-padded, so the names come in git order */
			char num[24];

			buf_reset(&tmp);
			buf_append(&tmp, leaf->data, leaf->len);
			buf_append(&tmp, num, (size_t)snprintf(num,
				   sizeof(num), "%0*zu", width, i));
			n = node_new(tmp.data, tmp.len,
				     op == 'r' ? K_BLOB : K_TREE);
			n->id = id;
			node_add(d, parent, n);
		}
		break;
	case 'n':
		many = count_parse(data, NEST_MAX, &rest, &rest_len);
		for (size_t i = 0; i < many && d->entries < ENTRIES_MAX; i++)
			parent = node_dir(d, parent, leaf);
		n = node_new("f", 1, K_BLOB);
		blob_put(odb, "deep\n", 5, &n->id);
		node_add(d, parent, n);
		break;
	case 's':
		many = count_parse(data, BIG_MAX, &rest, &rest_len);
		if (many > CONTENT_MAX - d->content)
			many = CONTENT_MAX - d->content;
		d->content += many;
		if (rest_len == 0) {
			rest = "\0";
			rest_len = 1;
		}
		buf_grow(&tmp, many);
		for (size_t i = 0; i < many; i++)
			tmp.data[i] = rest[i % rest_len];
		tmp.len = many;
		n = node_new(leaf->data, leaf->len, K_BLOB);
		blob_put(odb, tmp.data, tmp.len, &n->id);
		node_add(d, parent, n);
		break;
	}
	buf_free(&tmp);
}

/*
 * Puts a file, link or folder in the worktree before the restore; gives
 * up quietly on a name that would leave it or pass through a link.
 */
static void disk_op(char op, struct buf *names, size_t count,
		    const struct buf *data)
{
	struct buf target = BUF_INIT;
	char *path = xstrdup(env.wt), *next;
	struct stat st;
	int fd;

	for (size_t i = 0; i < count; i++) {
		const struct buf *n = &names[i];

		if (n->len == 0 || memchr(n->data, '\0', n->len) ||
		    memchr(n->data, '/', n->len) ||
		    !strcmp(n->data, ".") || !strcmp(n->data, "..") ||
		    !strcasecmp(n->data, ".git"))
			goto out;
		next = join(path, n->data);
		free(path);
		path = next;
		if (i + 1 == count)
			break;
		if (lstat(path, &st) < 0 && mkdir(path, 0755) < 0)
			goto out;
		if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
			goto out;
	}

	if (op == 'M') {
		mkdir(path, 0755);
	} else if (op == 'L') {
		target_safe(data, &target);
		if (memchr(target.data ? target.data : "", '\0', target.len) ==
		    NULL && target.len > 0)
			(void)!symlink(target.data, path);
	} else {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW,
			  op == 'X' ? 0755 : 0644);
		if (fd >= 0) {
			(void)!write(fd, data->data ? data->data : "",
				     data->len);
			close(fd);
		}
	}

out:
	buf_free(&target);
	free(path);
}

/* Tells whether [s, end) starts with word. */
static int starts(const char *s, const char *end, const char *word)
{
	size_t len = strlen(word);

	return (size_t)(end - s) >= len && !memcmp(s, word, len);
}

/* Reads the description into d, writing blobs and the worktree's files. */
static void desc_parse(struct desc *d, git_odb *odb, const uint8_t *input,
		       size_t size)
{
	static struct buf names[NEST_MAX];
	const char *p = (const char *)input, *end = p + size;
	struct buf data = BUF_INIT, exclude = BUF_INIT;
	char *path;

	for (int line = 0; p < end && line < LINES_MAX; line++) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *stop = eol ? eol : end, *tab, *s = p;
		char op, where = 0;
		size_t count;

		p = eol ? eol + 1 : end;
		if (s == stop)
			continue;	/* an empty line */
		op = *s++;
		if (strchr("fxldmgorens", op) && op != '\0' && s < stop)
			where = *s++;
		tab = memchr(s, '\t', (size_t)(stop - s));
		count = unescape(s, tab ? tab : stop, names, NEST_MAX, 1);
		unescape(tab ? tab + 1 : stop, stop, &data, 1, 0);

		if (where == 'w' || where == 'b')
			tree_op(d, odb, op, d->worktree, names, count, &data);
		if (where == 'i' || where == 'b')
			tree_op(d, odb, op, d->index, names, count, &data);
		if (where == 'a')
			tree_op(d, odb, op, d->agent, names, count, &data);
		if (where || d->entries >= ENTRIES_MAX)
			continue;

		switch (op) {
		case 'F': case 'X': case 'L': case 'M':
			if (d->disk_ops++ >= DISK_MAX ||
			    count > DISK_DEPTH_MAX)
				break;
			disk_op(op, names, count, &data);
			d->disk_deep |= count >= GIT_DEPTH_MAX;
			break;
		case 'I':
			unescape(s, stop, &data, 1, 0);
			buf_append(&exclude, data.data, data.len);
			buf_append(&exclude, "\n", 1);
			break;
		case 'B':
			free(d->branch);
			unescape(s, stop, &data, 1, 0);
			d->branch = data.len ? xstrdup(data.data) : NULL;
			break;
		case 'H':
			d->head = starts(s, stop, "commit") ? "commit" :
				  starts(s, stop, "missing") ? "missing" :
				  starts(s, stop, "blob") ? "blob" : NULL;
			break;
		case 'J':
			unescape(s, stop, &d->meta, 1, 0);
			d->meta_raw = 1;
			break;
		case 'U':
			d->unsorted = 1;
			break;
		case 'T':
			d->worktree_blob |= starts(s, stop, "blob");
			d->no_index |= starts(s, stop, "noindex");
			d->no_meta |= starts(s, stop, "nometa");
			d->agent_blob |= starts(s, stop, "agentblob");
			break;
		}
	}

	path = join(env.wt, ".git/info/exclude");
	file_put(path, exclude.data ? exclude.data : "", exclude.len, 0644);
	free(path);
	for (size_t i = 0; i < NEST_MAX; i++)
		buf_free(&names[i]);
	buf_free(&exclude);
	buf_free(&data);
}

/* The mode text of an entry. */
static const char *node_mode(const struct node *n)
{
	switch (n->kind) {
	case K_EXEC: return "100755";
	case K_LINK: return "120000";
	case K_TREE: return "40000";
	case K_COMMIT: return "160000";
	case K_RAW: return n->mode;
	default: return "100644";
	}
}

/* Writes a folder entry's tree (and those below it) as raw objects. */
static void tree_write(git_odb *odb, struct node *n, int unsorted)
{
	struct buf b = BUF_INIT;

	if (n->count == 0 && !git_oid_is_zero(&env.empty_tree)) {
		n->id = env.empty_tree;	/* thousands of e folders */
		n->written = 1;
		return;
	}
	if (!unsorted && n->shuffled)
		qsort(n->kids, n->count, sizeof(*n->kids), node_cmp);
	for (size_t i = 0; i < n->count; i++) {
		struct node *k = n->kids[i];

		if (k->kind == K_TREE && !k->written)
			tree_write(odb, k, unsorted);
		buf_puts(&b, node_mode(k));
		buf_append(&b, " ", 1);
		buf_append(&b, k->name, k->name_len);
		buf_append(&b, "", 1);
		buf_append(&b, k->id.id, GIT_OID_RAWSZ);
	}
	CHECK(git_odb_write(&n->id, odb, b.data ? b.data : "", b.len,
			    GIT_OBJECT_TREE) == 0, "cannot store a tree");
	n->written = 1;
	buf_free(&b);
}

/* Writes meta.json as the description asks. */
static void meta_write(struct desc *d, git_odb *odb, git_oid *out)
{
	char hex[GIT_OID_HEXSZ + 1];
	cJSON *o = cJSON_CreateObject();
	git_oid head;
	char *text;

	if (d->meta_raw) {
		blob_put(odb, d->meta.data ? d->meta.data : "", d->meta.len,
			 out);
		cJSON_Delete(o);
		return;
	}
	cJSON_AddNumberToObject(o, "version", 1);
	if (d->head == NULL) {
		cJSON_AddNullToObject(o, "head");
	} else {
		if (!strcmp(d->head, "commit")) {
			static const char commit[] =
				"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904"
				"\nauthor F <f@localhost> 0 +0000\ncommitter "
				"F <f@localhost> 0 +0000\n\nhead\n";

			CHECK(git_odb_write(&head, odb, commit,
					    strlen(commit),
					    GIT_OBJECT_COMMIT) == 0, "commit");
		} else if (!strcmp(d->head, "blob")) {
			blob_put(odb, "not a commit\n", 13, &head);
		} else {
			git_odb_hash(&head, "missing", 7, GIT_OBJECT_COMMIT);
		}
		cJSON_AddStringToObject(o, "head",
					git_oid_tostr(hex, sizeof(hex), &head));
	}
	if (d->branch)
		cJSON_AddStringToObject(o, "branch", d->branch);
	else
		cJSON_AddNullToObject(o, "branch");
	cJSON_AddStringToObject(o, "session", "fuzz");
	cJSON_AddStringToObject(o, "worktree", REWRITE_FROM);
	text = cJSON_PrintUnformatted(o);
	CHECK(text != NULL, "cannot print meta.json");
	blob_put(odb, text, strlen(text), out);
	cJSON_free(text);
	cJSON_Delete(o);
}

/* Writes the trees, meta.json and the checkpoint commit. */
static void checkpoint_write(struct desc *d, git_odb *odb, git_oid *out)
{
	struct node *root = node_new("", 0, K_TREE);
	struct buf commit = BUF_INIT;
	char hex[GIT_OID_HEXSZ + 1];
	struct node *n;
	git_oid meta;

	tree_write(odb, d->worktree, d->unsorted);
	tree_write(odb, d->index, d->unsorted);
	tree_write(odb, d->agent, d->unsorted);
	meta_write(d, odb, &meta);

	/* entries go in git order: agent, index, meta.json, worktree */
	if (d->agent->count > 0 || d->agent_blob) {
		n = node_new("agent", 5, d->agent_blob ? K_BLOB : K_TREE);
		n->id = d->agent_blob ? meta : d->agent->id;
		n->written = 1;
		node_add(d, root, n);
	}
	if (!d->no_index) {
		n = node_new("index", 5, K_TREE);
		n->id = d->index->id;
		n->written = 1;
		node_add(d, root, n);
	}
	if (!d->no_meta) {
		n = node_new("meta.json", 9, K_BLOB);
		n->id = meta;
		node_add(d, root, n);
	}
	n = node_new("worktree", 8, d->worktree_blob ? K_BLOB : K_TREE);
	n->id = d->worktree_blob ? meta : d->worktree->id;
	n->written = 1;
	node_add(d, root, n);
	tree_write(odb, root, 1);

	buf_printf(&commit, "tree %s\nauthor F <f@localhost> 0 +0000\n"
		   "committer F <f@localhost> 0 +0000\n\ncheckpoint\n",
		   git_oid_tostr(hex, sizeof(hex), &root->id));
	CHECK(git_odb_write(out, odb, commit.data, commit.len,
			    GIT_OBJECT_COMMIT) == 0, "cannot store a commit");
	buf_free(&commit);
	node_free(root);
}

/* What judging a tree found. */
struct judge {
	int hostile;		/* breaks a rule the restore enforces */
	int unknown;		/* parses in ways not predicted here */
	int mayfail;		/* a name the file system may refuse */
	size_t writes;		/* files, links and folders to write */
};

/* Hashes a name (FNV-1a). */
static uint64_t name_hash(const struct node *n)
{
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < n->name_len; i++)
		h = (h ^ (unsigned char)n->name[i]) * 1099511628211ULL;
	return h;
}

/* Tells whether two entries below n have the same name. */
static int names_repeat(const struct node *n)
{
	size_t size = 16;
	const struct node **slot;
	int dup = 0;

	while (size < n->count * 2)
		size *= 2;
	slot = xcalloc(size, sizeof(*slot));
	for (size_t i = 0; !dup && i < n->count; i++) {
		const struct node *k = n->kids[i];
		size_t at = (size_t)name_hash(k) & (size - 1);

		for (; slot[at] != NULL; at = (at + 1) & (size - 1))
			if (slot[at]->name_len == k->name_len &&
			    !memcmp(slot[at]->name, k->name, k->name_len))
				dup = 1;
		slot[at] = k;
	}
	free(slot);
	return dup;
}

/* Judges a raw mode text the way libgit2 and the restore read it. */
static void mode_judge(const char *mode, struct judge *j)
{
	static const long known[] = { 0100644, 0100755, 0120000, 040000,
				      0160000 };
	size_t len = strlen(mode);
	long value;

	if (len == 0 || len > 6 || strspn(mode, "01234567") != len) {
		j->unknown = 1;
		return;
	}
	value = strtol(mode, NULL, 8);
	for (size_t i = 0; i < ARRAY_SIZE(known); i++)
		if (value == known[i]) {
			j->unknown = 1;
			return;
		}
	j->hostile = 1;
}

/*
 * Judges the entries below n against the restore's rules, apart from its
 * code: prefix is the length of the path above them, disk says whether
 * the restore writes them.
 */
static void tree_judge(const struct node *n, size_t prefix, int disk,
		       struct judge *j)
{
	if (names_repeat(n))
		j->hostile = 1;
	for (size_t i = 0; i < n->count; i++) {
		const struct node *k = n->kids[i];
		size_t path = prefix + k->name_len;

		if (memchr(k->name, '\0', k->name_len)) {
			j->unknown = 1;
			continue;
		}
		if (k->name_len == 0 || !strcmp(k->name, ".") ||
		    !strcmp(k->name, "..") || strchr(k->name, '/') ||
		    !strcasecmp(k->name, ".git") || path >= PATH_MAX / 2)
			j->hostile = 1;
		if (disk && k->name_len > NAME_MAX)
			j->mayfail = 1;
		if (disk && k->kind != K_TREE)
			j->writes++;
		switch (k->kind) {
		case K_RAW:
			mode_judge(k->mode, j);
			break;
		case K_MISSING:
			j->hostile = 1;
			break;
		case K_LINK:
			j->hostile |= k->bad_target;
			break;
		case K_TREE:
			tree_judge(k, path + 1, disk, j);
			j->writes += disk && k->count > 0;
			break;
		default:
			break;
		}
	}
}

/* Tells whether a path has a name too long for a file (and its .lock). */
static int name_too_long(const char *path)
{
	for (const char *p = path; *p;) {
		size_t len = strcspn(p, "/");

		if (len > NAME_MAX - 5)
			return 1;
		p += len + (p[len] == '/');
	}
	return 0;
}

/* Tells what the restore of the described checkpoint must do. */
static enum verdict desc_judge(const struct desc *d, size_t *writes)
{
	struct judge wt = { 0 }, ix = { 0 }, ag = { 0 };
	int hostile = 0, valid = 0, long_ref = 0;
	char *ref;

	tree_judge(d->worktree, 0, 1, &wt);
	tree_judge(d->index, 0, 0, &ix);
	tree_judge(d->agent, 0, 1, &ag);
	for (size_t i = 0; i < d->agent->count; i++) {
		const struct node *k = d->agent->kids[i];

		if (k->name_len != 1 || (k->name[0] != '0' &&
					 k->name[0] != '1'))
			ag.hostile = 1;
	}
	*writes = wt.writes + ag.writes;

	if (d->branch != NULL) {
		ref = xasprintf("refs/heads/%s", d->branch);
		hostile |= git_reference_name_is_valid(&valid, ref) < 0 ||
			   !valid;
		free(ref);
		long_ref = name_too_long(d->branch);
	}
	hostile |= d->head == NULL && d->branch == NULL;
	hostile |= d->head != NULL && strcmp(d->head, "commit");
	hostile |= d->worktree_blob || d->no_index || d->no_meta ||
		   d->agent_blob;
	hostile |= (wt.hostile && !wt.unknown) ||
		   (ix.hostile && !ix.unknown) || (ag.hostile && !ag.unknown);
	if (hostile)
		return V_HOSTILE;
	if (wt.unknown || ix.unknown || ag.unknown || d->meta_raw ||
	    d->unsorted)
		return V_UNKNOWN;
	return wt.mayfail || ag.mayfail || d->disk_deep || long_ref ? V_MAYFAIL
								  : V_VALID;
}

/* Tells whether a tree holds anything a restore writes. */
static int tree_has_files(git_repository *repo, const git_oid *id)
{
	git_tree *tree = NULL;
	int found = 0;

	CHECK(git_tree_lookup(&tree, repo, id) == 0, "a restored tree");
	for (size_t i = 0; !found && i < git_tree_entrycount(tree); i++) {
		const git_tree_entry *e = git_tree_entry_byindex(tree, i);

		found = git_tree_entry_type(e) != GIT_OBJECT_TREE ||
			tree_has_files(repo, git_tree_entry_id(e));
	}
	git_tree_free(tree);
	return found;
}

/* Replaces REWRITE_FROM by REWRITE_TO, as agent files are restored. */
static void rewrite(const char *data, size_t len, struct buf *out)
{
	const char *p = data, *end = data + len, *hit;
	size_t flen = strlen(REWRITE_FROM);

	buf_reset(out);
	buf_append(out, "", 0);
	while ((hit = memmem(p, (size_t)(end - p), REWRITE_FROM, flen))) {
		buf_append(out, p, (size_t)(hit - p));
		buf_puts(out, REWRITE_TO);
		p = hit + flen;
	}
	buf_append(out, p, (size_t)(end - p));
}

/* Checks one restored file or link against its blob. */
static void entry_equal(git_repository *repo, const git_tree_entry *e,
			const char *abs, int agent)
{
	git_filemode_t mode = git_tree_entry_filemode_raw(e);
	struct buf want = BUF_INIT;
	struct obj o = { 0 };
	git_blob *blob = NULL;
	struct stat st;

	CHECK(lstat(abs, &st) == 0, "%s was not restored", abs);
	CHECK(git_blob_lookup(&blob, repo, git_tree_entry_id(e)) == 0,
	      "the blob of %s", abs);
	o.type = S_ISLNK(st.st_mode) ? 'l' : S_ISREG(st.st_mode) ? 'f' : 'd';
	CHECK(o.type == (mode == GIT_FILEMODE_LINK ? 'l' : 'f'),
	      "%s is restored as the wrong type", abs);
	obj_read(abs, &o);
	if (agent && mode != GIT_FILEMODE_LINK)
		rewrite(git_blob_rawcontent(blob),
			(size_t)git_blob_rawsize(blob), &want);
	else
		buf_append(&want, git_blob_rawcontent(blob),
			   (size_t)git_blob_rawsize(blob));
	CHECK(o.len == want.len && !memcmp(o.data, want.data, o.len),
	      "%s holds other bytes than the checkpoint", abs);
	CHECK(mode == GIT_FILEMODE_LINK || !!(st.st_mode & S_IXUSR) ==
	      (mode == GIT_FILEMODE_BLOB_EXECUTABLE),
	      "%s has the wrong exec bit", abs);
	free(o.data);
	buf_free(&want);
	git_blob_free(blob);
}

/*
 * Checks that every entry of tree id is restored below dir; records the
 * paths of the files and links (relative to the worktree) in seen.
 */
static void tree_equal(git_repository *repo, const git_oid *id,
		       const char *dir, const char *rel, int agent,
		       struct objs *seen)
{
	git_tree *tree = NULL;

	CHECK(git_tree_lookup(&tree, repo, id) == 0, "a restored tree");
	for (size_t i = 0; i < git_tree_entrycount(tree); i++) {
		const git_tree_entry *e = git_tree_entry_byindex(tree, i);
		git_filemode_t mode = git_tree_entry_filemode_raw(e);
		const char *name = git_tree_entry_name(e);
		struct obj o = { 0 };
		struct stat st;
		char *abs = join(dir, name);

		o.rel = rel[0] ? xasprintf("%s/%s", rel, name)
			       : xstrdup(name);
		if (mode == GIT_FILEMODE_TREE) {
			if (lstat(abs, &st) < 0)
				CHECK(!tree_has_files(repo,
						      git_tree_entry_id(e)),
				      "the folder %s was not restored", abs);
			else
				CHECK(S_ISDIR(st.st_mode), "%s is not a "
				      "folder", abs);
			if (lstat(abs, &st) == 0)
				tree_equal(repo, git_tree_entry_id(e), abs,
					   o.rel, agent, seen);
			free(o.rel);
		} else if (mode == GIT_FILEMODE_COMMIT) {
			CHECK(agent || (lstat(abs, &st) == 0 &&
					S_ISDIR(st.st_mode)),
			      "the submodule %s is not a folder", abs);
			free(o.rel);
		} else {
			entry_equal(repo, e, abs, agent);
			objs_push(seen, &o);
		}
		free(abs);
	}
	git_tree_free(tree);
}

/* Finds a record by path in a sorted list. */
static const struct obj *objs_find(const struct objs *l, const char *rel)
{
	struct obj key = { 0 };

	key.rel = (char *)rel;
	return l->len ? bsearch(&key, l->v, l->len, sizeof(*l->v), obj_cmp)
		      : NULL;
}

/*
 * Checks that whatever was in the worktree before is still there or in
 * the set-aside folder: the restore deletes nothing.
 */
static void nothing_lost(const struct objs *pre, const struct objs *post)
{
	struct objs sa = { 0 };
	char *used;

	walk(env.sa, "", NULL, &sa);
	used = xcalloc(sa.len + 1, 1);
	for (size_t i = 0; i < pre->len; i++) {
		const struct obj *p = &pre->v[i], *now;
		int found = 0;

		if (p->type == 'd')
			continue;
		now = objs_find(post, p->rel);
		if (now && now->type == p->type && now->len == p->len &&
		    !memcmp(now->data, p->data, p->len))
			continue;
		for (size_t k = 0; !found && k < sa.len; k++) {
			const struct obj *s = &sa.v[k];

			found = !used[k] && s->type == p->type &&
				s->len == p->len &&
				!memcmp(s->data, p->data, p->len);
			used[k] |= found;
		}
		CHECK(found, "%s was replaced but is not in the set-aside "
		      "folder", p->rel);
	}
	free(used);
	objs_free(&sa);
}

/* Checks the worktree holds only the checkpoint and ignored files. */
static void nothing_extra(const struct objs *pre, const struct objs *post,
			  struct objs *seen)
{
	if (seen->len > 1)
		qsort(seen->v, seen->len, sizeof(*seen->v), obj_cmp);
	for (size_t i = 0; i < post->len; i++) {
		const struct obj *o = &post->v[i], *was;

		if (o->type == 'd' || objs_find(seen, o->rel))
			continue;
		was = objs_find(pre, o->rel);
		CHECK(was && was->ignored && obj_same(was, o, 1),
		      "%s is in the worktree but not in the checkpoint",
		      o->rel);
	}
}

/* Marks the records git ignores (before the restore). */
static void ignored_mark(git_repository *repo, struct objs *l)
{
	for (size_t i = 0; i < l->len; i++) {
		int ignored = 0;

		if (l->v[i].type != 'd' &&
		    git_ignore_path_is_ignored(&ignored, repo,
					       l->v[i].rel) == 0)
			l->v[i].ignored = ignored;
	}
}

/* Reads the checkpoint's worktree and agent trees back from the commit. */
static void trees_of(git_repository *repo, const git_oid *id,
		     git_oid *worktree, git_oid *agent, int *has_agent)
{
	git_commit *commit = NULL;
	git_tree *root = NULL;
	const git_tree_entry *e;

	CHECK(git_commit_lookup(&commit, repo, id) == 0 &&
	      git_commit_tree(&root, commit) == 0, "the checkpoint commit");
	e = git_tree_entry_byname(root, "worktree");
	CHECK(e != NULL, "the worktree tree");
	*worktree = *git_tree_entry_id(e);
	e = git_tree_entry_byname(root, "agent");
	*has_agent = e != NULL;
	if (e)
		*agent = *git_tree_entry_id(e);
	git_tree_free(root);
	git_commit_free(commit);
}

/* Checks everything a restore promises (see the top of this file). */
static void restore_check(git_repository *repo, const git_oid *id,
			  enum verdict v, int rc, const char *cause,
			  const struct checkpoint_restore_result *res,
			  const struct objs *pre, const struct objs *git_pre,
			  const struct objs *git_all)
{
	struct objs post = { 0 }, git_post = { 0 }, seen = { 0 };
	git_oid worktree, agent;
	int has_agent;

	CHECK((rc == 0) == (cause == NULL), "rc %d with cause %s", rc,
	      cause ? cause : "NULL");
	outside_check();
	git_walk(&git_post, 0);
	objs_same(".git", git_pre, &git_post);
	objs_free(&git_post);
	walk(env.wt, "", ".git", &post);
	nothing_lost(pre, &post);

	if (v == V_HOSTILE) {
		CHECK(rc < 0, "a hostile checkpoint was restored");
		objs_same("the worktree after a refusal", pre, &post);
		git_walk(&git_post, 1);
		objs_same(".git after a refusal", git_all, &git_post);
		CHECK(access(env.sa, F_OK) < 0 &&
		      access(env.agent_dir, F_OK) < 0,
		      "a refusal set files aside or wrote agent state");
	}
	CHECK(!env.strict || v != V_VALID || rc == 0,
	      "a valid checkpoint was refused: %s", cause);
	if (rc == 0) {
		CHECK((access(env.sa, F_OK) == 0) == (res->set_aside != NULL),
		      "set-aside folder and result disagree");
		CHECK((res->set_aside != NULL) == (res->files_set_aside > 0),
		      "set_aside and files_set_aside disagree");
		trees_of(repo, id, &worktree, &agent, &has_agent);
		tree_equal(repo, &worktree, env.wt, "", 0, &seen);
		nothing_extra(pre, &post, &seen);
		if (has_agent)
			tree_equal(repo, &agent, env.agent_dir, "", 1, &seen);
	}
	objs_free(&seen);
	objs_free(&post);
	objs_free(&git_post);
}

/* Leaves the temp root as a new run expects it: a fresh worktree. */
static void run_reset(void)
{
	char *git = join(env.wt, ".git");

	CHECK(rm_rf(env.wt) == 0 && rm_rf(env.sa) == 0 &&
	      rm_rf(env.agent_dir) == 0, "cannot clean up the last run");
	CHECK(mkdir(env.wt, 0755) == 0, "cannot create %s", env.wt);
	copy_tree(env.pristine, git);
	free(git);
}

/* Builds the described checkpoint, restores it and checks the result. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct checkpoint_restore_opts opts = { 0 };
	struct checkpoint_restore_result res = { 0 };
	struct objs pre = { 0 }, git_pre = { 0 }, git_all = { 0 };
	struct desc d = { 0 };
	const char *agents[2];
	git_repository *repo = NULL;
	git_odb_backend *mem = NULL;
	git_odb *odb = NULL;
	char *cause = NULL;
	enum verdict v;
	size_t writes;
	git_oid id;
	int rc;

	if (env.root == NULL)
		env_init();
	run_reset();
	CHECK(git_repository_open(&repo, env.wt) == 0 &&
	      git_repository_odb(&odb, repo) == 0 &&
	      git_mempack_new(&mem) == 0 &&
	      git_odb_add_backend(odb, mem, 999) == 0,
	      "cannot open the target repository");

	memset(&env.empty_tree, 0, sizeof(env.empty_tree));
	CHECK(git_odb_write(&env.empty_tree, odb, "", 0,
			    GIT_OBJECT_TREE) == 0, "the empty tree");
	d.worktree = node_new("", 0, K_TREE);
	d.index = node_new("", 0, K_TREE);
	d.agent = node_new("", 0, K_TREE);
	desc_parse(&d, odb, data, size);
	checkpoint_write(&d, odb, &id);
	v = desc_judge(&d, &writes);
	if (v != V_HOSTILE && writes > WRITE_MAX)
		goto out;	/* too slow to restore; refusals stay fast */

	walk(env.wt, "", ".git", &pre);
	ignored_mark(repo, &pre);
	git_walk(&git_pre, 0);
	git_walk(&git_all, 1);
	agents[0] = env.agent_paths[0];
	agents[1] = env.agent_paths[1];
	opts.agent_paths = agents;
	opts.agent_count = 2;
	opts.set_aside_dir = env.sa;
	opts.rewrite_from = REWRITE_FROM;
	opts.rewrite_to = REWRITE_TO;
	rc = checkpoint_restore(repo, &id, &opts, &res, &cause);
	if (env.verbose)
		fprintf(stderr, "fuzz_restore: verdict %d, rc %d: %s\n", v,
			rc, cause ? cause : "restored");
	restore_check(repo, &id, v, rc, cause, &res, &pre, &git_pre,
		      &git_all);

out:
	checkpoint_restore_result_clear(&res);
	free(cause);
	objs_free(&git_all);
	objs_free(&git_pre);
	objs_free(&pre);
	node_free(d.worktree);
	node_free(d.index);
	node_free(d.agent);
	free(d.branch);
	buf_free(&d.meta);
	git_odb_free(odb);
	git_repository_free(repo);
	return 0;
}
