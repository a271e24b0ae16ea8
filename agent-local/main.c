/*
 * main.c: baton-local, the laptop daemon. It registers this machine with
 * the relay, runs sessions in the worktrees the user names, and takes part
 * in moves; it reconnects by itself when the relay goes away.
 */
#define _GNU_SOURCE
#include "daemon.h"
#include "host.h"
#include "local.h"
#include "log.h"
#include "util.h"

#include <getopt.h>
#include <git2.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,
	EXIT_USAGE = 2,
};

static const char usage_text[] =
"usage: baton-local --relay URL [--name NAME] [options]\n"
"       baton-local pair --relay URL [--name NAME]   (see pair --help)\n"
"       baton-local --help | --version\n"
"\n"
"The Baton laptop daemon: registers this machine with the relay and runs\n"
"coding-agent sessions in your git worktrees, so you can steer them with\n"
"`baton` and move them to a sandbox and back.\n"
"\n"
"  --relay URL        the relay, e.g. wss://relay.example:8443, or\n"
"                     ws://127.0.0.1:8080 on this machine (env BATON_RELAY)\n"
"  --token TOKEN      only for a laptop not yet paired: a machine token\n"
"                     from `baton-relay token create --kind machine`\n"
"                     (env BATON_TOKEN; prefer the env). The relay binds\n"
"                     this laptop's key to its record on first contact.\n"
"  --name NAME        this machine's name (default: the host name)\n"
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
"Stops on SIGINT or SIGTERM: agents are stopped, their files stay.\n"
"The laptop proves who it is with its own key (machine.key in the state\n"
"folder, made on first run); `baton-local pair` binds that key to a\n"
"machine of yours on the relay.\n"
"\n"
"Exit status: 0 stopped cleanly, 1 cannot start (not paired, for one) or\n"
"the relay refused this machine (the message says why), 2 usage.\n";

#define usage_error(...) die_usage("baton-local", __VA_ARGS__)

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
	const char *relay = getenv("BATON_RELAY");
	const char *token = getenv("BATON_TOKEN");
	const char *name = NULL, *agents = NULL, *log_env = getenv("BATON_LOG");
	const char *ca = getenv("BATON_CA");
	bool insecure = false;
	char *state = NULL, *cause = NULL, host_name[256];
	struct host_opts ho = { 0 };
	struct frames_liveness live;
	unsigned ping = 0, dead = 0;
	struct host *h = NULL;
	uv_loop_t loop;
	int c, level, rc;

	log_init("baton-local", LOG_LEVEL_INFO);
	if (argc > 1 && !strcmp(argv[1], "pair")) {
		if (sodium_init() < 0) {
			fprintf(stderr, "baton-local: libsodium failed to "
				"start\n");
			return EXIT_FAIL;
		}
		log_route_libraries();
		return local_pair(argc - 1, argv + 1);
	}
	if (log_env && log_level_parse(log_env) >= 0)
		log_threshold = log_level_parse(log_env);
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
		case 'h': fputs(usage_text, stdout); return EXIT_OK;
		case 'V': printf("baton-local %s\n", BATON_VERSION);
			  return EXIT_OK;
		default: usage_error("unknown option");
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (relay == NULL)
		usage_error("--relay URL (or BATON_RELAY) is needed");
	if (token && token[0] == '\0')
		token = NULL;
	if (name == NULL) {
		if (gethostname(host_name, sizeof(host_name)) < 0)
			usage_error("--name NAME is needed");
		host_name[sizeof(host_name) - 1] = '\0';
		name = host_name;
	}
	if (state == NULL)
		state = local_state_dir_default();
	if (frames_liveness_init(&live, &cause) < 0 ||
	    frames_liveness_set(&live, ping, dead, &cause) < 0)
		usage_error("%s", cause);

	if (sodium_init() < 0) {
		fprintf(stderr, "baton-local: libsodium failed to start\n");
		return EXIT_FAIL;
	}
	git_libgit2_init();
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
	if (host_new(&loop, &ho, &h, &cause) < 0) {
		fprintf(stderr, "baton-local: %s\n", cause);
		free(cause);
		free(state);
		uv_run(&loop, UV_RUN_DEFAULT);
		uv_loop_close(&loop);
		git_libgit2_shutdown();
		return EXIT_FAIL;
	}
	log_info("local", "machine %s, relay %s%s%s, state in %s", name,
		 relay, ho.ca_file ? ", CAs from " : "",
		 ho.ca_file ? ho.ca_file : "", state);
	rc = daemon_run(&loop, h);
	free(state);
	git_libgit2_shutdown();
	return rc;
}
