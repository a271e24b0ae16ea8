#!/usr/bin/env bash
# test-env.sh: the remote environment of a workspace (case secret-echo).
# `baton env set WORKSPACE NAME` reads the value from stdin; the relay keeps
# it encrypted with relay.key (0600); only the workspace's sandbox gets it,
# sealed to its key, in the setup script's and the agent's environment.
# The value never appears in relay or daemon logs, the relay's data folder,
# stored transcripts, or what clients are sent: a mark stands in for it.
# `baton env list` shows names only; other users and read-only tokens
# cannot touch it.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

SECRET=sk-test-123
REMOTE=https://git.example.invalid/acme/app.git

start_relay
start_laptop alice
READ=$("$RELAY_BIN" token create --data "$RELAY_DATA" --user alice \
  --kind client --scope read)
BOB=$(token bob client)

WT=$T/app
new_repo "$WT"
git -C "$WT" remote add origin "$REMOTE"
mkdir -p "$WT/.baton"
cat >"$WT/.baton/setup" <<'SH'
#!/bin/bash
set -x
echo "setup sees API_TOKEN=$API_TOKEN"
SH
chmod +x "$WT/.baton/setup"
git -C "$WT" add .baton && git -C "$WT" commit -q -m setup

SID=$(baton start --machine laptop --dir "$WT" --agent shell)
wait_for 30 "the session's workspace" \
  sh -c "BATON_RELAY=$RELAY_URL BATON_TOKEN=$CLIENT_TOKEN $CLIENT_BIN \
    --json status $SID | grep -q '\"workspace\"'"

log "env set reads stdin; list shows names only"
rc=0
baton env set "$REMOTE" API_TOKEN "$SECRET" </dev/null >"$T/argv.out" \
  2>&1 || rc=$?
[ $rc -eq 2 ] || fail "env set with the value as an argument: exit $rc"
printf '%s\n' "$SECRET" | baton env set "$REMOTE" API_TOKEN >"$T/set.out"
grep -F "set API_TOKEN" "$T/set.out" >/dev/null || fail "env set said: $(cat "$T/set.out")"
printf 'other\n' | baton env set "$REMOTE" OTHER_VAR >/dev/null
baton env list >"$T/list.out"
grep -F API_TOKEN "$T/list.out" >/dev/null || fail "env list lacks API_TOKEN"
grep -F "$REMOTE" "$T/list.out" >/dev/null || fail "env list lacks the workspace"
baton --json env list "$REMOTE" >"$T/list.json"
! grep -F "$SECRET" "$T/list.out" "$T/list.json" >/dev/null ||
  fail "env list shows the value"
[ "$(stat -c %a "$RELAY_DATA/relay.key")" = 600 ] ||
  fail "relay.key is not 0600"

log "refusals: a read-only token, another user, a bad name, no workspace"
expect_env_rc() {
  local want=$1 what=$2 rc=0
  shift 2
  "$@" >"$T/refused.out" 2>&1 || rc=$?
  [ $rc -eq "$want" ] ||
    fail "$what: exit $rc, not $want: $(cat "$T/refused.out")"
  log "$what: exit $rc: $(tail -n 1 "$T/refused.out" | cut -c1-90)"
}
expect_env_rc 1 "read-only env set" \
  env BATON_RELAY="$RELAY_URL" BATON_TOKEN="$READ" "$CLIENT_BIN" \
  env set "$REMOTE" API_TOKEN <<<"stolen"
# Workspaces are per user: bob naming the same URL sets his own.
expect_env_rc 0 "bob's env set on the same URL" \
  env BATON_RELAY="$RELAY_URL" BATON_TOKEN="$BOB" "$CLIENT_BIN" \
  env set "$REMOTE" BOBS_OWN <<<"bob's"
BATON_RELAY=$RELAY_URL BATON_TOKEN=$BOB "$CLIENT_BIN" env list >"$T/bob.out"
! grep -F API_TOKEN "$T/bob.out" >/dev/null || fail "bob lists alice's names"
grep -F BOBS_OWN "$T/bob.out" >/dev/null || fail "bob's own name is missing"
baton env list "$REMOTE" | grep -F BOBS_OWN >/dev/null &&
  fail "bob's variable landed in alice's workspace"
expect_env_rc 4 "bob's env unset on alice's workspace" \
  env BATON_RELAY="$RELAY_URL" BATON_TOKEN="$BOB" "$CLIENT_BIN" \
  env unset "$REMOTE" API_TOKEN
expect_env_rc 1 "a name that is not a shell name" \
  baton env set "$REMOTE" "1-bad" <<<"x"
expect_env_rc 4 "an unknown workspace id" \
  baton env set 0badc0de-0000-4000-8000-000000000002 API_TOKEN <<<"x"
expect_env_rc 1 "a URL with a password in it" \
  baton env set https://me:pw@git.example.invalid/y.git API_TOKEN <<<"x"
# A repository not used yet: its workspace is made (cloud-only starts
# need their git credentials before the first session).
printf 'cloud\n' | baton env set https://git.example.invalid/acme/new.git \
  GIT_PASSWORD >/dev/null
baton env list | grep -F "acme/new.git" >/dev/null ||
  fail "env set on a new repository URL made no workspace"

log "move to the sandbox: setup and agent get the value, output a mark"
baton --timeout 180 move "$SID" --to sandbox --wait >"$T/move.out" 2>&1 ||
  fail "move to the sandbox: $(tail -n 20 "$T/move.out")"
grep -F "setup sees API_TOKEN=[redacted]" "$T/move.out" >/dev/null ||
  fail "the setup's output does not show the mark: $(grep -i setup "$T/move.out")"
baton send "$SID" 'echo "len=${#API_TOKEN} middle=${API_TOKEN:3:4}"'
wait_output "$SID" "len=11 middle=test" 60
baton send "$SID" 'echo "whole=$API_TOKEN"; echo "in two=sk-te""st-123"'
wait_output "$SID" "whole=[redacted]" 60
wait_output "$SID" "in two=[redacted]" 60
baton tail "$SID" --from 0 >"$T/tail.out"

log "the value is nowhere it should not be"
printf 'changed\n' | baton env set "$REMOTE" OTHER_VAR >/dev/null
baton --timeout 180 move "$SID" --to laptop --wait >>"$T/move.out" 2>&1 ||
  fail "move back: $(tail -n 20 "$T/move.out")"
baton send "$SID" "echo 'laptop says sk-test-123'"
wait_output "$SID" "laptop says [redacted]" 60
baton tail "$SID" --from 0 >>"$T/tail.out"
baton --timeout 60 stop "$SID" >/dev/null
leaks=$(grep -rlaF -- "$SECRET" "$RELAY_DATA" "$T"/*.log "$T"/*.out \
  "$T/state" 2>/dev/null || true)
[ -z "$leaks" ] || fail "the value is in: $leaks"
sandbox_logs=$(find "$RELAY_DATA/sandboxes" -name '*.log' | wc -l)
[ "$sandbox_logs" -gt 0 ] || fail "no sandbox log was searched"
grep -F "took 2 remote environment variable(s)" -r "$RELAY_DATA/sandboxes" \
  >/dev/null || fail "the sandbox did not log taking the environment"

log "unset: gone from the list"
baton env unset "$REMOTE" OTHER_VAR >/dev/null
baton env list "$REMOTE" >"$T/list2.out"
! grep -F OTHER_VAR "$T/list2.out" >/dev/null || fail "OTHER_VAR still listed"
expect_env_rc 4 "unset of a name that is not set" \
  baton env unset "$REMOTE" OTHER_VAR
log "remote environment: sealed, injected, never shown"
