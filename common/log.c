/*
 * log.c: levels, component tags, escaping and redaction for every line.
 */
#define _GNU_SOURCE
#include "log.h"
#include "util.h"

#include <git2.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define REDACT_MAX 32
#define REDACT_MARK "[redacted]"

int log_threshold = LOG_LEVEL_INFO;

static const char *program_name = "baton";
static char *redactions[REDACT_MAX];
static size_t redaction_count;

static const char *const level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };

void log_init(const char *program, enum log_level level)
{
	program_name = program;
	log_threshold = level;
}

int log_level_parse(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++)
		if (!strcasecmp(name, level_names[i]))
			return (int)i;
	if (!strcasecmp(name, "warning"))
		return LOG_LEVEL_WARN;
	return -1;
}

void log_redact_add(const char *secret)
{
	if (secret == NULL || strlen(secret) < 4)
		return;
	for (size_t i = 0; i < redaction_count; i++)
		if (!strcmp(redactions[i], secret))
			return;
	if (redaction_count == REDACT_MAX) {
		free(redactions[0]);
		memmove(redactions, redactions + 1,
			(REDACT_MAX - 1) * sizeof(redactions[0]));
		redaction_count--;
	}
	redactions[redaction_count++] = xstrdup(secret);
}

void log_redact_clear(void)
{
	for (size_t i = 0; i < redaction_count; i++)
		free(redactions[i]);
	redaction_count = 0;
}

/*
 * Replaces the bytes of every registered secret by the mark. Each secret is
 * looked for in the line as written, never in a mark already put in (a
 * secret inside "[redacted]" would be found again forever), and bytes
 * covered by overlapping secrets become one mark, so no part of either
 * secret survives.
 */
static void redact(struct buf *line)
{
	struct buf out = BUF_INIT;
	unsigned char *hidden = NULL;	/* 1: byte of a secret */

	for (size_t i = 0; i < redaction_count; i++) {
		const char *secret = redactions[i];
		size_t slen = strlen(secret);
		const char *hit = line->data;

		while ((hit = strstr(hit, secret)) != NULL) {
			size_t off = (size_t)(hit - line->data);

			if (hidden == NULL)
				hidden = xcalloc(line->len, 1);
			memset(hidden + off, 1, slen);
			hit++;
		}
	}
	if (hidden == NULL)
		return;

	for (size_t i = 0; i < line->len; i++) {
		if (!hidden[i])
			buf_append(&out, line->data + i, 1);
		else if (i == 0 || !hidden[i - 1])
			buf_puts(&out, REDACT_MARK);
	}
	free(hidden);
	buf_free(line);
	*line = out;
}

void log_vwrite(enum log_level level, const char *tag, const char *fmt,
		va_list ap)
{
	struct buf line = BUF_INIT;
	struct timeval tv;
	struct tm tm;
	char stamp[32];
	char *msg;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	msg = xvasprintf(fmt, ap);

	buf_printf(&line, "%s.%03ldZ %-5s %s[%s] ", stamp,
		   (long)(tv.tv_usec / 1000), level_names[level], program_name,
		   tag);
	for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			buf_printf(&line, "\\x%02x", *p);
		else
			buf_append(&line, p, 1);
	}
	free(msg);
	redact(&line);
	buf_puts(&line, "\n");
	fputs(line.data, stderr);
	buf_free(&line);
}

void log_write(enum log_level level, const char *tag, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(level, tag, fmt, ap);
	va_end(ap);
}

static void lws_log_emit(int level, const char *line)
{
	size_t len = strlen(line);
	enum log_level ours = LOG_LEVEL_DEBUG;

	if (level & LLL_ERR)
		ours = LOG_LEVEL_WARN;
	else if (level & LLL_WARN)
		ours = LOG_LEVEL_INFO;
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	LOG_AT(ours, "lws", "%.*s", (int)len, line);
}

static void git_trace_emit(git_trace_level_t level, const char *msg)
{
	log_debug("git", "%s", msg);
}

void log_route_libraries(void)
{
	int lws_levels = LLL_ERR | LLL_WARN;

	if (log_threshold >= LOG_LEVEL_DEBUG)
		lws_levels |= LLL_NOTICE;
	lws_set_log_level(lws_levels, lws_log_emit);
	if (log_threshold >= LOG_LEVEL_DEBUG)
		git_trace_set(GIT_TRACE_DEBUG, git_trace_emit);
}
