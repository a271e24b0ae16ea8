/*
 * checkpoint.h: the exact state of a worktree stored as git objects, packs
 * that carry those objects between repositories, and exact restores.
 *
 * A checkpoint is a commit that never moves a ref. Its tree holds:
 *   worktree/   the working tree as git sees it (tracked, untracked,
 *               deletions, exec bits, symlinks; ignored files excluded)
 *   index/      the index (staged state), so staged/unstaged splits survive
 *   agent/N     the agent's state file or folder number N (optional)
 *   meta.json   {"version":1,"head":OID|null,"branch":NAME|null,
 *                "session":ID,"worktree":SOURCE_PATH}
 * Its parent is the worktree's HEAD commit when there is one, so a pack of
 * the checkpoint carries the history a fresh repository needs.
 *
 * Working files are stored as their raw bytes (no clean filters or line
 * ending conversion), so a restore writes back exactly what was read.
 *
 * Functions return 0 on success and a negative number on failure; *cause
 * then holds a sentence for the user (caller frees) and is NULL on success.
 * Nothing here logs. The caller initialises libgit2: git_libgit2_init, or
 * checkpoint_lib_start where that should wait until libgit2 is needed.
 */
#ifndef BATON_CHECKPOINT_H
#define BATON_CHECKPOINT_H

#include <git2.h>
#include <stddef.h>

#include "util.h"

/*
 * Starts libgit2 the first time it is called; later calls do nothing.
 * The daemons call it when a message first concerns a session's files, so
 * an idle daemon never pays for libgit2's start-up (OpenSSL through
 * libssh2, the system's CA bundle): about 3 MB of its resident memory.
 */
void checkpoint_lib_start(void);
/* Stops libgit2 if checkpoint_lib_start started it. */
void checkpoint_lib_stop(void);

/* What a checkpoint commit says about itself (checkpoint_read). */
struct checkpoint_info {
	int has_head;		/* 0 for a repository with no commit yet */
	git_oid head;		/* HEAD commit at snapshot time */
	char *branch;		/* short branch name; NULL when detached */
	char *session;		/* session id that made it */
	char *worktree;		/* source worktree, absolute path */
	git_oid worktree_tree;	/* tree of the working files */
	git_oid index_tree;	/* tree of the index */
	size_t agent_count;	/* entries under agent/ */
};

/*
 * Snapshots the worktree of `repo` (a normal or linked worktree) into a new
 * checkpoint commit written to repo's object database. Never changes the
 * worktree, the index file, HEAD or any ref. `agent_paths` are absolute
 * paths of files or folders to carry as agent/0..n-1; missing ones are
 * stored as absent. Untracked nested repositories are skipped.
 */
int checkpoint_create(git_repository *repo, const char *session,
		      const char *const *agent_paths, size_t agent_count,
		      git_oid *out, char **cause);

/* Reads a checkpoint commit's metadata; clear with checkpoint_info_clear. */
int checkpoint_read(git_repository *repo, const git_oid *id,
		    struct checkpoint_info *out, char **cause);
void checkpoint_info_clear(struct checkpoint_info *info);

/*
 * Writes into `out` a pack of every object reachable from `want` that is not
 * reachable from any of `haves` (have/want, like a git fetch). Haves that
 * repo does not hold are ignored. Works in bare repositories too.
 */
int checkpoint_pack(git_repository *repo, const git_oid *want,
		    const git_oid *haves, size_t have_count, struct buf *out,
		    char **cause);

/*
 * Receives a pack in pieces into a repository's object database; repo must
 * outlive the receiver.
 */
struct checkpoint_unpack;
int checkpoint_unpack_new(git_repository *repo, struct checkpoint_unpack **out,
			  char **cause);
int checkpoint_unpack_append(struct checkpoint_unpack *u, const void *data,
			     size_t len, char **cause);
/* Verifies and stores the objects; the pack is discarded on failure. */
int checkpoint_unpack_commit(struct checkpoint_unpack *u, char **cause);
void checkpoint_unpack_free(struct checkpoint_unpack *u);

struct checkpoint_restore_opts {
	const char *const *agent_paths;	/* where agent/N lands here */
	size_t agent_count;
	const char *set_aside_dir;	/* where replaced or extra files go
					 * (required; created when used) */
	const char *rewrite_from;	/* in restored agent files, replace */
	const char *rewrite_to;		/* by this (e.g. the worktree paths) */
};

struct checkpoint_restore_result {
	char *set_aside;	/* folder holding set-aside files, or NULL */
	char *set_aside_ref;	/* refs keeping replaced commits (space
				 * separated), or NULL */
	size_t files_written;
	size_t files_set_aside;
};

/*
 * Makes repo's worktree, index, HEAD and branch exactly equal to checkpoint
 * `id` (its objects must be in repo). Every non-ignored file that would be
 * overwritten or removed is first moved under opts->set_aside_dir (created
 * only when needed); nothing is deleted that was not set aside. Ignored
 * files are left alone unless a checkpoint file must take their place
 * (then they are set aside too). Refuses entries that would escape the
 * worktree (.., absolute, .git, a path through a symlink) before changing
 * anything. A branch tip or detached HEAD that the checkpoint's head does
 * not contain is kept as refs/baton/set-aside/<oid> (out->set_aside_ref).
 * agent/N lands at opts->agent_paths[N]; files already in an agent folder
 * that the checkpoint lacks are left in place. Even on failure, *out says
 * what was set aside so far; clear it either way.
 */
int checkpoint_restore(git_repository *repo, const git_oid *id,
		       const struct checkpoint_restore_opts *opts,
		       struct checkpoint_restore_result *out, char **cause);
void checkpoint_restore_result_clear(struct checkpoint_restore_result *r);

/*
 * Sets *matches to 1 when repo's current worktree, index, HEAD and branch
 * equal checkpoint `id` (ignoring agent state), else 0. Changes nothing.
 */
int checkpoint_matches(git_repository *repo, const git_oid *id, int *matches,
		       char **cause);

/*
 * Creates an empty repository at `dir` for a worktree (with `origin` set to
 * remote_url when not NULL) and opens it. When `objects_from` is not NULL,
 * the new repository borrows that repository's objects (alternates), so a
 * restore beside an existing worktree copies no history.
 */
int checkpoint_repo_init(const char *dir, const char *remote_url,
			 git_repository *objects_from, git_repository **out,
			 char **cause);

#endif
