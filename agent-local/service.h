/*
 * service.h: baton-local as a service of the user's login: the systemd
 * user unit (or launchd agent) that keeps it running, the commands that
 * install and remove it, and the state file through which
 * `baton-local status` sees the daemon.
 */
#ifndef BATON_LOCAL_SERVICE_H
#define BATON_LOCAL_SERVICE_H

#include "config.h"

/*
 * `baton-local install-service`, `uninstall-service` and `status`
 * (argv[0] is the command's name). CONF is local.conf as read from
 * CONF_PATH. Each returns the exit status.
 */
int local_install_service(int argc, char **argv,
			  const struct local_conf *conf,
			  const char *conf_path);
int local_uninstall_service(int argc, char **argv);
int local_status(int argc, char **argv, const struct local_conf *conf,
		 const char *conf_path);

/* The relay this laptop was paired with (machine.json in STATE_DIR), or
 * NULL (caller frees). */
char *local_paired_relay(const char *state_dir);
/* The name it was paired with on RELAY, or NULL (caller frees). */
char *local_paired_name(const char *state_dir, const char *relay);

/*
 * The running daemon's record (local.state in its state folder: its pid,
 * relay, name, when it started and when it last connected), for
 * `baton-local status`. local_state_save writes it, with the time now as
 * the last connection when CONNECTED. A file that cannot be written is
 * logged once, never fatal.
 */
struct local_state;

struct local_state *local_state_new(const char *state_dir, const char *relay,
				    const char *name);
void local_state_save(struct local_state *st, bool connected);
void local_state_free(struct local_state *st);

#endif
