/*
 * watch.c: one libuv file-event handle per folder of a tree, debounced
 * into a single call (see watch.h).
 */
#define _GNU_SOURCE
#include "watch.h"
#include "util.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* One watched folder; freed in its close callback. */
struct watch_dir {
	uv_fs_event_t handle;
	struct watch *owner;	/* NULL once the watch is gone */
};

struct watch {
	uv_loop_t *loop;
	char *root;
	unsigned debounce_ms;
	watch_skip_cb skip;
	watch_change_cb on_change;
	void *arg;
	struct watch_dir **dirs;
	size_t count;
	bool truncated;
	uv_timer_t *quiet;	/* heap: closes after the watch is freed */
};

static void dir_closed(uv_handle_t *h)
{
	free(h->data);
}

static void timer_closed(uv_handle_t *h)
{
	free(h);
}

static void on_quiet(uv_timer_t *t)
{
	struct watch *w = t->data;

	w->on_change(w, w->arg);
}

static void on_event(uv_fs_event_t *h, const char *name, int events,
		     int status)
{
	struct watch_dir *d = h->data;
	struct watch *w = d->owner;

	if (w == NULL)
		return;
	/* Each event pushes the call back: one call per quiet spell. */
	uv_timer_start(w->quiet, on_quiet, w->debounce_ms, 0);
}

/* Watches one folder; false once the bound is reached. */
static bool watch_one(struct watch *w, const char *path)
{
	struct watch_dir *d;

	if (w->count >= WATCH_DIRS_MAX) {
		w->truncated = true;
		return false;
	}
	d = xcalloc(1, sizeof(*d));
	d->owner = w;
	d->handle.data = d;
	if (uv_fs_event_init(w->loop, &d->handle) < 0) {
		free(d);
		return true;
	}
	if (uv_fs_event_start(&d->handle, on_event, path, 0) < 0) {
		d->owner = NULL;
		uv_close((uv_handle_t *)&d->handle, dir_closed);
		return true;
	}
	w->dirs = xrealloc(w->dirs, (w->count + 1) * sizeof(*w->dirs));
	w->dirs[w->count++] = d;
	return true;
}

/* Watches the folder REL (relative to the root) and those under it. */
static void watch_tree(struct watch *w, const char *rel)
{
	char *path = rel[0] ? xasprintf("%s/%s", w->root, rel)
			    : xstrdup(w->root);
	struct dirent *e;
	DIR *dir;

	if (!watch_one(w, path) || (dir = opendir(path)) == NULL) {
		free(path);
		return;
	}
	while ((e = readdir(dir)) != NULL && !w->truncated) {
		char *child;
		struct stat st;
		char *full;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    !strcmp(e->d_name, ".git"))
			continue;
		child = rel[0] ? xasprintf("%s/%s", rel, e->d_name)
			       : xstrdup(e->d_name);
		full = xasprintf("%s/%s", path, e->d_name);
		if (lstat(full, &st) == 0 && S_ISDIR(st.st_mode) &&
		    !(w->skip && w->skip(child, w->arg)))
			watch_tree(w, child);
		free(full);
		free(child);
	}
	closedir(dir);
	free(path);
}

/* Closes every folder handle. */
static void unwatch_all(struct watch *w)
{
	for (size_t i = 0; i < w->count; i++) {
		w->dirs[i]->owner = NULL;
		uv_close((uv_handle_t *)&w->dirs[i]->handle, dir_closed);
	}
	free(w->dirs);
	w->dirs = NULL;
	w->count = 0;
	w->truncated = false;
}

struct watch *watch_new(uv_loop_t *loop, const char *root,
			unsigned debounce_ms, watch_skip_cb skip,
			watch_change_cb on_change, void *arg)
{
	struct watch *w = xcalloc(1, sizeof(*w));

	w->loop = loop;
	w->root = xstrdup(root);
	w->debounce_ms = debounce_ms;
	w->skip = skip;
	w->on_change = on_change;
	w->arg = arg;
	w->quiet = xcalloc(1, sizeof(*w->quiet));
	uv_timer_init(loop, w->quiet);
	w->quiet->data = w;
	watch_tree(w, "");
	if (w->count == 0) {
		watch_free(w);
		return NULL;
	}
	return w;
}

void watch_refresh(struct watch *w)
{
	unwatch_all(w);
	watch_tree(w, "");
}

size_t watch_count(const struct watch *w)
{
	return w->count;
}

bool watch_truncated(const struct watch *w)
{
	return w->truncated;
}

void watch_free(struct watch *w)
{
	if (w == NULL)
		return;
	unwatch_all(w);
	uv_timer_stop(w->quiet);
	uv_close((uv_handle_t *)w->quiet, timer_closed);
	free(w->root);
	free(w);
}
