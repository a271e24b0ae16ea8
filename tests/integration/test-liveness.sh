#!/usr/bin/env bash
# Case quiet-agent, with time scaled down: pings every second, a peer
# silent for 3 s is dead. A silent agent keeps every link up; a frozen
# relay or daemon is noticed and reconnected; after a relay restart the
# daemon and a following client carry on with nothing lost or doubled.
source "$(dirname "$0")/lib.sh"
export BATON_PING_INTERVAL=1 BATON_DEAD_AFTER=3

start_relay
start_laptop quinn

WT=$T/repo
new_repo "$WT"
SID=$(baton start --machine laptop --dir "$WT" --agent test)
wait_output "$SID" "> "
baton tail "$SID" --follow >"$T/follow.out" 2>"$T/follow.err" &
FOLLOW=$!
PIDS+=("$FOLLOW")

# 1. Ten seconds of silence: more than three dead-peer timeouts.
sleep 10
grep -q "went offline" "$T/relay.log" &&
  fail "the relay dropped the silent laptop"
grep -q "lost the relay" "$T/local-laptop.log" &&
  fail "the laptop dropped a silent relay"
kill -0 "$FOLLOW" || fail "the following client gave up during the silence"
baton send "$SID" "remember after the silence"
wait_output "$SID" "noted: after the silence"

# 2. A frozen relay is dead for the daemon, which reconnects after.
kill -STOP "$RELAY_PID"
lost() { grep -q "lost the relay" "$T/local-laptop.log"; }
wait_for 30 "the laptop to notice the frozen relay" lost
kill -CONT "$RELAY_PID"
registered() {
  [ "$(grep -c 'registered with the relay' "$T/local-laptop.log")" -ge 2 ]
}
wait_for 60 "the laptop to register again" registered

# 3. A frozen daemon is dead for the relay.
kill -STOP "$LOCAL_PID_laptop"
offline() { grep -q "machine laptop went offline" "$T/relay.log"; }
wait_for 30 "the relay to notice the frozen laptop" offline
kill -CONT "$LOCAL_PID_laptop"
wait_for 60 "the laptop to come back" machine_online laptop

# 4. The relay restarts mid-session; everyone reconnects by themselves.
stop_relay
start_relay
wait_for 60 "the laptop to come back after the restart" machine_online laptop
baton send "$SID" "remember after the restart"
wait_output "$SID" "noted: after the restart"
baton send "$SID" "recall"
wait_output "$SID" "end of recall"
caught_up() { grep -q "end of recall" "$T/follow.out"; }
wait_for 60 "the following client to see the latest output" caught_up
kill -0 "$FOLLOW" || fail "the following client stopped: $(cat "$T/follow.err")"

# Nothing lost, nothing shown twice: the follower saw the transcript.
transcript "$SID" >"$T/full.out"
cmp "$T/follow.out" "$T/full.out" ||
  fail "the following client's output differs from the transcript"
for answer in "noted: after the silence" "noted: after the restart"; do
  [ "$(grep -c "$answer" "$T/full.out")" -eq 1 ] ||
    fail "'$answer' is missing or doubled"
done
echo "liveness: OK"
