/*
 * log.c: levels, component tags, escaping and redaction for every line,
 * written as text or as JSON lines.
 */
#define _GNU_SOURCE
#include "log.h"
#include "util.h"

#include <errno.h>
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
static enum log_format format = LOG_FORMAT_TEXT;
static char *redactions[REDACT_MAX];
static size_t redaction_count;

static const char *const level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };
static const char *const level_keys[] = { "error", "warn", "info", "debug" };

void log_init(const char *program, enum log_level level)
{
	const char *env = getenv("BATON_LOG_FORMAT");

	program_name = program;
	log_threshold = level;
	format = LOG_FORMAT_TEXT;
	if (env && env[0] && log_format_set(env) < 0)
		log_warn("log", "BATON_LOG_FORMAT is '%s', neither json nor "
			 "text; logging text", env);
}

int log_format_set(const char *name)
{
	if (!strcasecmp(name, "text"))
		format = LOG_FORMAT_TEXT;
	else if (!strcasecmp(name, "json"))
		format = LOG_FORMAT_JSON;
	else
		return -EINVAL;
	return 0;
}

enum log_format log_format_get(void)
{
	return format;
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

/*
 * The length of the well-formed UTF-8 sequence at p (Unicode's table 3-7:
 * no overlong forms, no surrogates, nothing past U+10FFFF), or 0. A NUL is
 * never a continuation byte, so this stops at the end of the string.
 */
static size_t utf8_len(const unsigned char *p)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (p[0] == 0xe0)
		lo = 0xa0;
	else if (p[0] == 0xed)
		hi = 0x9f;
	else if (p[0] == 0xf0)
		lo = 0x90;
	else if (p[0] == 0xf4)
		hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

/* Appends text as a JSON string, quotes included. */
static void json_string(struct buf *out, const char *text)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t len;

	buf_puts(out, "\"");
	while (*p) {
		switch (*p) {
		case '"': buf_puts(out, "\\\""); p++; continue;
		case '\\': buf_puts(out, "\\\\"); p++; continue;
		case '\n': buf_puts(out, "\\n"); p++; continue;
		case '\r': buf_puts(out, "\\r"); p++; continue;
		case '\t': buf_puts(out, "\\t"); p++; continue;
		}
		if (*p < 0x20 || *p == 0x7f) {
			buf_printf(out, "\\u%04x", *p++);
		} else if (*p < 0x80) {
			buf_append(out, p++, 1);
		} else if ((len = utf8_len(p)) == 0) {
			buf_puts(out, "\\ufffd");
			p++;
		} else if (len == 3 && p[0] == 0xe2 && p[1] == 0x80 &&
			   (p[2] == 0xa8 || p[2] == 0xa9)) {
			/* U+2028 and U+2029 end lines in JavaScript. */
			buf_printf(out, "\\u%04x", 0x2000 + (p[2] - 0x80));
			p += len;
		} else {
			buf_append(out, p, len);
			p += len;
		}
	}
	buf_puts(out, "\"");
}

/* Appends msg with control bytes as \xNN, everything else as it is. */
static void text_escape(struct buf *out, const char *msg)
{
	for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			buf_printf(out, "\\x%02x", *p);
		else
			buf_append(out, p, 1);
	}
}

void log_vwrite(enum log_level level, const char *tag, const char *fmt,
		va_list ap)
{
	struct buf line = BUF_INIT, msg = BUF_INIT;
	struct timeval tv;
	struct tm tm;
	char stamp[32];
	char *text;
	size_t n;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + n, sizeof(stamp) - n, ".%03dZ",
		 (int)(tv.tv_usec / 1000) % 1000);

	/* Secrets are found in the message as written, before escaping. */
	text = xvasprintf(fmt, ap);
	buf_puts(&msg, text);
	free(text);
	redact(&msg);

	if (format == LOG_FORMAT_JSON) {
		buf_printf(&line, "{\"time\":\"%s\",\"level\":\"%s\","
			   "\"program\":", stamp, level_keys[level]);
		json_string(&line, program_name);
		buf_puts(&line, ",\"component\":");
		json_string(&line, tag);
		buf_puts(&line, ",\"msg\":");
		json_string(&line, msg.data);
		buf_puts(&line, "}\n");
	} else {
		buf_printf(&line, "%s %-5s %s[%s] ", stamp,
			   level_names[level], program_name, tag);
		text_escape(&line, msg.data);
		buf_puts(&line, "\n");
	}
	fputs(line.data, stderr);
	buf_free(&msg);
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
