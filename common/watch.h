/*
 * watch.h: file events for a whole worktree, on a libuv loop.
 *
 * libuv watches one folder per handle on Linux (inotify is not recursive),
 * so a watch holds one handle per folder of the tree, skipping .git and
 * the folders the caller says to skip (ignored ones), up to a bound; past
 * it the caller's periodic check is what notices changes. Events are not
 * delivered one by one: the owner gets one call after the tree has been
 * quiet for the debounce time. watch_refresh re-reads the folder list
 * (new folders appear in events of their parents).
 */
#ifndef BATON_WATCH_H
#define BATON_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#define WATCH_DIRS_MAX 1024

struct watch;

/* Whether a folder (path relative to the root, no trailing slash) is left
 * out, with everything under it. */
typedef bool (*watch_skip_cb)(const char *rel, void *arg);
typedef void (*watch_change_cb)(struct watch *w, void *arg);

/*
 * Watches ROOT and the folders under it. on_change runs once the tree has
 * been quiet for debounce_ms after an event. Returns NULL only when ROOT
 * cannot be watched at all.
 */
struct watch *watch_new(uv_loop_t *loop, const char *root,
			unsigned debounce_ms, watch_skip_cb skip,
			watch_change_cb on_change, void *arg);
/* Re-reads the folders to watch. */
void watch_refresh(struct watch *w);
/* How many folders are watched; whether some were left out by the bound. */
size_t watch_count(const struct watch *w);
bool watch_truncated(const struct watch *w);
/* Stops; the handles close on the loop's next turn and free themselves. */
void watch_free(struct watch *w);

#endif
