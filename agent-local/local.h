/*
 * local.h: what baton-local's main and its pair command share.
 */
#ifndef BATON_LOCAL_H
#define BATON_LOCAL_H

/* The default state folder: $XDG_STATE_HOME/baton-local or
 * ~/.local/state/baton-local (caller frees). */
char *local_state_dir_default(void);
struct local_conf;

/* `baton-local pair ...` (argv[0] is "pair"), with defaults from CONF;
 * returns the exit status. */
int local_pair(int argc, char **argv, const struct local_conf *conf);

#endif
