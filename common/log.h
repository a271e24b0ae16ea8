/*
 * log.h: the one logger of every Baton program.
 *
 * Lines carry a UTC timestamp, a level, the program and a component tag:
 *   2026-12-04T15:40:01.123Z INFO  baton-relay[relay] listening on ...
 * or, for log shippers, the same fields as one JSON object a line:
 *   {"time":"2026-12-04T15:40:01.123Z","level":"info",
 *    "program":"baton-relay","component":"relay","msg":"listening on ..."}
 * The level is checked before anything is formatted. Untrusted text is
 * escaped (in text, control bytes become \xNN; in JSON, every byte that
 * JSON cannot carry as it is becomes an escape, and a byte that is not
 * UTF-8 becomes U+FFFD), so one call is always one line. Every value
 * registered with log_redact_add() is replaced by a mark, so a secret that
 * reaches a log call by accident still never reaches the log.
 */
#ifndef BATON_LOG_H
#define BATON_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

enum log_format {
	LOG_FORMAT_TEXT = 0,
	LOG_FORMAT_JSON,
};

extern int log_threshold;

/*
 * Sets the program name and level; stderr is the destination. The format
 * is text unless the environment says BATON_LOG_FORMAT=json (a value that
 * is neither is reported in a warning, and text is kept).
 */
void log_init(const char *program, enum log_level level);
/* Parses "error|warn|info|debug"; -1 when unknown. */
int log_level_parse(const char *name);
/* Switches to the format named "text" or "json" (any case); -EINVAL
 * when unknown. */
int log_format_set(const char *name);
/* The format lines are written in now. */
enum log_format log_format_get(void);
/* Registers a secret value to be replaced by "[redacted]" in every line. */
void log_redact_add(const char *secret);
void log_redact_clear(void);
/* Routes libwebsockets' and libgit2's own logs into ours. */
void log_route_libraries(void);

void log_write(enum log_level level, const char *tag, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vwrite(enum log_level level, const char *tag, const char *fmt,
		va_list ap);

#define LOG_AT(level, tag, ...)                                               \
	do {                                                                  \
		if ((int)(level) <= log_threshold)                            \
			log_write((level), (tag), __VA_ARGS__);               \
	} while (0)

#define log_error(tag, ...) LOG_AT(LOG_LEVEL_ERROR, tag, __VA_ARGS__)
#define log_warn(tag, ...) LOG_AT(LOG_LEVEL_WARN, tag, __VA_ARGS__)
#define log_info(tag, ...) LOG_AT(LOG_LEVEL_INFO, tag, __VA_ARGS__)
#define log_debug(tag, ...) LOG_AT(LOG_LEVEL_DEBUG, tag, __VA_ARGS__)

#endif
