/*
 * test_log.c: unit tests for common/log.c (line format, level threshold,
 * escaping of control bytes, redaction of secrets, level names, and JSON
 * lines: each parsed with cJSON, hostile messages included).
 *
 * Each test sends stderr into a temporary file around its log calls and
 * restores it before asserting, so a failure message is never swallowed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <cjson/cJSON.h>

#include "log.h"
#include "util.h"

/* A line's prefix: UTC timestamp with milliseconds, level padded to five,
 * program and [tag]. */
#define STAMP "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}" \
	      "\\.[0-9]{3}Z"

/* stderr, redirected into a temporary file. */
struct capture {
	FILE *file;
	int saved;		/* the real stderr */
};

/* Sends fd 2 into a fresh temporary file. */
static void capture_start(struct capture *c)
{
	fflush(stderr);
	c->file = tmpfile();
	assert_non_null(c->file);
	c->saved = dup(STDERR_FILENO);
	assert_true(c->saved >= 0);
	assert_int_equal(dup2(fileno(c->file), STDERR_FILENO), STDERR_FILENO);
}

/* Restores stderr and returns what was written; the caller frees. */
static char *capture_end(struct capture *c)
{
	struct buf out = BUF_INIT;
	char chunk[4096];
	size_t n;

	fflush(stderr);
	assert_int_equal(dup2(c->saved, STDERR_FILENO), STDERR_FILENO);
	close(c->saved);
	rewind(c->file);
	while ((n = fread(chunk, 1, sizeof(chunk), c->file)) > 0)
		buf_append(&out, chunk, n);
	fclose(c->file);
	return buf_detach(&out, NULL);
}

/* Asserts that text matches the extended regular expression re. */
static void assert_matches(const char *text, const char *re)
{
	regex_t rx;
	int r;

	assert_int_equal(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
	r = regexec(&rx, text, 0, NULL, 0);
	regfree(&rx);
	if (r != 0)
		fail_msg("\"%s\" does not match /%s/", text, re);
}

/* The number of '\n' in text. */
static int lines(const char *text)
{
	int n = 0;

	for (; *text; text++)
		n += *text == '\n';
	return n;
}

/* The message part of a single captured line: after "] ", before "\n".
 * Returns a copy; the caller frees. */
static char *message_of(const char *line)
{
	const char *start = strstr(line, "] ");
	size_t len;

	assert_non_null(start);
	start += 2;
	len = strlen(start);
	assert_true(len > 0);
	assert_int_equal(start[len - 1], '\n');
	return xstrndup(start, len - 1);
}

/* Logs text as one INFO line and returns the message part as written. */
static char *info_message(const char *text)
{
	struct capture c;
	char *out, *msg;

	capture_start(&c);
	log_info("t", "%s", text);
	out = capture_end(&c);
	assert_int_equal(lines(out), 1);
	msg = message_of(out);
	free(out);
	return msg;
}

/* Counts how often a log argument was evaluated. */
static int evaluations;

static int evaluate(void)
{
	return ++evaluations;
}

/* Starts each test from the same logger state. */
static int setup(void **state)
{
	unsetenv("BATON_LOG_FORMAT");
	log_init("test-log", LOG_LEVEL_INFO);
	log_redact_clear();
	evaluations = 0;
	return 0;
}

/* Forgets the secrets a test registered (their copies are freed). */
static int teardown(void **state)
{
	log_redact_clear();
	return 0;
}

/* Every level's line: timestamp, padded level, program[tag], message. */
static void test_format(void **state)
{
	struct capture c;
	char *out;

	log_init("test-log", LOG_LEVEL_DEBUG);
	capture_start(&c);
	log_error("relay", "e %d", 1);
	log_warn("link", "w %s", "two");
	log_info("host", "i");
	log_debug("git", "d %c", '4');
	out = capture_end(&c);
	assert_matches(out, "^" STAMP " ERROR test-log\\[relay\\] e 1\n"
			    STAMP " WARN  test-log\\[link\\] w two\n"
			    STAMP " INFO  test-log\\[host\\] i\n"
			    STAMP " DEBUG test-log\\[git\\] d 4\n$");
	free(out);
}

/* The timestamp is the current time in UTC, whatever the local zone. */
static void test_timestamp_utc(void **state)
{
	struct capture c;
	struct tm tm;
	time_t before, logged, after;
	char *out, *rest;

	setenv("TZ", "BTN-5:30", 1);
	tzset();
	before = time(NULL);
	capture_start(&c);
	log_info("t", "now");
	out = capture_end(&c);
	after = time(NULL);

	memset(&tm, 0, sizeof(tm));
	rest = strptime(out, "%Y-%m-%dT%H:%M:%S", &tm);
	assert_non_null(rest);
	assert_int_equal(rest[0], '.');
	logged = timegm(&tm);
	assert_in_range(logged, before, after + 1);
	free(out);
	unsetenv("TZ");
	tzset();
}

/* Above the threshold nothing is written, and the macro tests the level
 * before it evaluates the arguments: evaluate() is never called. */
static void test_threshold(void **state)
{
	struct capture c;
	char *out;

	log_init("test-log", LOG_LEVEL_WARN);
	capture_start(&c);
	log_debug("t", "debug %d", evaluate());
	log_info("t", "info %d", evaluate());
	out = capture_end(&c);
	assert_string_equal(out, "");
	assert_int_equal(evaluations, 0);
	free(out);

	capture_start(&c);
	log_warn("t", "warn %d", evaluate());
	log_error("t", "error %d", evaluate());
	out = capture_end(&c);
	assert_int_equal(evaluations, 2);
	assert_matches(out, "^" STAMP " WARN  test-log\\[t\\] warn 1\n"
			    STAMP " ERROR test-log\\[t\\] error 2\n$");
	free(out);

	log_init("test-log", LOG_LEVEL_ERROR);
	capture_start(&c);
	log_warn("t", "warn %d", evaluate());
	out = capture_end(&c);
	assert_string_equal(out, "");
	assert_int_equal(evaluations, 2);
	free(out);
}

/* Control bytes become \xNN; printable ASCII and UTF-8 pass unchanged. */
static void test_escape(void **state)
{
	char *msg = info_message("a\tb\rc\x1b[31md\x7f" "e\x01 \xc3\xa9~");

	assert_string_equal(msg, "a\\x09b\\x0dc\\x1b[31md\\x7f"
				 "e\\x01 \xc3\xa9~");
	free(msg);
}

/* A newline inside a message cannot forge a second log line. */
static void test_escape_newline(void **state)
{
	const char *forged = "ok\n2026-01-01T00:00:00.000Z ERROR "
			     "baton-relay[relay] forged\n";
	struct capture c;
	char *out;

	capture_start(&c);
	log_info("t", "user said %s", forged);
	log_info("t", "two\nlines in the format");
	out = capture_end(&c);
	assert_int_equal(lines(out), 2);
	assert_matches(out, "^" STAMP " INFO  test-log\\[t\\] user said ok"
			    "\\\\x0a2026-01-01T00:00:00.000Z ERROR "
			    "baton-relay\\[relay\\] forged\\\\x0a\n"
			    STAMP " INFO  test-log\\[t\\] two\\\\x0alines "
			    "in the format\n$");
	free(out);
}

/* Every occurrence of a registered secret is replaced by the mark. */
static void test_redact(void **state)
{
	char *msg;

	log_redact_add("s3cr3t-token");
	msg = info_message("token=s3cr3t-token, again s3cr3t-token.");
	assert_string_equal(msg, "token=[redacted], again [redacted].");
	free(msg);

	msg = info_message("s3cr3t-tokes s3cr3t-toke nothing");
	assert_string_equal(msg, "s3cr3t-tokes s3cr3t-toke nothing");
	free(msg);
}

/* Two secrets are both replaced, wherever each occurs. */
static void test_redact_two(void **state)
{
	char *msg;

	log_redact_add("first-secret");
	log_redact_add("second-secret");
	log_redact_add("first-secret");
	msg = info_message("a second-secret b first-secret c "
			   "second-secret");
	assert_string_equal(msg, "a [redacted] b [redacted] c [redacted]");
	free(msg);
}

/* Overlapping text: a false start just before a secret, a secret that
 * overlaps itself, a secret inside a longer one, and two secrets sharing
 * bytes. No byte of any secret survives, whichever came first. */
static void test_redact_overlap(void **state)
{
	char *msg;

	log_redact_add("abcabd");
	msg = info_message("x abcabcabd y");
	assert_string_equal(msg, "x abc[redacted] y");
	free(msg);

	log_redact_add("abab");
	msg = info_message("x ababab y");
	assert_string_equal(msg, "x [redacted] y");
	free(msg);

	log_redact_add("abcd");
	log_redact_add("abcd-efgh");
	msg = info_message("[abcd-efgh] [abcd]");
	assert_string_equal(msg, "[[redacted]] [[redacted]]");
	free(msg);

	log_redact_clear();
	log_redact_add("1234wxyz");
	log_redact_add("wxyz5678");
	msg = info_message("<1234wxyz5678>");
	assert_string_equal(msg, "<[redacted]>");
	free(msg);
}

/* A secret that is part of the mark itself is still replaced once: the
 * mark is not searched again, which would never end (alarm() turns such a
 * hang into a failure). */
static void test_redact_inside_mark(void **state)
{
	char *msg;

	alarm(10);
	log_redact_add("redacted");
	log_redact_add("[red");
	msg = info_message("a redacted b");
	alarm(0);
	assert_string_equal(msg, "a [redacted] b");
	free(msg);
}

/* A secret at the very end of the message is replaced, and the line
 * still ends with its newline. */
static void test_redact_at_end(void **state)
{
	struct capture c;
	char *out;

	log_redact_add("tail-secret");
	capture_start(&c);
	log_info("t", "ends with tail-secret");
	out = capture_end(&c);
	assert_matches(out, "^" STAMP " INFO  test-log\\[t\\] ends with "
			    "\\[redacted\\]\n$");
	free(out);
}

/*
 * Values shorter than four bytes are not registered: a one- to three-byte
 * "secret" (an empty token, "1", "abc") would match ordinary words and
 * numbers all over the log and destroy it, while protecting nothing a real
 * credential needs. NULL is ignored too.
 */
static void test_redact_short_ignored(void **state)
{
	char *msg;

	log_redact_add(NULL);
	log_redact_add("");
	log_redact_add("a");
	log_redact_add("abc");
	log_redact_add("wxyz");
	msg = info_message("a abc wxyz");
	assert_string_equal(msg, "a abc [redacted]");
	free(msg);
}

/* After log_redact_clear the former secrets appear as they are. */
static void test_redact_clear(void **state)
{
	char *msg;

	log_redact_add("gone-secret");
	log_redact_clear();
	msg = info_message("gone-secret");
	assert_string_equal(msg, "gone-secret");
	free(msg);

	log_redact_add("gone-secret");
	msg = info_message("gone-secret");
	assert_string_equal(msg, "[redacted]");
	free(msg);
}

/* Every level name in any case, "warning", and junk refused. */
static void test_level_parse(void **state)
{
	static const char *const junk[] = {
		"", "verbose", "inf", "infos", " info", "info ", "0", "3",
		"err", "trace", "warnings",
	};

	assert_int_equal(log_level_parse("error"), LOG_LEVEL_ERROR);
	assert_int_equal(log_level_parse("warn"), LOG_LEVEL_WARN);
	assert_int_equal(log_level_parse("warning"), LOG_LEVEL_WARN);
	assert_int_equal(log_level_parse("info"), LOG_LEVEL_INFO);
	assert_int_equal(log_level_parse("debug"), LOG_LEVEL_DEBUG);
	assert_int_equal(log_level_parse("ERROR"), LOG_LEVEL_ERROR);
	assert_int_equal(log_level_parse("Warning"), LOG_LEVEL_WARN);
	assert_int_equal(log_level_parse("Debug"), LOG_LEVEL_DEBUG);
	for (size_t i = 0; i < ARRAY_SIZE(junk); i++)
		assert_int_equal(log_level_parse(junk[i]), -1);
}

/* ---- JSON lines ---- */

/*
 * Parses one captured JSON line (ending in its newline, no other newline
 * and no raw control byte in it) and checks that it has exactly the fields
 * of a text line: time, level, program, component and msg, all strings.
 * Returns the object; the caller deletes it.
 */
static cJSON *json_line(const char *line, size_t len)
{
	static const char *const keys[] = {
		"time", "level", "program", "component", "msg",
	};
	cJSON *o, *item;
	int n = 0;

	assert_true(len > 0);
	assert_int_equal(line[len - 1], '\n');
	for (size_t i = 0; i + 1 < len; i++)
		if ((unsigned char)line[i] < 0x20)
			fail_msg("raw byte 0x%02x at %zu in %.*s",
				 (unsigned char)line[i], i, (int)len, line);
	o = cJSON_ParseWithLength(line, len - 1);
	if (!cJSON_IsObject(o))
		fail_msg("not a JSON object: %.*s", (int)len, line);
	cJSON_ArrayForEach(item, o)
		n++;
	assert_int_equal(n, ARRAY_SIZE(keys));
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		item = cJSON_GetObjectItemCaseSensitive(o, keys[i]);
		if (!cJSON_IsString(item))
			fail_msg("no string \"%s\" in %.*s", keys[i],
				 (int)len, line);
	}
	assert_matches(cJSON_GetObjectItem(o, "time")->valuestring,
		       "^" STAMP "$");
	return o;
}

/* A string field of a parsed line. */
static const char *field(const cJSON *o, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(o, key)->valuestring;
}

/* Logs text as one INFO JSON line and returns the parsed object. */
static cJSON *json_info(const char *text)
{
	struct capture c;
	cJSON *o;
	char *out;

	assert_int_equal(log_format_set("json"), 0);
	capture_start(&c);
	log_info("t", "%s", text);
	out = capture_end(&c);
	assert_int_equal(lines(out), 1);
	o = json_line(out, strlen(out));
	free(out);
	return o;
}

/* Every level as one JSON object a line, with the fields of text lines. */
static void test_json_format(void **state)
{
	static const char *const levels[] = { "error", "warn", "info",
					      "debug" };
	static const char *const tags[] = { "relay", "link", "host", "git" };
	static const char *const msgs[] = { "e 1", "w two", "i", "d 4" };
	struct capture c;
	const char *line;
	char *out;
	int i = 0;

	log_init("test-log", LOG_LEVEL_DEBUG);
	assert_int_equal(log_format_set("json"), 0);
	capture_start(&c);
	log_error("relay", "e %d", 1);
	log_warn("link", "w %s", "two");
	log_info("host", "i");
	log_debug("git", "d %c", '4');
	out = capture_end(&c);
	assert_int_equal(lines(out), 4);
	for (line = out; *line; i++) {
		const char *end = strchr(line, '\n');
		cJSON *o = json_line(line, (size_t)(end - line) + 1);

		assert_string_equal(field(o, "level"), levels[i]);
		assert_string_equal(field(o, "program"), "test-log");
		assert_string_equal(field(o, "component"), tags[i]);
		assert_string_equal(field(o, "msg"), msgs[i]);
		cJSON_Delete(o);
		line = end + 1;
	}
	assert_int_equal(i, 4);
	free(out);
}

/* The threshold holds in JSON too, before arguments are evaluated. */
static void test_json_threshold(void **state)
{
	struct capture c;
	char *out;

	log_init("test-log", LOG_LEVEL_WARN);
	assert_int_equal(log_format_set("json"), 0);
	capture_start(&c);
	log_info("t", "info %d", evaluate());
	out = capture_end(&c);
	assert_string_equal(out, "");
	assert_int_equal(evaluations, 0);
	free(out);
}

/* Newlines, quotes, backslashes and a forged second object stay inside
 * the one message, byte for byte. */
static void test_json_hostile(void **state)
{
	static const char *const texts[] = {
		"two\nlines\r\n",
		"\"}\n{\"time\":\"x\",\"level\":\"error\",\"msg\":\"forged\"}",
		"back\\slash \\\" \\u0041 \\n",
		"tab\there, bell\a, escape\x1b[31m, del\x7f, bs\b, ff\f",
		"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xa8 end",
		"",
		"{}",
	};

	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		cJSON *o = json_info(texts[i]);

		assert_string_equal(field(o, "msg"), texts[i]);
		assert_string_equal(field(o, "level"), "info");
		assert_string_equal(field(o, "component"), "t");
		cJSON_Delete(o);
	}
}

/* Every byte but NUL, in one message: ASCII comes back as it was, and
 * each byte of 0x80 to 0xff, none of which starts a well-formed sequence
 * in this order, becomes one U+FFFD. */
static void test_json_binary(void **state)
{
	char text[256];
	struct buf want = BUF_INIT;
	cJSON *o;

	for (int b = 1; b < 256; b++) {
		text[b - 1] = (char)b;
		if (b < 0x80)
			buf_append(&want, &text[b - 1], 1);
		else
			buf_puts(&want, "\xef\xbf\xbd");
	}
	text[255] = '\0';
	o = json_info(text);
	assert_string_equal(field(o, "msg"), want.data);
	cJSON_Delete(o);
	buf_free(&want);
}

/* Malformed UTF-8: stray continuation bytes, overlong forms, surrogates,
 * code points past U+10FFFF, bytes that never occur, and sequences cut
 * short (in the middle and at the very end) each become U+FFFD, one per
 * byte that cannot start a sequence; the text around them survives. */
static void test_json_invalid_utf8(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "a\x80" "b", "a\xef\xbf\xbd" "b" },
		{ "\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd" },
		{ "\xe0\x80\xaf", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		{ "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		{ "\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
				      "\xef\xbf\xbd" },
		{ "\xf5\xfe\xff", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		{ "x\xe2\x82y", "x\xef\xbf\xbd\xef\xbf\xbdy" },
		{ "end\xf0\x9f\x98", "end\xef\xbf\xbd\xef\xbf\xbd"
				     "\xef\xbf\xbd" },
		{ "\xc3\xa9\xc3", "\xc3\xa9\xef\xbf\xbd" },
		{ "\xf4\x8f\xbf\xbf ok", "\xf4\x8f\xbf\xbf ok" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		cJSON *o = json_info(cases[i].in);

		assert_string_equal(field(o, "msg"), cases[i].out);
		cJSON_Delete(o);
	}
}

/* A secret is found as logged, even one JSON would escape, and no
 * escaped form of it reaches the line either. */
static void test_json_redact(void **state)
{
	struct capture c;
	cJSON *o;
	char *out;

	log_redact_add("se\"cr\\et\ttok");
	assert_int_equal(log_format_set("json"), 0);
	capture_start(&c);
	log_info("t", "token=se\"cr\\et\ttok!");
	out = capture_end(&c);
	assert_null(strstr(out, "cr\\\\et"));
	o = json_line(out, strlen(out));
	assert_string_equal(field(o, "msg"), "token=[redacted]!");
	cJSON_Delete(o);
	free(out);
}

/* The program name and tag are escaped like the message. */
static void test_json_program(void **state)
{
	cJSON *o;

	log_init("odd \"name\"\n", LOG_LEVEL_INFO);
	o = json_info("m");
	assert_string_equal(field(o, "program"), "odd \"name\"\n");
	cJSON_Delete(o);
}

/* Format names: text and json in any case; anything else is refused and
 * leaves the format as it was. */
static void test_format_set(void **state)
{
	struct capture c;
	char *out;

	assert_int_equal(log_format_set("xml"), -EINVAL);
	assert_int_equal(log_format_set(""), -EINVAL);
	assert_int_equal(log_format_set("json "), -EINVAL);
	assert_int_equal(log_format_set("JSON"), 0);
	assert_int_equal(log_format_set("jsonl"), -EINVAL);
	assert_int_equal(log_format_get(), LOG_FORMAT_JSON);
	capture_start(&c);
	log_info("t", "still json");
	out = capture_end(&c);
	assert_int_equal(out[0], '{');
	free(out);

	assert_int_equal(log_format_set("Text"), 0);
	assert_int_equal(log_format_get(), LOG_FORMAT_TEXT);
	capture_start(&c);
	log_info("t", "text");
	out = capture_end(&c);
	assert_matches(out, "^" STAMP " INFO  test-log\\[t\\] text\n$");
	free(out);
}

/* log_init takes the format from BATON_LOG_FORMAT; a value it does not
 * know is reported in a warning, in text, and text is kept. */
static void test_format_env(void **state)
{
	struct capture c;
	cJSON *o;
	char *out;

	setenv("BATON_LOG_FORMAT", "json", 1);
	log_init("test-log", LOG_LEVEL_INFO);
	capture_start(&c);
	log_info("t", "from env");
	out = capture_end(&c);
	o = json_line(out, strlen(out));
	assert_string_equal(field(o, "msg"), "from env");
	cJSON_Delete(o);
	free(out);

	setenv("BATON_LOG_FORMAT", "logfmt", 1);
	capture_start(&c);
	log_init("test-log", LOG_LEVEL_INFO);
	log_info("t", "after");
	out = capture_end(&c);
	unsetenv("BATON_LOG_FORMAT");
	assert_matches(out, "^" STAMP " WARN  test-log\\[log\\] "
			    "BATON_LOG_FORMAT is 'logfmt', neither json nor "
			    "text; logging text\n"
			    STAMP " INFO  test-log\\[t\\] after\n$");
	free(out);

	/* log_init starts from text again when the variable is gone. */
	assert_int_equal(log_format_set("json"), 0);
	log_init("test-log", LOG_LEVEL_INFO);
	capture_start(&c);
	log_info("t", "plain");
	out = capture_end(&c);
	assert_matches(out, "^" STAMP " INFO  test-log\\[t\\] plain\n$");
	free(out);
}

#define LOG_TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		LOG_TEST(test_format),
		LOG_TEST(test_timestamp_utc),
		LOG_TEST(test_threshold),
		LOG_TEST(test_escape),
		LOG_TEST(test_escape_newline),
		LOG_TEST(test_redact),
		LOG_TEST(test_redact_two),
		LOG_TEST(test_redact_overlap),
		LOG_TEST(test_redact_inside_mark),
		LOG_TEST(test_redact_at_end),
		LOG_TEST(test_redact_short_ignored),
		LOG_TEST(test_redact_clear),
		LOG_TEST(test_level_parse),
		LOG_TEST(test_json_format),
		LOG_TEST(test_json_threshold),
		LOG_TEST(test_json_hostile),
		LOG_TEST(test_json_binary),
		LOG_TEST(test_json_invalid_utf8),
		LOG_TEST(test_json_redact),
		LOG_TEST(test_json_program),
		LOG_TEST(test_format_set),
		LOG_TEST(test_format_env),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
