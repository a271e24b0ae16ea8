/*
 * log.h: the one logger of every Baton program.
 *
 * Lines carry a UTC timestamp, a level, the program and a component tag:
 *   2026-12-04T15:40:01.123Z INFO  baton-relay[relay] listening on ...
 * The level is checked before anything is formatted. Untrusted text is
 * escaped (control bytes become \xNN), and every value registered with
 * log_redact_add() is replaced by a mark, so a secret that reaches a log
 * call by accident still never reaches the log.
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

extern int log_threshold;

/* Sets the program name and level; stderr is the destination. */
void log_init(const char *program, enum log_level level);
/* Parses "error|warn|info|debug"; -1 when unknown. */
int log_level_parse(const char *name);
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
