/*
 * util.h: allocation wrappers, growable byte buffers and small file helpers
 * shared by every Baton program.
 *
 * Out-of-memory is fatal: the x* wrappers abort with a message, so callers
 * never check their results.
 */
#ifndef BATON_UTIL_H
#define BATON_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Returns a newly allocated formatted string; the caller frees it. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap);

/* A growable byte buffer; data is always NUL-terminated for convenience. */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};

#define BUF_INIT { NULL, 0, 0 }

void buf_grow(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Hands the bytes to the caller (who frees them) and empties the buffer. */
char *buf_detach(struct buf *b, size_t *len);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

/* Creates a directory and its parents; 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);
/* Reads a whole file into *out (NUL-terminated, caller frees); 0 or -errno. */
int file_read_all(const char *path, size_t max, char **out, size_t *len);
/* Writes a file atomically (temp file, fsync, rename); 0 or -errno. */
int file_write_atomic(const char *path, const void *data, size_t len,
		      mode_t mode);
/* Removes a directory tree without following links; 0 or -errno. */
int rm_rf(const char *path);
/* Makes a new entry in the folder holding path survive a crash (fsyncs the
 * folder; errors are ignored: there is nothing better to do). */
void dir_sync_of(const char *path);
/*
 * Creates the file that keeps a copy of path, at format or schema
 * `version`, before an upgrade changes it: PATH.v<version>-<UTC time>.bak,
 * with a number after the time when that name is taken; new and private
 * (0600). Returns its descriptor, open for writing, and sets *name (the
 * caller frees); -errno.
 */
int backup_file_create(const char *path, long version, char **name);

/* Prints "PROGRAM: MESSAGE" and a pointer to --help on stderr, then exits
 * with status 2 (a usage error in every Baton program). */
void die_usage(const char *program, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

/* Reads a whole number of seconds from 1 to 65535; 0 or -EINVAL. */
int parse_seconds(const char *text, unsigned *out);

/* Monotonic milliseconds, for timeouts and durations. */
uint64_t now_ms(void);

/* Writes a length of time for people ("45 s", "3 min 20 s", "1 h 2 min";
 * seconds are left out from an hour on, below 0 counts as 0) into buf of
 * size bytes (32 is always enough); returns buf. */
char *duration_format(int64_t seconds, char *buf, size_t size);

#endif
