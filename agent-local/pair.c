/*
 * pair.c: `baton-local pair`, which makes this laptop a machine of a user
 * without copying a token by hand.
 *
 * It connects to the relay, proves its key, and shows the one-time code the
 * relay gives it, as text and as a QR code. Someone signed in approves the
 * code (`baton pair approve CODE`); the relay then binds the key to a
 * machine record of that user, and this program writes machine.json into
 * the state folder so `baton-local --relay URL` starts with no token.
 */
#define _GNU_SOURCE
#include "local.h"

#include "config.h"
#include "identity.h"
#include "link.h"
#include "log.h"
#include "qr.h"
#include "util.h"

#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char pair_usage[] =
"usage: baton-local pair --relay URL [--name NAME] [options]\n"
"\n"
"Pairs this laptop with a user of the relay. It shows a one-time code\n"
"(and a QR code of it); approve it from a signed-in client with\n"
"`baton pair approve CODE`. The code works once and for ten minutes.\n"
"Then start the daemon, `baton-local` (or `baton-local install-service`):\n"
"it connects to the relay it was paired with, under that name, with no\n"
"token.\n"
"\n"
"  --relay URL     the relay (env BATON_RELAY)\n"
"  --name NAME     this machine's name (default: the host name)\n"
"  --state DIR     the daemon's state folder, where the key and the\n"
"                  machine record go (default: $XDG_STATE_HOME/baton-local)\n"
"  --ca FILE       trust only the CAs in FILE for the relay's certificate\n"
"  --insecure      allow plain ws:// to a relay on another machine\n"
"  --log-level L   error, warn (default here), info or debug\n"
"\n"
"Each but --log-level defaults to its setting in local.conf (see\n"
"baton-local --help).\n"
"\n"
"Exit status: 0 paired, 1 not paired (the code expired, the relay refused\n"
"or went away; the message says which), 2 usage.\n";

struct pair {
	uv_loop_t *loop;
	struct link *link;
	struct identity id;
	const char *relay;
	const char *name;
	const char *state;
	bool state_given;	/* --state was given: say it again */
	uv_timer_t expiry;
	bool paired;
	bool done;
	int status;
};

/* Ends the program's loop with STATUS. */
static void finish(struct pair *p, int status)
{
	if (p->done)
		return;
	p->done = true;
	p->status = status;
	uv_timer_stop(&p->expiry);
	uv_close((uv_handle_t *)&p->expiry, NULL);
	link_shutdown(p->link);
}

static void on_expired(uv_timer_t *t)
{
	struct pair *p = t->data;

	fprintf(stderr, "baton-local: the code expired before anyone approved"
		" it; run `baton-local pair` again\n");
	finish(p, 1);
}

/* Shows the code; CODE is 8 characters, shown as two groups of four. */
static void show_code(struct pair *p, const char *code, int64_t expires)
{
	char *frag = xasprintf("pair=%s", code);
	char *url = qr_page_url(p->relay, frag);
	char *qr = qr_render(url);
	time_t when = (time_t)expires;
	char at[16];
	int64_t left = expires - (int64_t)time(NULL);

	strftime(at, sizeof(at), "%H:%M", localtime(&when));
	printf("To pair this laptop as %s, approve it from a signed-in "
	       "client:\n\n    baton pair approve %.4s-%s\n\n"
	       "or scan the code below. It works once, until %s.\n\n",
	       p->name, code, strlen(code) > 4 ? code + 4 : "", at);
	if (qr)
		fputs(qr, stdout);
	printf("\n%s\nWaiting for approval...\n", url);
	fflush(stdout);
	free(qr);
	free(url);
	free(frag);
	if (left < 1)
		left = 1;
	uv_timer_start(&p->expiry, on_expired, (uint64_t)left * 1000, 0);
}

static void on_open(struct link *l, void *arg)
{
	struct pair *p = arg;
	cJSON *body = cJSON_CreateObject();

	cJSON_AddNumberToObject(body, "version", PROTO_VERSION);
	cJSON_AddStringToObject(body, "role", "pair");
	cJSON_AddStringToObject(body, "key", p->id.pk_hex);
	cJSON_AddStringToObject(body, "name", p->name);
	link_send_owned(l, proto_encode("hello", NULL, NULL, body));
}

/* Signs the relay's nonce, as the daemon does on every connection. */
static void answer(struct pair *p, const struct proto_msg *m)
{
	unsigned char nonce[IDENTITY_NONCE_BYTES];
	char sig[IDENTITY_SIG_BYTES * 2 + 1];
	const char *hex = proto_str(m->body, "nonce");
	size_t got = 0;
	cJSON *body;

	if (strlen(hex) != sizeof(nonce) * 2 ||
	    sodium_hex2bin(nonce, sizeof(nonce), hex, strlen(hex), NULL, &got,
			   NULL) < 0 || got != sizeof(nonce)) {
		fprintf(stderr, "baton-local: the relay sent a malformed "
			"challenge\n");
		finish(p, 1);
		return;
	}
	identity_sign(&p->id, nonce, sig);
	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "signature", sig);
	link_send_owned(p->link, proto_encode("challenge.answer", m->id, NULL,
					      body));
}

/* Keeps the machine record, so the daemon starts with its key alone. */
static void approved(struct pair *p, const struct proto_msg *m)
{
	char *path = xasprintf("%s/machine.json", p->state);
	const char *machine = proto_str(m->body, "machine");
	const char *user = proto_str(m->body, "user");
	int e;

	e = identity_machine_save(path, p->relay, machine, p->name, user);
	if (e < 0) {
		fprintf(stderr, "baton-local: paired, but cannot write %s: %s;"
			" free some space or fix its permissions and pair "
			"again\n", path, strerror(-e));
		finish(p, 1);
	} else {
		printf("Paired: this laptop is machine %s of user %s.\n"
		       "Start it with: baton-local%s%s (it connects to %s)\n"
		       "or as a service of your login: baton-local "
		       "install-service%s%s\n",
		       p->name, user, p->state_given ? " --state " : "",
		       p->state_given ? p->state : "", p->relay,
		       p->state_given ? " --state " : "",
		       p->state_given ? p->state : "");
		p->paired = true;
		finish(p, 0);
	}
	free(path);
}

static void on_text(struct link *l, const char *text, size_t len, void *arg)
{
	struct pair *p = arg;
	struct proto_msg m;
	const char *code;
	char cause[256];

	if (proto_msg_decode(text, len, PROTO_FROM_RELAY, &m, &code, cause,
			     sizeof(cause)) < 0) {
		log_warn("pair", "bad message from the relay: %s", cause);
	} else if (!strcmp(m.type, "challenge")) {
		answer(p, &m);
	} else if (!strcmp(m.type, "pair.code")) {
		int64_t expires = 0;

		proto_int(m.body, "expires", &expires);
		show_code(p, proto_str(m.body, "code"), expires);
	} else if (!strcmp(m.type, "pair.approved")) {
		approved(p, &m);
	} else if (!strcmp(m.type, "ping")) {
		link_send_owned(l, proto_encode("pong", m.id, NULL, NULL));
	} else if (!strcmp(m.type, "error")) {
		fprintf(stderr, "baton-local: the relay refused to pair: %s\n",
			proto_str(m.body, "message"));
		finish(p, 1);
	}
	proto_msg_free(&m);
}

static void on_binary(struct link *l, const struct proto_bin *b, void *arg)
{
}

static void on_close(struct link *l, const char *reason, void *arg)
{
	struct pair *p = arg;

	if (p->done)
		return;
	fprintf(stderr, "baton-local: lost the relay before the code was "
		"approved (%s); check --relay and run `baton-local pair` "
		"again\n", reason);
	finish(p, 1);
}

static const struct link_callbacks pair_cb = {
	on_open, on_text, on_binary, on_close,
};

int local_pair(int argc, char **argv, const struct local_conf *conf)
{
	static const struct option opts[] = {
		{ "relay", required_argument, NULL, 'r' },
		{ "name", required_argument, NULL, 'n' },
		{ "state", required_argument, NULL, 's' },
		{ "ca", required_argument, NULL, 'c' },
		{ "insecure", no_argument, NULL, 'i' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct pair p = { 0 };
	struct link_opts lo = { 0 };
	const char *ca = local_conf_pick(conf, "ca", "BATON_CA");
	char *state = NULL, *key_path, *cause = NULL, host_name[256];
	char *machine = NULL;
	uv_loop_t loop;
	int c, level, e;

	log_threshold = LOG_LEVEL_WARN;
	p.relay = local_conf_pick(conf, "relay", "BATON_RELAY");
	p.name = local_conf_get(conf, "name");
	lo.insecure = local_conf_flag(conf, "insecure");
	if (local_conf_get(conf, "state"))
		state = xstrdup(local_conf_get(conf, "state"));
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': p.relay = optarg; break;
		case 'n': p.name = optarg; break;
		case 's': free(state); state = xstrdup(optarg); break;
		case 'c': ca = optarg; break;
		case 'i': lo.insecure = true; break;
		case 'L':
			level = log_level_parse(optarg);
			if (level < 0)
				die_usage("baton-local pair", "unknown log "
					  "level '%s'", optarg);
			log_threshold = level;
			break;
		case 'h': fputs(pair_usage, stdout); return 0;
		default: die_usage("baton-local pair", "unknown option");
		}
	}
	if (optind < argc)
		die_usage("baton-local pair", "unexpected argument '%s'",
			  argv[optind]);
	if (p.relay == NULL)
		die_usage("baton-local pair", "--relay URL is needed");
	if (p.name == NULL) {
		if (gethostname(host_name, sizeof(host_name)) < 0)
			die_usage("baton-local pair", "--name NAME is needed");
		host_name[sizeof(host_name) - 1] = '\0';
		p.name = host_name;
	}
	p.state = state ? state : local_state_dir_default();
	p.state_given = state != NULL;
	e = mkdir_p(p.state, 0700);
	if (e < 0) {
		fprintf(stderr, "baton-local: cannot create the state folder "
			"%s: %s\n", p.state, strerror(-e));
		goto out;
	}
	key_path = xasprintf("%s/machine.key", p.state);
	e = identity_load(key_path, &p.id, &cause);
	free(key_path);
	if (e < 0)
		goto out;
	/* Pairing rewrites machine.json: never one a newer baton-local
	 * wrote. */
	key_path = xasprintf("%s/machine.json", p.state);
	e = identity_machine_load(key_path, p.relay, &machine, &cause);
	free(key_path);
	free(machine);
	if (e < 0)
		goto out;

	uv_loop_init(&loop);
	p.loop = &loop;
	uv_timer_init(&loop, &p.expiry);
	p.expiry.data = &p;
	lo.url = p.relay;
	lo.ca_file = ca && ca[0] ? ca : NULL;
	lo.reconnect = false;
	lo.cb = &pair_cb;
	lo.arg = &p;
	e = link_new(&loop, &lo, &p.link, &cause);
	if (e < 0) {
		uv_close((uv_handle_t *)&p.expiry, NULL);
		uv_run(&loop, UV_RUN_DEFAULT);
		uv_loop_close(&loop);
		goto out;
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	link_free(p.link);
	uv_loop_close(&loop);
	e = p.paired ? 0 : -1;
out:
	if (cause)
		fprintf(stderr, "baton-local: %s\n", cause);
	free(cause);
	identity_clear(&p.id);
	if (state == NULL)
		free((char *)p.state);
	free(state);
	return e == 0 ? 0 : 1;
}
