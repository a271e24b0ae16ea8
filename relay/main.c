/*
 * main.c: the baton-relay program: `serve` runs the relay, `token create`,
 * `token list` and `token revoke` manage tokens (also while it runs);
 * `credits set` and `credits show` are in credits.c.
 */
#define _GNU_SOURCE
#include "relay.h"
#include "link.h"
#include "log.h"
#include "ratelimit.h"
#include "tls.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <git2.h>
#include <libgen.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,		/* could not do it; the message says why */
	EXIT_USAGE = 2,
};

static const char usage_text[] =
"usage: baton-relay serve --listen ADDR:PORT --data DIR [options]\n"
"       baton-relay token create --data DIR --user NAME --kind client|machine\n"
"                                [--scope steer|read] [--expires DURATION]\n"
"       baton-relay token list --data DIR [--user NAME]\n"
"       baton-relay token revoke --data DIR ID\n"
"       baton-relay credits set --data DIR --user NAME --seconds N\n"
"       baton-relay credits show --data DIR [--user NAME]\n"
"       baton-relay --help | --version\n"
"\n"
"The Baton relay: laptops and sandboxes register with it, clients steer\n"
"sessions through it, and it moves sessions between machines.\n"
"\n"
"serve options:\n"
"  --listen ADDR:PORT   address to listen on, e.g. 127.0.0.1:8080\n"
"                       (port 0 picks a free port); without TLS it must\n"
"                       be loopback (127.0.0.0/8, ::1, localhost)\n"
"  --data DIR           where records, transcripts and objects live\n"
"  --tls-cert FILE      serve wss:// with this certificate (PEM, the\n"
"                       server's first, then intermediates); it must\n"
"                       name the address clients and sandboxes use\n"
"  --tls-key FILE       the certificate's private key (PEM, unencrypted)\n"
"  --ca FILE            the CA file (PEM) the sandboxes trust for the\n"
"                       relay's certificate (default: their system's)\n"
"  --insecure           serve plain ws:// on an address that is not\n"
"                       loopback: tokens and sessions cross the network\n"
"                       readable. Only behind a TLS proxy or on a\n"
"                       network you trust\n"
"  --sandbox-bin PATH   the baton-sandbox program the process launcher\n"
"                       starts (default: next to baton-relay)\n"
"  --sandbox-launcher process|command:TEMPLATE\n"
"                       how sandboxes start: process (default) runs\n"
"                       baton-sandbox here; command: runs TEMPLATE, split\n"
"                       on blanks (no shell), with {machine}, {generation},\n"
"                       {workspace}, {user}, {relay}, {home} and {workdir}\n"
"                       replaced and the sandbox's BATON_* settings in its\n"
"                       environment. Its exit with status 0 means the\n"
"                       sandbox runs on by itself (docker run -d)\n"
"  --sandbox-stop command:TEMPLATE\n"
"                       with a command launcher, run this for each sandbox\n"
"                       it started when the relay stops (default: SIGTERM\n"
"                       the command if it still runs)\n"
"  --web DIR            serve the web app from DIR at / (default: the\n"
"                       build's or the installed one; none: serve no\n"
"                       app)\n"
"  --port-file FILE     write the port listened on to FILE\n"
"  --log-level LEVEL    error, warn, info (default) or debug\n"
"  --log-format F       text (default) or json: one JSON object a line\n"
"                       (env BATON_LOG_FORMAT)\n"
"  --ping-interval S    ping a connection idle for S seconds (default 20;\n"
"                       env BATON_PING_INTERVAL)\n"
"  --dead-after S       drop a peer silent for S seconds (default 60;\n"
"                       env BATON_DEAD_AFTER)\n"
"  --pair-ttl S         how long a pairing code lives (default 600)\n"
"  --sandbox-idle S     park a sandbox's session that has had no input\n"
"                       or output for S seconds (checkpointed; a move\n"
"                       resumes it), and stop a sandbox that has run\n"
"                       no session for as long (default 900)\n"
"  --launch-timeout S   how long a sandbox started for a move may take to\n"
"                       connect (default 120); then the move goes back\n"
"  --setup-timeout S    how long a sandbox's setup script may run\n"
"                       (default 600); then the move ends in\n"
"                       start_timeout and goes back to the laptop\n"
"  --hello-timeout S    close a connection that has not said hello and\n"
"                       proven its key within S seconds (default 20)\n"
"  --credit-tick S      charge running sandboxes' time to their users'\n"
"                       credits every S seconds (default 10)\n"
"\n"
"Limits (0 turns one off; over one, the relay answers `limited` and says\n"
"when or how to try again):\n"
"  --conn-rate N        new connections a second from one address (an\n"
"                       IPv6 /64), in bursts of up to twice that (at\n"
"                       least 2); decimals such as 0.2 allowed (default\n"
"                       50). Behind a proxy, clients share its address\n"
"  --hello-rate N       hellos a second with one token (or machine key),\n"
"                       bursts as above (default 50)\n"
"  --max-conns-per-user N\n"
"                       connections one user may have open, clients and\n"
"                       machines together (default 64)\n"
"  --max-sessions-per-machine N\n"
"                       sessions one machine may run at once (default 32)\n"
"\n"
"token create prints a new token on stdout; only its hash is stored.\n"
"Client tokens are for `baton`, machine tokens for `baton-local`.\n"
"  --scope steer|read   client tokens: steer (default) may do anything;\n"
"                       read may list, watch and tail sessions but never\n"
"                       type, start, move, stop or resize them\n"
"  --expires DURATION   refuse the token after DURATION: N followed by\n"
"                       s, m, h or d (30m, 12h, 7d); 0 for never (default)\n"
"token list shows each token's id, user, kind, scope, times and state,\n"
"never the token. token revoke ID refuses that token from its next\n"
"connection on; connections already open stay open.\n"
"\n"
"credits set gives a user N seconds of sandbox time (replacing what was\n"
"left); credits show prints a user's balance, or every user's. A user\n"
"never given credits has no limit. Both work while the relay runs.\n"
"\n"
"Exit status: 0 success, 1 failure (the message says why), 2 usage.\n";

#define usage_error(...) die_usage("baton-relay", __VA_ARGS__)

/* The baton-sandbox next to this program, or in the build tree. */
static char *default_sandbox_bin(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *dir, *path;

	if (n <= 0)
		return xstrdup("baton-sandbox");
	self[n] = '\0';
	dir = dirname(self);
	path = xasprintf("%s/baton-sandbox", dir);
	if (access(path, X_OK) == 0)
		return path;
	free(path);
	path = xasprintf("%s/../agent-sandbox/baton-sandbox", dir);
	if (access(path, X_OK) == 0)
		return path;
	free(path);
	return xstrdup("baton-sandbox");
}

static int split_listen(const char *listen, char **host, int *port)
{
	const char *colon = strrchr(listen, ':');
	char *end;
	long n;

	if (colon == NULL || colon == listen)
		return -1;
	n = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || n < 0 || n > 65535)
		return -1;
	if (listen[0] == '[' && colon[-1] == ']')
		*host = xstrndup(listen + 1, (size_t)(colon - listen - 2));
	else
		*host = xstrndup(listen, (size_t)(colon - listen));
	if (!strcmp(*host, "localhost")) {
		free(*host);
		*host = xstrdup("127.0.0.1");
	}
	*port = (int)n;
	return 0;
}

/* The address sandboxes on this machine reach a listen address at. */
static const char *local_address(const char *host)
{
	if (!strcmp(host, "0.0.0.0"))
		return "127.0.0.1";
	if (!strcmp(host, "::"))
		return "::1";
	return host;
}

/*
 * Checks the TLS files and the address rule before anything starts:
 * without TLS, only loopback unless insecure. Exits with a message that
 * says what to do.
 */
static void serve_check_tls(const char *host, const char *cert,
			    const char *key, const char *ca, bool insecure)
{
	char *cause = NULL;

	if ((cert == NULL) != (key == NULL))
		usage_error("%s", "--tls-cert and --tls-key go together: give "
			    "the certificate and its private key");
	if (cert == NULL && !insecure && !link_host_is_loopback(host))
		usage_error("refusing to listen on %s without TLS: tokens and "
			    "sessions would cross the network readable; give "
			    "--tls-cert FILE and --tls-key FILE, or --insecure "
			    "if a TLS proxy in front of the relay or a "
			    "trusted network protects it, or listen on "
			    "127.0.0.1", host);
	if (cert && tls_check_pair(cert, key, &cause) < 0) {
		fprintf(stderr, "baton-relay: %s\n", cause);
		free(cause);
		exit(EXIT_FAIL);
	}
	if (ca && tls_check_ca(ca, &cause) < 0) {
		fprintf(stderr, "baton-relay: --ca: %s\n", cause);
		free(cause);
		exit(EXIT_FAIL);
	}
}

/* Sandboxes the launcher starts inherit the relay's liveness times. */
static void liveness_export(const struct frames_liveness *l)
{
	char text[16];

	snprintf(text, sizeof(text), "%u", l->ping_s);
	setenv("BATON_PING_INTERVAL", text, 1);
	snprintf(text, sizeof(text), "%u", l->dead_s);
	setenv("BATON_DEAD_AFTER", text, 1);
}

/* Parses a rate for --conn-rate or --hello-rate: 0, or 0.01 to 1000000. */
static int parse_rate(const char *text, double *out)
{
	char *end;
	double v;

	if (text[0] < '0' || text[0] > '9' ||
	    strspn(text, "0123456789.") != strlen(text))
		return -EINVAL;
	v = strtod(text, &end);
	if (*end || !(v == 0 || (v >= 0.01 && v <= 1e6)))
		return -EINVAL;
	*out = v;
	return 0;
}

/* Parses a cap for --max-*: 0 to 1000000. */
static int parse_count(const char *text, unsigned *out)
{
	char *end;
	unsigned long n;

	if (text[0] < '0' || text[0] > '9')
		return -EINVAL;
	errno = 0;
	n = strtoul(text, &end, 10);
	if (errno || *end || n > 1000000)
		return -EINVAL;
	*out = (unsigned)n;
	return 0;
}

/* A limiter for RATE a second in bursts of twice that (at least 2), or
 * NULL when RATE is 0: no limit. */
static struct ratelimit *limiter_new(double rate)
{
	double twice = 2 * rate;
	unsigned burst = (unsigned)twice;
	struct ratelimit *rl;

	if (rate == 0)
		return NULL;
	if (burst < twice)
		burst++;
	rl = ratelimit_new(rate, burst < 2 ? 2 : burst, LIMIT_KEYS);
	if (rl == NULL) {
		fprintf(stderr, "baton-relay: libsodium failed to start\n");
		exit(EXIT_FAIL);
	}
	return rl;
}

/* Sets the limits serve's options asked for. */
static void limits_init(struct relay_limits *l, double conn_rate,
			double hello_rate, unsigned max_conns,
			unsigned max_sessions)
{
	l->conn_rate = limiter_new(conn_rate);
	l->hello_rate = limiter_new(hello_rate);
	randombytes_buf(l->hello_key, sizeof(l->hello_key));
	l->conns_per_user = max_conns;
	l->sessions_per_machine = max_sessions;
}

/* Frees the limiters and forgets the hash key. */
static void limits_clear(struct relay_limits *l)
{
	ratelimit_free(l->conn_rate);
	ratelimit_free(l->hello_rate);
	sodium_memzero(l->hello_key, sizeof(l->hello_key));
	l->conn_rate = l->hello_rate = NULL;
}

struct serve_state {
	struct relay relay;
	uv_signal_t sigint;
	uv_signal_t sigterm;
};

static void on_signal_closed(uv_handle_t *h)
{
}

static void on_stop_signal(uv_signal_t *sig, int signum)
{
	struct serve_state *st = sig->data;
	struct relay *r = &st->relay;

	if (r->stopping)
		return;
	log_info("relay", "stopping on %s", strsignal(signum));
	r->stopping = true;
	relay_recovery_stop(r);
	credits_stop(r);
	launcher_stop_all(r->launcher, 5000);
	uv_close((uv_handle_t *)&st->sigint, on_signal_closed);
	uv_close((uv_handle_t *)&st->sigterm, on_signal_closed);
	server_shutdown(r);
}

static int serve(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "data", required_argument, NULL, 'd' },
		{ "sandbox-bin", required_argument, NULL, 's' },
		{ "sandbox-launcher", required_argument, NULL, 'S' },
		{ "sandbox-stop", required_argument, NULL, 'X' },
		{ "port-file", required_argument, NULL, 'p' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "log-format", required_argument, NULL, 'F' },
		{ "ping-interval", required_argument, NULL, 'P' },
		{ "dead-after", required_argument, NULL, 'D' },
		{ "tls-cert", required_argument, NULL, 'C' },
		{ "tls-key", required_argument, NULL, 'K' },
		{ "ca", required_argument, NULL, 'A' },
		{ "insecure", no_argument, NULL, 'I' },
		{ "pair-ttl", required_argument, NULL, 'T' },
		{ "hello-timeout", required_argument, NULL, 'O' },
		{ "credit-tick", required_argument, NULL, 'k' },
		{ "setup-timeout", required_argument, NULL, 'U' },
		{ "launch-timeout", required_argument, NULL, 'W' },
		{ "sandbox-idle", required_argument, NULL, 'Y' },
		{ "conn-rate", required_argument, NULL, 'r' },
		{ "hello-rate", required_argument, NULL, 'H' },
		{ "max-conns-per-user", required_argument, NULL, 'u' },
		{ "max-sessions-per-machine", required_argument, NULL, 'm' },
		{ "web", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *listen = NULL, *data = NULL, *port_file = NULL;
	const char *tls_cert = NULL, *tls_key = NULL, *ca = NULL;
	const char *launch_spec = "process", *stop_spec = NULL;
	const char *web = NULL;
	struct launcher_template *start_cmd = NULL, *stop_cmd = NULL;
	struct server_opts so = { 0 };
	unsigned ping = 0, dead = 0, pair_ttl = PAIR_TTL_DEFAULT_S;
	unsigned hello_timeout = HELLO_TIMEOUT_DEFAULT_S;
	unsigned credit_tick = CREDIT_TICK_DEFAULT_S;
	unsigned setup_timeout = SETUP_TIMEOUT_DEFAULT_S;
	unsigned launch_timeout = LAUNCH_TIMEOUT_DEFAULT_S;
	unsigned sandbox_idle = SANDBOX_IDLE_DEFAULT_S;
	double conn_rate = LIMIT_CONN_RATE_DEFAULT;
	double hello_rate = LIMIT_HELLO_RATE_DEFAULT;
	unsigned max_conns = LIMIT_CONNS_PER_USER_DEFAULT;
	unsigned max_sessions = LIMIT_SESSIONS_PER_MACHINE_DEFAULT;
	char *sandbox_bin = NULL, *host = NULL, *cause = NULL;
	char *data_abs = NULL, *ca_abs = NULL;
	bool insecure = false;
	struct serve_state st;
	struct relay *r = &st.relay;
	uv_loop_t loop;
	int c, port, bound = 0, level, rc = EXIT_FAIL;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'l': listen = optarg; break;
		case 'd': data = optarg; break;
		case 's': free(sandbox_bin); sandbox_bin = xstrdup(optarg);
			  break;
		case 'p': port_file = optarg; break;
		case 'S': launch_spec = optarg; break;
		case 'X': stop_spec = optarg; break;
		case 'C': tls_cert = optarg; break;
		case 'K': tls_key = optarg; break;
		case 'A': ca = optarg; break;
		case 'I': insecure = true; break;
		case 'w': web = optarg; break;
		case 'Y':
			if (parse_seconds(optarg, &sandbox_idle) ||
			    sandbox_idle == 0)
				usage_error("--sandbox-idle takes seconds "
					    "(more than 0), not '%s'", optarg);
			break;
		case 'W':
			if (parse_seconds(optarg, &launch_timeout) ||
			    launch_timeout == 0)
				usage_error("--launch-timeout takes seconds "
					    "(more than 0), not '%s'", optarg);
			break;
		case 'U':
			if (parse_seconds(optarg, &setup_timeout) ||
			    setup_timeout == 0)
				usage_error("--setup-timeout takes seconds "
					    "(more than 0), not '%s'", optarg);
			break;
		case 'k':
			if (parse_seconds(optarg, &credit_tick))
				usage_error("--credit-tick takes seconds (1 to "
					    "65535), not '%s'", optarg);
			break;
		case 'O':
			if (parse_seconds(optarg, &hello_timeout) ||
			    hello_timeout == 0)
				usage_error("--hello-timeout takes seconds "
					    "(more than 0), not '%s'", optarg);
			break;
		case 'T':
			if (parse_seconds(optarg, &pair_ttl) || pair_ttl == 0)
				usage_error("--pair-ttl takes seconds (more "
					    "than 0), not '%s'", optarg);
			break;
		case 'r':
		case 'H':
			if (parse_rate(optarg, c == 'r' ? &conn_rate
							: &hello_rate) < 0)
				usage_error("--%s takes a rate per second: 0 "
					    "(no limit) or 0.01 to 1000000, "
					    "not '%s'", c == 'r' ? "conn-rate"
					    : "hello-rate", optarg);
			break;
		case 'u':
		case 'm':
			if (parse_count(optarg, c == 'u' ? &max_conns
							 : &max_sessions) < 0)
				usage_error("--%s takes a whole number: 0 (no "
					    "limit) to 1000000, not '%s'",
					    c == 'u' ? "max-conns-per-user"
					    : "max-sessions-per-machine",
					    optarg);
			break;
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
		case 'h': fputs(usage_text, stdout); exit(EXIT_OK);
		default: usage_error("%s", "bad option for serve");
		}
	}
	if (listen == NULL || data == NULL)
		usage_error("%s", "serve needs --listen ADDR:PORT and "
			    "--data DIR");
	if (split_listen(listen, &host, &port) < 0)
		usage_error("--listen '%s' is not ADDR:PORT, e.g. "
			    "127.0.0.1:8080", listen);
	if (sandbox_bin == NULL) {
		sandbox_bin = default_sandbox_bin();
	} else if (strchr(sandbox_bin, '/')) {
		char *abs = realpath(sandbox_bin, NULL);

		if (abs == NULL)
			usage_error("--sandbox-bin %s: %s", sandbox_bin,
				    strerror(errno));
		free(sandbox_bin);
		sandbox_bin = abs;
	}
	if (strcmp(launch_spec, "process") &&
	    strncmp(launch_spec, "command:", strlen("command:")))
		usage_error("--sandbox-launcher takes process or "
			    "command:TEMPLATE, not '%s'", launch_spec);
	if (strcmp(launch_spec, "process") &&
	    launcher_template_parse(launch_spec, &start_cmd, &cause) < 0)
		usage_error("--sandbox-launcher: %s", cause);
	if (stop_spec && start_cmd == NULL)
		usage_error("%s", "--sandbox-stop goes with --sandbox-launcher "
			    "command:TEMPLATE; the process launcher stops its "
			    "sandboxes itself");
	if (stop_spec &&
	    launcher_template_parse(stop_spec, &stop_cmd, &cause) < 0)
		usage_error("--sandbox-stop: %s", cause);
	serve_check_tls(host, tls_cert, tls_key, ca, insecure);
	/* Sandboxes run in other folders: give them absolute paths. */
	if (ca && (ca_abs = realpath(ca, NULL)) == NULL)
		usage_error("--ca %s: %s", ca, strerror(errno));

	memset(&st, 0, sizeof(st));
	if (frames_liveness_init(&r->live, &cause) < 0 ||
	    frames_liveness_set(&r->live, ping, dead, &cause) < 0)
		usage_error("%s", cause);
	liveness_export(&r->live);
	r->pair_ttl_s = pair_ttl;
	r->hello_timeout_s = hello_timeout;
	r->setup_timeout_s = setup_timeout;
	r->launch_timeout_s = launch_timeout;
	r->sandbox_idle_s = sandbox_idle;
	if (web && !strcmp(web, "none"))
		r->web_dir = NULL;
	else if (web && (r->web_dir = realpath(web, NULL)) == NULL)
		usage_error("--web %s: %s", web, strerror(errno));
	else if (web == NULL)
		r->web_dir = web_dir_default();
	limits_init(&r->limits, conn_rate, hello_rate, max_conns,
		    max_sessions);
	uv_loop_init(&loop);
	r->loop = &loop;
	if (store_open(data, &r->store, &cause) < 0 ||
	    env_init(r, &cause) < 0) {
		fprintf(stderr, "baton-relay: %s\n", cause);
		goto out;
	}
	/* Sandboxes run in other folders: give them absolute paths. */
	data_abs = realpath(data, NULL);
	if (data_abs == NULL) {
		fprintf(stderr, "baton-relay: cannot resolve %s: %s\n", data,
			strerror(errno));
		goto out;
	}
	r->bus = bus_new();
	r->launcher = launcher_new(&loop, sandbox_bin, data_abs,
				   relay_sandbox_exited, r);
	launcher_set_command(r->launcher, start_cmd, stop_cmd);
	start_cmd = stop_cmd = NULL;
	/* plain ws:// beyond loopback only where --insecure let us serve it */
	launcher_set_trust(r->launcher, ca_abs, tls_cert == NULL &&
			   !link_host_is_loopback(local_address(host)));
	so.host = host;
	so.port = port;
	so.tls_cert = tls_cert;
	so.tls_key = tls_key;
	if (server_start(r, &so, &bound, &cause) < 0) {
		fprintf(stderr, "baton-relay: %s\n", cause);
		goto out;
	}
	r->url = xasprintf(strchr(host, ':') ? "%s://[%s]:%d" : "%s://%s:%d",
			   tls_cert ? "wss" : "ws", local_address(host),
			   bound);
	if (tls_cert == NULL && !link_host_is_loopback(host))
		log_warn("relay", "serving plain ws:// on %s (--insecure): "
			 "tokens and sessions cross the network readable",
			 host);
	if (port_file) {
		char text[16];
		int e;

		snprintf(text, sizeof(text), "%d\n", bound);
		e = file_write_atomic(port_file, text, strlen(text), 0644);
		if (e < 0) {
			fprintf(stderr, "baton-relay: cannot write %s: %s\n",
				port_file, strerror(-e));
			server_shutdown(r);
			uv_run(&loop, UV_RUN_DEFAULT);
			goto out;
		}
	}
	log_info("relay", "listening on %s, data in %s, sandboxes from %s",
		 r->url, data, strcmp(launch_spec, "process") ? launch_spec
							      : sandbox_bin);
	if (r->web_dir)
		log_info("relay", "web app from %s at %s://%s:%d/", r->web_dir,
			 tls_cert ? "https" : "http", local_address(host),
			 bound);
	else
		log_info("relay", "no web app to serve (see --web)");
	relay_recovery_start(r);
	credits_start(r, credit_tick);

	uv_signal_init(&loop, &st.sigint);
	uv_signal_init(&loop, &st.sigterm);
	st.sigint.data = st.sigterm.data = &st;
	uv_signal_start(&st.sigint, on_stop_signal, SIGINT);
	uv_signal_start(&st.sigterm, on_stop_signal, SIGTERM);
	uv_run(&loop, UV_RUN_DEFAULT);
	log_info("relay", "stopped");
	rc = EXIT_OK;
out:
	server_free(r);
	/* let lws close what its second destroy released */
	uv_run(&loop, UV_RUN_DEFAULT);
	relay_sessions_free(r);
	launcher_free(r->launcher);
	bus_free(r->bus);
	env_clear(r);
	web_free(r);
	store_close(r->store);
	limits_clear(&r->limits);
	if (uv_loop_close(&loop) != 0)
		log_warn("relay", "event loop closed with handles open");
	free(r->url);
	free(host);
	free(cause);
	free(sandbox_bin);
	launcher_template_free(start_cmd);
	launcher_template_free(stop_cmd);
	free(data_abs);
	free(ca_abs);
	return rc;
}

/* Parses a token lifetime: 0 (never), or N followed by s, m, h or d. */
static int parse_duration(const char *text, int64_t *seconds)
{
	char *end;
	long long n;
	int64_t unit;

	errno = 0;
	n = strtoll(text, &end, 10);
	if (errno || end == text || n < 0 || text[0] == '-' ||
	    text[0] == '+')
		return -1;
	if (n == 0 && *end == '\0') {
		*seconds = 0;
		return 0;
	}
	switch (*end) {
	case 's': unit = 1; break;
	case 'm': unit = 60; break;
	case 'h': unit = 3600; break;
	case 'd': unit = 86400; break;
	default: return -1;
	}
	if (end[1] != '\0' || n == 0 || n > (long long)(INT32_MAX / unit))
		return -1;
	*seconds = (int64_t)n * unit;
	return 0;
}

/* Opens the store for a command beside the server (see relay.h). */
struct store *relay_store_open_cli(const char *data)
{
	struct store *s = NULL;
	char *cause = NULL;

	if (store_open(data, &s, &cause) < 0) {
		fprintf(stderr, "baton-relay: %s\n", cause);
		free(cause);
		return NULL;
	}
	return s;
}

static int token_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "user", required_argument, NULL, 'u' },
		{ "kind", required_argument, NULL, 'k' },
		{ "scope", required_argument, NULL, 's' },
		{ "expires", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *data = NULL, *user = NULL, *kind = NULL, *scope = NULL;
	const char *expires = NULL;
	int64_t lifetime = 0;
	struct store *s = NULL;
	char *token = NULL;
	int c, e;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'u': user = optarg; break;
		case 'k': kind = optarg; break;
		case 's': scope = optarg; break;
		case 'e': expires = optarg; break;
		case 'h': fputs(usage_text, stdout); exit(EXIT_OK);
		default: usage_error("%s", "bad option for token create");
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s' for token create",
			    argv[optind]);
	if (data == NULL || user == NULL || kind == NULL)
		usage_error("%s", "token create needs --data DIR --user NAME "
			    "--kind client|machine");
	if (strcmp(kind, "client") && strcmp(kind, "machine"))
		usage_error("--kind must be client or machine, not '%s'",
			    kind);
	if (scope && strcmp(scope, "steer") && strcmp(scope, "read"))
		usage_error("--scope must be steer or read, not '%s'", scope);
	if (scope && !strcmp(kind, "machine"))
		usage_error("%s", "--scope is for client tokens; a machine "
			    "token has none");
	if (expires && parse_duration(expires, &lifetime) < 0)
		usage_error("--expires needs a duration such as 30m, 12h or "
			    "7d (or 0 for never), not '%s'", expires);
	if (user[0] == '\0' || strlen(user) > 64)
		usage_error("%s", "--user needs a name of 1 to 64 bytes");

	if ((s = relay_store_open_cli(data)) == NULL)
		return EXIT_FAIL;
	e = store_token_create(s, user, kind, scope,
			       lifetime ? (int64_t)time(NULL) + lifetime : 0,
			       &token);
	store_close(s);
	if (e < 0) {
		fprintf(stderr, "baton-relay: cannot create a token in %s: "
			"%s\n", data, strerror(-e));
		return EXIT_FAIL;
	}
	printf("%s\n", token);
	sodium_memzero(token, strlen(token));
	free(token);
	return EXIT_OK;
}

/* Formats a unix time as UTC (2026-01-31T12:00:00Z), or "-" for 0. */
static void format_time(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0 || gmtime_r(&tt, &tm) == NULL)
		snprintf(buf, size, "-");
	else
		strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int token_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "user", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *data = NULL, *user = NULL;
	struct store_token *ts = NULL;
	struct store *s;
	size_t n = 0;
	int64_t now = (int64_t)time(NULL);
	int c, e;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'u': user = optarg; break;
		case 'h': fputs(usage_text, stdout); exit(EXIT_OK);
		default: usage_error("%s", "bad option for token list");
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s' for token list",
			    argv[optind]);
	if (data == NULL)
		usage_error("%s", "token list needs --data DIR");

	if ((s = relay_store_open_cli(data)) == NULL)
		return EXIT_FAIL;
	e = store_tokens_list(s, user, &ts, &n);
	store_close(s);
	if (e < 0) {
		fprintf(stderr, "baton-relay: cannot list the tokens in %s: "
			"%s\n", data, e == -EINVAL ? "bad user name" :
			strerror(-e));
		return EXIT_FAIL;
	}
	printf("%-12s  %-16s  %-7s  %-7s  %-20s  %-20s  %s\n", "ID", "USER",
	       "KIND", "SCOPE", "CREATED", "EXPIRES", "STATE");
	for (size_t i = 0; i < n; i++) {
		char created[32], expires[32];
		const char *state = ts[i].revoked ? "revoked"
			: ts[i].expires && ts[i].expires <= now ? "expired"
			: "active";

		format_time(ts[i].created, created, sizeof(created));
		format_time(ts[i].expires, expires, sizeof(expires));
		printf("%-12s  %-16s  %-7s  %-7s  %-20s  %-20s  %s\n",
		       ts[i].id, ts[i].user, ts[i].kind, ts[i].scope, created,
		       expires, state);
	}
	store_tokens_free(ts, n);
	return EXIT_OK;
}

static int token_revoke(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *data = NULL, *id;
	struct store *s;
	int c, e;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'h': fputs(usage_text, stdout); exit(EXIT_OK);
		default: usage_error("%s", "bad option for token revoke");
		}
	}
	if (data == NULL || optind != argc - 1)
		usage_error("%s", "token revoke needs --data DIR and one ID "
			    "(from `baton-relay token list`)");
	id = argv[optind];

	if ((s = relay_store_open_cli(data)) == NULL)
		return EXIT_FAIL;
	e = store_token_revoke(s, id);
	store_close(s);
	if (e == -ENOENT || e == -EINVAL) {
		fprintf(stderr, "baton-relay: no token has the id '%s' in %s; "
			"`baton-relay token list --data %s` shows the ids\n",
			id, data, data);
		return EXIT_FAIL;
	}
	if (e < 0) {
		fprintf(stderr, "baton-relay: cannot revoke token %s in %s: "
			"%s\n", id, data, strerror(-e));
		return EXIT_FAIL;
	}
	printf("revoked token %s; it is refused at its next connection\n",
	       id);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	int rc;

	log_init("baton-relay", LOG_LEVEL_INFO);
	if (getenv("BATON_LOG") && log_level_parse(getenv("BATON_LOG")) >= 0)
		log_threshold = log_level_parse(getenv("BATON_LOG"));
	if (argc < 2)
		usage_error("%s", "a command is needed: serve, token "
			    "create, list or revoke, or credits set or show");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("baton-relay %s\n", BATON_VERSION);
		return EXIT_OK;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "baton-relay: libsodium failed to start\n");
		return EXIT_FAIL;
	}
	git_libgit2_init();
	log_route_libraries();

	if (!strcmp(argv[1], "serve")) {
		rc = serve(argc - 1, argv + 1);
	} else if (!strcmp(argv[1], "token") && argc > 2 &&
		   !strcmp(argv[2], "create")) {
		rc = token_create(argc - 2, argv + 2);
	} else if (!strcmp(argv[1], "token") && argc > 2 &&
		   !strcmp(argv[2], "list")) {
		rc = token_list(argc - 2, argv + 2);
	} else if (!strcmp(argv[1], "token") && argc > 2 &&
		   !strcmp(argv[2], "revoke")) {
		rc = token_revoke(argc - 2, argv + 2);
	} else if (!strcmp(argv[1], "credits")) {
		rc = credits_main(argc - 1, argv + 1);
	} else {
		usage_error("unknown command '%s'; use serve, token create, "
			    "list or revoke, or credits set or show",
			    argv[1]);
	}
	git_libgit2_shutdown();
	return rc;
}
