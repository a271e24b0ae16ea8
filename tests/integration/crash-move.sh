#!/usr/bin/env bash
# crash-move.sh POINT: one row of the crash matrix. A session moves from
# the laptop to a sandbox, and the process named by POINT (source:*,
# relay:* or target:*, see proto/PROTOCOL.md) is killed with SIGKILL at
# that step. It is restarted (the relay restarts sandboxes itself), and
# then the session must run on exactly one side, in a worktree equal to
# its checkpoint, with nothing deleted on the laptop and a transcript and
# conversation without gaps or doubles.
source "$(dirname "$0")/lib.sh"
POINT=${1:?usage: crash-move.sh POINT}
WHO=${POINT%%:*}
export BATON_CRASH_ONCE=$T/crashed

if [ "$WHO" = relay ] || [ "$WHO" = target ]; then
  BATON_CRASH_AT=$POINT start_relay
else
  start_relay
fi
CLIENT_TOKEN=$(token mo client)
MACHINE_TOKEN=$(token mo machine)
write_agents
if [ "$WHO" = source ]; then
  BATON_CRASH_AT=$POINT start_local laptop "$MACHINE_TOKEN"
else
  start_local laptop "$MACHINE_TOKEN"
fi
wait_for 30 "the laptop to register" machine_online laptop

WT=$T/repo
new_repo "$WT"
printf 'edit\n' >>"$WT/base.txt"
mkdir -p "$WT/new" && printf 'untracked\n' >"$WT/new/u.txt"
before=$(fingerprint "$WT")

SID=$(baton start --machine laptop --dir "$WT" --agent test)
wait_output "$SID" "> "
baton send "$SID" "remember one"
wait_output "$SID" "noted: one"
baton send "$SID" "remember two"
wait_output "$SID" "noted: two"

baton --timeout 60 move "$SID" --to sandbox --wait >"$T/move.out" 2>&1 ||
  log "the move did not finish (expected for most crash points)"
wait_for 60 "the crash at $POINT" test -e "$T/crashed"
log "crashed at $POINT"

case $WHO in
  source)
    pid=$LOCAL_PID_laptop
    wait_for 30 "the laptop daemon to die" sh -c "! kill -0 $pid"
    start_local laptop "$MACHINE_TOKEN" ;;
  relay)
    wait_for 30 "the relay to die" sh -c "! kill -0 $RELAY_PID"
    start_relay ;;
  target) ;;	# the relay replaces a sandbox that died
esac

running() {
  [ "$(json_field "$(baton --json status "$SID")" state)" = running ]
}
wait_for 90 "the session to run again" running
status=$(baton --json status "$SID")
where=$(json_field "$status" worktree)
log "after $POINT the session runs on $(json_field "$status" kind)" \
    "in $where"

# Exactly one agent runs it.
agents() { pgrep -fc -- "baton-test-agent --session $SID" || true; }
[ "$(agents)" -eq 1 ] || fail "$(agents) agents run session $SID"

# Its worktree is the checkpoint's state; the laptop lost nothing.
diff <(echo "$before") <(fingerprint "$where") ||
  fail "the worktree it runs in differs from its checkpoint"
diff <(echo "$before") <(fingerprint "$WT") ||
  fail "the laptop's worktree changed"

# The conversation and the transcript: every turn, once.
baton send "$SID" "recall"
wait_output "$SID" "end of recall" 60
transcript "$SID" | tr -d '\r' >"$T/out.txt"
for line in "noted: one" "noted: two" "turn 1: remember one" \
            "turn 2: remember two"; do
  n=$(grep -cx -- "$line" "$T/out.txt" || true)
  [ "$n" -eq 1 ] || fail "'$line' appears $n times in the transcript"
done
echo "crash at $POINT: OK"
