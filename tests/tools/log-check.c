/*
 * log-check.c: checks that every line of a Baton program's log is one JSON
 * object with the fields of a text log line (common/log.h): "time" (UTC
 * with milliseconds), "level" (error, warn, info or debug), "program",
 * "component" and "msg", all strings, and no other field.
 *
 *   log-check [--print] FILE...
 *
 * Says how many lines each file holds. --print also writes each line as
 * "LEVEL PROGRAM[COMPONENT] MSG" (the message decoded), for grep.
 * Exits 0 when every line passes, 1 naming the first that does not, 2 on
 * a usage error or a file it cannot read.
 */
#include <cjson/cJSON.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const fields[] = {
	"time", "level", "program", "component", "msg",
};
static const char *const levels[] = { "error", "warn", "info", "debug" };

/* Reads a whole file; the caller frees. NULL when it cannot. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 65536, n;
	char *text = NULL, *more;

	*len = 0;
	if (f == NULL)
		return NULL;
	text = malloc(cap);
	while (text && (n = fread(text + *len, 1, cap - *len - 1, f)) > 0) {
		*len += n;
		if (cap - *len - 1 > 0)
			continue;
		more = realloc(text, cap * 2);
		if (more == NULL) {
			free(text);
			text = NULL;
			break;
		}
		text = more;
		cap *= 2;
	}
	fclose(f);
	if (text)
		text[*len] = '\0';
	return text;
}

/* A string field of a checked object. */
static const char *string(const cJSON *o, const char *name)
{
	return cJSON_GetObjectItemCaseSensitive(o, name)->valuestring;
}

/* Why one line (without its newline) is not a log object, or NULL. */
static const char *check_line(const char *line, size_t len,
			      const regex_t *stamp, bool print)
{
	const char *why = NULL;
	cJSON *o, *item;
	size_t n = 0, i;

	for (i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20)
			return "a raw control byte inside the line";
	o = cJSON_ParseWithLength(line, len);
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return "not a JSON object";
	}
	cJSON_ArrayForEach(item, o)
		n++;
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]) && !why; i++)
		if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o,
							fields[i])))
			why = "a field is missing or not a string";
	if (!why && n != sizeof(fields) / sizeof(fields[0]))
		why = "fields other than time, level, program, component, msg";
	if (!why && regexec(stamp, string(o, "time"), 0, NULL, 0) != 0)
		why = "time is not YYYY-MM-DDTHH:MM:SS.mmmZ";
	if (!why) {
		const char *level = string(o, "level");

		why = "level is not error, warn, info or debug";
		for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
			if (!strcmp(level, levels[i]))
				why = NULL;
	}
	if (!why && print)
		printf("%s %s[%s] %s\n", string(o, "level"),
		       string(o, "program"), string(o, "component"),
		       string(o, "msg"));
	cJSON_Delete(o);
	return why;
}

int main(int argc, char **argv)
{
	bool print = argc > 1 && !strcmp(argv[1], "--print");
	int first = print ? 2 : 1, rc = 0;
	regex_t stamp;

	if (argc <= first) {
		fprintf(stderr, "usage: log-check [--print] FILE...\n");
		return 2;
	}
	if (regcomp(&stamp, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
		    "[0-9]{2}\\.[0-9]{3}Z$", REG_EXTENDED | REG_NOSUB) != 0)
		return 2;
	for (int a = first; a < argc && rc == 0; a++) {
		size_t len, count = 0;
		char *text = slurp(argv[a], &len);
		const char *line, *end;

		if (text == NULL) {
			fprintf(stderr, "log-check: cannot read %s\n", argv[a]);
			rc = 2;
			break;
		}
		for (line = text; line < text + len && rc == 0;
		     line = end + 1) {
			const char *why;

			end = memchr(line, '\n', (size_t)(text + len - line));
			count++;
			why = end ? check_line(line, (size_t)(end - line),
					       &stamp, print)
				  : "the last line has no newline";
			if (why) {
				fprintf(stderr, "log-check: %s:%zu: %s: %.*s\n",
					argv[a], count, why,
					(int)(end ? end - line
						  : text + len - line), line);
				rc = 1;
			}
		}
		if (rc == 0)
			fprintf(stderr, "log-check: %s: %zu JSON lines\n",
				argv[a], count);
		free(text);
	}
	regfree(&stamp);
	return rc;
}
