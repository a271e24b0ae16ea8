/*
 * ckpt.c: bench-checkpoint, the checkpoint steps of a move on one
 * worktree, timed one by one (and a target for callgrind).
 *
 *   bench-checkpoint REPO [HAVE|- [PACK-FILE]]
 *
 * Takes a checkpoint of REPO's worktree (written to its object database,
 * like a move does; nothing else changes), packs it against HAVE (a
 * commit REPO holds; none: everything), and compares the worktree with
 * the checkpoint as a target does before a restore. Prints the
 * milliseconds of each step, the pack's size and the checkpoint's id,
 * and writes the pack to PACK-FILE when given (for git index-pack).
 */
#define _GNU_SOURCE
#include "checkpoint.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	git_repository *repo = NULL;
	struct buf pack = BUF_INIT;
	char hex[GIT_OID_HEXSZ + 1];
	char *cause = NULL;
	git_oid id, have;
	double t0, t1, t2, t3;
	int same = 0, nhaves = 0;

	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: bench-checkpoint REPO [HAVE|- "
			"[PACK-FILE]]\n");
		return 64;
	}
	git_libgit2_init();
	if (git_repository_open(&repo, argv[1]) < 0) {
		fprintf(stderr, "bench-checkpoint: cannot open %s\n", argv[1]);
		return 1;
	}
	if (argc >= 3 && strcmp(argv[2], "-")) {
		git_object *o = NULL;

		if (git_revparse_single(&o, repo, argv[2]) < 0) {
			fprintf(stderr, "bench-checkpoint: no %s\n", argv[2]);
			return 1;
		}
		git_oid_cpy(&have, git_object_id(o));
		git_object_free(o);
		nhaves = 1;
	}
	t0 = clock_ms();
	if (checkpoint_create(repo, "bench", NULL, 0, &id, &cause) < 0)
		goto fail;
	t1 = clock_ms();
	if (checkpoint_pack(repo, &id, nhaves ? &have : NULL,
			    (size_t)nhaves, &pack, &cause) < 0)
		goto fail;
	t2 = clock_ms();
	if (checkpoint_matches(repo, &id, &same, &cause) < 0)
		goto fail;
	t3 = clock_ms();
	printf("create %.1f ms, pack %.1f ms (%zu bytes), matches %.1f ms "
	       "(%s), checkpoint %s\n", t1 - t0, t2 - t1, pack.len, t3 - t2,
	       same ? "same" : "differs",
	       git_oid_tostr(hex, sizeof(hex), &id));
	if (argc == 4 && file_write_atomic(argv[3], pack.data, pack.len,
					   0644) < 0) {
		fprintf(stderr, "bench-checkpoint: cannot write %s\n",
			argv[3]);
		return 1;
	}
	buf_free(&pack);
	git_repository_free(repo);
	git_libgit2_shutdown();
	return 0;
fail:
	fprintf(stderr, "bench-checkpoint: %s\n", cause);
	free(cause);
	return 1;
}
