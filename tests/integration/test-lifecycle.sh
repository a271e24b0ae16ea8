#!/usr/bin/env bash
# test-lifecycle.sh: a sandbox's states, as `baton machines` and `baton
# status` show them: starting, restoring, setup (while its script runs),
# ready; start_error when the setup fails; and an idle sandbox (no session
# for --sandbox-idle) is told to stop: stopping, then off, its process gone.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

RELAY_ARGS=(--sandbox-idle 2)
start_relay
start_laptop erin

WT=$T/life
new_repo "$WT"
mkdir -p "$WT/.baton"
# The script waits for a go-ahead file, so the test can see "setup".
printf '#!/bin/bash\necho "setting up"\nwhile [ ! -e %s ]; do sleep 0.1; done\n' \
  "$T/go" >"$WT/.baton/setup"
chmod +x "$WT/.baton/setup"
git -C "$WT" add .baton && git -C "$WT" commit -q -m setup
SID=$(baton start --machine laptop --dir "$WT" --agent test)
wait_output "$SID" "> " 30

# sandbox_state: the state `baton machines` shows for the sandbox.
sandbox_state() {
  { baton --json machines | flat; echo; } |
    sed -n 's/.*"name":"sandbox-[^"]*","kind":"sandbox","state":"\([a-z_]*\)".*/\1/p'
}
states=$T/states
: >"$states"
( while :; do sandbox_state >>"$states" 2>/dev/null; sleep 0.1; done ) &
PIDS+=("$!")

baton --timeout 120 move "$SID" --to sandbox --wait >"$T/move.out" 2>&1 &
MOVE=$!
wait_for 60 "the sandbox to run its setup" grep -qx setup "$states"
baton status "$SID" >"$T/status.out" || true
touch "$T/go"
wait "$MOVE" || fail "the move failed: $(cat "$T/move.out")"
wait_for 30 "the sandbox to be ready" grep -qx ready "$states"
uniq "$states" | tr '\n' ' ' >"$T/seen"
for s in setup ready; do
  grep -qw "$s" "$T/seen" || fail "the sandbox was never seen $s: $(cat "$T/seen")"
done
log "states seen: $(cat "$T/seen")"
baton status "$SID" | grep -E '^on it +ready$' >/dev/null ||
  fail "status does not show the sandbox's state: $(baton status "$SID")"

log "back to the laptop: the idle sandbox is stopped"
baton --timeout 120 move "$SID" --to laptop --wait >/dev/null
wait_for 60 "the idle sandbox to stop" sh -c "grep -qx off '$states'"
grep -qx stopping "$states" || log "(stopping passed faster than the poll)"
grep -q "has run no session for 2 s; stopping it" "$T/relay.log" ||
  fail "the relay did not say why it stopped the sandbox"
! pgrep -f "^$SANDBOX_BIN\$" -P "$RELAY_PID" >/dev/null ||
  fail "the idle sandbox still runs"

log "a failing setup: start_error"
printf '#!/bin/bash\nexit 3\n' >"$WT/.baton/setup"
git -C "$WT" add .baton && git -C "$WT" commit -q -m fail
if baton --timeout 120 move "$SID" --to sandbox --wait >"$T/fail.out" 2>&1; then
  fail "the move succeeded with a failing setup"
fi
wait_for 30 "the sandbox to show start_error" grep -qx start_error "$states"
wait_for 60 "the session back on the laptop" session_on "$SID" local

log "an idle session on a sandbox is parked and its sandbox stopped"
printf '#!/bin/bash\necho ok\n' >"$WT/.baton/setup"
git -C "$WT" add .baton && git -C "$WT" commit -q -m ok
baton --timeout 120 move "$SID" --to sandbox --wait >/dev/null
baton send "$SID" "remember the plan before the nap"
wait_output "$SID" "noted: the plan before the nap" 30
: >"$states"
wait_for 60 "the idle session to be parked" \
  sh -c "BATON_RELAY=$RELAY_URL BATON_TOKEN=$CLIENT_TOKEN $CLIENT_BIN \
    status $SID | grep -Eq '^state +parked$'"
wait_for 60 "its sandbox to stop" grep -qx off "$states"
rc=0
baton send "$SID" "are you there" >"$T/parked.out" 2>&1 || rc=$?
[ $rc -eq 5 ] && grep -F "parked" "$T/parked.out" >/dev/null ||
  fail "input to a parked session: exit $rc: $(cat "$T/parked.out")"
baton --timeout 120 move "$SID" --to sandbox --wait >"$T/unpark.out" 2>&1 ||
  fail "the parked session did not move: $(cat "$T/unpark.out")"
grep -F "parked: resuming from checkpoint" "$T/unpark.out" >/dev/null ||
  fail "the move did not say it resumed a parked session"
baton send "$SID" "recall"
wait_output "$SID" "remember the plan before the nap" 60
log "lifecycle: setup, ready, stopping/off when idle, start_error, parked"
