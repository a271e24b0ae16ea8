/*
 * credits.c: sandbox credits, a balance of sandbox time in seconds per
 * user, kept in the store. A user without a credits row has no limit and is
 * not metered.
 *
 * Metering: a sandbox is charged to its user from its welcome to its
 * disconnect, for the time it runs one of the user's sessions (running,
 * suspending or moving onto it). Every --credit-tick seconds each connected
 * sandbox that runs a session is charged the whole seconds since its last
 * charge (the rest carries over); one that runs none then is not charged for
 * that interval, so a sandbox that sits idle after its sessions moved back
 * costs nothing. At most CREDITS_CHARGES_MAX sandboxes are looked at a tick,
 * and the next tick starts after the last one looked at. A sandbox that
 * disconnects is charged its last seconds then.
 *
 * At zero: the balance never goes below 0. A sandbox running when it is
 * spent runs on (with a warning in the log); the relay refuses to start a
 * sandbox for the user or to move a session to one until the operator gives
 * more with `baton-relay credits set`, which works while the relay runs.
 */
#define _GNU_SOURCE
#include "relay.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CREDITS_CHARGES_MAX 64	/* sandboxes looked at a tick */
#define CREDITS_SECONDS_MAX ((int64_t)1 << 40)	/* what set accepts */

#define SPENT_WHY "your sandbox credits are spent (0 s left); ask the " \
	"relay's operator for more (`baton-relay credits set`)"

/* Whether c is a sandbox's connection the meter follows. */
static bool metered(const struct conn *c)
{
	return c->role == CONN_MACHINE && c->machine_kind &&
	       !strcmp(c->machine_kind, "sandbox");
}

/*
 * Charges c's user for the time its sandbox ran a session since the last
 * charge: the whole seconds, or at the end (last) the nearest second. A
 * charge the store refuses is tried again at the next tick.
 */
static void charge(struct relay *r, struct conn *c, uint64_t now, bool last)
{
	uint64_t owed_ms = now - c->credit_ms;
	int64_t owed = (int64_t)((last ? owed_ms + 500 : owed_ms) / 1000);
	int64_t left = 0;
	int e;

	if (!relay_machine_busy(r, c->machine_id)) {
		c->credit_ms = now;
		return;
	}
	if (owed == 0)
		return;
	e = store_credits_get(r->store, c->user, &left);
	if (e == 0 && left > 0)
		e = store_credits_add(r->store, c->user, -owed);
	if (e < 0 && e != -ENOENT) {
		log_warn("credits", "cannot charge user %s %" PRId64 " s for "
			 "sandbox %s: %s%s", c->user, owed, c->machine_name,
			 strerror(-e), last ? "" : "; trying again later");
		return;
	}
	c->credit_ms += (uint64_t)owed * 1000;
	if (e == -ENOENT || left == 0)
		return;	/* no limit, or spent already: nothing to take */
	if (left <= owed)
		log_warn("credits", "user %s's sandbox credits are spent "
			 "(sandbox %s ran %" PRId64 " s, %" PRId64 " s were "
			 "left); it runs on, but no sandbox starts and no "
			 "session moves to one until `baton-relay credits "
			 "set` gives more", c->user, c->machine_name, owed,
			 left);
	else
		log_debug("credits", "charged user %s %" PRId64 " s for "
			  "sandbox %s; %" PRId64 " s left", c->user, owed,
			  c->machine_name, left - owed);
}

/*
 * Charges the sandboxes connected now, at most CREDITS_CHARGES_MAX: first
 * those after the cursor (the list runs newest first, ids going down), then
 * from the start, so the ones a full tick left out come first next time.
 */
static void on_credit_tick(uv_timer_t *t)
{
	struct relay *r = t->data;
	uint64_t now = uv_now(r->loop), last = 0;
	unsigned budget = CREDITS_CHARGES_MAX;

	if (r->stopping)
		return;
	for (int pass = 0; pass < 2 && budget; pass++) {
		for (struct conn *c = r->conns; c && budget; c = c->next) {
			if ((c->id < r->credit_cursor) != (pass == 0) ||
			    c->closing || !metered(c))
				continue;
			charge(r, c, now, false);
			last = c->id;
			budget--;
		}
	}
	r->credit_cursor = budget ? UINT64_MAX : last;
}

void credits_start(struct relay *r, unsigned tick_s)
{
	uint64_t ms = (uint64_t)tick_s * 1000;

	r->credit_cursor = UINT64_MAX;
	uv_timer_init(r->loop, &r->credit_tick);
	r->credit_tick.data = r;
	uv_timer_start(&r->credit_tick, on_credit_tick, ms, ms);
}

void credits_stop(struct relay *r)
{
	uv_close((uv_handle_t *)&r->credit_tick, NULL);
}

void credits_on_close(struct relay *r, struct conn *c)
{
	if (metered(c))
		charge(r, c, uv_now(r->loop), true);
}

bool credits_spent(struct relay *r, const char *user, char **why)
{
	int64_t left = 0;
	int e = store_credits_get(r->store, user, &left);

	if (e < 0 && e != -ENOENT)
		log_warn("credits", "cannot read user %s's credits (%s); not "
			 "refusing for that", user, strerror(-e));
	if (e < 0 || left > 0)
		return false;
	*why = xstrdup(SPENT_WHY);
	return true;
}

void credits_handle(struct relay *r, struct conn *c,
		    const struct proto_msg *m)
{
	int64_t left = 0;
	int e = store_credits_get(r->store, c->user, &left);
	cJSON *body;

	if (e < 0 && e != -ENOENT) {
		log_error("credits", "cannot read user %s's credits: %s",
			  c->user, strerror(-e));
		conn_send_error(c, m->id, NULL, PROTO_E_FAILED, "the relay "
				"cannot read your credits; see its log");
		return;
	}
	body = cJSON_CreateObject();
	cJSON_AddBoolToObject(body, "limited", e == 0);
	if (e == 0)
		proto_add_u64(body, "seconds", (uint64_t)left);
	conn_send_owned(c, proto_encode("credits", m->id, NULL, body));
}

/* ---- baton-relay credits set|show ---- */

static const char credits_usage[] =
"usage: baton-relay credits set --data DIR --user NAME --seconds N\n"
"       baton-relay credits show --data DIR [--user NAME]\n"
"\n"
"Sandbox credits: how many seconds of sandbox time a user has left. The\n"
"relay charges a user for the time their sandboxes run their sessions and\n"
"refuses new sandboxes and moves to one when none is left. A user never\n"
"given credits has no limit. Both commands work while the relay runs.\n"
"  set    gives the user N seconds (0 to 2^40), replacing the balance\n"
"  show   the user's balance, or every user that has one\n";

#define credits_usage_error(...) die_usage("baton-relay", __VA_ARGS__)

/* Says that a user name is not one; the usage exit status. */
static int bad_user(const char *user)
{
	fprintf(stderr, "baton-relay: --user needs a name of 1 to 64 of "
		"A-Z a-z 0-9 . _ @ + -, not '%s'\n", user);
	return 2;
}

/* Prints one user's balance, or that they have no limit. */
static void credits_print(const char *user, int e, int64_t left)
{
	char text[32];

	if (e == -ENOENT)
		printf("%s: no limit (no credits set; `baton-relay credits "
		       "set` sets some)\n", user);
	else if (left == 0)
		printf("%s: no sandbox time left (0 s); moves to a sandbox "
		       "are refused\n", user);
	else
		printf("%s: %s of sandbox time left (%" PRId64 " s)\n", user,
		       duration_format(left, text, sizeof(text)), left);
}

/* Parses --seconds: 0 to CREDITS_SECONDS_MAX, digits only. */
static int parse_credit_seconds(const char *text, int64_t *out)
{
	char *end;
	long long n;

	if (text[0] < '0' || text[0] > '9')
		return -EINVAL;
	errno = 0;
	n = strtoll(text, &end, 10);
	if (errno || *end || n > CREDITS_SECONDS_MAX)
		return -EINVAL;
	*out = n;
	return 0;
}

/* credits set: replaces the user's balance. */
static int credits_set(struct store *s, const char *data, const char *user,
		       int64_t seconds)
{
	int e = store_credits_set(s, user, seconds);

	if (e == -EINVAL)
		return bad_user(user);
	if (e < 0) {
		fprintf(stderr, "baton-relay: cannot set the credits of %s in "
			"%s: %s\n", user, data, strerror(-e));
		return 1;
	}
	credits_print(user, 0, seconds);
	return 0;
}

/* credits show: one user's balance, or the table of every row. */
static int credits_show(struct store *s, const char *data, const char *user)
{
	struct store_credits *cs = NULL;
	char left[32], updated[32];
	size_t n = 0;
	int64_t seconds = 0;
	int e;

	if (user) {
		e = store_credits_get(s, user, &seconds);
		if (e == -EINVAL)
			return bad_user(user);
		if (e < 0 && e != -ENOENT)
			goto fail;
		credits_print(user, e, seconds);
		return 0;
	}
	e = store_credits_list(s, &cs, &n);
	if (e < 0)
		goto fail;
	if (n == 0) {
		printf("no user has sandbox credits set: none has a limit\n");
		return 0;
	}
	printf("%-16s  %12s  %-16s  %s\n", "USER", "SECONDS", "LEFT",
	       "UPDATED");
	for (size_t i = 0; i < n; i++) {
		time_t t = (time_t)cs[i].updated;
		struct tm tm;

		if (gmtime_r(&t, &tm) == NULL ||
		    strftime(updated, sizeof(updated), "%Y-%m-%dT%H:%M:%SZ",
			     &tm) == 0)
			snprintf(updated, sizeof(updated), "-");
		printf("%-16s  %12" PRId64 "  %-16s  %s\n", cs[i].user,
		       cs[i].seconds,
		       duration_format(cs[i].seconds, left, sizeof(left)),
		       updated);
	}
	printf("users not listed have no limit\n");
	store_credits_free(cs, n);
	return 0;
fail:
	fprintf(stderr, "baton-relay: cannot read the credits in %s: %s\n",
		data, strerror(-e));
	return 1;
}

int credits_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "user", required_argument, NULL, 'u' },
		{ "seconds", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *data = NULL, *user = NULL, *seconds_text = NULL;
	const char *verb = argc > 1 ? argv[1] : "";
	int64_t seconds = 0;
	struct store *s;
	int c, rc;

	if (!strcmp(verb, "--help") || !strcmp(verb, "-h")) {
		fputs(credits_usage, stdout);
		return 0;
	}
	if (strcmp(verb, "set") && strcmp(verb, "show"))
		credits_usage_error("%s", "credits takes set or show: "
				    "credits set --data DIR --user NAME "
				    "--seconds N, credits show --data DIR "
				    "[--user NAME]");
	while ((c = getopt_long(argc - 1, argv + 1, "h", opts, NULL)) !=
	       -1) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'u': user = optarg; break;
		case 's': seconds_text = optarg; break;
		case 'h': fputs(credits_usage, stdout); return 0;
		default: credits_usage_error("bad option for credits %s",
					     verb);
		}
	}
	if (optind < argc - 1)
		credits_usage_error("unexpected argument '%s' for credits %s",
				    argv[optind + 1], verb);
	if (data == NULL)
		credits_usage_error("credits %s needs --data DIR", verb);
	if (!strcmp(verb, "set") && (user == NULL || seconds_text == NULL))
		credits_usage_error("%s", "credits set needs --user NAME and "
				    "--seconds N");
	if (!strcmp(verb, "show") && seconds_text)
		credits_usage_error("%s", "credits show takes no --seconds; "
				    "use credits set");
	if (seconds_text && parse_credit_seconds(seconds_text, &seconds) < 0)
		credits_usage_error("--seconds takes a whole number of "
				    "seconds from 0 to %" PRId64 ", not '%s'",
				    CREDITS_SECONDS_MAX, seconds_text);

	if ((s = relay_store_open_cli(data)) == NULL)
		return 1;
	if (!strcmp(verb, "set"))
		rc = credits_set(s, data, user, seconds);
	else
		rc = credits_show(s, data, user);
	store_close(s);
	return rc;
}
