#!/usr/bin/env bash
# Acknowledged delivery: the relay is killed while an agent is printing.
# The session keeps running, its output waits in the laptop's outbox
# (spilling to disk past the memory limit), and after the relay comes back
# the transcript holds every byte once, in order.
source "$(dirname "$0")/lib.sh"

start_relay
start_laptop dana

WT=$T/repo
git init -q -b main "$WT"
# Ticks over two seconds, then 20 MB of Z while the relay is away (more
# than the 8 MiB the outbox keeps in memory), then a marker file.
cat >"$WT/print.sh" <<'SH'
for i in $(seq 1 40); do echo "tick-$i"; sleep 0.05; done
while [ ! -e go ]; do sleep 0.05; done
head -c 20000000 /dev/zero | tr '\0' Z | fold -w 100
echo; echo "finished-marker"
touch finished
SH
git -C "$WT" add print.sh && git -C "$WT" commit -q -m print
SID=$(baton start --machine laptop --dir "$WT" --agent shell)
baton send "$SID" "bash print.sh"
wait_output "$SID" "tick-5"

kill -KILL "$RELAY_PID"
wait "$RELAY_PID" 2>/dev/null || true
touch "$WT/go"
wait_for 120 "the agent to finish while the relay is away" \
  test -e "$WT/finished"
spill=$T/state-laptop/output.spill
[ -s "$spill" ] || fail "the outbox did not spill to disk past its memory"
log "the agent finished with the relay away; $(stat -c %s "$spill") bytes" \
    "waited on disk"

start_relay
wait_for 60 "the laptop to come back" machine_online laptop
wait_output "$SID" "finished-marker" 120

# Without the shell's carriage returns and terminal escapes.
transcript "$SID" | tr -d '\r' | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' \
  >"$T/out.txt"
for i in $(seq 1 40); do
  n=$(grep -cx "tick-$i" "$T/out.txt" || true)
  [ "$n" -eq 1 ] || fail "tick-$i appears $n times"
done
grep -x 'tick-[0-9]*' "$T/out.txt" | sed 's/tick-//' | sort -nc ||
  fail "the ticks are out of order"
z=$(grep -x 'Z*' "$T/out.txt" | tr -d '\n' | wc -c)
[ "$z" -eq 20000000 ] || fail "$z bytes of Z arrived, not 20000000"
[ ! -s "$spill" ] || fail "the outbox kept its spill after every ack"
echo "delivery: every byte once, in order, across a relay crash"
