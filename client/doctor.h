/*
 * doctor.h: `baton doctor`, the readiness check. It answers "why is the
 * sandbox unavailable?" for a repository on this machine: first what the
 * repository shows (its remote, .baton/setup, files git ignores, MCP
 * servers and paths tied to this laptop), then what the relay knows about
 * its workspace (the remote environment, sync) and the user (sandbox
 * credits). Each item is ok, warn,
 * FAIL or skip, and each problem says how to fix it. Variables are named,
 * never their values.
 */
#ifndef BATON_DOCTOR_H
#define BATON_DOCTOR_H

#include <cjson/cJSON.h>
#include <stdbool.h>

struct doctor;

/*
 * Checks the repository that holds dir (absolute). A problem found is an
 * item of the report, not an error. Free the result with doctor_free.
 */
struct doctor *doctor_new(const char *dir);
void doctor_free(struct doctor *d);

/*
 * The workspace key to ask the relay about, or NULL when there is nothing
 * to ask: no repository, or no remote (both are FAILs in the report).
 */
const char *doctor_workspace(const struct doctor *d);

/* The relay's env.list answer for the workspace: its vars array, or NULL
 * when the relay knows no such workspace. */
void doctor_env(struct doctor *d, const cJSON *vars);
/* The relay's sessions.list answer. */
void doctor_sessions(struct doctor *d, const cJSON *sessions);
/* The relay's credits.get answer, or NULL from a relay without credits. */
void doctor_credits(struct doctor *d, const cJSON *body);
/* Whether all three answers are in. */
bool doctor_answered(const struct doctor *d);

/*
 * Prints the checklist on stdout, as lines or as JSON. relay_code is how
 * the talk with the relay ended: 0, or the exit code of the error the
 * client already reported. Returns the exit code: 1 when a check FAILs,
 * else relay_code.
 */
int doctor_report(struct doctor *d, bool json, int relay_code);

#endif
