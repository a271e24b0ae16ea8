/*
 * replay.c: runs a fuzz target's LLVMFuzzerTestOneInput over saved inputs,
 * without libFuzzer, so any compiler can build the targets and ctest can
 * replay the committed corpus (every crash a fuzzer found stays a test).
 *
 * Usage: replay_TARGET PATH...  Each PATH is a file or a folder whose
 * files are replayed in name order. A folder without any file is an
 * error: a missing corpus must not pass as an empty one.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads a whole file into an exact-size buffer; NULL on failure. */
static uint8_t *input_read(const char *path, size_t *size)
{
	uint8_t *data = NULL;
	struct stat st;
	FILE *f;

	f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) {
		/* exact size, so a read past the end shows under ASan */
		data = malloc(st.st_size ? (size_t)st.st_size : 1);
		if (data != NULL && fread(data, 1, (size_t)st.st_size, f) !=
				    (size_t)st.st_size) {
			free(data);
			data = NULL;
		}
		*size = (size_t)st.st_size;
	}
	fclose(f);
	return data;
}

/* Replays one file; 0 or -1 when it cannot be read. */
static int replay_file(const char *path)
{
	size_t size = 0;
	uint8_t *data = input_read(path, &size);

	if (data == NULL) {
		fprintf(stderr, "replay: cannot read %s (%s)\n", path,
			strerror(errno ? errno : EIO));
		return -1;
	}
	fprintf(stderr, "replay: %s (%zu bytes)\n", path, size);
	LLVMFuzzerTestOneInput(data, size);
	free(data);
	return 0;
}

/* Orders folder entries by name. */
static int entry_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Selects the entries of a folder that are not hidden. */
static int entry_visible(const struct dirent *de)
{
	return de->d_name[0] != '.';
}

/* Replays every file of a folder; the count, or -1 on failure. */
static int replay_dir(const char *dir)
{
	struct dirent **list;
	int n, count = 0, err = 0;

	n = scandir(dir, &list, entry_visible, entry_cmp);
	if (n < 0) {
		fprintf(stderr, "replay: cannot list %s (%s)\n", dir,
			strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char *path;
		struct stat st;

		if (asprintf(&path, "%s/%s", dir, list[i]->d_name) < 0)
			abort();
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			if (replay_file(path) < 0)
				err = -1;
			count++;
		}
		free(path);
		free(list[i]);
	}
	free(list);
	if (count == 0) {
		fprintf(stderr, "replay: %s holds no input\n", dir);
		return -1;
	}
	return err < 0 ? -1 : count;
}

/* Replays each file or folder named on the command line. */
int main(int argc, char **argv)
{
	int total = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE-OR-FOLDER...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		int n;

		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "replay: cannot find %s (%s)\n",
				argv[i], strerror(errno));
			return 1;
		}
		n = S_ISDIR(st.st_mode) ? replay_dir(argv[i])
					: (replay_file(argv[i]) < 0 ? -1 : 1);
		if (n < 0)
			return 1;
		total += n;
	}
	printf("replay: %d inputs ran clean\n", total);
	return 0;
}
