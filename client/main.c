/*
 * main.c: baton, the command-line client. It lists machines and sessions
 * and starts, steers, tails, attaches to, moves and stops sessions through
 * the relay, over one WebSocket link on a libuv loop.
 *
 * Every command runs the same way: connect, say hello, wait for welcome,
 * send the command's request, then handle replies (matched by envelope id)
 * until the command is done. The link reconnects by itself; each welcome
 * sends again what is safe to send again, and a command whose request is
 * not safe to repeat (start, move, stop) fails instead.
 */
#define _GNU_SOURCE
#include "doctor.h"
#include "link.h"
#include "log.h"
#include "proto.h"
#include "qr.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_RELAY "ws://127.0.0.1:8080"
#define DEFAULT_TIMEOUT 30	/* seconds, one-shot commands */
#define MOVE_WAIT_TIMEOUT 300	/* seconds, move --wait */
#define BACKOFF_MAX_MS 3000	/* a person is waiting: retry often */
#define DRAIN_MS 2000		/* how long an exit waits for the queue */
#define PENDING_MAX PROTO_CHUNK	/* keystrokes kept while disconnected */
#define DETACH_KEY 0x1d		/* Ctrl-] */
#define REQ_ID_LEN 24
#define ENV_VALUE_MAX (64 * 1024)	/* one remote environment value */

enum exit_code {
	EXIT_OK = 0,
	EXIT_FAILED = 1,	/* the relay said no, or the command failed */
	EXIT_USAGE = 2,
	EXIT_AUTH = 3,
	EXIT_NOT_FOUND = 4,
	EXIT_UNAVAILABLE = 5,
	EXIT_TIMEOUT = 6,	/* no answer, or the relay is unreachable */
	EXIT_INTERRUPTED = 130,
};

/* Command options, as bits of struct command.opts. */
enum {
	O_MACHINE = 1 << 0,
	O_DIR = 1 << 1,
	O_AGENT = 1 << 2,
	O_COLS = 1 << 3,
	O_ROWS = 1 << 4,
	O_FROM = 1 << 5,
	O_FOLLOW = 1 << 6,
	O_TO = 1 << 7,
	O_WAIT = 1 << 8,
	O_SANDBOX = 1 << 9,
	O_GIT = 1 << 10,
	O_REF = 1 << 11,
	O_QR = 1 << 12,
};

struct client;

struct command {
	const char *name;
	unsigned opts;		/* O_* bits it accepts */
	int args;		/* 0, 1 (SID), 2 (SID TEXT...), 3 (words),
				 * 4 (a name) */
	void (*request)(struct client *c);	/* after each welcome */
	void (*reply)(struct client *c, const struct proto_msg *m);
};

struct client {
	const struct command *cmd;
	uv_loop_t loop;
	struct link *link;

	/* global options */
	const char *url;
	const char *token;
	const char *ca_file;	/* CAs for wss://; NULL: the system's */
	bool insecure;		/* ws:// beyond loopback allowed */
	bool json;
	long timeout_s;		/* -1: the command's default; 0: none */
	int log_level;

	/* command arguments */
	char sid[PROTO_UUID_LEN + 1];	/* canonical, lowercase */
	uint8_t sid_raw[16];
	const char *machine;
	char *dir;		/* absolute */
	const char *agent;
	long cols, rows;	/* 0: not given */
	bool follow;
	const char *to;
	bool wait;
	bool sandbox;		/* start: on the sandbox, from --git */
	bool qr;		/* login: draw the address as a QR code */
	const char *git;	/* start: the repository to clone */
	const char *ref;	/* start: its branch, tag or commit */
	struct buf text;	/* send: TEXT and Enter; env set: the value */
	const char *verb;	/* pair, env: approve, set, unset, list */
	const char *word1;	/* pair: CODE; env: WORKSPACE */
	const char *word2;	/* env: NAME */
	struct doctor *doctor;	/* doctor: the checklist */
	uint64_t *input_ids;	/* send: one id per chunk of text */
	size_t input_count;

	/* connection and request state */
	unsigned next_id;
	char req_id[REQ_ID_LEN];	/* the command's request */
	char aux_id[REQ_ID_LEN];	/* a status request beside it */
	char credits_id[REQ_ID_LEN];	/* doctor: its credits.get */
	bool connected_once;
	bool welcomed;
	bool outage;		/* a loss was reported, not yet mended */
	bool in_flight;		/* a request not safe to repeat is out */
	char *last_close;	/* why the last attempt failed, or NULL */

	/* output streams (tail, attach) */
	uint64_t last_seq;	/* highest transcript seq written (--from) */
	uint64_t end_seq;	/* LAST from "attached" */
	bool have_end;
	bool status_known;
	bool exited;
	int64_t exit_status;

	/* the terminal (attach) */
	uv_tty_t tty;
	bool tty_open;
	bool raw;
	bool reading;
	struct buf pending;	/* keystrokes typed while disconnected */
	char inbuf[4096];

	/* handles and exit */
	uv_timer_t timeout;
	uv_timer_t quit;
	uv_signal_t sigint, sigterm, sighup, sigwinch;
	bool finishing;
	uint64_t drain_until;
	int exit_code;
};

static void client_finish(struct client *c, int code);
static void client_fail(struct client *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prints the usage text. */
static void usage(FILE *f)
{
	fputs(
"usage: baton [OPTIONS] COMMAND [ARGS]\n"
"\n"
"Steer coding-agent sessions through a Baton relay.\n"
"\n"
"Commands:\n"
"  machines              list your machines\n"
"  sessions              list your sessions\n"
"  credits               how much sandbox time you have left\n"
"  start --machine NAME --dir PATH [--agent PROFILE] [--cols N] [--rows N]\n"
"                        start a session and print its id; a relative\n"
"                        PATH is joined to this shell's current directory\n"
"                        (not resolved on this machine); the size\n"
"                        defaults to this terminal's, else 120x40\n"
"  start --sandbox --git URL [--ref REF] [--agent PROFILE]\n"
"                        start a session with no laptop: the workspace's\n"
"                        sandbox clones URL at REF with GIT_USERNAME and\n"
"                        GIT_PASSWORD from its remote environment\n"
"  status SID            show one session\n"
"  send SID TEXT...      type TEXT (words joined by spaces) and Enter\n"
"  tail SID [--from SEQ] [--follow]\n"
"                        print the output after SEQ (default 0); with\n"
"                        --follow, keep printing until the session exits\n"
"  attach SID            connect this terminal to a session; Ctrl-]\n"
"                        detaches\n"
"  move SID --to sandbox|MACHINE [--wait]\n"
"                        move a session; with --wait, show each step and\n"
"                        return when it is done\n"
"  stop SID              stop a session\n"
"  pair approve CODE     make the laptop that shows CODE (from\n"
"                        `baton-local pair`) one of your machines\n"
"  env set WORKSPACE NAME\n"
"                        set a variable of the workspace's sandbox; the\n"
"                        value is read from stdin, never the command line\n"
"  env unset WORKSPACE NAME\n"
"  workspace setup WORKSPACE FILE\n"
"                        the script its sandboxes run after a restore,\n"
"                        instead of the repository's .baton/setup\n"
"  workspace clear-setup WORKSPACE\n"
"  sync on|off WORKSPACE while on, the laptop uploads checkpoints of the\n"
"                        workspace's sessions as they work, so a move to\n"
"                        the sandbox works even when the laptop is\n"
"                        offline; `status` shows the last upload\n"
"  env list [WORKSPACE]  list the variables' names (never their values);\n"
"                        WORKSPACE is the repository's remote URL or the\n"
"                        workspace id `baton sessions --json` shows\n"
"  login [--qr]          print a one-time address that signs a phone or\n"
"                        browser in to the relay's web app (with --qr,\n"
"                        also as a QR code to scan)\n"
"  setup-log MACHINE     print the setup log of a sandbox\n"
"  doctor [--dir PATH]   check that the repository at PATH (default: the\n"
"                        current directory) is ready for a sandbox: its\n"
"                        remote, .baton/setup, the variables\n"
"                        .baton/sandbox.json requires, files git ignores,\n"
"                        MCP servers and paths tied to this laptop; each\n"
"                        line is ok, warn, FAIL or skip, with a fix\n"
"\n"
"Options (anywhere on the line; `--` ends them):\n"
"  --relay URL           the relay, wss://HOST:PORT, or ws://HOST:PORT on\n"
"                        this machine (default $BATON_RELAY, else\n"
"                        " DEFAULT_RELAY ")\n"
"  --ca FILE             trust only the CAs in FILE (PEM) for the relay's\n"
"                        certificate (default $BATON_CA, else the\n"
"                        system's CA store)\n"
"  --insecure            allow plain ws:// to a relay on another machine;\n"
"                        the token and the session cross the network\n"
"                        readable (wss:// certificates are still checked)\n"
"  --token TOKEN         a client token (default $BATON_TOKEN; prefer the\n"
"                        variable: other users can read arguments in ps)\n"
"  --json                print JSON on stdout: status and start print the\n"
"                        session object, machines and sessions an array,\n"
"                        move the first move.step body (with --wait, the\n"
"                        move.done body). 64-bit numbers (seq, epoch,\n"
"                        generation) stay decimal strings, exactly as the\n"
"                        relay sends them. send and stop print nothing\n"
"  --timeout SECONDS     give up after SECONDS; 0 waits forever (default\n"
"                        30; 300 for move --wait; none for tail --follow\n"
"                        and attach, where it only limits the wait until\n"
"                        attached)\n"
"  --log-level LEVEL     error, warn, info or debug (default warn)\n"
"  -h, --help            show this help\n"
"  --version             show the version\n"
"\n"
"Environment:\n"
"  BATON_RELAY           the relay URL when --relay is not given\n"
"  BATON_TOKEN           the client token when --token is not given\n"
"  BATON_CA              the CA file when --ca is not given\n"
"\n"
"Exit status:\n"
"  0  success (also: tail --follow or attach ended by a signal, detach)\n"
"  1  the relay reported an error, or the command failed; doctor: a\n"
"     check FAILs (when none does but the relay could not be asked,\n"
"     doctor exits with the relay's code below, after the local checks)\n"
"  2  usage error\n"
"  3  no token, or the relay refused it\n"
"  4  no such session or machine\n"
"  5  unavailable: the machine is offline, or the relay refused the\n"
"     request as over a limit (connections, sessions; try later) or\n"
"     because your sandbox credits are spent\n"
"  6  no answer from the relay in time, or it cannot be reached (also\n"
"     when its certificate is refused; the message says why)\n"
"  130  interrupted\n", f);
}

/* Prints a usage error and returns the exit code for it. */
static int usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("baton: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nRun `baton --help` for usage.\n", stderr);
	return EXIT_USAGE;
}

/* Returns a copy of untrusted text that is safe to print on a terminal. */
static char *clean(const char *s)
{
	char *out = xstrdup(s ? s : "-");

	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return out;
}

/* Writes all of data to fd, waiting when the fd is non-blocking. */
static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };

			poll(&pfd, 1, -1);
			continue;
		}
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Prints a JSON value on stdout, indented. */
static void print_json(const cJSON *v)
{
	char *text = cJSON_Print(v);

	if (text == NULL)
		abort();	/* cJSON fails only when out of memory */
	puts(text);
	free(text);
}

/* A text table: rows of cleaned cells printed in aligned columns. */
struct table {
	size_t ncols;
	size_t nrows;
	char **cells;
};

/* Adds a row of ncols cells (NULL prints as "-"). */
static void table_add(struct table *t, const char *const *row)
{
	t->cells = xrealloc(t->cells, (t->nrows + 1) * t->ncols *
			    sizeof(char *));
	for (size_t i = 0; i < t->ncols; i++)
		t->cells[t->nrows * t->ncols + i] = clean(row[i]);
	t->nrows++;
}

/* Counts terminal columns, one per UTF-8 character. */
static size_t text_width(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/* Prints the table to stdout and frees its cells. */
static void table_print(struct table *t)
{
	size_t *width = xcalloc(t->ncols, sizeof(size_t));

	for (size_t r = 0; r < t->nrows; r++)
		for (size_t i = 0; i < t->ncols; i++) {
			size_t w = text_width(t->cells[r * t->ncols + i]);

			if (w > width[i])
				width[i] = w;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t i = 0; i < t->ncols; i++) {
			const char *cell = t->cells[r * t->ncols + i];

			if (i + 1 == t->ncols) {
				printf("%s\n", cell);
				break;
			}
			printf("%s%*s  ", cell,
			       (int)(width[i] - text_width(cell)), "");
		}
	}
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(width);
}

/* Returns a random non-zero input id. */
static uint64_t input_id_new(void)
{
	uint64_t id = 0;

	while (id == 0)
		randombytes_buf(&id, sizeof(id));
	return id;
}

/* Sends a request with a fresh envelope id, which it stores in id. */
static void client_send(struct client *c, const char *type, bool session,
			cJSON *body, char id[REQ_ID_LEN])
{
	snprintf(id, REQ_ID_LEN, "c%u", ++c->next_id);
	if (link_send_owned(c->link, proto_encode(type, id,
						  session ? c->sid : NULL,
						  body)) < 0)
		log_debug("client", "%s not sent: the link is down", type);
}

/* Sends one INPUT frame per chunk of data, each with the given id. */
static void client_input(struct client *c, uint64_t id, const void *data,
			 size_t len)
{
	struct proto_bin hdr;

	memset(&hdr, 0, sizeof(hdr));
	hdr.kind = PROTO_BIN_INPUT;
	memcpy(hdr.session, c->sid_raw, sizeof(hdr.session));
	hdr.seq = id;
	if (link_send_binary(c->link, &hdr, data, len) < 0)
		log_debug("client", "input not sent: the link is down");
}

/* Prints a notice during a stream; in raw mode lines need a CR. */
static void client_notice(struct client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void client_notice(struct client *c, const char *fmt, ...)
{
	va_list ap;

	fputs(c->raw ? "\r\nbaton: " : "baton: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(c->raw ? "\r\n" : "\n", stderr);
}

/* Puts the terminal back the way it was. */
static void tty_restore(struct client *c)
{
	if (c->reading) {
		uv_read_stop((uv_stream_t *)&c->tty);
		c->reading = false;
	}
	if (c->raw) {
		uv_tty_set_mode(&c->tty, UV_TTY_MODE_NORMAL);
		c->raw = false;
	}
}

/* Prints "baton: MESSAGE" to stderr and ends the command with code. */
static void client_fail(struct client *c, int code, const char *fmt, ...)
{
	va_list ap;

	if (c->finishing)
		return;
	tty_restore(c);
	fputs("baton: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	client_finish(c, code);
}

/* Ends the command on an error reply from the relay. */
static void client_relay_error(struct client *c, const struct proto_msg *m)
{
	const char *code = proto_str(m->body, "code");
	char *message = clean(proto_str(m->body, "message"));

	if (!strcmp(code, PROTO_E_UNAUTHORIZED))
		client_fail(c, EXIT_AUTH, "the relay refused the token: %s%s",
			    message, strstr(message, "token create") ? "" :
			    "; create one with `baton-relay token create "
			    "--user NAME --kind client`");
	else if (!strcmp(code, PROTO_E_NOT_FOUND))
		client_fail(c, EXIT_NOT_FOUND, "%s", message);
	else if (!strcmp(code, PROTO_E_UNAVAILABLE))
		client_fail(c, EXIT_UNAVAILABLE, "%s", message);
	else if (!strcmp(code, PROTO_E_LIMITED))
		client_fail(c, EXIT_UNAVAILABLE, "the relay refused this (over "
			    "a limit): %s%s", message, strstr(message,
			    "try again") ? "" : "; try again later");
	else
		client_fail(c, EXIT_FAILED, "%s", message);
	free(message);
}

/* Closes a handle the loop owns; nothing to free afterwards. */
static void close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* Waits for the queue to drain, then stops the link and every handle. */
static void on_quit(uv_timer_t *t)
{
	struct client *c = t->data;

	if (link_connected(c->link) && link_queued(c->link) > 0 &&
	    now_ms() < c->drain_until)
		return;
	uv_timer_stop(t);
	link_shutdown(c->link);
	close_handle((uv_handle_t *)&c->timeout);
	close_handle((uv_handle_t *)&c->quit);
	close_handle((uv_handle_t *)&c->sigint);
	close_handle((uv_handle_t *)&c->sigterm);
	close_handle((uv_handle_t *)&c->sighup);
	close_handle((uv_handle_t *)&c->sigwinch);
	if (c->tty_open)
		close_handle((uv_handle_t *)&c->tty);
}

/*
 * Ends the command with code. The work happens on a timer, outside any
 * lws callback, because the link may not be destroyed from inside one.
 */
static void client_finish(struct client *c, int code)
{
	if (c->finishing)
		return;
	c->finishing = true;
	c->exit_code = code;
	tty_restore(c);
	fflush(stdout);
	uv_timer_stop(&c->timeout);
	c->drain_until = now_ms() + DRAIN_MS;
	uv_timer_start(&c->quit, on_quit, 0, 10);
}

/* Formats one table cell: strings as they are, booleans as yes or no. */
static const char *cell_text(const cJSON *v, char tmp[32])
{
	if (cJSON_IsString(v))
		return v->valuestring;
	if (cJSON_IsBool(v))
		return cJSON_IsTrue(v) ? "yes" : "no";
	if (cJSON_IsNumber(v)) {
		snprintf(tmp, 32, "%g", v->valuedouble);
		return tmp;
	}
	return NULL;
}

/*
 * machines, sessions: prints the list as JSON, or as a table with one
 * column per field, headed by the field's name in capitals.
 */
static void list_print(struct client *c, const cJSON *list,
		       const char *const *fields)
{
	struct table t = { 0, 0, NULL };
	const char *row[8];
	char head[8][16], tmp[8][32];
	const cJSON *e;

	if (c->json) {
		print_json(list);
		client_finish(c, EXIT_OK);
		return;
	}
	while (fields[t.ncols] != NULL) {
		size_t i = t.ncols++, k;

		for (k = 0; fields[i][k] && k + 1 < sizeof(head[i]); k++)
			head[i][k] = (char)toupper((unsigned char)fields[i][k]);
		head[i][k] = '\0';
		row[i] = head[i];
	}
	table_add(&t, row);
	cJSON_ArrayForEach(e, list) {
		for (size_t i = 0; i < t.ncols; i++)
			row[i] = cell_text(cJSON_GetObjectItemCaseSensitive(
						   e, fields[i]), tmp[i]);
		table_add(&t, row);
	}
	table_print(&t);
	client_finish(c, EXIT_OK);
}

/* machines: asks for the list. */
static void machines_request(struct client *c)
{
	client_send(c, "machines.list", false, NULL, c->req_id);
}

/* machines: prints the list. */
static void machines_reply(struct client *c, const struct proto_msg *m)
{
	static const char *const fields[] = {
		"name", "kind", "state", "online", NULL,
	};

	if (!strcmp(m->type, "machines") && !strcmp(m->id, c->req_id))
		list_print(c, cJSON_GetObjectItemCaseSensitive(m->body,
							       "machines"),
			   fields);
}

/* sessions: asks for the list. */
static void sessions_request(struct client *c)
{
	client_send(c, "sessions.list", false, NULL, c->req_id);
}

/* sessions: prints the list. */
static void sessions_reply(struct client *c, const struct proto_msg *m)
{
	static const char *const fields[] = {
		"id", "state", "machine", "kind", "agent", "worktree", "seq",
		NULL,
	};

	if (!strcmp(m->type, "sessions") && !strcmp(m->id, c->req_id))
		list_print(c, cJSON_GetObjectItemCaseSensitive(m->body,
							       "sessions"),
			   fields);
}

/* Returns the size of this terminal, or 120x40 when stdout is not one. */
static void terminal_size(long *cols, long *rows)
{
	struct winsize ws;

	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0
	    && ws.ws_col > 0 && ws.ws_row > 0) {
		*cols = ws.ws_col;
		*rows = ws.ws_row;
		return;
	}
	*cols = 120;
	*rows = 40;
}

/* start: asks the relay to start a session on the machine. */
static void start_request(struct client *c)
{
	cJSON *body = cJSON_CreateObject();
	long cols, rows;

	terminal_size(&cols, &rows);
	cJSON_AddStringToObject(body, "machine", c->machine);
	if (c->git) {
		cJSON_AddStringToObject(body, "git", c->git);
		if (c->ref)
			cJSON_AddStringToObject(body, "ref", c->ref);
	} else {
		cJSON_AddStringToObject(body, "dir", c->dir);
	}
	if (c->agent)
		cJSON_AddStringToObject(body, "agent", c->agent);
	cJSON_AddNumberToObject(body, "cols", c->cols ? c->cols : cols);
	cJSON_AddNumberToObject(body, "rows", c->rows ? c->rows : rows);
	client_send(c, "session.start", false, body, c->req_id);
	c->in_flight = true;
}

/* start: prints the new session's id, or the session object. */
static void start_reply(struct client *c, const struct proto_msg *m)
{
	char *id;

	if (strcmp(m->type, "session") || strcmp(m->id, c->req_id))
		return;
	c->in_flight = false;
	if (c->json) {
		print_json(m->body);
	} else {
		id = clean(proto_str(m->body, "id"));
		printf("%s\n", id);
		free(id);
	}
	client_finish(c, EXIT_OK);
}

/* Prints one line of `status` output when the field is present. */
static void status_line(const char *label, const char *value)
{
	char *v;

	if (value == NULL)
		return;
	v = clean(value);
	printf("%-9s %s\n", label, v);
	free(v);
}

/* status: asks for the session. */
static void status_request(struct client *c)
{
	client_send(c, "session.status", true, NULL, c->req_id);
}

/* status: prints the session as lines or JSON. */
/* status: whether the workspace syncs, and when it last did. */
static void status_sync(const cJSON *b)
{
	const cJSON *sync = cJSON_GetObjectItemCaseSensitive(b, "sync");
	const char *oid = proto_str(b, "synced_checkpoint");
	int64_t at = 0, age;
	char when[32];
	time_t t;

	if (!cJSON_IsBool(sync))
		return;
	if (!cJSON_IsTrue(sync) && oid == NULL) {
		printf("%-9s off\n", "sync");
		return;
	}
	if (oid == NULL || proto_int(b, "synced_at", &at) < 0) {
		printf("%-9s on, nothing uploaded yet\n", "sync");
		return;
	}
	t = (time_t)at;
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
	age = (int64_t)time(NULL) - at;
	printf("%-9s %s; last %s (%" PRId64 " s ago), checkpoint %.12s\n",
	       "sync", cJSON_IsTrue(sync) ? "on" : "off", when,
	       age < 0 ? 0 : age, oid);
}

static void status_reply(struct client *c, const struct proto_msg *m)
{
	const cJSON *b = m->body;
	int64_t status;

	if (strcmp(m->type, "session") || strcmp(m->id, c->req_id))
		return;
	if (c->json) {
		print_json(b);
		client_finish(c, EXIT_OK);
		return;
	}
	status_line("id", proto_str(b, "id"));
	status_line("state", proto_str(b, "state"));
	status_line("machine", proto_str(b, "machine"));
	status_line("kind", proto_str(b, "kind"));
	status_line("on it", proto_str(b, "machine_state"));
	status_line("agent", proto_str(b, "agent"));
	status_line("worktree", proto_str(b, "worktree"));
	status_line("seq", proto_str(b, "seq"));
	status_line("epoch", proto_str(b, "epoch"));
	if (proto_int(b, "exit_status", &status) == 0 && status >= 0)
		printf("%-9s %" PRId64 "\n", "exit", status);
	status_line("workspace", proto_str(b, "workspace"));
	status_sync(b);
	client_finish(c, EXIT_OK);
}

/*
 * send: types the text, then asks for the session's status: the relay
 * handles a connection's messages in order, so its reply means the input
 * went through. After a reconnect the same input ids go again, and the
 * relay applies each id once.
 */
static void send_request(struct client *c)
{
	for (size_t i = 0; i < c->input_count; i++) {
		size_t off = i * PROTO_CHUNK;
		size_t len = c->text.len - off;

		client_input(c, c->input_ids[i], c->text.data + off,
			     len > PROTO_CHUNK ? PROTO_CHUNK : len);
	}
	client_send(c, "session.status", true, NULL, c->req_id);
}

/* send: done once the status reply is in. */
static void send_reply(struct client *c, const struct proto_msg *m)
{
	int64_t status;

	if (strcmp(m->type, "session") || strcmp(m->id, c->req_id))
		return;
	if (proto_int(m->body, "exit_status", &status) == 0 && status >= 0)
		client_fail(c, EXIT_FAILED, "session %s has exited (status "
			    "%" PRId64 "); the input went nowhere", c->sid,
			    status);
	else
		client_finish(c, EXIT_OK);
}

/* tail, attach: ends the stream once it is complete. */
static void stream_check_done(struct client *c)
{
	if (!c->have_end || c->last_seq < c->end_seq)
		return;
	if (c->follow && !c->exited)
		return;
	if (c->follow && c->tty_open) {
		tty_restore(c);
		fprintf(stderr, "\nbaton: session %s has exited (status "
			"%" PRId64 ")\n", c->sid, c->exit_status);
	}
	client_finish(c, EXIT_OK);
}

/* attach: sends the terminal's size. */
static void attach_resize(struct client *c)
{
	cJSON *body;
	char id[REQ_ID_LEN];
	int cols, rows;

	if (!c->welcomed || uv_tty_get_winsize(&c->tty, &cols, &rows) < 0)
		return;
	body = cJSON_CreateObject();
	cJSON_AddNumberToObject(body, "cols", cols);
	cJSON_AddNumberToObject(body, "rows", rows);
	client_send(c, "session.resize", true, body, id);
}

/* attach: sends typed bytes now, or keeps them for the next welcome. */
static void attach_type(struct client *c, const char *data, size_t len)
{
	if (len == 0)
		return;
	if (!c->welcomed) {
		if (c->pending.len + len > PENDING_MAX)
			len = PENDING_MAX - c->pending.len;
		buf_append(&c->pending, data, len);
		return;
	}
	client_input(c, input_id_new(), data, len);
}

/* attach: leaves the session running and ends the command. */
static void attach_detach(struct client *c)
{
	char id[REQ_ID_LEN];

	if (c->welcomed)
		client_send(c, "session.detach", true, NULL, id);
	tty_restore(c);
	fprintf(stderr, "\ndetached from %s\n", c->sid);
	client_finish(c, EXIT_OK);
}

/* attach: hands the read callback a buffer. */
static void on_tty_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct client *c = h->data;

	buf->base = c->inbuf;
	buf->len = sizeof(c->inbuf);
}

/* attach: forwards keystrokes; Ctrl-] or the end of input detaches. */
static void on_tty_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct client *c = s->data;
	const char *key;

	if (c->finishing || nread == 0)
		return;
	if (nread < 0) {
		attach_detach(c);
		return;
	}
	key = memchr(buf->base, DETACH_KEY, (size_t)nread);
	attach_type(c, buf->base, key ? (size_t)(key - buf->base)
				       : (size_t)nread);
	if (key)
		attach_detach(c);
}

/* attach: the first time the relay says attached, go raw. */
static void attach_start_terminal(struct client *c)
{
	int r;

	if (c->reading || c->finishing)
		return;
	fprintf(stderr, "baton: attached to %s; Ctrl-] detaches\n", c->sid);
	r = uv_tty_set_mode(&c->tty, UV_TTY_MODE_RAW);
	if (r < 0) {
		client_fail(c, EXIT_FAILED, "cannot put the terminal in raw "
			    "mode: %s", uv_strerror(r));
		return;
	}
	c->raw = true;
	r = uv_read_start((uv_stream_t *)&c->tty, on_tty_alloc, on_tty_read);
	if (r < 0) {
		client_fail(c, EXIT_FAILED, "cannot read the terminal: %s",
			    uv_strerror(r));
		return;
	}
	c->reading = true;
}

/*
 * tail, attach: asks for the transcript after the last seq written. A
 * follower also asks for the status once, so that following a session
 * that has already exited ends at the end of its transcript.
 */
static void stream_request(struct client *c)
{
	cJSON *body = cJSON_CreateObject();

	proto_add_u64(body, "from", c->last_seq);
	client_send(c, "session.attach", true, body, c->req_id);
	if (c->follow && !c->status_known)
		client_send(c, "session.status", true, NULL, c->aux_id);
	if (c->tty_open) {
		attach_resize(c);
		if (c->pending.len > 0) {
			client_input(c, input_id_new(), c->pending.data,
				     c->pending.len);
			buf_reset(&c->pending);
		}
	}
}

/* tail, attach: handles attached, the status and session.exited. */
static void stream_reply(struct client *c, const struct proto_msg *m)
{
	int64_t status = -1;

	if (!strcmp(m->type, "attached") && !strcmp(m->id, c->req_id)) {
		if (proto_u64(m->body, "seq", &c->end_seq) == 0)
			c->have_end = true;
		if (c->follow)
			uv_timer_stop(&c->timeout);	/* it only waits */
		if (c->tty_open)
			attach_start_terminal(c);
	} else if (!strcmp(m->type, "session") &&
		   !strcmp(m->id, c->aux_id)) {
		c->status_known = true;
		proto_int(m->body, "exit_status", &status);
		if (status >= 0) {
			c->exited = true;
			c->exit_status = status;
		}
	} else if (!strcmp(m->type, "session.exited") && m->session &&
		   !strcasecmp(m->session, c->sid)) {
		proto_int(m->body, "status", &status);
		c->exited = true;
		c->exit_status = status;
		/* The exit comes after the last output only for a client
		 * that keeps up: wait for the seq the relay names. */
		if (c->follow) {
			if (proto_u64(m->body, "seq", &c->end_seq) < 0 ||
			    c->end_seq < c->last_seq)
				c->end_seq = c->last_seq;
			c->have_end = true;
		}
	} else {
		return;
	}
	stream_check_done(c);
}

/* move: asks the relay to move the session. */
static void move_request(struct client *c)
{
	cJSON *body = cJSON_CreateObject();

	cJSON_AddStringToObject(body, "to", c->to);
	client_send(c, "session.move", true, body, c->req_id);
	c->in_flight = true;
}

/* move: prints the steps and the outcome. */
static void move_reply(struct client *c, const struct proto_msg *m)
{
	char *a, *b, *d;

	if (strcmp(m->id, c->req_id))
		return;
	if (!strcmp(m->type, "move.step")) {
		if (!c->wait) {
			if (c->json)
				print_json(m->body);
			else
				printf("moving %s to %s\n", c->sid, c->to);
			c->in_flight = false;
			client_finish(c, EXIT_OK);
			return;
		}
		if (c->json)
			return;
		a = clean(proto_str(m->body, "step"));
		b = xstrdup(proto_str(m->body, "detail"));
		/* setup output comes as it was written: a line each */
		for (char *line = b, *next; line; line = next) {
			char *shown;

			next = strchr(line, '\n');
			if (next)
				*next++ = '\0';
			if (*line == '\0' && next == NULL)
				break;
			shown = clean(line);
			fprintf(stderr, "%s: %s\n", a, shown);
			free(shown);
		}
		free(a);
		free(b);
	} else if (!strcmp(m->type, "move.done")) {
		c->in_flight = false;
		if (c->json) {
			print_json(m->body);
			client_finish(c, EXIT_OK);
			return;
		}
		a = clean(proto_str(m->body, "machine"));
		b = clean(proto_str(m->body, "kind"));
		d = clean(proto_str(m->body, "worktree"));
		printf("moved %s to %s (%s), worktree %s\n", c->sid, a, b, d);
		free(a);
		free(b);
		free(d);
		if (proto_str(m->body, "ms"))
			printf("took %s ms; %s bytes of objects up, %s down\n",
			       proto_str(m->body, "ms"),
			       proto_str(m->body, "bytes_up") ?: "?",
			       proto_str(m->body, "bytes_down") ?: "?");
		if (proto_str(m->body, "set_aside")) {
			a = clean(proto_str(m->body, "set_aside"));
			printf("the files this move replaced were kept, as "
			       "they were, in %s\n", a);
			free(a);
		}
		if (proto_str(m->body, "note")) {
			a = clean(proto_str(m->body, "note"));
			printf("note: %s\n", a);
			free(a);
		}
		client_finish(c, EXIT_OK);
	}
}

/* pair approve: asks the relay to pair the laptop waiting with CODE. */
static void pair_request(struct client *c)
{
	cJSON *body = cJSON_CreateObject();

	cJSON_AddStringToObject(body, "code", c->word1);
	client_send(c, "pair.approve", false, body, c->req_id);
	c->in_flight = true;
}

/* pair approve: says which machine the laptop became. */
static void pair_reply(struct client *c, const struct proto_msg *m)
{
	char *name, *user, *note;

	if (strcmp(m->type, "pair.approved") || strcmp(m->id, c->req_id))
		return;
	c->in_flight = false;
	if (c->json) {
		print_json(m->body);
	} else {
		name = clean(proto_str(m->body, "name"));
		user = clean(proto_str(m->body, "user"));
		printf("paired %s (machine %s) for %s\n", name,
		       proto_str(m->body, "machine"), user);
		if (proto_str(m->body, "note")) {
			note = clean(proto_str(m->body, "note"));
			printf("note: %s\n", note);
			free(note);
		}
		free(name);
		free(user);
	}
	client_finish(c, EXIT_OK);
}

/* env: sets, unsets or lists the remote environment. */
static void env_request(struct client *c)
{
	cJSON *body = cJSON_CreateObject();

	if (c->word1)
		cJSON_AddStringToObject(body, "workspace", c->word1);
	if (!strcmp(c->verb, "list")) {
		client_send(c, "env.list", false, body, c->req_id);
		return;
	}
	cJSON_AddStringToObject(body, "name", c->word2);
	if (!strcmp(c->verb, "set"))
		cJSON_AddStringToObject(body, "value", c->text.data);
	client_send(c, !strcmp(c->verb, "set") ? "env.set" : "env.unset",
		    false, body, c->req_id);
}

/* env: prints the names (never values) or confirms a change. */
static void env_reply(struct client *c, const struct proto_msg *m)
{
	static const char *const fields[] = {
		"workspace", "name", "updated", NULL,
	};

	if (strcmp(m->id, c->req_id))
		return;
	if (!strcmp(m->type, "env")) {
		list_print(c, cJSON_GetObjectItemCaseSensitive(m->body,
							       "vars"),
			   fields);
	} else if (!strcmp(m->type, "ok")) {
		if (!c->json)
			printf("%s %s\n", !strcmp(c->verb, "set") ? "set"
								 : "unset",
			       c->word2);
		client_finish(c, EXIT_OK);
	}
}

/* workspace setup WORKSPACE FILE | workspace clear-setup WORKSPACE */
static void workspace_request(struct client *c)
{
	cJSON *body = cJSON_CreateObject();

	cJSON_AddStringToObject(body, "workspace", c->word1);
	if (!strcmp(c->verb, "setup"))
		cJSON_AddStringToObject(body, "script", c->text.data);
	client_send(c, "workspace.setup", false, body, c->req_id);
}

static void workspace_reply(struct client *c, const struct proto_msg *m)
{
	if (strcmp(m->type, "ok") || strcmp(m->id, c->req_id))
		return;
	if (!c->json)
		printf("%s for %s\n", !strcmp(c->verb, "setup")
		       ? "setup script set" : "setup script cleared; the "
		       "repository's .baton/setup runs", c->word1);
	client_finish(c, EXIT_OK);
}

/* workspace setup: reads the script file (at most 64 KiB, text). */
static int workspace_read_script(struct client *c, const char *path)
{
	char *text = NULL;
	size_t len = 0;
	int e = file_read_all(path, 64 * 1024, &text, &len);

	if (e == -EFBIG)
		return usage_error("%s is larger than 64 KiB", path);
	if (e < 0)
		return usage_error("cannot read %s: %s", path, strerror(-e));
	if (len == 0 || strlen(text) != len) {
		free(text);
		return usage_error("%s is empty or not text; to go back to "
				   "the repository's .baton/setup use `baton "
				   "workspace clear-setup WORKSPACE`", path);
	}
	buf_append(&c->text, text, len + 1);
	c->text.len--;
	free(text);
	return 0;
}

/* sync on|off WORKSPACE: turns the workspace's sync on or off. */
static void sync_request(struct client *c)
{
	cJSON *body = cJSON_CreateObject();

	cJSON_AddStringToObject(body, "workspace", c->word1);
	cJSON_AddBoolToObject(body, "on", !strcmp(c->verb, "on"));
	client_send(c, "workspace.sync", false, body, c->req_id);
}

static void sync_reply(struct client *c, const struct proto_msg *m)
{
	if (strcmp(m->type, "ok") || strcmp(m->id, c->req_id))
		return;
	if (!c->json)
		printf("sync %s for %s\n", c->verb, c->word1);
	client_finish(c, EXIT_OK);
}

/* doctor: asks for the workspace's variables, the sessions, the credits. */
static void doctor_request(struct client *c)
{
	cJSON *body = cJSON_CreateObject();

	cJSON_AddStringToObject(body, "workspace",
				doctor_workspace(c->doctor));
	client_send(c, "env.list", false, body, c->req_id);
	client_send(c, "sessions.list", false, NULL, c->aux_id);
	client_send(c, "credits.get", false, NULL, c->credits_id);
}

/*
 * doctor: hands each answer to the checks; done when all are in. An
 * unknown workspace and a relay without credits are answers too; any
 * other error ends the command as usual.
 */
static void doctor_reply(struct client *c, const struct proto_msg *m)
{
	const char *code = proto_str(m->body, "code");
	bool error = !strcmp(m->type, "error");

	if (!strcmp(m->id, c->req_id) && !strcmp(m->type, "env"))
		doctor_env(c->doctor, cJSON_GetObjectItemCaseSensitive(
					      m->body, "vars"));
	else if (!strcmp(m->id, c->req_id) && error &&
		 !strcmp(code, PROTO_E_NOT_FOUND))
		doctor_env(c->doctor, NULL);
	else if (!strcmp(m->id, c->aux_id) && !strcmp(m->type, "sessions"))
		doctor_sessions(c->doctor, cJSON_GetObjectItemCaseSensitive(
					   m->body, "sessions"));
	else if (!strcmp(m->id, c->credits_id) && !strcmp(m->type, "credits"))
		doctor_credits(c->doctor, m->body);
	else if (!strcmp(m->id, c->credits_id) && error &&
		 !strcmp(code, PROTO_E_UNKNOWN_TYPE))
		doctor_credits(c->doctor, NULL);
	else if (error)
		client_relay_error(c, m);
	else
		return;
	if (doctor_answered(c->doctor))
		client_finish(c, EXIT_OK);
}

/* credits: asks for the user's balance of sandbox time. */
static void credits_request(struct client *c)
{
	client_send(c, "credits.get", false, NULL, c->req_id);
}

/* credits: prints the time left, or that there is no limit. */
static void credits_reply(struct client *c, const struct proto_msg *m)
{
	uint64_t left = 0;
	char text[32];

	if (strcmp(m->type, "credits") || strcmp(m->id, c->req_id))
		return;
	proto_u64(m->body, "seconds", &left);
	if (c->json)
		print_json(m->body);
	else if (!proto_bool(m->body, "limited", false))
		printf("no limit\n");
	else if (left == 0)
		printf("no sandbox time left; ask the relay's operator for "
		       "more (`baton-relay credits set`)\n");
	else
		printf("%s of sandbox time left\n",
		       duration_format(left > INT64_MAX ? INT64_MAX
							: (int64_t)left,
				       text, sizeof(text)));
	client_finish(c, EXIT_OK);
}

/* login: asks for a one-time code that signs a browser in. */
static void login_request(struct client *c)
{
	client_send(c, "login.new", false, NULL, c->req_id);
}

/* login: shows the code and the page that takes it, as a QR code too. */
static void login_reply(struct client *c, const struct proto_msg *m)
{
	const char *code = proto_str(m->body, "code");
	int64_t expires = 0;
	char *frag, *url, *qr = NULL, at[16];
	time_t when;

	if (strcmp(m->type, "login.code") || strcmp(m->id, c->req_id))
		return;
	if (c->json) {
		print_json(m->body);
		client_finish(c, EXIT_OK);
		return;
	}
	proto_int(m->body, "expires", &expires);
	when = (time_t)expires;
	strftime(at, sizeof(at), "%H:%M", localtime(&when));
	frag = xasprintf("login=%s", code);
	url = qr_page_url(c->url, frag);
	if (c->qr)
		qr = qr_render(url);
	printf("Open this on your phone or in a browser to sign in%s:\n\n"
	       "%s%s    %s\n\nIt works once, until %s, and signs in with "
	       "%s rights. Sign out in the page to end that sign-in.\n",
	       qr ? " (or scan the code)" : "", qr ? qr : "", qr ? "\n" : "",
	       url, at, strcmp(proto_str(m->body, "scope"), "read")
	       ? "steer" : "read-only");
	if (c->qr && qr == NULL)
		fprintf(stderr, "baton: cannot draw the QR code (%s); open "
			"the address instead\n", strerror(errno));
	free(qr);
	free(url);
	free(frag);
	client_finish(c, EXIT_OK);
}

/* setup-log: asks for a sandbox's setup log. */
static void setup_log_request(struct client *c)
{
	cJSON *body = cJSON_CreateObject();

	cJSON_AddStringToObject(body, "machine", c->machine);
	client_send(c, "setup.get", false, body, c->req_id);
}

/* setup-log: prints the log as it is, and the machine's state. */
static void setup_log_reply(struct client *c, const struct proto_msg *m)
{
	const char *text = proto_str(m->body, "text");

	if (strcmp(m->type, "setup") || strcmp(m->id, c->req_id))
		return;
	if (c->json) {
		print_json(m->body);
	} else {
		if (text)
			fputs(text, stdout);
		fprintf(stderr, "%s%s: %s\n", text ? "\n" : "",
			proto_str(m->body, "machine"),
			text ? proto_str(m->body, "state")
			     : "no setup log (yet)");
	}
	client_finish(c, EXIT_OK);
}

/* stop: asks the relay to stop the session. */
static void stop_request(struct client *c)
{
	client_send(c, "session.stop", true, NULL, c->req_id);
	c->in_flight = true;
}

/* stop: done at the relay's ok. */
static void stop_reply(struct client *c, const struct proto_msg *m)
{
	if (strcmp(m->type, "ok") || strcmp(m->id, c->req_id))
		return;
	c->in_flight = false;
	client_finish(c, EXIT_OK);
}

static const struct command commands[] = {
	{ "machines", 0, 0, machines_request, machines_reply },
	{ "sessions", 0, 0, sessions_request, sessions_reply },
	{ "credits", 0, 0, credits_request, credits_reply },
	{ "start", O_MACHINE | O_DIR | O_AGENT | O_COLS | O_ROWS | O_SANDBOX |
	  O_GIT | O_REF, 0,
	  start_request, start_reply },
	{ "status", 0, 1, status_request, status_reply },
	{ "send", 0, 2, send_request, send_reply },
	{ "tail", O_FROM | O_FOLLOW, 1, stream_request, stream_reply },
	{ "attach", 0, 1, stream_request, stream_reply },
	{ "move", O_TO | O_WAIT, 1, move_request, move_reply },
	{ "stop", 0, 1, stop_request, stop_reply },
	{ "pair", 0, 3, pair_request, pair_reply },
	{ "env", 0, 3, env_request, env_reply },
	{ "sync", 0, 3, sync_request, sync_reply },
	{ "workspace", 0, 3, workspace_request, workspace_reply },
	{ "doctor", O_DIR, 0, doctor_request, doctor_reply },
	{ "login", O_QR, 0, login_request, login_reply },
	{ "setup-log", 0, 4, setup_log_request, setup_log_reply },
};

/* Handles the answer to hello. */
static void client_handshake(struct client *c, const struct proto_msg *m)
{
	const char *code;
	char *message;

	if (!strcmp(m->type, "welcome")) {
		c->welcomed = true;
		if (c->outage && (c->follow || c->tty_open))
			client_notice(c, "connected to the relay again");
		c->outage = false;
		log_debug("client", "welcome from the relay");
		c->cmd->request(c);
		return;
	}
	if (strcmp(m->type, "error")) {
		log_debug("client", "ignored \"%s\" before welcome", m->type);
		return;
	}
	code = proto_str(m->body, "code");
	if (!strcmp(code, PROTO_E_UNAUTHORIZED) ||
	    !strcmp(code, PROTO_E_LIMITED)) {
		client_relay_error(c, m);
		return;
	}
	/* Any other refusal of hello but a version mismatch is about the
	 * token (one of the wrong kind is "forbidden"). */
	message = clean(proto_str(m->body, "message"));
	client_fail(c, strcmp(code, PROTO_E_VERSION) ? EXIT_AUTH : EXIT_FAILED,
		    "the relay refused the connection: %s", message);
	free(message);
}

/* Sends hello on every new connection. */
static void on_open(struct link *l, void *arg)
{
	struct client *c = arg;
	cJSON *body = cJSON_CreateObject();
	char id[REQ_ID_LEN];

	c->connected_once = true;
	c->welcomed = false;
	cJSON_AddNumberToObject(body, "version", PROTO_VERSION);
	cJSON_AddStringToObject(body, "role", "client");
	cJSON_AddStringToObject(body, "token", c->token);
	client_send(c, "hello", false, body, id);
}

/* Decodes a control message and hands it to the command. */
static void on_text(struct link *l, const char *text, size_t len, void *arg)
{
	struct client *c = arg;
	struct proto_msg m;
	const char *code;
	char cause[256];

	if (c->finishing)
		return;
	if (proto_msg_decode(text, len, PROTO_FROM_RELAY, &m, &code, cause,
			     sizeof(cause)) < 0) {
		log_warn("client", "ignored a message from the relay: %s",
			 cause);
		proto_msg_free(&m);
		return;
	}
	if (!strcmp(m.type, "ping"))
		link_send_owned(l, proto_encode("pong", m.id, NULL, NULL));
	else if (!c->welcomed)
		client_handshake(c, &m);
	else if (!strcmp(m.type, "error") && c->doctor && m.id[0] &&
		 (!strcmp(m.id, c->req_id) || !strcmp(m.id, c->aux_id) ||
		  !strcmp(m.id, c->credits_id)))
		c->cmd->reply(c, &m);	/* doctor: some are answers */
	else if (!strcmp(m.type, "error") && m.id[0] &&
		 (!strcmp(m.id, c->req_id) || !strcmp(m.id, c->aux_id)))
		client_relay_error(c, &m);
	else if (!strcmp(m.type, "error") && !strcmp(c->cmd->name, "send") &&
		 m.session && !strcasecmp(m.session, c->sid))
		client_relay_error(c, &m);	/* the input was refused */
	else if (!strcmp(m.type, "error"))
		log_warn("client", "the relay reported: %s",
			 proto_str(m.body, "message"));
	else
		c->cmd->reply(c, &m);
	proto_msg_free(&m);
}

/* tail, attach: writes new output and skips what was already written. */
static void on_binary(struct link *l, const struct proto_bin *f, void *arg)
{
	struct client *c = arg;
	int r;

	if (c->finishing || f->kind != PROTO_BIN_OUTPUT ||
	    memcmp(f->session, c->sid_raw, sizeof(c->sid_raw)))
		return;
	if (f->seq <= c->last_seq)
		return;
	r = write_all(STDOUT_FILENO, f->data, f->len);
	if (r == -EPIPE) {
		client_finish(c, EXIT_OK);	/* the reader has gone */
		return;
	}
	if (r < 0) {
		client_fail(c, EXIT_FAILED, "cannot write the output: %s",
			    strerror(-r));
		return;
	}
	c->last_seq = f->seq;
	stream_check_done(c);
}

/* Notes why the connection went; a request not safe to repeat fails. */
static void on_close(struct link *l, const char *reason, void *arg)
{
	struct client *c = arg;
	bool streaming = c->follow || c->tty_open;

	c->welcomed = false;
	if (c->finishing)
		return;
	log_info("client", "connection to the relay: %s", reason);
	free(c->last_close);
	c->last_close = xstrdup(reason);
	if (link_cert_refused(l)) {
		client_fail(c, EXIT_TIMEOUT, "%s: %s", c->url, reason);
		return;
	}
	if (c->in_flight) {
		client_fail(c, EXIT_TIMEOUT, "lost the relay at %s before it "
			    "answered (%s); it may have done it: check with "
			    "`baton %s%s`", c->url, reason,
			    c->sid[0] ? "status " : "sessions", c->sid);
		return;
	}
	if (streaming && !c->outage) {
		c->outage = true;
		if (c->connected_once)
			client_notice(c, "lost the relay (%s); reconnecting",
				      reason);
		else
			client_notice(c, "cannot reach the relay at %s (%s); "
				      "retrying", c->url, reason);
	}
}

/* Gives up when the relay has not answered in time. */
static void on_timeout(uv_timer_t *t)
{
	struct client *c = t->data;
	bool told = c->last_close && !c->connected_once;

	client_fail(c, EXIT_TIMEOUT, "no answer from the relay at %s within "
		    "%ld s%s%s%s; is baton-relay running%s?", c->url,
		    c->timeout_s, told ? " (last attempt: " : "",
		    told ? c->last_close : "", told ? ")" : "",
		    link_url_tls(c->url) ? ""
		    : ", and serving ws:// rather than wss://");
}

/* Ends a stream quietly on a signal, anything else as interrupted. */
static void on_signal(uv_signal_t *s, int signum)
{
	struct client *c = s->data;
	bool streaming = c->follow || c->tty_open;

	if (streaming) {
		tty_restore(c);
		client_finish(c, EXIT_OK);
	} else {
		client_fail(c, EXIT_INTERRUPTED, "interrupted");
	}
}

/* attach: the terminal changed size. */
static void on_winch(uv_signal_t *s, int signum)
{
	attach_resize(s->data);
}

/* Returns the command named name, or NULL. */
static const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

/* Counts the edits between two short words (for "did you mean"). */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), prev[32], cur[32];

	if (la >= 31 || lb >= 31)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;

			cur[j] = sub < del ? (sub < ins ? sub : ins)
					   : (del < ins ? del : ins);
		}
		memcpy(prev, cur, sizeof(size_t) * (lb + 1));
	}
	return prev[lb];
}

/* Reports an unknown command, suggesting a close one. */
static int unknown_command(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (edit_distance(name, commands[i].name) <= 2)
			return usage_error("unknown command '%s'; did you "
					   "mean '%s'?", name,
					   commands[i].name);
	return usage_error("unknown command '%s'; the commands are "
			   "machines, sessions, start, status, send, tail, "
			   "attach, move, stop, pair, env, sync, workspace "
			   "and doctor",
			   name);
}

/*
 * Matches argv[*i] against --name or --name=VALUE, taking the value from
 * the next argument when needed. Returns 1 on a match, 0 when it is
 * another argument, -1 (after a message) when the value is missing.
 */
static int opt_value(int argc, char **argv, int *i, const char *name,
		     const char **value)
{
	size_t n = strlen(name);
	const char *a = argv[*i];

	if (strncmp(a, name, n) || (a[n] != '=' && a[n] != '\0'))
		return 0;
	if (a[n] == '=') {
		*value = a + n + 1;
		return 1;
	}
	if (*i + 1 >= argc) {
		usage_error("%s needs a value", name);
		return -1;
	}
	*value = argv[++*i];
	return 1;
}

/* Parses a whole decimal number in [min, max]; 0 or -1. */
static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Parses a 64-bit decimal sequence number; 0 or -1. */
static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return (errno || *end) ? -1 : 0;
}

static const struct {
	const char *name;
	unsigned bit;
	bool value;
} command_opts[] = {
	{ "--machine", O_MACHINE, true }, { "--dir", O_DIR, true },
	{ "--agent", O_AGENT, true }, { "--cols", O_COLS, true },
	{ "--rows", O_ROWS, true }, { "--from", O_FROM, true },
	{ "--follow", O_FOLLOW, false }, { "--to", O_TO, true },
	{ "--wait", O_WAIT, false }, { "--sandbox", O_SANDBOX, false },
	{ "--git", O_GIT, true }, { "--ref", O_REF, true },
	{ "--qr", O_QR, false },
};

/* Stores one command option's value; 0, or a usage error's exit code. */
static int command_opt(struct client *c, unsigned bit, const char *value)
{
	switch (bit) {
	case O_MACHINE:
		c->machine = value;
		break;
	case O_DIR:
		free(c->dir);
		c->dir = xstrdup(value);
		break;
	case O_AGENT:
		c->agent = value;
		break;
	case O_COLS:
	case O_ROWS:
		if (parse_long(value, 1, 10000,
			       bit == O_COLS ? &c->cols : &c->rows) < 0)
			return usage_error("%s must be a number from 1 to "
					   "10000", bit == O_COLS ? "--cols"
								  : "--rows");
		break;
	case O_FROM:
		if (parse_u64(value, &c->last_seq) < 0)
			return usage_error("--from must be a sequence number "
					   "(0 or more)");
		break;
	case O_FOLLOW:
		c->follow = true;
		break;
	case O_TO:
		c->to = value;
		break;
	case O_WAIT:
		c->wait = true;
		break;
	case O_SANDBOX:
		c->sandbox = true;
		break;
	case O_GIT:
		c->git = value;
		break;
	case O_REF:
		c->ref = value;
		break;
	case O_QR:
		c->qr = true;
		break;
	}
	return 0;
}

/* Reads a session id argument into its canonical form. */
static int parse_sid(struct client *c, const char *text)
{
	if (proto_uuid_parse(text, c->sid_raw) < 0)
		return usage_error("'%s' is not a session id; session ids "
				   "look like 0b6c1f3e-8a0d-4f6e-9d2a-"
				   "3c4b5a697887 (see `baton sessions`)",
				   text);
	proto_uuid_format(c->sid_raw, c->sid);
	return 0;
}

/* Makes --dir absolute by joining a relative one to the cwd. */
static int absolute_dir(struct client *c)
{
	char *cwd, *joined;
	const char *rel = c->dir;

	if (c->dir[0] == '/')
		return 0;
	cwd = getcwd(NULL, 0);
	if (cwd == NULL) {
		fprintf(stderr, "baton: cannot read the current directory to "
			"make --dir %s absolute: %s; give an absolute path\n",
			c->dir, strerror(errno));
		return EXIT_FAILED;
	}
	while (rel[0] == '.' && rel[1] == '/')
		rel += 2;
	if (!strcmp(rel, "."))
		rel = "";
	joined = xasprintf("%s%s%s", cwd, strcmp(cwd, "/") && rel[0] ? "/"
								      : "",
			   rel);
	free(cwd);
	free(c->dir);
	c->dir = joined;
	return 0;
}

/*
 * doctor: checks the repository before connecting. Without a workspace to
 * ask about (no repository, no remote: a FAIL) or a token to ask with, it
 * reports at once; it never returns 0 then.
 */
static int doctor_prepare(struct client *c)
{
	int r;

	if (c->dir == NULL)
		c->dir = xstrdup(".");
	r = absolute_dir(c);
	if (r != 0)
		return r;
	c->doctor = doctor_new(c->dir);
	if (doctor_workspace(c->doctor) == NULL)
		return doctor_report(c->doctor, c->json, EXIT_OK);
	if (c->token == NULL || c->token[0] == '\0') {
		fputs("baton: no token, so the relay's checks cannot run; set "
		      "BATON_TOKEN (or pass --token)\n", stderr);
		return doctor_report(c->doctor, c->json, EXIT_AUTH);
	}
	return 0;
}

/* send: keeps TEXT and Enter, and gives each chunk its input id. */
static void send_prepare(struct client *c, char **words, int n)
{
	for (int i = 0; i < n; i++) {
		if (i > 0)
			buf_puts(&c->text, " ");
		buf_puts(&c->text, words[i]);
	}
	buf_puts(&c->text, "\r");
	c->input_count = (c->text.len + PROTO_CHUNK - 1) / PROTO_CHUNK;
	c->input_ids = xcalloc(c->input_count, sizeof(uint64_t));
	for (size_t i = 0; i < c->input_count; i++)
		c->input_ids[i] = input_id_new();
}

/* env set: reads the value from stdin (never from the command line, where
 * other users could see it in ps), without echo on a terminal. */
static int env_read_value(struct client *c)
{
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO);
	char chunk[4096];
	ssize_t n;

	if (tty) {
		fprintf(stderr, "value of %s (not shown; Enter ends it): ",
			c->word2);
		tcgetattr(STDIN_FILENO, &old);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	while ((n = read(STDIN_FILENO, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || c->text.len + (size_t)n > ENV_VALUE_MAX)
			break;
		buf_append(&c->text, chunk, (size_t)n);
		if (tty && memchr(chunk, '\n', (size_t)n))
			break;
	}
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	sodium_memzero(chunk, sizeof(chunk));
	if (n < 0)
		return usage_error("cannot read the value from stdin: %s",
				   strerror(errno));
	if (n > 0)
		return usage_error("the value is longer than %d bytes",
				   ENV_VALUE_MAX);
	/* one final newline is how echo and a terminal end a value */
	if (c->text.len && c->text.data[c->text.len - 1] == '\n')
		c->text.len--;
	if (c->text.len && c->text.data[c->text.len - 1] == '\r')
		c->text.len--;
	buf_append(&c->text, "", 1);
	c->text.len--;
	if (c->text.len == 0 || strlen(c->text.data) != c->text.len)
		return usage_error("the value on stdin is empty or holds a NUL "
				   "byte; to remove a variable use `baton env "
				   "unset`");
	log_redact_add(c->text.data);
	return 0;
}

/* pair and env: their words after the command name. */
static int words_check(struct client *c, char **pos, int npos)
{
	bool pair = !strcmp(c->cmd->name, "pair");

	if (!strcmp(c->cmd->name, "workspace")) {
		c->verb = npos > 0 ? pos[0] : "";
		c->word1 = npos > 1 ? pos[1] : NULL;
		if (!strcmp(c->verb, "setup") && npos == 3)
			return workspace_read_script(c, pos[2]);
		if (!strcmp(c->verb, "clear-setup") && npos == 2)
			return 0;
		return usage_error("usage: baton workspace setup WORKSPACE "
				   "FILE, or baton workspace clear-setup "
				   "WORKSPACE");
	}
	if (!strcmp(c->cmd->name, "sync")) {
		c->verb = npos > 0 ? pos[0] : "";
		c->word1 = npos > 1 ? pos[1] : NULL;
		if ((strcmp(c->verb, "on") && strcmp(c->verb, "off")) ||
		    npos != 2)
			return usage_error("usage: baton sync on|off "
					   "WORKSPACE");
		return 0;
	}

	c->verb = npos > 0 ? pos[0] : "";
	c->word1 = npos > 1 ? pos[1] : NULL;
	c->word2 = npos > 2 ? pos[2] : NULL;
	if (pair) {
		if (strcmp(c->verb, "approve") || npos != 2)
			return usage_error("usage: baton pair approve CODE "
					   "(the code `baton-local pair` "
					   "shows)");
		return 0;
	}
	if (!strcmp(c->verb, "list")) {
		if (npos > 2)
			return usage_error("usage: baton env list "
					   "[WORKSPACE]");
		return 0;
	}
	if ((strcmp(c->verb, "set") && strcmp(c->verb, "unset")) ||
	    npos != 3)
		return usage_error("usage: baton env set WORKSPACE NAME (the "
				   "value on stdin), baton env unset "
				   "WORKSPACE NAME, baton env list "
				   "[WORKSPACE]");
	if (!strcmp(c->verb, "set"))
		return env_read_value(c);
	return 0;
}

/* Checks what each command needs once its arguments are read. */
static int command_check(struct client *c, char **pos, int npos)
{
	const struct command *cmd = c->cmd;
	int r;

	if (cmd->args == 3)
		return words_check(c, pos, npos);
	if (!strcmp(cmd->name, "doctor") && npos > 0)
		return usage_error("doctor takes no arguments; name the "
				   "repository with --dir %s", pos[0]);
	if (!strcmp(cmd->name, "doctor"))
		return doctor_prepare(c);
	if (!strcmp(cmd->name, "setup-log")) {
		if (npos != 1)
			return usage_error("setup-log needs one machine: baton"
					   " setup-log MACHINE (see `baton "
					   "machines`)");
		c->machine = pos[0];
		return 0;
	}
	if (cmd->args == 0 && npos > 0)
		return usage_error("%s takes no arguments ('%s' is extra)",
				   cmd->name, pos[0]);
	if (cmd->args >= 1 && npos < 1)
		return usage_error("%s needs a session id: baton %s SID",
				   cmd->name, cmd->name);
	if (cmd->args == 1 && npos > 1)
		return usage_error("%s takes one session id ('%s' is extra)",
				   cmd->name, pos[1]);
	if (cmd->args == 2 && npos < 2)
		return usage_error("send needs text: baton send SID TEXT");
	if (cmd->args >= 1 && (r = parse_sid(c, pos[0])) != 0)
		return r;

	if (!strcmp(cmd->name, "start") && (c->sandbox || c->git)) {
		if (!c->sandbox || c->git == NULL || c->machine || c->dir)
			return usage_error("a session with no laptop starts "
					   "with --sandbox --git URL [--ref "
					   "REF] (and no --machine or --dir)");
		c->machine = "sandbox";
		return 0;
	}
	if (!strcmp(cmd->name, "start")) {
		if (c->ref)
			return usage_error("--ref goes with --sandbox --git "
					   "URL");
		if (c->machine == NULL || c->dir == NULL)
			return usage_error("start needs --machine NAME and "
					   "--dir PATH, or --sandbox --git "
					   "URL");
		return absolute_dir(c);
	}
	if (!strcmp(cmd->name, "move") && c->to == NULL)
		return usage_error("move needs --to sandbox or --to MACHINE");
	if (!strcmp(cmd->name, "send"))
		send_prepare(c, pos + 1, npos - 1);
	if (!strcmp(cmd->name, "attach")) {
		if (!isatty(STDIN_FILENO))
			return usage_error("attach needs a terminal on stdin; "
					   "from scripts use `baton send` and "
					   "`baton tail --follow`");
		c->follow = true;
	}
	return 0;
}

/* Parses the command's own options and arguments. */
static int command_parse(struct client *c, int argc, char **argv)
{
	char **pos = xcalloc((size_t)argc + 1, sizeof(char *));
	bool options = true;
	int npos = 0, r = 0;

	for (int i = 0; i < argc && r == 0; i++) {
		const char *a = argv[i], *value = NULL;
		size_t k;

		if (!options || a[0] != '-' || a[1] == '\0') {
			pos[npos++] = argv[i];
			continue;
		}
		if (!strcmp(a, "--")) {
			options = false;
			continue;
		}
		for (k = 0; k < ARRAY_SIZE(command_opts); k++) {
			int m;

			if (!(c->cmd->opts & command_opts[k].bit))
				continue;
			if (!command_opts[k].value) {
				if (strcmp(a, command_opts[k].name))
					continue;
				r = command_opt(c, command_opts[k].bit, NULL);
				break;
			}
			m = opt_value(argc, argv, &i, command_opts[k].name,
				      &value);
			if (m < 0)
				r = EXIT_USAGE;
			else if (m > 0)
				r = command_opt(c, command_opts[k].bit, value);
			if (m != 0)
				break;
		}
		if (k == ARRAY_SIZE(command_opts))
			r = usage_error("%s does not take the option '%s'",
					c->cmd->name, a);
	}
	if (r == 0)
		r = command_check(c, pos, npos);
	free(pos);
	return r;
}

/*
 * Reads the global options (anywhere before `--`) and the command. Returns
 * -1 to go on and run the command, or the exit code to stop with.
 */
static int parse_args(struct client *c, int argc, char **argv)
{
	char **rest = xcalloc((size_t)argc + 1, sizeof(char *));
	const char *level = "warn", *value;
	bool options = true;
	int nrest = 0, r = -1;

	c->url = getenv("BATON_RELAY");
	c->token = getenv("BATON_TOKEN");
	c->ca_file = getenv("BATON_CA");
	c->timeout_s = -1;
	for (int i = 1; i < argc && r < 0; i++) {
		const char *a = argv[i];
		int m;

		if (!options || a[0] != '-') {
			rest[nrest++] = argv[i];
			continue;
		}
		if (!strcmp(a, "--")) {
			options = false;
			rest[nrest++] = argv[i];
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			r = EXIT_OK;
		} else if (!strcmp(a, "--version")) {
			printf("baton %s\n", BATON_VERSION);
			r = EXIT_OK;
		} else if (!strcmp(a, "--json")) {
			c->json = true;
		} else if (!strcmp(a, "--insecure")) {
			c->insecure = true;
		} else if ((m = opt_value(argc, argv, &i, "--ca",
					  &value)) != 0) {
			r = m < 0 ? EXIT_USAGE : -1;
			c->ca_file = value;
		} else if ((m = opt_value(argc, argv, &i, "--relay",
					  &value)) != 0) {
			r = m < 0 ? EXIT_USAGE : -1;
			c->url = value;
		} else if ((m = opt_value(argc, argv, &i, "--token",
					  &value)) != 0) {
			r = m < 0 ? EXIT_USAGE : -1;
			c->token = value;
		} else if ((m = opt_value(argc, argv, &i, "--log-level",
					  &value)) != 0) {
			r = m < 0 ? EXIT_USAGE : -1;
			level = value;
		} else if ((m = opt_value(argc, argv, &i, "--timeout",
					  &value)) != 0) {
			r = m < 0 ? EXIT_USAGE : -1;
			if (r < 0 && parse_long(value, 0, 86400 * 365,
						&c->timeout_s) < 0)
				r = usage_error("--timeout must be a whole "
						"number of seconds");
		} else {
			rest[nrest++] = argv[i];
		}
	}
	if (r >= 0)
		goto out;

	c->log_level = log_level_parse(level);
	if (c->log_level < 0) {
		r = usage_error("unknown log level '%s'; use error, warn, "
				"info or debug", level);
		goto out;
	}
	if (nrest == 0 || !strcmp(rest[0], "--")) {
		usage(stderr);
		r = EXIT_USAGE;
		goto out;
	}
	if (!strcmp(rest[0], "help")) {
		usage(stdout);
		r = EXIT_OK;
		goto out;
	}
	c->cmd = command_find(rest[0]);
	if (c->cmd == NULL) {
		r = unknown_command(rest[0]);
		goto out;
	}
	r = command_parse(c, nrest - 1, rest + 1);
	if (r != 0)
		goto out;

	if (c->url == NULL || c->url[0] == '\0')
		c->url = DEFAULT_RELAY;
	if (c->ca_file != NULL && c->ca_file[0] == '\0')
		c->ca_file = NULL;
	if (c->token == NULL || c->token[0] == '\0') {
		fputs("baton: no token; set BATON_TOKEN (or pass --token); "
		      "the relay's operator makes one with `baton-relay token "
		      "create --data DIR --user NAME --kind client`\n",
		      stderr);
		r = EXIT_AUTH;
		goto out;
	}
	if (c->timeout_s < 0)
		c->timeout_s = c->follow ? 0
			     : c->wait || c->sandbox ? MOVE_WAIT_TIMEOUT
			     : DEFAULT_TIMEOUT;
	r = -1;
out:
	free(rest);
	return r;
}

/* Connects and runs the command; returns its exit code. */
static int client_run(struct client *c)
{
	static const struct link_callbacks cb = {
		on_open, on_text, on_binary, on_close,
	};
	struct link_opts opts = {
		.url = c->url,
		.ca_file = c->ca_file,
		.insecure = c->insecure,
		.reconnect = true,
		.backoff_max_ms = BACKOFF_MAX_MS,
		.cb = &cb,
		.arg = c,
	};
	char *cause = NULL;
	int r;

	uv_loop_init(&c->loop);
	r = link_new(&c->loop, &opts, &c->link, &cause);
	if (r < 0) {
		fprintf(stderr, "baton: %s\n", cause);
		free(cause);
		uv_loop_close(&c->loop);
		return EXIT_USAGE;
	}

	uv_timer_init(&c->loop, &c->timeout);
	uv_timer_init(&c->loop, &c->quit);
	c->timeout.data = c->quit.data = c;
	uv_signal_init(&c->loop, &c->sigint);
	uv_signal_init(&c->loop, &c->sigterm);
	uv_signal_init(&c->loop, &c->sighup);
	uv_signal_init(&c->loop, &c->sigwinch);
	c->sigint.data = c->sigterm.data = c->sighup.data = c;
	c->sigwinch.data = c;
	uv_signal_start(&c->sigint, on_signal, SIGINT);
	uv_signal_start(&c->sigterm, on_signal, SIGTERM);
	uv_signal_start(&c->sighup, on_signal, SIGHUP);
	if (c->timeout_s > 0)
		uv_timer_start(&c->timeout, on_timeout,
			       (uint64_t)c->timeout_s * 1000, 0);

	if (!strcmp(c->cmd->name, "attach")) {
		r = uv_tty_init(&c->loop, &c->tty, STDIN_FILENO, 1);
		if (r < 0) {
			client_fail(c, EXIT_FAILED, "cannot open the "
				    "terminal: %s", uv_strerror(r));
		} else {
			c->tty_open = true;
			c->tty.data = c;
			uv_signal_start(&c->sigwinch, on_winch, SIGWINCH);
		}
	}

	uv_run(&c->loop, UV_RUN_DEFAULT);
	link_free(c->link);
	r = uv_loop_close(&c->loop);
	if (r < 0)
		log_warn("client", "the event loop still had work at exit: "
			 "%s", uv_strerror(r));
	return c->exit_code;
}

/* Frees what the arguments and the connection allocated. */
static void client_clear(struct client *c)
{
	free(c->dir);
	free(c->input_ids);
	free(c->last_close);
	if (c->text.data)
		sodium_memzero(c->text.data, c->text.cap);
	buf_free(&c->text);
	buf_free(&c->pending);
	doctor_free(c->doctor);
}

int main(int argc, char **argv)
{
	struct client c;
	int r;

	memset(&c, 0, sizeof(c));
	if (sodium_init() < 0) {
		fputs("baton: libsodium failed to start\n", stderr);
		return EXIT_FAILED;
	}
	r = parse_args(&c, argc, argv);
	if (r >= 0) {
		client_clear(&c);
		return r;
	}
	log_init("baton", (enum log_level)c.log_level);
	log_route_libraries();
	log_redact_add(c.token);
	r = client_run(&c);
	if (c.doctor && r != EXIT_INTERRUPTED)
		r = doctor_report(c.doctor, c.json, r);
	client_clear(&c);
	log_redact_clear();
	return r;
}
