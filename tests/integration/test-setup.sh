#!/usr/bin/env bash
# test-setup.sh: the sandbox's setup script (case setup-fails, and more).
# A pipeline whose first command fails ends in start_error, a script that
# never exits in start_timeout (after --setup-timeout), each with its log
# kept and the session back on the laptop; a script that reads stdin does
# not wait (stdin is closed). Variables the script writes to $BATON_ENV
# reach the agent. A script set in the workspace's settings runs instead
# of the repository's .baton/setup, and a changed script runs again.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

REMOTE=https://git.example.invalid/acme/setup.git
RELAY_ARGS=(--setup-timeout 3)
start_relay
start_laptop dana

WT=$T/setup
new_repo "$WT"
git -C "$WT" remote add origin "$REMOTE"
mkdir -p "$WT/.baton"
SID=$(baton start --machine laptop --dir "$WT" --agent shell)
wait_for 30 "the session to run" session_on "$SID" local

# set_setup TEXT: the repository's .baton/setup, committed.
set_setup() {
  printf '#!/bin/bash\n%s\n' "$1" >"$WT/.baton/setup"
  chmod +x "$WT/.baton/setup"
  git -C "$WT" add .baton/setup && git -C "$WT" commit -q -m setup
}
# move_fails NAME WANT: a move to the sandbox fails with WANT.
move_fails() {
  local rc=0
  baton --timeout 120 move "$SID" --to sandbox --wait >"$T/$1.out" 2>&1 ||
    rc=$?
  [ $rc -ne 0 ] || fail "$1: the move succeeded: $(cat "$T/$1.out")"
  grep -F "$2" "$T/$1.out" >/dev/null ||
    fail "$1: the client was not told $2: $(cat "$T/$1.out")"
  wait_for 60 "$1: the session back on the laptop" session_on "$SID" local
  log "$1: $(grep -F "$2" "$T/$1.out" | head -n 1 | cut -c1-110)"
}
# setup_log: the sandbox's kept setup log(s).
setup_log() { cat "$RELAY_DATA"/sandboxes/*/home/.baton-sandbox/setup-*.log; }

log "a pipeline whose first command fails: start_error, log kept"
set_setup 'echo "step one"
false | cat
echo "not reached"'
move_fails pipeline start_error
grep -F "step one" "$T/pipeline.out" >/dev/null ||
  fail "the setup's output did not reach the client"
setup_log | grep -F "setup finished with status 1" >/dev/null ||
  fail "the setup log was not kept: $(setup_log)"
! setup_log | grep -F "not reached" >/dev/null ||
  fail "the script went on after its pipeline failed"

log "a script that never exits: start_timeout after 3 s, log kept"
set_setup 'echo "about to hang"
sleep 600'
start=$SECONDS
move_fails hang start_timeout
[ $((SECONDS - start)) -lt 60 ] || fail "the time limit did not stop it"
setup_log | grep -F "(timed out)" >/dev/null ||
  fail "the kept log does not say it timed out: $(setup_log)"

log "a script that reads stdin does not wait; \$BATON_ENV reaches the agent"
set_setup 'read -r line || true; echo "stdin gave [${line}]"
cat >/dev/null
echo "GREETING=hello from setup" >>"$BATON_ENV"
echo "not a variable line" >>"$BATON_ENV"'
baton --timeout 120 move "$SID" --to sandbox --wait >"$T/stdin.out" 2>&1 ||
  fail "the move failed: $(cat "$T/stdin.out")"
grep -F "stdin gave []" "$T/stdin.out" >/dev/null ||
  fail "the script did not get a closed stdin: $(cat "$T/stdin.out")"
# shellcheck disable=SC2016 # expanded by the sandbox's shell
baton send "$SID" 'echo "agent sees [$GREETING]"'
wait_output "$SID" "agent sees [hello from setup]" 60
baton --timeout 120 move "$SID" --to laptop --wait >/dev/null

log "the workspace's own script wins over .baton/setup, and runs again"
printf '#!/bin/bash\necho "from the workspace settings"\n' >"$T/ws-setup"
baton workspace setup "$REMOTE" "$T/ws-setup" >/dev/null
baton --timeout 120 move "$SID" --to sandbox --wait >"$T/ws.out" 2>&1 ||
  fail "the move failed: $(cat "$T/ws.out")"
grep -F "from the workspace settings" "$T/ws.out" >/dev/null ||
  fail "the workspace's script did not run: $(cat "$T/ws.out")"
! grep -F "stdin gave" "$T/ws.out" >/dev/null ||
  fail "the repository's script ran too"
baton --timeout 120 move "$SID" --to laptop --wait >/dev/null
baton workspace clear-setup "$REMOTE" >/dev/null
rc=0
baton workspace setup "$REMOTE" "$T/missing" >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "a missing script file: exit $rc, not 2"
log "setup: failures kept and reported, stdin closed, BATON_ENV, settings"
