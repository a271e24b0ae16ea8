/*
 * main.c: baton-local, the laptop daemon. It registers this machine with
 * the relay, runs sessions in the worktrees the user names, and takes part
 * in moves; it reconnects by itself when the relay goes away.
 */
#define _GNU_SOURCE
#include "checkpoint.h"
#include "config.h"
#include "daemon.h"
#include "host.h"
#include "local.h"
#include "log.h"
#include "service.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,
	EXIT_USAGE = 2,
};

static const char usage_text[] =
"usage: baton-local [--relay URL] [--name NAME] [options]\n"
"       baton-local pair --relay URL [--name NAME]   (see pair --help)\n"
"       baton-local install-service [--relay URL] [--name NAME]\n"
"       baton-local uninstall-service\n"
"       baton-local status\n"
"       baton-local --help | --version\n"
"\n"
"The Baton laptop daemon: registers this machine with the relay and runs\n"
"coding-agent sessions in your git worktrees, so you can steer them with\n"
"`baton` and move them to a sandbox and back.\n"
"\n"
"  --relay URL        the relay, e.g. wss://relay.example:8443, or\n"
"                     ws://127.0.0.1:8080 on this machine (env BATON_RELAY;\n"
"                     default: the relay this laptop was paired with)\n"
"  --token TOKEN      only for a laptop not yet paired: a machine token\n"
"                     from `baton-relay token create --kind machine`\n"
"                     (env BATON_TOKEN; prefer the env). The relay binds\n"
"                     this laptop's key to its record on first contact.\n"
"  --name NAME        this machine's name (default: the name it was\n"
"                     paired with, else the host name)\n"
"  --ca FILE          trust only the CAs in FILE (PEM) for the relay's\n"
"                     certificate (env BATON_CA; default: the system's)\n"
"  --insecure         allow plain ws:// to a relay on another machine:\n"
"                     the token and sessions cross the network readable\n"
"                     (certificates are still checked for wss://)\n"
"  --state DIR        where session records live\n"
"                     (default: $XDG_STATE_HOME/baton-local)\n"
"  --agents FILE      extra agent profiles (JSON), besides the built-in\n"
"                     shell, claude and codex\n"
"  --log-level LEVEL  error, warn, info (default) or debug (env BATON_LOG)\n"
"  --log-format F     text (default) or json: one JSON object a line\n"
"                     (env BATON_LOG_FORMAT)\n"
"  --ping-interval S  ping the relay when idle for S seconds (default 20;\n"
"                     env BATON_PING_INTERVAL)\n"
"  --dead-after S     reconnect when the relay is silent for S seconds\n"
"                     (default 60; env BATON_DEAD_AFTER)\n"
"\n"
"Settings also come from $XDG_CONFIG_HOME/baton/local.conf (default\n"
"~/.config/baton/local.conf): `key = value` lines whose keys are the long\n"
"options above but --token (relay = wss://..., insecure = yes, ...).\n"
"Flags override the environment, which overrides the file. A token or\n"
"password there is refused: pair the laptop instead.\n"
"\n"
"install-service makes baton-local a service of your login (a systemd\n"
"user unit; a launchd agent on macOS), uninstall-service removes it, and\n"
"status says whether it runs, its relay and when it last connected.\n"
"Each has --help.\n"
"\n"
"Stops on SIGINT or SIGTERM: agents are stopped, their files stay.\n"
"The laptop proves who it is with its own key (machine.key in the state\n"
"folder, made on first run); `baton-local pair` binds that key to a\n"
"machine of yours on the relay.\n"
"\n"
"Exit status: 0 stopped cleanly, 1 cannot start (not paired, for one) or\n"
"the relay refused this machine (the message says why), 2 usage.\n";

#define usage_error(...) die_usage("baton-local", __VA_ARGS__)

/* Each welcome from the relay: when it last connected, for status. */
static void local_connected(struct host *h)
{
	local_state_save(host_data(h), true);
}

static const struct host_ops local_ops = {
	.connected = local_connected,
};

/*
 * Holds the state folder for this daemon alone: two daemons on one folder
 * would share a machine key and push each other off the relay in turn.
 * Returns the lock's descriptor (kept open until exit), or -1 having said
 * why.
 */
static int state_lock(const char *state)
{
	char *path = xasprintf("%s/daemon.lock", state);
	char pid[32] = "";
	int fd, e = mkdir_p(state, 0700);

	fd = e < 0 ? -1 : open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "baton-local: cannot use the state folder %s: "
			"%s\n", state, strerror(e < 0 ? -e : errno));
	} else if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		ssize_t n = read(fd, pid, sizeof(pid) - 1);
		char who[48] = "";

		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		if (pid[0])
			snprintf(who, sizeof(who), " (pid %s)", pid);
		fprintf(stderr, "baton-local: another baton-local%s runs with "
			"the state folder %s; stop it first (or give this one "
			"another --state)\n", who, state);
		close(fd);
		fd = -1;
	} else {
		snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
		if (ftruncate(fd, 0) < 0 ||
		    write(fd, pid, strlen(pid)) < 0)
			log_debug("local", "cannot note the pid in %s", path);
	}
	free(path);
	return fd;
}

/* True when the environment sets NAME; empty counts as unset. */
static bool env_given(const char *name)
{
	const char *v = getenv(name);

	return v && v[0];
}

/* Runs the subcommand argv[1] names: its exit status, or -1 when it
 * names none. */
static int subcommand(int argc, char **argv, const struct local_conf *conf,
		      const char *conf_path)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	if (!strcmp(cmd, "install-service"))
		return local_install_service(argc - 1, argv + 1, conf,
					     conf_path);
	if (!strcmp(cmd, "uninstall-service"))
		return local_uninstall_service(argc - 1, argv + 1);
	if (!strcmp(cmd, "status"))
		return local_status(argc - 1, argv + 1, conf, conf_path);
	if (strcmp(cmd, "pair"))
		return -1;
	if (sodium_init() < 0) {
		fprintf(stderr, "baton-local: libsodium failed to start\n");
		return EXIT_FAIL;
	}
	log_route_libraries();
	return local_pair(argc - 1, argv + 1, conf);
}

char *local_state_dir_default(void)
{
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");

	if (xdg && xdg[0] == '/')
		return xasprintf("%s/baton-local", xdg);
	return xasprintf("%s/.local/state/baton-local", home ? home : ".");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "relay", required_argument, NULL, 'r' },
		{ "token", required_argument, NULL, 't' },
		{ "name", required_argument, NULL, 'n' },
		{ "ca", required_argument, NULL, 'c' },
		{ "insecure", no_argument, NULL, 'i' },
		{ "state", required_argument, NULL, 's' },
		{ "agents", required_argument, NULL, 'a' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "log-format", required_argument, NULL, 'F' },
		{ "ping-interval", required_argument, NULL, 'P' },
		{ "dead-after", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	const char *relay, *token = getenv("BATON_TOKEN");
	const char *name, *agents, *log_env, *ca, *v;
	bool insecure;
	char *state = NULL, *cause = NULL, host_name[256];
	char *conf_path, *paired_relay = NULL, *paired_name = NULL;
	struct local_conf *conf = NULL;
	struct local_state *st = NULL;
	struct host_opts ho = { 0 };
	struct frames_liveness live;
	unsigned ping = 0, dead = 0;
	struct host *h = NULL;
	uv_loop_t loop;
	int c, level, rc, lock = -1;

	log_init("baton-local", LOG_LEVEL_INFO);
	/* Help and the version whatever the configuration file holds: it
	 * may be the very thing the user needs help with. */
	if (argc == 2 && (!strcmp(argv[1], "--help") ||
			  !strcmp(argv[1], "-h"))) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (argc == 2 && !strcmp(argv[1], "--version")) {
		printf("baton-local %s\n", BATON_VERSION);
		return EXIT_OK;
	}
	conf_path = local_conf_path();
	if (local_conf_load(conf_path, &conf, &cause) < 0) {
		fprintf(stderr, "baton-local: %s\n", cause);
		free(cause);
		free(conf_path);
		return EXIT_FAIL;
	}
	rc = subcommand(argc, argv, conf, conf_path);
	if (rc >= 0) {
		local_conf_free(conf);
		free(conf_path);
		return rc;
	}

	/* The file's settings, under the environment's; flags override
	 * both below. */
	relay = local_conf_pick(conf, "relay", "BATON_RELAY");
	ca = local_conf_pick(conf, "ca", "BATON_CA");
	name = local_conf_get(conf, "name");
	agents = local_conf_get(conf, "agents");
	insecure = local_conf_flag(conf, "insecure");
	if ((v = local_conf_get(conf, "state")))
		state = xstrdup(v);
	log_env = local_conf_pick(conf, "log-level", "BATON_LOG");
	if (log_env && log_level_parse(log_env) >= 0)
		log_threshold = log_level_parse(log_env);
	v = local_conf_get(conf, "log-format");
	if (v && !env_given("BATON_LOG_FORMAT"))
		log_format_set(v);
	if (!env_given("BATON_PING_INTERVAL"))
		ping = local_conf_seconds(conf, "ping-interval");
	if (!env_given("BATON_DEAD_AFTER"))
		dead = local_conf_seconds(conf, "dead-after");
	while ((c = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		switch (c) {
		case 'r': relay = optarg; break;
		case 't': token = optarg; break;
		case 'n': name = optarg; break;
		case 'c': ca = optarg; break;
		case 'i': insecure = true; break;
		case 's': free(state); state = xstrdup(optarg); break;
		case 'a': agents = optarg; break;
		case 'P':
		case 'D':
			if (parse_seconds(optarg, c == 'P' ? &ping : &dead))
				usage_error("--%s takes seconds, not '%s'",
					    c == 'P' ? "ping-interval"
						     : "dead-after", optarg);
			break;
		case 'L':
			level = log_level_parse(optarg);
			if (level < 0)
				usage_error("unknown log level '%s'", optarg);
			log_threshold = level;
			break;
		case 'F':
			if (log_format_set(optarg) < 0)
				usage_error("--log-format takes json or text, "
					    "not '%s'", optarg);
			break;
		case 'h':
			fputs(usage_text, stdout);
			rc = EXIT_OK;
			goto out;
		case 'V':
			printf("baton-local %s\n", BATON_VERSION);
			rc = EXIT_OK;
			goto out;
		default: usage_error("unknown option");
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (state == NULL)
		state = local_state_dir_default();
	if (relay == NULL)
		relay = paired_relay = local_paired_relay(state);
	if (relay == NULL)
		usage_error("which relay? Pair this laptop (baton-local pair "
			    "--relay URL), or give --relay URL, BATON_RELAY "
			    "or relay in %s", conf_path);
	if (name == NULL)
		name = paired_name = local_paired_name(state, relay);
	if (token && token[0] == '\0')
		token = NULL;
	if (name == NULL) {
		if (gethostname(host_name, sizeof(host_name)) < 0)
			usage_error("--name NAME is needed");
		host_name[sizeof(host_name) - 1] = '\0';
		name = host_name;
	}
	if (frames_liveness_init(&live, &cause) < 0 ||
	    frames_liveness_set(&live, ping, dead, &cause) < 0)
		usage_error("%s", cause);

	if (sodium_init() < 0) {
		fprintf(stderr, "baton-local: libsodium failed to start\n");
		rc = EXIT_FAIL;
		goto out;
	}
	lock = state_lock(state);
	if (lock < 0) {
		rc = EXIT_FAIL;
		goto out;
	}
	log_route_libraries();
	uv_loop_init(&loop);

	ho.relay_url = relay;
	ho.ca_file = ca && ca[0] ? ca : NULL;
	ho.insecure = insecure;
	ho.token = token;
	ho.kind = "local";
	ho.name = name;
	ho.state_dir = state;
	ho.agents_file = agents;
	ho.liveness = &live;
	ho.ops = &local_ops;
	ho.data = st = local_state_new(state, relay, name);
	if (host_new(&loop, &ho, &h, &cause) < 0) {
		fprintf(stderr, "baton-local: %s\n", cause);
		free(cause);
		uv_run(&loop, UV_RUN_DEFAULT);
		uv_loop_close(&loop);
		checkpoint_lib_stop();
		rc = EXIT_FAIL;
		goto out;
	}
	local_state_save(st, false);
	log_info("local", "machine %s, relay %s%s%s, state in %s", name,
		 relay, ho.ca_file ? ", CAs from " : "",
		 ho.ca_file ? ho.ca_file : "", state);
	rc = daemon_run(&loop, h);
	checkpoint_lib_stop();
out:
	if (lock >= 0)
		close(lock);
	local_state_free(st);
	free(paired_name);
	free(paired_relay);
	free(state);
	local_conf_free(conf);
	free(conf_path);
	return rc;
}
