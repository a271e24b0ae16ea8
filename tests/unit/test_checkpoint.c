/*
 * test_checkpoint.c: unit tests for common/checkpoint.c.
 *
 * Every worktree case of shared/cases (worktrees.sh) is checkpointed,
 * packed, unpacked into a fresh repository and restored there under a 077
 * umask; both sides must then print the same fingerprint (fingerprint.sh).
 * The target then changes a file and the session comes back: the source
 * must match the target again, with its replaced file in the set-aside
 * folder and its ignored files untouched. Further tests cover have/want,
 * hostile trees, damaged packs, set-aside of extra files and of links in
 * the way, agent state, unborn repositories, alternates and branch tips.
 *
 * BATON_CASES names the cases folder (tests/CMakeLists.txt sets it);
 * BATON_KEEP=1 keeps the scratch folder for a look after a failure.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "checkpoint.h"

#define FILE_MAX (64 * 1024 * 1024)
#define PIECE 65536		/* unpack is fed pieces of this size */
#define GIT "git -c user.name=Test -c user.email=test@example.invalid " \
	    "-c init.defaultBranch=main"

/* A worktree case: where its worktree is and which file the target edits. */
struct wt_case {
	const char *name;
	const char *worktree;	/* inside the case folder, "" for itself */
	const char *edit;
	const char *branch;	/* expected branch, NULL when detached */
};

static const struct wt_case wt_cases[] = {
	{ "ignored", "", "app.txt", "main" },
	{ "modes", "", "tool.sh", "main" },
	{ "symlinks", "", "README", "main" },
	{ "untracked-tree", "", "feature/a/d.json", "main" },
	{ "staged", "", "both.txt", "main" },
	{ "names", "", "with space.txt", "main" },
	{ "linked-worktree", "wt", "f.txt", NULL },
};

static char *cases_src;		/* the folder holding the case scripts */
static char *cases_dir;		/* the cases built for this run */
static char *scratch;		/* everything this run writes */
static char *cause;		/* the last call's cause */

/* Fails the test with the cause when a checkpoint call fails. */
#define OK(expr) do {							\
		cause = NULL;						\
		if ((expr) < 0)						\
			fail_msg("%s failed: %s", #expr,		\
				 cause ? cause : "(no cause)");		\
		assert_null(cause);					\
	} while (0)

/* Expects a checkpoint call to fail with a cause, and prints it. */
#define REFUSED(expr) do {						\
		cause = NULL;						\
		assert_true((expr) < 0);				\
		assert_non_null(cause);					\
		print_message("    refused as expected: %s\n", cause);	\
		free(cause);						\
		cause = NULL;						\
	} while (0)

/* Runs a shell command built from a format; returns its exit status. */
__attribute__((format(printf, 1, 2)))
static int sh(const char *fmt, ...)
{
	va_list ap;
	char *cmd;
	int rc;

	va_start(ap, fmt);
	cmd = xvasprintf(fmt, ap);
	va_end(ap);
	rc = system(cmd);
	free(cmd);
	return rc;
}

/* Makes a new folder under the scratch folder. */
static char *tmpdir_new(void)
{
	char *dir = xasprintf("%s/t.XXXXXX", scratch);

	assert_non_null(mkdtemp(dir));
	return dir;
}

/* Joins a folder and a relative path. */
static char *join(const char *dir, const char *rel)
{
	return rel[0] ? xasprintf("%s/%s", dir, rel) : xstrdup(dir);
}

/* Reads a whole file; fails the test when it cannot. */
static char *slurp(const char *path, size_t *len)
{
	char *data = NULL;
	size_t n = 0;
	int err = file_read_all(path, FILE_MAX, &data, &n);

	if (err < 0)
		fail_msg("cannot read %s: %s", path, strerror(-err));
	if (len)
		*len = n;
	return data;
}

/* Writes a whole file. */
static void spit(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* Prints fingerprint.sh's description of a worktree. */
static char *fingerprint(const char *worktree)
{
	char *out = xasprintf("%s/fingerprint.%ld", scratch, (long)getpid());
	char *text;

	assert_int_equal(sh("bash '%s/fingerprint.sh' '%s' >'%s'", cases_src,
			    worktree, out), 0);
	text = slurp(out, NULL);
	unlink(out);
	free(out);
	return text;
}

/* Asserts two fingerprints are equal, printing a diff when they are not. */
static void fingerprint_same(const char *what, const char *a, const char *b)
{
	char *fa, *fb;

	if (!strcmp(a, b))
		return;
	fa = xasprintf("%s/expected.fp", scratch);
	fb = xasprintf("%s/actual.fp", scratch);
	spit(fa, a);
	spit(fb, b);
	sh("diff -u '%s' '%s'", fa, fb);
	fail_msg("%s: fingerprints differ (diff above)", what);
}

/* Opens a repository; fails the test when it cannot. */
static git_repository *repo_open(const char *path)
{
	git_repository *repo = NULL;

	if (git_repository_open(&repo, path) < 0)
		fail_msg("cannot open %s: %s", path, git_error_last()->message);
	return repo;
}

/* Feeds a pack to a repository in pieces. */
static void pack_receive(git_repository *to, const struct buf *pack)
{
	struct checkpoint_unpack *u = NULL;

	OK(checkpoint_unpack_new(to, &u, &cause));
	for (size_t off = 0; off < pack->len; off += PIECE) {
		size_t n = pack->len - off < PIECE ? pack->len - off : PIECE;

		OK(checkpoint_unpack_append(u, pack->data + off, n, &cause));
	}
	OK(checkpoint_unpack_commit(u, &cause));
	checkpoint_unpack_free(u);
}

/* Packs want (minus have) in `from` and stores it in `to`. */
static size_t transfer(git_repository *from, const git_oid *want,
		       const git_oid *have, git_repository *to)
{
	struct buf pack = BUF_INIT;
	size_t len;

	OK(checkpoint_pack(from, want, have, have ? 1 : 0, &pack, &cause));
	pack_receive(to, &pack);
	len = pack.len;
	buf_free(&pack);
	return len;
}

/* Reads the object count from a pack header. */
static uint32_t pack_objects(const struct buf *pack)
{
	const unsigned char *p = (const unsigned char *)pack->data;

	assert_true(pack->len >= 12);
	assert_memory_equal(p, "PACK", 4);
	return (uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 |
	       (uint32_t)p[10] << 8 | (uint32_t)p[11];
}

/* Restores id into repo under a 077 umask, setting aside into sa. */
static void restore(git_repository *repo, const git_oid *id, const char *sa,
		    struct checkpoint_restore_result *res)
{
	struct checkpoint_restore_opts opts = { 0 };
	mode_t old;
	int rc;

	opts.set_aside_dir = sa;
	old = umask(077);
	cause = NULL;
	rc = checkpoint_restore(repo, id, &opts, res, &cause);
	umask(old);
	if (rc < 0)
		fail_msg("restore failed: %s", cause ? cause : "(no cause)");
	assert_null(cause);
}

/* Asserts that repo's state equals checkpoint id. */
static void assert_matches(git_repository *repo, const git_oid *id)
{
	int matches = -1;

	OK(checkpoint_matches(repo, id, &matches, &cause));
	assert_int_equal(matches, 1);
}

/* Returns 1 when a folder holds nothing but the names given. */
static int dir_holds_only(const char *dir, const char *allowed)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int only = 1;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (allowed && !strcmp(de->d_name, allowed))
			continue;
		print_message("    unexpected entry %s/%s\n", dir, de->d_name);
		only = 0;
	}
	closedir(d);
	return only;
}

/* Makes a repository with one commit holding README. */
static char *repo_with_commit(void)
{
	char *dir = tmpdir_new();

	assert_int_equal(sh("cd '%s' && " GIT " init -q && echo base >README "
			    "&& " GIT " add README && " GIT " commit -qm base",
			    dir), 0);
	return dir;
}

/* An ignored file's bytes and identity, to prove nobody touched it. */
struct kept {
	char *path;
	char *data;
	size_t len;
	struct stat st;
};

/* Records an ignored file's state. */
static void kept_take(struct kept *k, const char *dir, const char *rel)
{
	k->path = join(dir, rel);
	k->data = slurp(k->path, &k->len);
	assert_int_equal(lstat(k->path, &k->st), 0);
}

/* Asserts the file is exactly as recorded, then frees the record. */
static void kept_check(struct kept *k)
{
	struct stat st;
	size_t len;
	char *data = slurp(k->path, &len);

	assert_int_equal(lstat(k->path, &st), 0);
	assert_int_equal(st.st_ino, k->st.st_ino);
	assert_int_equal(st.st_mtim.tv_sec, k->st.st_mtim.tv_sec);
	assert_int_equal(st.st_mtim.tv_nsec, k->st.st_mtim.tv_nsec);
	assert_int_equal(len, k->len);
	assert_memory_equal(data, k->data, len);
	free(data);
	free(k->data);
	free(k->path);
}

/*
 * One case there and back: the source snapshot changes nothing, the fresh
 * target fingerprints equal, and after an edit on the target the source
 * comes to equal the target, with its replaced file set aside.
 */
static void test_round_trip(void **state)
{
	const struct wt_case *wc = *state;
	struct checkpoint_restore_result res = { 0 }, back = { 0 };
	struct checkpoint_info info;
	struct kept kept[2];
	git_repository *srepo, *drepo = NULL;
	git_oid id1, id2;
	char *case_dir = join(cases_dir, wc->name);
	char *src = join(case_dir, wc->worktree);
	char *dst_root = tmpdir_new();
	char *dst = join(dst_root, "wt");
	char *sa1 = join(dst_root, "set-aside-1");
	char *sa2 = join(dst_root, "set-aside-2");
	char *fp_src, *fp, *fp_dst, *index_path, *index_before, *index_after;
	char *edit_src, *edit_dst, *edit_before, *new_file;
	char *set_aside_copy, *set_aside_data;
	size_t index_len, index_len_after, edit_len, sa_len;
	int ignored_case = !strcmp(wc->name, "ignored");

	fp_src = fingerprint(src);
	srepo = repo_open(src);
	index_path = xasprintf("%sindex", git_repository_path(srepo));
	index_before = slurp(index_path, &index_len);
	edit_src = join(src, wc->edit);
	edit_before = slurp(edit_src, &edit_len);
	if (ignored_case) {
		kept_take(&kept[0], src, "build/cache/a.bin");
		kept_take(&kept[1], src, ".env");
	}

	/* The snapshot changes nothing on the source. */
	OK(checkpoint_create(srepo, "session-1", NULL, 0, &id1, &cause));
	index_after = slurp(index_path, &index_len_after);
	assert_int_equal(index_len_after, index_len);
	assert_memory_equal(index_after, index_before, index_len);
	fp = fingerprint(src);
	fingerprint_same("source after snapshot", fp_src, fp);
	free(fp);
	OK(checkpoint_read(srepo, &id1, &info, &cause));
	assert_int_equal(info.has_head, 1);
	if (wc->branch)
		assert_string_equal(info.branch, wc->branch);
	else
		assert_null(info.branch);
	assert_string_equal(info.session, "session-1");
	assert_non_null(strstr(info.worktree, wc->name));
	assert_int_equal(info.agent_count, 0);
	checkpoint_info_clear(&info);

	/* To a fresh repository: equal fingerprints, nothing set aside. */
	OK(checkpoint_repo_init(dst, NULL, NULL, &drepo, &cause));
	transfer(srepo, &id1, NULL, drepo);
	restore(drepo, &id1, sa1, &res);
	assert_null(res.set_aside);
	assert_null(res.set_aside_ref);
	assert_int_equal(res.files_set_aside, 0);
	assert_true(res.files_written > 0);
	fp_dst = fingerprint(dst);
	fingerprint_same(wc->name, fp_src, fp_dst);
	free(fp_dst);
	assert_matches(drepo, &id1);
	assert_matches(srepo, &id1);
	checkpoint_restore_result_clear(&res);

	/* Restoring again changes nothing. */
	restore(drepo, &id1, sa1, &res);
	assert_int_equal(res.files_written, 0);
	assert_int_equal(res.files_set_aside, 0);
	checkpoint_restore_result_clear(&res);

	/* An edit on the target comes back; the source's file is set aside. */
	edit_dst = join(dst, wc->edit);
	assert_int_equal(sh("printf 'changed on the target\\n' >>'%s'",
			    edit_dst), 0);
	new_file = join(dst, "from-target.txt");
	spit(new_file, "new on the target\n");
	OK(checkpoint_create(drepo, "session-1", NULL, 0, &id2, &cause));
	transfer(drepo, &id2, &id1, srepo);
	restore(srepo, &id2, sa2, &back);
	fp = fingerprint(src);
	fp_dst = fingerprint(dst);
	fingerprint_same("source after coming back", fp_dst, fp);
	assert_matches(srepo, &id2);
	assert_non_null(back.set_aside);
	assert_string_equal(back.set_aside, sa2);
	assert_int_equal(back.files_set_aside, 1);
	set_aside_copy = join(sa2, wc->edit);
	set_aside_data = slurp(set_aside_copy, &sa_len);
	assert_int_equal(sa_len, edit_len);
	assert_memory_equal(set_aside_data, edit_before, edit_len);
	if (ignored_case) {
		kept_check(&kept[0]);
		kept_check(&kept[1]);
	}

	checkpoint_restore_result_clear(&back);
	free(fp);
	free(fp_dst);
	free(new_file);
	free(edit_dst);
	free(set_aside_data);
	free(set_aside_copy);
	free(edit_before);
	free(edit_src);
	free(index_after);
	free(index_before);
	free(index_path);
	free(fp_src);
	git_repository_free(drepo);
	git_repository_free(srepo);
	free(sa2);
	free(sa1);
	free(dst);
	free(dst_root);
	free(src);
	free(case_dir);
}

/*
 * have/want: a second checkpoint with one changed file, packed with the
 * first as a have, carries a handful of objects, also from a bare store.
 */
static void test_incremental_pack(void **state)
{
	struct buf full = BUF_INIT, inc = BUF_INIT, stored = BUF_INIT;
	git_repository *repo, *bare = NULL;
	git_oid id1, id2, unknown;
	char *dir = tmpdir_new();
	char *bare_dir = join(dir, "store.git");
	char *wt = join(dir, "wt");

	assert_int_equal(sh("mkdir '%s' && cd '%s' && " GIT " init -q && "
			    "for i in $(seq 1 200); do echo $i >f$i.txt; "
			    "done && head -c 1000000 /dev/urandom >big.bin "
			    "&& " GIT " add . && " GIT " commit -qm base",
			    wt, wt), 0);
	repo = repo_open(wt);
	OK(checkpoint_create(repo, "s", NULL, 0, &id1, &cause));
	assert_int_equal(sh("echo change >>'%s/f7.txt'", wt), 0);
	OK(checkpoint_create(repo, "s", NULL, 0, &id2, &cause));

	OK(checkpoint_pack(repo, &id2, NULL, 0, &full, &cause));
	OK(checkpoint_pack(repo, &id2, &id1, 1, &inc, &cause));
	print_message("    full pack %zu bytes, %u objects; incremental %zu "
		      "bytes, %u objects\n", full.len, pack_objects(&full),
		      inc.len, pack_objects(&inc));
	assert_true(pack_objects(&full) > 200);
	/* commit, root tree, worktree tree, f7.txt */
	assert_true(pack_objects(&inc) <= 5);
	assert_true(inc.len * 100 < full.len);

	/* A have the repository does not hold is ignored. */
	memset(&unknown, 0xab, sizeof(unknown));
	buf_reset(&inc);
	OK(checkpoint_pack(repo, &id2, &unknown, 1, &inc, &cause));
	assert_int_equal(pack_objects(&inc), pack_objects(&full));

	/* A bare store receives the first and packs the difference. */
	assert_int_equal(git_repository_init(&bare, bare_dir, 1), 0);
	transfer(repo, &id1, NULL, bare);
	transfer(repo, &id2, &id1, bare);
	OK(checkpoint_pack(bare, &id2, &id1, 1, &stored, &cause));
	assert_true(pack_objects(&stored) <= 5);
	REFUSED(checkpoint_create(bare, "s", NULL, 0, &id1, &cause));

	buf_free(&stored);
	buf_free(&inc);
	buf_free(&full);
	git_repository_free(bare);
	git_repository_free(repo);
	free(wt);
	free(bare_dir);
	free(dir);
}

/* A raw tree entry: trees from peers may hold what libgit2 won't build. */
struct raw_entry {
	const char *mode;
	const char *name;
	const git_oid *id;
};

/* Writes a tree object byte by byte, unchecked. */
static void tree_raw(git_repository *repo, git_oid *out,
		     const struct raw_entry *e, size_t count)
{
	struct buf b = BUF_INIT;
	git_odb *odb = NULL;

	for (size_t i = 0; i < count; i++) {
		buf_printf(&b, "%s %s", e[i].mode, e[i].name);
		buf_append(&b, "", 1);
		buf_append(&b, e[i].id->id, GIT_OID_RAWSZ);
	}
	assert_int_equal(git_repository_odb(&odb, repo), 0);
	assert_int_equal(git_odb_write(out, odb, b.data, b.len,
				       GIT_OBJECT_TREE), 0);
	git_odb_free(odb);
	buf_free(&b);
}

/* Writes a checkpoint commit around a worktree and an index tree. */
static void checkpoint_raw(git_repository *repo, const git_oid *worktree,
			   const git_oid *index, const char *branch,
			   git_oid *out)
{
	git_signature *sig = NULL;
	git_tree *tree = NULL;
	git_oid meta, root;
	char *json = xasprintf("{\"version\":1,\"head\":null,\"branch\":\"%s\","
			       "\"session\":\"x\",\"worktree\":\"/x\"}",
			       branch);
	struct raw_entry e[] = {
		{ "40000", "index", index },
		{ "100644", "meta.json", &meta },
		{ "40000", "worktree", worktree },
	};

	assert_int_equal(git_blob_create_from_buffer(&meta, repo, json,
						     strlen(json)), 0);
	tree_raw(repo, &root, e, ARRAY_SIZE(e));
	assert_int_equal(git_tree_lookup(&tree, repo, &root), 0);
	assert_int_equal(git_signature_now(&sig, "T", "t@example.invalid"),
			 0);
	assert_int_equal(git_commit_create(out, repo, NULL, sig, sig, NULL,
					   "hostile\n", tree, 0, NULL), 0);
	git_signature_free(sig);
	git_tree_free(tree);
	free(json);
}

/*
 * Trees that try to leave the worktree or reach .git are refused before
 * anything is written, in the worktree tree and in the index tree.
 */
static void test_hostile_trees(void **state)
{
	struct checkpoint_restore_opts opts = { 0 };
	struct checkpoint_restore_result res = { 0 };
	git_oid blob, link, empty, sub, good, bad, id, missing;
	git_repository *repo = NULL;
	char *dir = tmpdir_new();
	char *canary = join(dir, "canary");
	char *wt = join(dir, "wt");
	char *abs_name = xasprintf("%s/x", canary);
	char *sa = join(dir, "set-aside");
	struct raw_entry inner[] = { { "100644", "x", &blob } };
	struct raw_entry ok[] = { { "100644", "fine.txt", &blob } };
	struct raw_entry absent[] = {
		{ "100644", "fine.txt", &blob },
		{ "100644", "lost.txt", &missing },
	};
	struct raw_entry cases[][2] = {
		{ { "40000", "..", &sub } },
		{ { "40000", ".git", &sub } },
		{ { "40000", ".GIT", &sub } },
		{ { "100644", abs_name, &blob } },
		{ { "100644", "", &blob } },
		{ { "40000", ".", &sub } },
		{ { "120000", "a", &link }, { "40000", "a", &sub } },
		{ { "100644", "a", &blob }, { "100644", "a", &blob } },
		{ { "100664", "odd", &blob } },
	};
	size_t sizes[] = { 1, 1, 1, 1, 1, 1, 2, 2, 1 };

	assert_int_equal(mkdir(canary, 0700), 0);
	OK(checkpoint_repo_init(wt, NULL, NULL, &repo, &cause));
	assert_int_equal(git_blob_create_from_buffer(&blob, repo, "evil\n", 5),
			 0);
	assert_int_equal(git_blob_create_from_buffer(&link, repo, canary,
						     strlen(canary)), 0);
	tree_raw(repo, &empty, NULL, 0);
	tree_raw(repo, &sub, inner, ARRAY_SIZE(inner));
	tree_raw(repo, &good, ok, ARRAY_SIZE(ok));
	opts.set_aside_dir = sa;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		tree_raw(repo, &bad, cases[i], sizes[i]);

		checkpoint_raw(repo, &bad, &empty, "main", &id);
		REFUSED(checkpoint_restore(repo, &id, &opts, &res, &cause));
		checkpoint_restore_result_clear(&res);

		checkpoint_raw(repo, &good, &bad, "main", &id);
		REFUSED(checkpoint_restore(repo, &id, &opts, &res, &cause));
		checkpoint_restore_result_clear(&res);

		assert_true(dir_holds_only(canary, NULL));
		assert_true(dir_holds_only(wt, ".git"));
	}
	assert_int_equal(access(sa, F_OK), -1);

	/* A file whose content never arrived is refused up front. */
	memset(&missing, 0x42, sizeof(missing));
	tree_raw(repo, &bad, absent, ARRAY_SIZE(absent));
	checkpoint_raw(repo, &bad, &empty, "main", &id);
	REFUSED(checkpoint_restore(repo, &id, &opts, &res, &cause));
	checkpoint_restore_result_clear(&res);
	assert_true(dir_holds_only(wt, ".git"));

	/* A branch name that is not a ref name is refused too. */
	checkpoint_raw(repo, &good, &empty, "../../evil", &id);
	REFUSED(checkpoint_restore(repo, &id, &opts, &res, &cause));
	checkpoint_restore_result_clear(&res);
	assert_true(dir_holds_only(wt, ".git"));

	/* Without a set-aside folder nothing is attempted. */
	opts.set_aside_dir = NULL;
	checkpoint_raw(repo, &good, &empty, "main", &id);
	REFUSED(checkpoint_restore(repo, &id, &opts, &res, &cause));
	assert_true(dir_holds_only(wt, ".git"));

	git_repository_free(repo);
	free(sa);
	free(abs_name);
	free(wt);
	free(canary);
	free(dir);
}

/*
 * An ignored link on disk where the checkpoint has a folder is set aside,
 * never written through: the file lands in a real folder in the worktree.
 */
static void test_link_in_the_way(void **state)
{
	struct checkpoint_restore_result res = { 0 };
	git_repository *src, *dst = NULL;
	char *src_dir = repo_with_commit();
	char *dir = tmpdir_new();
	char *canary = join(dir, "canary");
	char *wt = join(dir, "wt");
	char *link = join(wt, "a");
	char *file = join(wt, "a/x");
	char *sa = join(dir, "set-aside");
	char *sa_link = join(sa, "a");
	char target[PATH_MAX];
	struct stat st;
	ssize_t n;
	git_oid id;

	assert_int_equal(sh("mkdir '%s/a' && echo inside >'%s/a/x'", src_dir,
			    src_dir), 0);
	src = repo_open(src_dir);
	OK(checkpoint_create(src, "s", NULL, 0, &id, &cause));

	assert_int_equal(mkdir(canary, 0700), 0);
	OK(checkpoint_repo_init(wt, NULL, NULL, &dst, &cause));
	assert_int_equal(symlink(canary, link), 0);
	assert_int_equal(sh("echo /a >>'%s/.git/info/exclude'", wt), 0);
	transfer(src, &id, NULL, dst);
	restore(dst, &id, sa, &res);

	assert_true(dir_holds_only(canary, NULL));
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	free(slurp(file, NULL));
	n = readlink(sa_link, target, sizeof(target) - 1);
	assert_true(n > 0);
	target[n] = '\0';
	assert_string_equal(target, canary);
	assert_int_equal(res.files_set_aside, 1);

	checkpoint_restore_result_clear(&res);
	git_repository_free(dst);
	git_repository_free(src);
	free(sa_link);
	free(sa);
	free(file);
	free(link);
	free(wt);
	free(canary);
	free(dir);
	free(src_dir);
}

/* Counts the pack files in a repository's object database. */
static int packs_count(git_repository *repo)
{
	char *dir = xasprintf("%sobjects/pack", git_repository_path(repo));
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += strstr(de->d_name, ".pack") != NULL;
	closedir(d);
	free(dir);
	return n;
}

/* Feeds bytes to a receiver and expects the pack to be refused. */
static void unpack_refused(git_repository *repo, const void *data, size_t len)
{
	struct checkpoint_unpack *u = NULL;
	int rc;

	OK(checkpoint_unpack_new(repo, &u, &cause));
	cause = NULL;
	rc = len ? checkpoint_unpack_append(u, data, len, &cause) : 0;
	if (rc == 0)
		rc = checkpoint_unpack_commit(u, &cause);
	assert_true(rc < 0);
	assert_non_null(cause);
	print_message("    refused as expected: %s\n", cause);
	free(cause);
	cause = NULL;
	checkpoint_unpack_free(u);
}

/* Garbage, truncated and damaged packs fail cleanly and store nothing. */
static void test_unpack_garbage(void **state)
{
	static const char garbage[] = "this is not a pack, just some bytes";
	struct buf pack = BUF_INIT;
	git_repository *src, *dst = NULL;
	char *src_dir = repo_with_commit();
	char *dir = tmpdir_new();
	char *wt = join(dir, "wt");
	git_oid id;

	src = repo_open(src_dir);
	OK(checkpoint_create(src, "s", NULL, 0, &id, &cause));
	OK(checkpoint_pack(src, &id, NULL, 0, &pack, &cause));
	OK(checkpoint_repo_init(wt, NULL, NULL, &dst, &cause));

	unpack_refused(dst, garbage, sizeof(garbage));
	unpack_refused(dst, "", 0);
	unpack_refused(dst, pack.data, pack.len / 2);
	pack.data[pack.len / 2] ^= 0x5a;
	unpack_refused(dst, pack.data, pack.len);
	assert_int_equal(packs_count(dst), 0);
	cause = NULL;
	assert_true(checkpoint_read(dst, &id, &(struct checkpoint_info){ 0 },
				    &cause) < 0);
	free(cause);

	buf_free(&pack);
	git_repository_free(dst);
	git_repository_free(src);
	free(wt);
	free(dir);
	free(src_dir);
}

/* An extra untracked file is set aside, an ignored one left alone. */
static void test_extra_file_set_aside(void **state)
{
	struct checkpoint_restore_result res = { 0 };
	char *dir = repo_with_commit();
	char *sa_root = tmpdir_new();
	char *sa = join(sa_root, "set-aside");
	char *extra = join(dir, "notes/extra.txt");
	char *moved = join(sa, "notes/extra.txt");
	char *notes = join(dir, "notes");
	struct kept log;
	git_repository *repo;
	char *data;
	git_oid id;

	assert_int_equal(sh("cd '%s' && echo '*.log' >.gitignore && "
			    GIT " add .gitignore && " GIT " commit -qm ign && "
			    "echo keep >debug.log", dir), 0);
	repo = repo_open(dir);
	OK(checkpoint_create(repo, "s", NULL, 0, &id, &cause));
	kept_take(&log, dir, "debug.log");

	assert_int_equal(mkdir(notes, 0755), 0);
	spit(extra, "mine, not in the checkpoint\n");
	restore(repo, &id, sa, &res);
	assert_int_equal(access(extra, F_OK), -1);
	assert_int_equal(access(notes, F_OK), -1);
	data = slurp(moved, NULL);
	assert_string_equal(data, "mine, not in the checkpoint\n");
	assert_string_equal(res.set_aside, sa);
	assert_int_equal(res.files_set_aside, 1);
	assert_int_equal(res.files_written, 0);
	kept_check(&log);
	assert_matches(repo, &id);

	free(data);
	checkpoint_restore_result_clear(&res);
	git_repository_free(repo);
	free(notes);
	free(moved);
	free(extra);
	free(sa);
	free(sa_root);
	free(dir);
}

/* Asserts a file's content and permission bits. */
static void file_is(const char *path, const char *text, mode_t perm)
{
	struct stat st;
	char *data = slurp(path, NULL);

	assert_string_equal(data, text);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, perm);
	free(data);
}

/*
 * Agent state: a folder (files, an executable, a link, an empty folder)
 * and a file travel to new paths with the worktree path rewritten; a
 * missing one stays missing; a different file in the way is set aside.
 */
static void test_agent_state(void **state)
{
	struct checkpoint_restore_opts opts = { 0 };
	struct checkpoint_restore_result res = { 0 };
	struct checkpoint_info info;
	git_repository *src, *dst = NULL;
	char *src_dir = repo_with_commit();
	char *here = tmpdir_new(), *there = tmpdir_new();
	char *a_dir = join(here, "projects/conv");
	char *a_file = join(here, "s.json");
	char *a_none = join(here, "missing");
	char *b_dir = join(there, "home/projects/conv");
	char *b_file = join(there, "home/s.json");
	char *b_none = join(there, "home/missing");
	char *wt = join(there, "wt"), *sa = join(there, "set-aside");
	const char *src_paths[] = { a_dir, a_file, a_none };
	const char *dst_paths[] = { b_dir, b_file, b_none };
	char *text, *expect, *p;
	char target[64];
	struct stat st;
	ssize_t n;
	git_oid id;

	assert_int_equal(sh("mkdir -p '%s/tools' '%s/empty' && cd '%s' && "
			    "printf '{\"cwd\":\"%s\"}\\n' >conv.jsonl && "
			    "printf '#!/bin/sh\\n' >tools/run.sh && "
			    "chmod 755 tools/run.sh && ln -s conv.jsonl link "
			    "&& printf '%s and %s\\n' >'%s'", a_dir, a_dir,
			    a_dir, src_dir, src_dir, src_dir, a_file), 0);
	src = repo_open(src_dir);
	OK(checkpoint_create(src, "s", src_paths, 3, &id, &cause));
	OK(checkpoint_read(src, &id, &info, &cause));
	assert_int_equal(info.agent_count, 2);
	checkpoint_info_clear(&info);

	OK(checkpoint_repo_init(wt, NULL, NULL, &dst, &cause));
	transfer(src, &id, NULL, dst);

	/* Agent state with nowhere to go is refused before any change. */
	opts.set_aside_dir = sa;
	REFUSED(checkpoint_restore(dst, &id, &opts, &res, &cause));
	assert_true(dir_holds_only(wt, ".git"));

	assert_int_equal(sh("mkdir -p '%s/home' && echo older >'%s'", there,
			    b_file), 0);
	opts.agent_paths = dst_paths;
	opts.agent_count = 3;
	opts.rewrite_from = src_dir;
	opts.rewrite_to = wt;
	{
		mode_t old = umask(077);

		cause = NULL;
		if (checkpoint_restore(dst, &id, &opts, &res, &cause) < 0)
			fail_msg("restore failed: %s", cause);
		umask(old);
	}

	p = join(b_dir, "conv.jsonl");
	expect = xasprintf("{\"cwd\":\"%s\"}\n", wt);
	file_is(p, expect, 0644);
	free(expect);
	free(p);
	p = join(b_dir, "tools/run.sh");
	file_is(p, "#!/bin/sh\n", 0755);
	free(p);
	p = join(b_dir, "link");
	n = readlink(p, target, sizeof(target) - 1);
	assert_int_equal(n, (ssize_t)strlen("conv.jsonl"));
	target[n] = '\0';
	assert_string_equal(target, "conv.jsonl");
	free(p);
	p = join(b_dir, "empty");
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	free(p);
	expect = xasprintf("%s and %s\n", wt, wt);
	file_is(b_file, expect, 0644);
	free(expect);
	assert_int_equal(access(b_none, F_OK), -1);
	p = join(sa, "agent/1/s.json");
	text = slurp(p, NULL);
	assert_string_equal(text, "older\n");
	free(text);
	free(p);
	assert_int_equal(res.files_set_aside, 1);
	assert_matches(dst, &id);
	checkpoint_restore_result_clear(&res);

	/* Again: everything is already in place and left alone. */
	cause = NULL;
	if (checkpoint_restore(dst, &id, &opts, &res, &cause) < 0)
		fail_msg("restore failed: %s", cause);
	assert_int_equal(res.files_written, 0);
	assert_int_equal(res.files_set_aside, 0);
	checkpoint_restore_result_clear(&res);

	git_repository_free(dst);
	git_repository_free(src);
	free(sa);
	free(wt);
	free(b_none);
	free(b_file);
	free(b_dir);
	free(a_none);
	free(a_file);
	free(a_dir);
	free(there);
	free(here);
	free(src_dir);
}

/*
 * A repository with no commit yet travels (HEAD stays unborn on main), and
 * a repository that borrows the source's objects restores without a pack.
 */
static void test_unborn_and_alternates(void **state)
{
	struct checkpoint_restore_result res = { 0 };
	struct checkpoint_info info;
	git_repository *src = NULL, *dst = NULL;
	char *dir = tmpdir_new();
	char *src_dir = join(dir, "src"), *dst_dir = join(dir, "dst");
	char *sa = join(dir, "set-aside");
	char *file = join(src_dir, "first.txt");
	char *fp_src, *fp_dst;
	git_oid id;

	OK(checkpoint_repo_init(src_dir, "https://example.invalid/r.git",
				NULL, &src, &cause));
	assert_int_equal(sh("test \"$(git -C '%s' remote get-url origin)\" "
			    "= https://example.invalid/r.git", src_dir), 0);
	REFUSED(checkpoint_repo_init(src_dir, NULL, NULL, &dst, &cause));

	spit(file, "first\n");
	OK(checkpoint_create(src, "s", NULL, 0, &id, &cause));
	OK(checkpoint_read(src, &id, &info, &cause));
	assert_int_equal(info.has_head, 0);
	assert_string_equal(info.branch, "main");
	checkpoint_info_clear(&info);

	OK(checkpoint_repo_init(dst_dir, NULL, src, &dst, &cause));
	restore(dst, &id, sa, &res);
	fp_src = fingerprint(src_dir);
	fp_dst = fingerprint(dst_dir);
	fingerprint_same("unborn", fp_src, fp_dst);
	assert_matches(dst, &id);
	assert_int_equal(packs_count(dst), 0);

	checkpoint_restore_result_clear(&res);
	free(fp_dst);
	free(fp_src);
	git_repository_free(dst);
	git_repository_free(src);
	free(file);
	free(sa);
	free(dst_dir);
	free(src_dir);
	free(dir);
}

/*
 * A branch that moved on since the checkpoint is set back, but its tip is
 * kept under refs/baton/set-aside/, and its changed file set aside.
 */
static void test_branch_tip_kept(void **state)
{
	struct checkpoint_restore_result res = { 0 };
	git_reference *ref = NULL;
	git_repository *repo;
	char *dir = repo_with_commit();
	char *sa_root = tmpdir_new();
	char *sa = join(sa_root, "set-aside");
	char *readme = join(sa, "README");
	char *data, *name;
	git_oid id, tip, head;

	repo = repo_open(dir);
	OK(checkpoint_create(repo, "s", NULL, 0, &id, &cause));
	assert_int_equal(sh("cd '%s' && echo later >README && " GIT
			    " commit -qam later", dir), 0);
	assert_int_equal(git_reference_name_to_id(&tip, repo,
						  "refs/heads/main"), 0);

	restore(repo, &id, sa, &res);
	assert_non_null(res.set_aside_ref);
	name = xasprintf("refs/baton/set-aside/%s", git_oid_tostr_s(&tip));
	assert_string_equal(res.set_aside_ref, name);
	assert_int_equal(git_reference_lookup(&ref, repo, name), 0);
	assert_true(git_oid_equal(git_reference_target(ref), &tip));
	assert_int_equal(git_reference_name_to_id(&head, repo, "HEAD"), 0);
	assert_false(git_oid_equal(&head, &tip));
	data = slurp(readme, NULL);
	assert_string_equal(data, "later\n");
	assert_matches(repo, &id);

	free(data);
	free(name);
	git_reference_free(ref);
	checkpoint_restore_result_clear(&res);
	git_repository_free(repo);
	free(readme);
	free(sa);
	free(sa_root);
	free(dir);
}

/* Reads the bytes a checkpoint stores for a worktree path. */
static char *worktree_blob(git_repository *repo, const git_oid *id,
			   const char *rel)
{
	struct checkpoint_info info;
	git_tree_entry *e = NULL;
	git_tree *tree = NULL;
	git_blob *blob = NULL;
	char *data;

	OK(checkpoint_read(repo, id, &info, &cause));
	assert_int_equal(git_tree_lookup(&tree, repo, &info.worktree_tree), 0);
	assert_int_equal(git_tree_entry_bypath(&e, tree, rel), 0);
	assert_int_equal(git_blob_lookup(&blob, repo, git_tree_entry_id(e)),
			 0);
	data = xstrndup(git_blob_rawcontent(blob),
			(size_t)git_blob_rawsize(blob));
	git_blob_free(blob);
	git_tree_entry_free(e);
	git_tree_free(tree);
	checkpoint_info_clear(&info);
	return data;
}

/*
 * An edit that leaves size and mtime as the index recorded them, in the
 * same tick as the index was written (racy git), is still seen.
 */
static void test_racy_edit(void **state)
{
	git_repository *repo;
	char *dir = repo_with_commit();
	char *data;
	git_oid id;

	assert_int_equal(sh("cd '%s' && " GIT " config core.trustctime false "
			    "&& printf aaaa >f && touch -d @1700000000 f && "
			    GIT " add f && printf bbbb >f && "
			    "touch -d @1700000000 f .git/index", dir), 0);
	repo = repo_open(dir);
	OK(checkpoint_create(repo, "s", NULL, 0, &id, &cause));
	data = worktree_blob(repo, &id, "f");
	assert_string_equal(data, "bbbb");

	free(data);
	git_repository_free(repo);
	free(dir);
}

/*
 * One line-ending setup: the source's CRLF bytes must arrive as they are.
 * Repository config does not travel, so the target gets the same config.
 */
static void line_endings_case(const char *setup, const char *config)
{
	struct checkpoint_restore_result res = { 0 };
	git_repository *src, *dst = NULL;
	char *src_dir = repo_with_commit();
	char *dir = tmpdir_new();
	char *wt = join(dir, "wt"), *sa = join(dir, "set-aside");
	char *fp_src, *fp_dst, *data;
	git_oid id;

	assert_int_equal(sh("cd '%s' && %s && printf 'a\\r\\nb\\r\\n' "
			    ">t.txt && " GIT " add . && " GIT " commit -qm "
			    "crlf && printf 'u\\r\\n' >u.txt", src_dir,
			    setup), 0);
	src = repo_open(src_dir);
	OK(checkpoint_create(src, "s", NULL, 0, &id, &cause));
	data = worktree_blob(src, &id, "t.txt");
	assert_string_equal(data, "a\r\nb\r\n");
	free(data);

	OK(checkpoint_repo_init(wt, NULL, NULL, &dst, &cause));
	if (config)
		assert_int_equal(sh("cd '%s' && %s", wt, config), 0);
	transfer(src, &id, NULL, dst);
	restore(dst, &id, sa, &res);
	fp_src = fingerprint(src_dir);
	fp_dst = fingerprint(wt);
	fingerprint_same(setup, fp_src, fp_dst);
	assert_matches(dst, &id);

	free(fp_dst);
	free(fp_src);
	checkpoint_restore_result_clear(&res);
	git_repository_free(dst);
	git_repository_free(src);
	free(sa);
	free(wt);
	free(dir);
	free(src_dir);
}

/*
 * Files git would convert (eol=crlf attributes, core.autocrlf) travel as
 * their raw bytes, tracked unchanged ones included.
 */
static void test_line_endings_kept(void **state)
{
	line_endings_case("echo '*.txt text eol=crlf' >.gitattributes", NULL);
	line_endings_case("git config core.autocrlf true",
			  "git config core.autocrlf true");
}

/* Finds the cases folder: BATON_CASES, else beside the source tree. */
static char *cases_locate(void)
{
	const char *env = getenv("BATON_CASES");
	const char *file = __FILE__;
	const char *tail = strstr(file, "/tests/unit/");

	if (env && env[0])
		return xstrdup(env);
	if (tail == NULL)
		return xstrdup("../shared/cases");
	return xasprintf("%.*s/../shared/cases", (int)(tail - file), file);
}

/* Builds the worktree cases once for the whole run. */
static int group_setup(void **state)
{
	char tmpl[] = "/tmp/test_checkpoint.XXXXXX";

	git_libgit2_init();
	if (mkdtemp(tmpl) == NULL)
		return -1;
	scratch = xstrdup(tmpl);
	cases_src = cases_locate();
	cases_dir = xasprintf("%s/cases", scratch);
	if (sh("bash '%s/worktrees.sh' '%s' >/dev/null", cases_src,
	       cases_dir) != 0) {
		fprintf(stderr, "cannot build the cases from %s\n", cases_src);
		return -1;
	}
	return 0;
}

/* Removes the scratch folder unless BATON_KEEP asks to keep it. */
static int group_teardown(void **state)
{
	const char *keep = getenv("BATON_KEEP");

	if (keep && keep[0] == '1')
		fprintf(stderr, "kept %s\n", scratch);
	else
		rm_rf(scratch);
	free(cases_dir);
	free(cases_src);
	free(scratch);
	git_libgit2_shutdown();
	return 0;
}

#define ROUND_TRIP(i, name) \
	{ "round_trip/" name, test_round_trip, NULL, NULL, \
	  (void *)&wt_cases[i] }

int main(void)
{
	struct CMUnitTest tests[] = {
		ROUND_TRIP(0, "ignored"),
		ROUND_TRIP(1, "modes"),
		ROUND_TRIP(2, "symlinks"),
		ROUND_TRIP(3, "untracked-tree"),
		ROUND_TRIP(4, "staged"),
		ROUND_TRIP(5, "names"),
		ROUND_TRIP(6, "linked-worktree"),
		cmocka_unit_test(test_incremental_pack),
		cmocka_unit_test(test_hostile_trees),
		cmocka_unit_test(test_link_in_the_way),
		cmocka_unit_test(test_unpack_garbage),
		cmocka_unit_test(test_extra_file_set_aside),
		cmocka_unit_test(test_agent_state),
		cmocka_unit_test(test_unborn_and_alternates),
		cmocka_unit_test(test_branch_tip_kept),
		cmocka_unit_test(test_racy_edit),
		cmocka_unit_test(test_line_endings_kept),
	};

	_Static_assert(ARRAY_SIZE(wt_cases) == 7, "one ROUND_TRIP per case");
	return cmocka_run_group_tests_name("checkpoint", tests, group_setup,
					   group_teardown);
}
