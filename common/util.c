/*
 * util.c: allocation wrappers, byte buffers and file helpers.
 */
#define _GNU_SOURCE
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void oom(size_t size)
{
	fprintf(stderr, "fatal: out of memory (allocating %zu bytes)\n", size);
	abort();
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (p == NULL)
		oom(size);
	return p;
}

void *xcalloc(size_t count, size_t size)
{
	void *p = calloc(count ? count : 1, size ? size : 1);

	if (p == NULL)
		oom(count * size);
	return p;
}

void *xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);

	if (p == NULL)
		oom(size);
	return p;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
	char *s;

	if (vasprintf(&s, fmt, ap) < 0)
		oom(strlen(fmt));
	return s;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}

void buf_grow(struct buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;

	if (need <= b->cap)
		return;
	if (b->cap * 2 > need)
		need = b->cap * 2;
	b->data = xrealloc(b->data, need);
	b->cap = need;
}

void buf_append(struct buf *b, const void *data, size_t len)
{
	buf_grow(b, len);
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void buf_puts(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	buf_puts(b, s);
	free(s);
}

char *buf_detach(struct buf *b, size_t *len)
{
	char *data = b->data;

	if (data == NULL)
		data = xstrdup("");
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return data;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int mkdir_p(const char *path, mode_t mode)
{
	char *copy = xstrdup(path);
	struct stat st;
	int err = 0;

	/* Skip a leading '/' only: an empty path must not be read past. */
	for (char *p = copy + (copy[0] == '/'); ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(copy, mode) < 0 && errno != EEXIST) {
			err = -errno;
			break;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	/* EEXIST on the last level may name a file, not a folder. */
	if (err == 0 && stat(path, &st) == 0 && !S_ISDIR(st.st_mode))
		err = -ENOTDIR;
	free(copy);
	return err;
}

int file_read_all(const char *path, size_t max, char **out, size_t *len)
{
	struct buf b = BUF_INIT;
	char chunk[65536];
	int fd, err = 0;
	ssize_t n;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		if (b.len + (size_t)n > max) {
			err = -EFBIG;
			break;
		}
		buf_append(&b, chunk, (size_t)n);
	}
	close(fd);
	if (err) {
		buf_free(&b);
		return err;
	}
	*out = buf_detach(&b, len);
	return 0;
}

int file_write_atomic(const char *path, const void *data, size_t len,
		      mode_t mode)
{
	char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	const char *p = data;
	int fd, err = 0;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	if (err == 0 && fsync(fd) < 0)
		err = -errno;
	if (close(fd) < 0 && err == 0)
		err = -errno;
	if (err == 0 && rename(tmp, path) < 0)
		err = -errno;
	if (err)
		unlink(tmp);
out:
	free(tmp);
	return err;
}

int rm_rf(const char *path)
{
	struct stat st;
	DIR *dir;
	struct dirent *de;
	int err = 0;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) < 0 ? -errno : 0;

	dir = opendir(path);
	if (dir == NULL)
		return -errno;
	while ((de = readdir(dir)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *child = xasprintf("%s/%s", path, de->d_name);
		int e = rm_rf(child);

		free(child);
		if (e && !err)
			err = e;
	}
	closedir(dir);
	if (rmdir(path) < 0 && !err)
		err = -errno;
	return err;
}

int parse_seconds(const char *text, unsigned *out)
{
	char *end;
	unsigned long n;

	if (text[0] < '0' || text[0] > '9')
		return -EINVAL;
	n = strtoul(text, &end, 10);
	if (*end || n == 0 || n > 65535)
		return -EINVAL;
	*out = (unsigned)n;
	return 0;
}

void die_usage(const char *program, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", program);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help'.\n", program);
	exit(2);
}

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

char *duration_format(int64_t seconds, char *buf, size_t size)
{
	int64_t h = seconds / 3600, min = seconds % 3600 / 60;
	int64_t s = seconds % 60;

	if (seconds < 60)
		snprintf(buf, size, "%lld s", (long long)(seconds < 0 ? 0
								 : seconds));
	else if (h == 0 && s == 0)
		snprintf(buf, size, "%lld min", (long long)min);
	else if (h == 0)
		snprintf(buf, size, "%lld min %lld s", (long long)min,
			 (long long)s);
	else if (min == 0)
		snprintf(buf, size, "%lld h", (long long)h);
	else
		snprintf(buf, size, "%lld h %lld min", (long long)h,
			 (long long)min);
	return buf;
}

void dir_sync_of(const char *path)
{
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	int fd;

	if (slash)
		*slash = '\0';
	fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(dir);
}

int backup_file_create(const char *path, long version, char **name)
{
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	int fd = -1, err = -EEXIST;

	*name = NULL;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	for (int i = 1; i <= 100 && fd < 0 && err == -EEXIST; i++) {
		free(*name);
		if (i == 1)
			*name = xasprintf("%s.v%ld-%s.bak", path, version,
					  stamp);
		else
			*name = xasprintf("%s.v%ld-%s-%d.bak", path, version,
					  stamp, i);
		fd = open(*name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			  0600);
		if (fd < 0)
			err = -errno;
	}
	if (fd < 0) {
		free(*name);
		*name = NULL;
		return err;
	}
	return fd;
}
