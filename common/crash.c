/*
 * crash.c: crash points for fault-injection tests.
 */
#include "crash.h"
#include "log.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

void crash_point(const char *name)
{
	const char *at = getenv("BATON_CRASH_AT");

	const char *once = getenv("BATON_CRASH_ONCE");
	int fd;

	if (at == NULL || strcmp(at, name))
		return;
	if (once) {
		fd = open(once, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return;	/* someone crashed here already */
		close(fd);
	}
	log_warn("crash", "BATON_CRASH_AT=%s: killing this process", name);
	raise(SIGKILL);
}
