#!/usr/bin/env bash
# Case resend: a client sends an input with its id, loses the connection,
# reconnects and sends the same input again, a hundred times (the relay is
# even restarted half-way). The input is stored once, delivered to the
# agent once, and shown to other clients once.
source "$(dirname "$0")/lib.sh"
POKE=$BATON_BIN/tests/ws-poke

start_relay
start_laptop rae

WT=$T/repo
new_repo "$WT"
SID=$(baton start --machine laptop --dir "$WT" --agent test)
wait_output "$SID" "> "
baton tail "$SID" --follow >"$T/watcher.out" 2>&1 &
PIDS+=("$!")

# One input frame: header (version 1, kind 2 = input, no flags, epoch 0,
# the session's 16 bytes, the client's id 4242), then the keystrokes.
hex() { od -An -tx1 -v | tr -d ' \n'; }
frame="0102000000000000${SID//-/}0000000000001092$(printf 'remember sent once\r' | hex)"
send_once() {
  printf 'text {"type":"hello","id":"h","body":{"version":1,"role":"client","token":"%s"}}\nuntil 10000 welcome\nbinhex %s\ntext {"type":"session.status","id":"s","session":"%s"}\nuntil 10000 "s"\nclose\n' \
    "$CLIENT_TOKEN" "$frame" "$SID" |
    "$POKE" "$RELAY_PORT" >>"$T/poke.log" 2>&1
}
for i in $(seq 1 100); do
  send_once || fail "ws-poke failed on try $i"
  if [ "$i" -eq 50 ]; then
    stop_relay
    start_relay
    wait_for 60 "the laptop to come back" machine_online laptop
  fi
done
wait_output "$SID" "noted: sent once"

# Once in the transcript, once for the watcher, once in the conversation.
baton send "$SID" "recall"
wait_output "$SID" "end of recall"
n=$(transcript "$SID" | grep -c "noted: sent once" || true)
[ "$n" -eq 1 ] || fail "the answer is in the transcript $n times"
wait_for 30 "the watcher to see the recall" grep -q "end of recall" \
  "$T/watcher.out"
n=$(grep -c "noted: sent once" "$T/watcher.out" || true)
[ "$n" -eq 1 ] || fail "the watcher saw the answer $n times"
conv=$(find "$T/home-laptop/.baton-test-agent" -name "$SID.jsonl")
n=$(grep -c '"text":"remember sent once"' "$conv" || true)
[ "$n" -eq 1 ] || fail "the agent recorded the input $n times"
echo "resend: applied once out of 100 sends"
