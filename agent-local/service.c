/*
 * service.c: `baton-local install-service`, `uninstall-service` and
 * `status`, and the state file the daemon keeps for status.
 *
 * On Linux the service is a systemd user unit, started at login and again
 * when it fails, its stderr in the journal; on macOS (or with --launchd) a
 * launchd agent. Either runs this very program with no options: its
 * settings are in local.conf, where install-service writes the ones it is
 * given. systemctl is run when a user service manager answers; otherwise
 * the commands to run are printed.
 */
#define _GNU_SOURCE
#include "service.h"

#include "local.h"
#include "log.h"
#include "statefile.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef __APPLE__
#include <limits.h>
#include <mach-o/dyld.h>
#endif

#define UNIT_NAME "baton-local.service"
#define LAUNCHD_LABEL "dev.baton.local"

enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,
	EXIT_USAGE = 2,
	EXIT_NOT_RUNNING = 3,	/* status: the daemon does not run */
};

#ifdef __APPLE__
static const bool launchd_default = true;
#else
static const bool launchd_default = false;
#endif

static const char install_usage[] =
"usage: baton-local install-service [--relay URL] [--name NAME]\n"
"                                   [--state DIR] [--launchd]\n"
"\n"
"Makes baton-local a service of your login: a systemd user unit\n"
"(~/.config/systemd/user/" UNIT_NAME ") that starts it at login and\n"
"again when it fails, logging to the journal; then enables and starts\n"
"it with systemctl --user, or says what to run when no user service\n"
"manager answers. On macOS, or with --launchd, a launchd agent\n"
"(~/Library/LaunchAgents/" LAUNCHD_LABEL ".plist) instead.\n"
"\n"
"The service runs this program with no options: --relay, --name and\n"
"--state given here are saved in local.conf. Without them it uses the\n"
"relay and name this laptop was paired with.\n"
"\n"
"Exit status: 0 installed, 1 failed (the message says why), 2 usage.\n";

static const char uninstall_usage[] =
"usage: baton-local uninstall-service [--launchd]\n"
"\n"
"Stops and disables the service install-service made, and removes its\n"
"unit (or launchd agent). local.conf and the state folder stay.\n"
"\n"
"Exit status: 0 removed (or none was installed), 1 failed, 2 usage.\n";

static const char status_usage[] =
"usage: baton-local status [--state DIR] [--launchd]\n"
"\n"
"Says whether the service is installed and runs, which relay the daemon\n"
"talks to, and when it last connected.\n"
"\n"
"Exit status: 0 the daemon runs, 3 it does not, 1 failed, 2 usage.\n";

/* The config folder: $XDG_CONFIG_HOME, else ~/.config (caller frees). */
static char *config_home(void)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");

	if (xdg && xdg[0] == '/')
		return xstrdup(xdg);
	return xasprintf("%s/.config", home ? home : ".");
}

/* Where the systemd user unit goes (caller frees). */
static char *unit_path(void)
{
	char *dir = config_home();
	char *path = xasprintf("%s/systemd/user/" UNIT_NAME, dir);

	free(dir);
	return path;
}

/* Where the launchd agent goes (caller frees). */
static char *plist_path(void)
{
	const char *home = getenv("HOME");

	return xasprintf("%s/Library/LaunchAgents/" LAUNCHD_LABEL ".plist",
			 home ? home : ".");
}

/* The absolute path of this program (caller frees), or NULL. */
static char *exe_path(void)
{
#ifdef __APPLE__
	char raw[PATH_MAX], *real;
	uint32_t size = sizeof(raw);

	if (_NSGetExecutablePath(raw, &size) != 0)
		return NULL;
	real = realpath(raw, NULL);
	return real;
#else
	char buf[4096];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return xstrdup(buf);
#endif
}

/*
 * Runs ARGV (found on PATH) and waits for it. With OUT, its stdout is
 * collected there; with QUIET, its stderr goes to /dev/null. Returns its
 * exit status, or -1 when it could not run or died of a signal.
 */
static int run(char *const argv[], struct buf *out, bool quiet)
{
	int fds[2] = { -1, -1 }, status, null;
	char chunk[512];
	ssize_t n;
	pid_t pid;

	if (out && pipe(fds) < 0)
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		null = open("/dev/null", O_WRONLY);
		if (out) {
			dup2(fds[1], STDOUT_FILENO);
			close(fds[0]);
			close(fds[1]);
		} else if (quiet && null >= 0) {
			dup2(null, STDOUT_FILENO);
		}
		if (quiet && null >= 0)
			dup2(null, STDERR_FILENO);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (out) {
		close(fds[1]);
		while (pid > 0 &&
		       (n = read(fds[0], chunk, sizeof(chunk))) != 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				break;
			buf_append(out, chunk, (size_t)n);
		}
		close(fds[0]);
	}
	if (pid < 0)
		return -1;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) == 127)
		return -1;
	return WEXITSTATUS(status);
}

/* `systemctl --user A [B [C]]`; its exit status, -1 if it cannot run. */
static int systemctl(bool quiet, struct buf *out, const char *a,
		     const char *b, const char *c)
{
	char *argv[] = { "systemctl", "--user", (char *)a, (char *)b,
			 (char *)c, NULL };

	return run(argv, out, quiet);
}

/* True when a user service manager answers systemctl --user. */
static bool systemd_reachable(void)
{
	return systemctl(true, NULL, "daemon-reload", NULL, NULL) == 0;
}

/* systemd's view of the unit: "active", "inactive", "failed"... or
 * NULL when no manager answers (caller frees). */
static char *systemd_state(void)
{
	struct buf out = BUF_INIT;
	char *state;
	int rc = systemctl(true, &out, "is-active", UNIT_NAME, NULL);

	if (rc < 0 || out.len == 0) {
		buf_free(&out);
		return NULL;
	}
	state = buf_detach(&out, NULL);
	state[strcspn(state, "\r\n")] = '\0';
	return state;
}

/* Appends S to B as one word of a unit's ExecStart=, quoted when needed
 * ('%' is a specifier and '$' a variable there, both doubled). */
static void unit_word(struct buf *b, const char *s)
{
	bool plain = s[0] != '\0' && strspn(s, "abcdefghijklmnopqrstuvwxyz"
		"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._+-") == strlen(s);

	if (!plain)
		buf_puts(b, "\"");
	for (; *s; s++) {
		if (*s == '%' || *s == '$')
			buf_append(b, s, 1);
		else if (!plain && (*s == '"' || *s == '\\'))
			buf_puts(b, "\\");
		buf_append(b, s, 1);
	}
	if (!plain)
		buf_puts(b, "\"");
}

/* Appends an Environment= line for NAME from our own environment, when
 * set; a value on more than one line is left out. */
static void unit_env(struct buf *b, const char *name)
{
	const char *v = getenv(name);

	if (v == NULL || v[0] == '\0' || strpbrk(v, "\r\n"))
		return;
	buf_printf(b, "Environment=\"%s=", name);
	for (; *v; v++) {
		if (*v == '%')
			buf_puts(b, "%");
		else if (*v == '"' || *v == '\\')
			buf_puts(b, "\\");
		buf_append(b, v, 1);
	}
	buf_puts(b, "\"\n");
}

/* The systemd user unit that runs EXE (caller frees). */
static char *unit_text(const char *exe, const char *conf_path)
{
	struct buf b = BUF_INIT;

	buf_printf(&b,
		"# Written by `baton-local install-service`; `baton-local "
		"uninstall-service`\n# removes it. Settings: %s\n"
		"\n"
		"[Unit]\n"
		"Description=Baton laptop daemon: runs coding-agent sessions "
		"for the relay\n"
		"Documentation=man:baton-local(1)\n"
		"\n"
		"[Service]\n"
		"Type=exec\n"
		"ExecStart=", conf_path);
	unit_word(&b, exe);
	/* The agents it starts find the programs this shell finds, and
	 * the daemon the same settings and state. */
	buf_puts(&b, "\n");
	unit_env(&b, "PATH");
	unit_env(&b, "XDG_CONFIG_HOME");
	unit_env(&b, "XDG_STATE_HOME");
	buf_puts(&b,
		"Restart=on-failure\n"
		"RestartSec=10\n"
		"# A usage error (2) or a setting or state it refuses (1: a "
		"bad local.conf,\n# a state folder in use or written by "
		"a newer baton-local) does not mend\n# itself; a lost relay "
		"never ends the daemon.\n"
		"RestartPreventExitStatus=1 2\n"
		"\n"
		"[Install]\n"
		"WantedBy=default.target\n");
	return buf_detach(&b, NULL);
}

/* Appends S to B escaped for XML. */
static void xml_text(struct buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': buf_puts(b, "&amp;"); break;
		case '<': buf_puts(b, "&lt;"); break;
		case '>': buf_puts(b, "&gt;"); break;
		case '"': buf_puts(b, "&quot;"); break;
		default: buf_append(b, s, 1);
		}
	}
}

static void plist_string(struct buf *b, const char *indent, const char *key,
			 const char *value)
{
	buf_printf(b, "%s<key>", indent);
	xml_text(b, key);
	buf_puts(b, "</key>\n");
	buf_printf(b, "%s<string>", indent);
	xml_text(b, value);
	buf_puts(b, "</string>\n");
}

/* The launchd agent that runs EXE, logging to LOG (caller frees). */
static char *plist_text(const char *exe, const char *log_path)
{
	static const char *const env[] = {
		"PATH", "XDG_CONFIG_HOME", "XDG_STATE_HOME",
	};
	struct buf b = BUF_INIT;

	buf_puts(&b,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
		"\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
		/* No "--" in an XML comment: it would end it. */
		"<!-- Written by baton-local install-service (launchd); "
		"baton-local uninstall-service removes it. -->\n"
		"<plist version=\"1.0\">\n<dict>\n");
	plist_string(&b, "\t", "Label", LAUNCHD_LABEL);
	buf_puts(&b, "\t<key>ProgramArguments</key>\n\t<array>\n"
		     "\t\t<string>");
	xml_text(&b, exe);
	buf_puts(&b, "</string>\n\t</array>\n"
		     "\t<key>EnvironmentVariables</key>\n\t<dict>\n");
	for (size_t i = 0; i < ARRAY_SIZE(env); i++)
		if (getenv(env[i]) && getenv(env[i])[0])
			plist_string(&b, "\t\t", env[i], getenv(env[i]));
	buf_puts(&b, "\t</dict>\n"
		     "\t<key>RunAtLoad</key>\n\t<true/>\n"
		     "\t<key>KeepAlive</key>\n\t<dict>\n"
		     "\t\t<key>SuccessfulExit</key>\n\t\t<false/>\n"
		     "\t</dict>\n"
		     "\t<key>ThrottleInterval</key>\n"
		     "\t<integer>10</integer>\n");
	plist_string(&b, "\t", "StandardOutPath", log_path);
	plist_string(&b, "\t", "StandardErrorPath", log_path);
	buf_puts(&b, "</dict>\n</plist>\n");
	return buf_detach(&b, NULL);
}

/* Writes TEXT to PATH (mode 644), making its folder; 0 or -1 after
 * saying why. */
static int write_file(const char *path, const char *text)
{
	char *dir = xstrdup(path);
	int e;

	*strrchr(dir, '/') = '\0';
	e = mkdir_p(dir, 0755);
	if (e == 0)
		e = file_write_atomic(path, text, strlen(text), 0644);
	free(dir);
	if (e < 0) {
		fprintf(stderr, "baton-local: cannot write %s: %s\n", path,
			strerror(-e));
		return -1;
	}
	return 0;
}

/* The state folder: --state, else local.conf's, else the default
 * (caller frees). */
static char *state_dir(const struct local_conf *conf, const char *flag)
{
	const char *v = flag ? flag : local_conf_get(conf, "state");

	return v ? xstrdup(v) : local_state_dir_default();
}

/* The JSON in PATH, or NULL when it cannot be read or parsed. */
static cJSON *json_load(const char *path)
{
	char *text = NULL;
	cJSON *o;

	if (file_read_all(path, 65536, &text, NULL) < 0)
		return NULL;
	o = cJSON_Parse(text);
	free(text);
	return o;
}

/* FIELD of the machine record in DIR (machine.json), when it is for
 * RELAY (any relay when NULL), or NULL (caller frees). Only read: the
 * daemon upgrades an older file when it starts. */
static char *paired_field(const char *dir, const char *relay,
			  const char *field)
{
	char *path = xasprintf("%s/machine.json", dir), *copy = NULL;
	cJSON *o = json_load(path);
	const char *r, *v;

	r = cJSON_GetStringValue(cJSON_GetObjectItem(o, "relay"));
	v = cJSON_GetStringValue(cJSON_GetObjectItem(o, field));
	if (r && v && v[0] && (relay == NULL || !strcmp(r, relay)))
		copy = xstrdup(v);
	cJSON_Delete(o);
	free(path);
	return copy;
}

char *local_paired_relay(const char *dir)
{
	return paired_field(dir, NULL, "relay");
}

char *local_paired_name(const char *dir, const char *relay)
{
	return paired_field(dir, relay, "name");
}

/* True when DIR holds a machine record for RELAY: paired with it. */
static bool paired_with(const char *dir, const char *relay)
{
	char *machine = paired_field(dir, relay, "machine");
	bool paired = machine != NULL;

	free(machine);
	return paired;
}

/* Saves KEY = VALUE in local.conf; 0 or -1 after saying why. */
static int conf_save(const char *conf_path, const char *key,
		     const char *value)
{
	char *cause = NULL;

	if (local_conf_set(conf_path, key, value, &cause) < 0) {
		fprintf(stderr, "baton-local: %s\n", cause);
		free(cause);
		return -1;
	}
	printf("saved %s = %s in %s\n", key, value, conf_path);
	return 0;
}

/* Enables and starts the unit, or restarts it when it already ran (its
 * program or settings may have changed); says what happened. 0 or -1. */
static int systemd_enable(void)
{
	bool was_active = systemctl(true, NULL, "is-active", UNIT_NAME,
				    NULL) == 0;
	int rc;

	rc = systemctl(false, NULL, "enable", "--now", UNIT_NAME);
	if (rc == 0 && was_active)
		rc = systemctl(false, NULL, "restart", UNIT_NAME, NULL);
	if (rc != 0) {
		fprintf(stderr, "baton-local: systemctl --user could not "
			"start the service (status %d); see\n"
			"  systemctl --user status baton-local\n", rc);
		return -1;
	}
	printf("enabled and %s: systemctl --user status baton-local\n"
	       "logs: journalctl --user -u baton-local\n"
	       "It runs while you are logged in; to keep it running after "
	       "you log out:\n  loginctl enable-linger\n",
	       was_active ? "restarted" : "started");
	return 0;
}

int local_install_service(int argc, char **argv,
			  const struct local_conf *conf,
			  const char *conf_path)
{
	static const struct option opts[] = {
		{ "relay", required_argument, NULL, 'r' },
		{ "name", required_argument, NULL, 'n' },
		{ "state", required_argument, NULL, 's' },
		{ "launchd", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *relay_flag = NULL, *name = NULL, *state_flag = NULL;
	const char *relay, *service_relay, *env = getenv("BATON_RELAY");
	bool launchd = launchd_default;
	char *exe = NULL, *dir = NULL, *paired = NULL, *path = NULL;
	char *text = NULL, *log_path = NULL;
	int c, rc = EXIT_FAIL;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': relay_flag = optarg; break;
		case 'n': name = optarg; break;
		case 's': state_flag = optarg; break;
		case 'l': launchd = true; break;
		case 'h': fputs(install_usage, stdout); return EXIT_OK;
		default: die_usage("baton-local install-service",
				   "unknown option");
		}
	}
	if (optind < argc)
		die_usage("baton-local install-service",
			  "unexpected argument '%s'", argv[optind]);

	/* What the service will read: the file, else the pairing. What
	 * this command was told, by flag or environment, goes in the file
	 * when it would read otherwise. */
	dir = state_dir(conf, state_flag);
	paired = local_paired_relay(dir);
	service_relay = local_conf_get(conf, "relay");
	if (service_relay == NULL)
		service_relay = paired;
	relay = relay_flag ? relay_flag : env && env[0] ? env : service_relay;
	if (relay == NULL)
		die_usage("baton-local install-service", "which relay? Pair "
			  "this laptop first (baton-local pair --relay URL) "
			  "or give --relay URL");
	exe = exe_path();
	if (exe == NULL) {
		fprintf(stderr, "baton-local: cannot find this program's own "
			"path (/proc/self/exe) to run as the service\n");
		goto out;
	}
	if (state_flag && conf_save(conf_path, "state", state_flag) < 0)
		goto out;
	if ((service_relay == NULL || strcmp(relay, service_relay)) &&
	    conf_save(conf_path, "relay", relay) < 0)
		goto out;
	if (name && conf_save(conf_path, "name", name) < 0)
		goto out;
	if (!paired_with(dir, relay))
		printf("note: this laptop is not paired with %s yet; run\n"
		       "  baton-local pair --relay %s\n"
		       "The service keeps trying until it is.\n", relay,
		       relay);

	if (launchd) {
		const char *home = getenv("HOME");

		path = plist_path();
		log_path = xasprintf("%s/Library/Logs/baton-local.log",
				     home ? home : ".");
		text = plist_text(exe, log_path);
		if (write_file(path, text) < 0)
			goto out;
		*strrchr(log_path, '/') = '\0';
		mkdir_p(log_path, 0755);
		printf("wrote %s: runs %s at login (relay %s)\n"
		       "load it now with:\n  launchctl load -w %s\n", path,
		       exe, relay, path);
		rc = EXIT_OK;
		goto out;
	}
	path = unit_path();
	text = unit_text(exe, conf_path);
	if (write_file(path, text) < 0)
		goto out;
	printf("wrote %s: runs %s (relay %s)\n", path, exe, relay);
	if (!systemd_reachable())
		printf("No user service manager answers systemctl --user "
		       "here; once logged in\nwith one, run:\n"
		       "  systemctl --user daemon-reload\n"
		       "  systemctl --user enable --now baton-local\n");
	else if (systemd_enable() < 0)
		goto out;
	rc = EXIT_OK;
out:
	free(log_path);
	free(text);
	free(path);
	free(paired);
	free(dir);
	free(exe);
	return rc;
}

/* Removes the enablement link systemctl would have removed, when no
 * manager answers. */
static void systemd_unlink_wants(void)
{
	char *home = config_home();
	char *link = xasprintf("%s/systemd/user/default.target.wants/"
			       UNIT_NAME, home);

	if (unlink(link) == 0)
		printf("removed %s\n", link);
	free(link);
	free(home);
}

int local_uninstall_service(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "launchd", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	bool launchd = launchd_default, reachable = false;
	char *path;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'l': launchd = true; break;
		case 'h': fputs(uninstall_usage, stdout); return EXIT_OK;
		default: die_usage("baton-local uninstall-service",
				   "unknown option");
		}
	}
	if (optind < argc)
		die_usage("baton-local uninstall-service",
			  "unexpected argument '%s'", argv[optind]);

	path = launchd ? plist_path() : unit_path();
	if (access(path, F_OK) != 0) {
		printf("no service installed (%s)\n", path);
		free(path);
		return EXIT_OK;
	}
	if (launchd) {
		printf("if it is loaded, stop it with:\n"
		       "  launchctl remove " LAUNCHD_LABEL "\n");
	} else {
		reachable = systemd_reachable();
		if (!reachable || systemctl(false, NULL, "disable", "--now",
					    UNIT_NAME) != 0)
			systemd_unlink_wants();
	}
	if (unlink(path) < 0) {
		fprintf(stderr, "baton-local: cannot remove %s: %s\n", path,
			strerror(errno));
		free(path);
		return EXIT_FAIL;
	}
	printf("removed %s\n", path);
	if (!launchd && reachable)
		systemctl(true, NULL, "daemon-reload", NULL, NULL);
	else if (!launchd)
		printf("No user service manager answers systemctl --user "
		       "here: if baton-local still runs, stop it.\n");
	free(path);
	return EXIT_OK;
}

/* True when PID is a running baton-local. */
static bool daemon_alive(long pid)
{
	bool alive = pid > 0 && kill((pid_t)pid, 0) == 0;

#ifdef __linux__
	/* The pid may have gone to another program since. */
	char *path = xasprintf("/proc/%ld/comm", pid), *comm = NULL;

	if (alive && file_read_all(path, 256, &comm, NULL) == 0)
		alive = !strncmp(comm, "baton-local", 11);
	free(comm);
	free(path);
#endif
	return alive;
}

/* Prints an epoch time and how long ago it was. */
static void print_when(const char *label, int64_t when)
{
	time_t t = (time_t)when;
	char at[32], ago[32];

	strftime(at, sizeof(at), "%Y-%m-%d %H:%M:%S", localtime(&t));
	printf("%-16s%s (%s ago)\n", label, at,
	       duration_format((int64_t)time(NULL) - when, ago, sizeof(ago)));
}

int local_status(int argc, char **argv, const struct local_conf *conf,
		 const char *conf_path)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "launchd", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *state_flag = NULL, *relay = NULL, *name = NULL;
	bool launchd = launchd_default, running, alive;
	char *dir, *path, *sys = NULL, *paired, *paired_name = NULL;
	char *state_path;
	double connected = 0, pid = 0;
	cJSON *st;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's': state_flag = optarg; break;
		case 'l': launchd = true; break;
		case 'h': fputs(status_usage, stdout); return EXIT_OK;
		default: die_usage("baton-local status", "unknown option");
		}
	}
	if (optind < argc)
		die_usage("baton-local status", "unexpected argument '%s'",
			  argv[optind]);

	dir = state_dir(conf, state_flag);
	path = launchd ? plist_path() : unit_path();
	if (access(path, F_OK) != 0) {
		printf("%-16snot installed (baton-local install-service)\n",
		       "service:");
	} else if (launchd) {
		printf("%-16slaunchd agent %s\n", "service:", path);
	} else {
		sys = systemd_state();
		printf("%-16ssystemd user unit %s, %s\n", "service:", path,
		       sys ? sys : "state unknown (systemctl --user does not "
				   "answer here)");
	}

	state_path = xasprintf("%s/local.state", dir);
	st = json_load(state_path);
	if (st) {
		relay = cJSON_GetStringValue(cJSON_GetObjectItem(st, "relay"));
		name = cJSON_GetStringValue(cJSON_GetObjectItem(st, "name"));
		pid = cJSON_GetNumberValue(cJSON_GetObjectItem(st, "pid"));
		connected = cJSON_GetNumberValue(cJSON_GetObjectItem(st,
							"connected"));
	}
	alive = st && daemon_alive((long)pid);
	running = alive || (sys && !strcmp(sys, "active"));

	/* A daemon that does not run: the relay and name it would use. */
	paired = local_paired_relay(dir);
	if (!alive || relay == NULL) {
		relay = local_conf_pick(conf, "relay", "BATON_RELAY");
		if (relay == NULL)
			relay = paired;
		name = local_conf_get(conf, "name");
		if (name == NULL && relay)
			name = paired_name = local_paired_name(dir, relay);
	}
	printf("%-16s%s\n", "relay:", relay ? relay : "none configured");
	if (name)
		printf("%-16s%s\n", "machine:", name);
	if (alive)
		printf("%-16srunning, pid %ld\n", "daemon:", (long)pid);
	else
		printf("%-16s%s\n", "daemon:", running ? "running"
						     : "not running");
	if (connected > 0)
		print_when("last connected:", (int64_t)connected);
	else
		printf("%-16snever\n", "last connected:");
	printf("%-16s%s\n", "settings:", conf_path);
	printf("%-16s%s\n", "state:", dir);

	cJSON_Delete(st);
	free(state_path);
	free(paired_name);
	free(paired);
	free(sys);
	free(path);
	free(dir);
	return running ? EXIT_OK : EXIT_NOT_RUNNING;
}

struct local_state {
	char *path;		/* STATE/local.state */
	char *relay;
	char *name;
	int64_t started;	/* epoch seconds */
	int64_t connected;	/* the last welcome; 0: none yet */
	bool warned;		/* a failed write was logged */
};

struct local_state *local_state_new(const char *dir, const char *relay,
				    const char *name)
{
	struct local_state *st = xcalloc(1, sizeof(*st));

	st->path = xasprintf("%s/local.state", dir);
	st->relay = xstrdup(relay);
	st->name = xstrdup(name);
	st->started = (int64_t)time(NULL);
	return st;
}

void local_state_save(struct local_state *st, bool connected)
{
	cJSON *o = cJSON_CreateObject();
	int e;

	if (connected)
		st->connected = (int64_t)time(NULL);
	cJSON_AddNumberToObject(o, "pid", (double)getpid());
	cJSON_AddStringToObject(o, "relay", st->relay);
	cJSON_AddStringToObject(o, "name", st->name);
	cJSON_AddNumberToObject(o, "started", (double)st->started);
	cJSON_AddNumberToObject(o, "connected", (double)st->connected);
	e = statefile_save(st->path, o);
	if (e < 0 && !st->warned)
		log_warn("local", "cannot write %s: %s; `baton-local status` "
			 "will not see this daemon", st->path, strerror(-e));
	st->warned |= e < 0;
	cJSON_Delete(o);
}

void local_state_free(struct local_state *st)
{
	if (st == NULL)
		return;
	free(st->path);
	free(st->relay);
	free(st->name);
	free(st);
}
