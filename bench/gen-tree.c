/*
 * gen-tree.c: writes a worktree of source-like files for the benchmarks.
 *
 *   bench-gen-tree DIR FILES [BYTES [SEED]]
 *
 * Makes FILES files of about BYTES bytes each (default 12288) under
 * DIR/pkgNN/modNNN/, twenty to a folder, each different: lines of
 * identifiers and words picked by a seeded generator, so the files
 * compress with zlib about as well as real source (3 to 4 times) and two
 * runs with one seed write the same bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PER_FOLDER 20
#define FOLDERS_PER_PKG 50

static const char *const words[] = {
	"static", "int", "const", "char", "struct", "return", "if", "else",
	"for", "while", "size_t", "void", "unsigned", "buf", "len", "err",
	"session", "relay", "checkpoint", "worktree", "index", "tree", "blob",
	"commit", "pack", "object", "link", "frame", "queue", "write", "read",
	"open", "close", "free", "alloc", "data", "count", "next", "prev",
	"head", "tail", "node", "list", "map", "key", "value", "hash", "name",
	"path", "file", "folder", "cause", "out", "in", "arg", "opts", "ctx",
	"loop", "timer", "handle", "stream", "poll", "event", "state", "flags",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

static uint64_t rng;

/* xorshift64*: small, seeded, the same everywhere. */
static uint64_t next(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ULL;
}

/* Makes a folder; one that exists is fine. */
static int mkdir_p(const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "bench-gen-tree: mkdir %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	return 0;
}

/* Writes one file of about `bytes` bytes of source-like lines. */
static int write_file(const char *path, size_t bytes, unsigned long id)
{
	FILE *f = fopen(path, "w");
	size_t n = 0;

	if (f == NULL) {
		fprintf(stderr, "bench-gen-tree: %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	n += (size_t)fprintf(f,
			     "/* file %lu, generated for the benchmarks */\n",
			     id);
	while (n < bytes) {
		unsigned indent = (unsigned)(next() % 3);
		unsigned nw = 3 + (unsigned)(next() % 8);

		for (unsigned i = 0; i < indent; i++)
			n += (size_t)fprintf(f, "\t");
		for (unsigned i = 0; i < nw; i++) {
			uint64_t r = next();

			if (r % 5 == 0)
				n += (size_t)fprintf(f, "%s_%lx ",
						     words[r % NWORDS],
						     (unsigned long)(r >> 40));
			else
				n += (size_t)fprintf(f, "%s ",
						     words[(r >> 8) % NWORDS]);
		}
		n += (size_t)fprintf(f, ";\n");
	}
	if (fclose(f) != 0) {
		fprintf(stderr, "bench-gen-tree: %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long files, seed = 1;
	size_t bytes = 12288;
	char path[4096];

	if (argc < 3 || argc > 5) {
		fprintf(stderr,
			"usage: bench-gen-tree DIR FILES [BYTES [SEED]]\n");
		return 64;
	}
	files = strtoul(argv[2], NULL, 10);
	if (argc > 3)
		bytes = strtoul(argv[3], NULL, 10);
	if (argc > 4)
		seed = strtoul(argv[4], NULL, 10);
	rng = 0x9E3779B97F4A7C15ULL ^ seed;
	if (mkdir_p(argv[1]) < 0)
		return 1;

	for (unsigned long i = 0; i < files; i++) {
		unsigned long folder = i / PER_FOLDER;
		unsigned long pkg = folder / FOLDERS_PER_PKG;

		snprintf(path, sizeof(path), "%s/pkg%02lu", argv[1], pkg);
		if (i % (PER_FOLDER * FOLDERS_PER_PKG) == 0 &&
		    mkdir_p(path) < 0)
			return 1;
		snprintf(path, sizeof(path), "%s/pkg%02lu/mod%03lu", argv[1],
			 pkg, folder % FOLDERS_PER_PKG);
		if (i % PER_FOLDER == 0 && mkdir_p(path) < 0)
			return 1;
		snprintf(path, sizeof(path), "%s/pkg%02lu/mod%03lu/f%05lu.c",
			 argv[1], pkg, folder % FOLDERS_PER_PKG, i);
		if (write_file(path, bytes, i) < 0)
			return 1;
	}
	return 0;
}
