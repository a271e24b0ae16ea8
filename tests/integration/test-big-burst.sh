#!/usr/bin/env bash
# Case big-burst: an agent prints 64 MB while another session streams too,
# and one client stops reading. The others get everything, the relay's and
# the daemon's memory stay bounded (the slow client costs only its own
# queue), and nothing arrives twice.
source "$(dirname "$0")/lib.sh"

start_relay
start_laptop bea

WT=$T/repo
new_repo "$WT"
A=$(baton start --machine laptop --dir "$WT" --agent test)
B=$(baton start --machine laptop --dir "$WT" --agent test)
wait_output "$A" "> "
wait_output "$B" "> "

rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
relay0=$(rss "$RELAY_PID")
local0=$(rss "$LOCAL_PID_laptop")

# A client that stops reading: its stdout is a pipe nobody drains.
mkfifo "$T/stall"
sleep 600 <"$T/stall" &
STALL_READER=$!
PIDS+=("$STALL_READER")
baton tail "$A" --follow >"$T/stall" 2>/dev/null &
PIDS+=("$!")
baton tail "$A" --follow >"$T/follow-a.out" 2>&1 &
FOLLOW_A=$!
PIDS+=("$FOLLOW_A")
baton tail "$B" --follow >"$T/follow-b.out" 2>&1 &
PIDS+=("$!")

BURST=67108864
baton send "$A" "burst $BURST"
baton send "$B" "burst 4000000"
peak_relay=0 peak_local=0
done_a() { grep -q "burst done" "$T/follow-a.out"; }
end=$((SECONDS + 240))
until done_a; do
  [ $SECONDS -lt $end ] || fail "the reading client never got A's burst"
  r=$(rss "$RELAY_PID"); l=$(rss "$LOCAL_PID_laptop")
  [ "$r" -gt "$peak_relay" ] && peak_relay=$r
  [ "$l" -gt "$peak_local" ] && peak_local=$l
  sleep 0.2
done
wait_for 120 "B's follower to get its burst" \
  grep -q "burst done" "$T/follow-b.out"

# Every line of A's burst reached the reading client, once, in order.
tr -d '\r' <"$T/follow-a.out" | grep -E '^[0-9]{8} [a-z]+$' |
  awk -v want=$((BURST / 64)) '
    { if ($1 != sprintf("%08d", ((NR - 1) * 64) % 100000000)) {
        print "line " NR " is " $1; bad = 1; exit } }
    END { if (!bad && NR != want) { print NR " lines, not " want; bad = 1 }
          exit bad }' >&2 || fail "A's burst arrived damaged"

grow_relay=$(((peak_relay - relay0) / 1024))
grow_local=$(((peak_local - local0) / 1024))
log "peak growth: relay $grow_relay MiB, laptop daemon $grow_local MiB" \
    "for a $((BURST >> 20)) MiB burst with a stalled client"
if sanitized; then
  log "sanitizer build: memory is not judged (ASan keeps freed memory)"
else
  [ "$grow_relay" -lt 32 ] ||
    fail "the relay grew by $grow_relay MiB: a slow client is not bounded"
  [ "$grow_local" -lt 48 ] ||
    fail "the laptop daemon grew by $grow_local MiB"
fi
echo "big burst: OK"
