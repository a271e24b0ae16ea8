/*
 * test-agent.c: baton-test-agent, a stand-in for a coding agent in a
 * terminal, for the integration tests and the demo.
 *
 *   baton-test-agent --session ID [--resume]
 *
 * Like Claude Code, it keeps its conversation as JSON lines under the
 * user's home, in a folder named after the working directory:
 *   $HOME/.baton-test-agent/projects/<cwd_slug>/<ID>.jsonl
 * one line per message: {"turn":N,"role":"user"|"agent","text":"...",
 * "cwd":"<absolute cwd>"}, synced after every turn. It resumes only from
 * the directory the conversation was recorded in.
 *
 * Commands: "remember TEXT", "recall", "edit PATH TEXT", "burst N", "exit";
 * anything else is echoed back. Empty lines are ignored and "exit" is not
 * recorded. Exit codes:
 *   0  "exit", end of input, SIGTERM or SIGHUP
 *   1  an error (HOME unset, a file that cannot be written)
 *   2  starting a session that exists
 *   3  resuming a session that does not exist
 *   4  resuming from another directory: the conversation is filed under
 *      another directory's folder, or its recorded cwd is not this one
 *   5  the conversation file is damaged
 *   64 bad usage
 */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SLUG_MAX 200		/* as agent_cwd_slug() in common/agent.c */
#define BURST_LINE 64		/* bytes per line of burst output */
#define BURST_MAX (1ULL << 32)	/* largest burst, 4 GiB */

/* One user turn kept in memory for "recall". */
struct turn {
	long n;
	char *text;
};

struct agent {
	const char *session;
	char *cwd;		/* getcwd() */
	char *path;		/* the conversation file */
	int fd;			/* open for appending */
	long turns;		/* last turn number */
	struct turn *user;	/* user turns, in order */
	size_t nuser;
};

/* Set by SIGTERM/SIGHUP while a turn is being recorded. */
static volatile sig_atomic_t recording, stop_requested;

/* Prints a message to stderr and exits with `code` at once. */
static void __attribute__((noreturn, format(printf, 2, 3)))
die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("baton-test-agent: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	fflush(stdout);
	_exit(code);
}

/* Allocation that cannot fail (the program exits instead). */
static void *xrealloc(void *p, size_t size)
{
	p = realloc(p, size ? size : 1);
	if (p == NULL)
		die(1, "out of memory");
	return p;
}

/* strdup that cannot fail. */
static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		die(1, "out of memory");
	return p;
}

/* SIGTERM, SIGHUP: leave now, or right after the turn being recorded. */
static void on_signal(int sig)
{
	if (!recording)
		_exit(0);
	stop_requested = 1;
}

/* FNV-1a, 32 bits, as common/agent.c uses for long slugs. */
static uint32_t slug_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

/* The project-folder name of a path, the same rule as agent_cwd_slug(). */
static char *cwd_slug(const char *path)
{
	size_t len = strlen(path), keep = len > SLUG_MAX ? SLUG_MAX : len;
	char *s = xrealloc(NULL, keep + 10);

	for (size_t i = 0; i < keep; i++) {
		unsigned char c = (unsigned char)path[i];
		bool alnum = (c >= 'A' && c <= 'Z') ||
			     (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		s[i] = alnum ? (char)c : '-';
	}
	s[keep] = '\0';
	if (len > SLUG_MAX)
		snprintf(s + keep, 10, "-%08x", slug_hash(path));
	return s;
}

/* Creates a directory and its parents. */
static void mkdirs(const char *path)
{
	char *copy = xstrdup(path);

	for (char *p = copy + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, 0700) < 0 && errno != EEXIST)
			die(1, "cannot create %s: %s", copy, strerror(errno));
		*p = '/';
	}
	if (mkdir(copy, 0700) < 0 && errno != EEXIST)
		die(1, "cannot create %s: %s", copy, strerror(errno));
	free(copy);
}

/* Writes all of a buffer to a file descriptor; 0 or -1. */
static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Appends one message to the conversation file and syncs it. */
static void record(struct agent *a, const char *role, const char *text)
{
	cJSON *o = cJSON_CreateObject();
	char *line;

	cJSON_AddNumberToObject(o, "turn", (double)a->turns);
	cJSON_AddStringToObject(o, "role", role);
	cJSON_AddStringToObject(o, "text", text);
	cJSON_AddStringToObject(o, "cwd", a->cwd);
	line = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (line == NULL)
		die(1, "out of memory");

	recording = 1;
	if (write_all(a->fd, line, strlen(line)) < 0 ||
	    write_all(a->fd, "\n", 1) < 0 || fsync(a->fd) < 0)
		die(1, "cannot write %s: %s", a->path, strerror(errno));
	recording = 0;
	if (stop_requested)
		_exit(0);
	free(line);
}

/* Remembers a user turn for "recall". */
static void keep_user_turn(struct agent *a, long n, const char *text)
{
	a->user = xrealloc(a->user, (a->nuser + 1) * sizeof(*a->user));
	a->user[a->nuser].n = n;
	a->user[a->nuser].text = xstrdup(text);
	a->nuser++;
}

/* Reads one recorded line; false when it is not a message. */
static bool load_line(struct agent *a, const char *line)
{
	cJSON *o = cJSON_Parse(line);
	const cJSON *turn, *role, *text, *cwd;
	bool ok;

	turn = cJSON_GetObjectItemCaseSensitive(o, "turn");
	role = cJSON_GetObjectItemCaseSensitive(o, "role");
	text = cJSON_GetObjectItemCaseSensitive(o, "text");
	cwd = cJSON_GetObjectItemCaseSensitive(o, "cwd");
	ok = cJSON_IsNumber(turn) && cJSON_IsString(role) &&
	     cJSON_IsString(text) && cJSON_IsString(cwd);
	if (ok && strcmp(cwd->valuestring, a->cwd))
		die(4, "session %s was recorded in %s, not in %s; it can "
		    "only be resumed there", a->session, cwd->valuestring,
		    a->cwd);
	if (ok && !strcmp(role->valuestring, "user"))
		keep_user_turn(a, (long)turn->valuedouble, text->valuestring);
	if (ok && (long)turn->valuedouble > a->turns)
		a->turns = (long)turn->valuedouble;
	cJSON_Delete(o);
	return ok;
}

/*
 * The session is not in this directory's folder: exits 4 when another
 * project folder has it (recorded in another directory), 3 when none has.
 */
static void __attribute__((noreturn)) find_elsewhere(const struct agent *a)
{
	char *projects, *other;
	struct dirent *de;
	DIR *dir;

	if (asprintf(&projects, "%s/.baton-test-agent/projects",
		     getenv("HOME")) < 0)
		die(1, "out of memory");
	dir = opendir(projects);
	while (dir != NULL && (de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (asprintf(&other, "%s/%s/%s.jsonl", projects, de->d_name,
			     a->session) < 0)
			die(1, "out of memory");
		if (access(other, F_OK) == 0)
			die(4, "session %s was recorded in another directory "
			    "(%s); it can only be resumed there", a->session,
			    other);
		free(other);
	}
	die(3, "no session %s to resume (%s does not exist)", a->session,
	    a->path);
}

/*
 * Loads the conversation. A last line without its newline was cut by a
 * kill in the middle of a write: it is dropped from the file.
 */
static void load(struct agent *a)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	off_t good = 0;
	long lineno = 0;
	FILE *f;

	f = fopen(a->path, "r");
	if (f == NULL && errno == ENOENT)
		find_elsewhere(a);
	if (f == NULL)
		die(1, "cannot open %s: %s", a->path, strerror(errno));

	while ((n = getline(&line, &cap, f)) > 0) {
		lineno++;
		if (line[n - 1] != '\n')
			break;
		line[n - 1] = '\0';
		if (!load_line(a, line))
			die(5, "%s: line %ld is not a message", a->path,
			    lineno);
		good += n;
	}
	free(line);
	fclose(f);
	if (truncate(a->path, good) < 0)
		die(1, "cannot truncate %s: %s", a->path, strerror(errno));
}

/* Answers "burst N": N bytes of numbered lines, then "burst done". */
static char *burst(const char *arg)
{
	unsigned long long want, off;
	char line[BURST_LINE + 1], *end;
	char *answer;

	errno = 0;
	want = strtoull(arg, &end, 10);
	if (errno || end == arg || *end != '\0' || want > BURST_MAX) {
		fputs("burst needs a byte count up to 4294967296\n", stdout);
		return xstrdup("burst needs a byte count");
	}

	/* Line k: its offset in 8 digits, a space, letters, a newline. */
	for (off = 0; off < want; off += BURST_LINE) {
		size_t len = BURST_LINE;

		snprintf(line, sizeof(line), "%08llu ", off % 100000000);
		for (size_t i = 9; i < BURST_LINE - 1; i++)
			line[i] = (char)('a' + (off + i) % 26);
		line[BURST_LINE - 1] = '\n';
		if (want - off < len)
			len = (size_t)(want - off);
		fwrite(line, 1, len, stdout);
	}
	if (want % BURST_LINE != 0)
		fputc('\n', stdout);
	fputs("burst done\n", stdout);
	if (asprintf(&answer, "burst done (%llu bytes)", want) < 0)
		die(1, "out of memory");
	return answer;
}

/* Answers "edit PATH TEXT": appends TEXT and a newline to PATH. */
static char *edit(const char *arg)
{
	const char *sp = strchr(arg, ' ');
	char *path, *answer;
	int fd, n, err = 0;

	if (sp == NULL || sp == arg)
		return xstrdup("edit needs a path and a text");
	path = strndup(arg, (size_t)(sp - arg));
	if (path == NULL)
		die(1, "out of memory");

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, sp + 1, strlen(sp + 1)) < 0 ||
	    write_all(fd, "\n", 1) < 0)
		err = errno;
	if (fd >= 0 && close(fd) < 0 && err == 0)
		err = errno;
	if (err)
		n = asprintf(&answer, "edit failed: %s: %s", path,
			     strerror(err));
	else
		n = asprintf(&answer, "edited %s", path);
	if (n < 0)
		die(1, "out of memory");
	free(path);
	return answer;
}

/* Answers "recall": every earlier user turn, in order. */
static char *recall(const struct agent *a)
{
	char *answer = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&answer, &len);

	if (m == NULL)
		die(1, "out of memory");
	for (size_t i = 0; i + 1 < a->nuser; i++)
		fprintf(m, "turn %ld: %s\n", a->user[i].n, a->user[i].text);
	fputs("end of recall", m);
	fclose(m);
	return answer;
}

/* Computes the answer to one line, printing what is not the answer. */
static char *answer(struct agent *a, const char *text)
{
	char *out;

	if (!strncmp(text, "remember ", 9)) {
		if (asprintf(&out, "noted: %s", text + 9) < 0)
			die(1, "out of memory");
		return out;
	}
	if (!strcmp(text, "recall"))
		return recall(a);
	if (!strncmp(text, "edit ", 5))
		return edit(text + 5);
	if (!strncmp(text, "burst ", 6))
		return burst(text + 6);
	if (asprintf(&out, "agent heard: %s (turn %ld)", text, a->turns) < 0)
		die(1, "out of memory");
	return out;
}

/* Opens (or, for a new session, creates) the conversation file. */
static void open_conversation(struct agent *a, bool resume)
{
	const char *home = getenv("HOME");
	char *slug, *dir;

	if (home == NULL || home[0] != '/')
		die(1, "HOME must be set to an absolute path");
	slug = cwd_slug(a->cwd);
	if (asprintf(&dir, "%s/.baton-test-agent/projects/%s", home,
		     slug) < 0 ||
	    asprintf(&a->path, "%s/%s.jsonl", dir, a->session) < 0)
		die(1, "out of memory");
	free(slug);

	if (resume) {
		load(a);
		a->fd = open(a->path, O_WRONLY | O_APPEND | O_CLOEXEC);
	} else {
		mkdirs(dir);
		a->fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL |
			     O_CLOEXEC, 0600);
		if (a->fd < 0 && errno == EEXIST)
			die(2, "session %s exists; use --resume", a->session);
	}
	if (a->fd < 0)
		die(1, "cannot open %s: %s", a->path, strerror(errno));
	free(dir);
}

/* Checks that a session id is a plain file name. */
static bool session_valid(const char *s)
{
	return s[0] != '\0' && s[0] != '.' && strchr(s, '/') == NULL &&
	       strlen(s) <= 128;
}

/* Says how to call the program; returns the exit code for bad usage. */
static int usage(void)
{
	fputs("usage: baton-test-agent --session ID [--resume]\n", stderr);
	return 64;
}

/* Opens or resumes the conversation, then answers line after line. */
int main(int argc, char **argv)
{
	struct agent a = { .fd = -1 };
	struct sigaction sa;
	bool resume = false;
	char *line = NULL, *reply;
	size_t cap = 0;
	ssize_t n;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--session") && i + 1 < argc)
			a.session = argv[++i];
		else if (!strcmp(argv[i], "--resume"))
			resume = true;
		else
			return usage();
	}
	if (a.session == NULL || !session_valid(a.session))
		return usage();

	/* No SA_RESTART: a signal ends a blocked read of the terminal. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	a.cwd = getcwd(NULL, 0);
	if (a.cwd == NULL)
		die(1, "cannot get the working directory: %s",
		    strerror(errno));
	open_conversation(&a, resume);
	if (resume)
		printf("resumed session %s with %ld turns\n", a.session,
		       a.turns);
	else
		printf("started session %s in %s\n", a.session, a.cwd);

	for (;;) {
		fputs("> ", stdout);
		fflush(stdout);
		n = getline(&line, &cap, stdin);
		if (n < 0)
			break;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0)
			continue;
		if (!strcmp(line, "exit"))
			break;

		a.turns++;
		keep_user_turn(&a, a.turns, line);
		record(&a, "user", line);
		/* Recorded before it is shown: what was seen is on disk. */
		reply = answer(&a, line);
		record(&a, "agent", reply);
		if (strncmp(line, "burst ", 6))
			printf("%s\n", reply);
		fflush(stdout);
		free(reply);
	}
	fflush(stdout);
	for (size_t i = 0; i < a.nuser; i++)
		free(a.user[i].text);
	free(a.user);
	free(line);
	free(a.path);
	free(a.cwd);
	close(a.fd);
	return 0;
}
