#!/usr/bin/env bash
# stream.sh: benchmarks 4 and 5 of issue 7, run by bench/run.sh.
#
# Keystroke echo: bench-echo times one-byte round trips from a client
# through the relay to the laptop daemon, the PTY and `cat` on a raw
# terminal, and back; beside it the same loop against bench-echo's bare
# WebSocket echo server (same library, same loop, same frames). Runs
# alternate, ECHO_RUNS of each, ECHO_COUNT round trips a run.
#
# Fan-out: bench-fanout attaches 1 or 50 readers to a session whose agent
# writes BYTES on request, with and without one client that stops reading
# (runs alternate, FAN_RUNS of each); beside it, the same agent's output
# read straight from a PTY, the ceiling the terminal sets.
#
# Appends "KEY VALUE" lines to $RESULTS.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
: "${RESULTS:?}" "${ECHO_RUNS:?}" "${ECHO_COUNT:?}" "${FAN_RUNS:?}"
: "${FAN_BYTES_1:?}" "${FAN_BYTES_50:?}"

put() { echo "$*" >>"$RESULTS"; }

# field LINE NAME: the number after NAME in a tool's output line.
field() { awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }' <<<"$1"; }

big=$FAN_BYTES_1
[ "$FAN_BYTES_50" -gt "$big" ] && big=$FAN_BYTES_50
head -c "$big" /dev/zero | tr '\0' x >"$W/flood.dat"
start_relay
start_laptop bench
PORT=${RELAY_URL##*:}
mkdir -p "$W/scratch"
git init -q "$W/scratch"

blog "keystroke echo: $ECHO_RUNS x $ECHO_COUNT round trips each way"
"$BIN/bench/bench-echo" server "$W/echo.port" 2>>"$W/echo.log" &
ECHO_PID=$!
BENCH_PIDS+=("$ECHO_PID")
wait_for 10 "the echo server" test -s "$W/echo.port"
SID=$(baton start --machine laptop --dir "$W/scratch" --agent echo)
wait_for 30 "the echo session" session_on "$SID" local
for ((run = 1; run <= ECHO_RUNS; run++)); do
  r=$("$BIN/bench/bench-echo" relay "$PORT" "$CLIENT_TOKEN" "$SID" \
    "$ECHO_COUNT") || bfail "bench-echo relay failed"
  d=$("$BIN/bench/bench-echo" direct "$(cat "$W/echo.port")" \
    "$ECHO_COUNT") || bfail "bench-echo direct failed"
  for k in p50 p90 p99 p999; do
    put "echo.relay.$k $(field "$r" $k)"
    put "echo.direct.$k $(field "$d" $k)"
  done
  put "echo.ratio.p50 $(awk -v a="$(field "$r" p50)" -v b="$(field "$d" p50)" \
    'BEGIN { printf "%.2f", a / b }')"
  put "echo.ratio.p99 $(awk -v a="$(field "$r" p99)" -v b="$(field "$d" p99)" \
    'BEGIN { printf "%.2f", a / b }')"
done
baton stop "$SID" >/dev/null

blog "fan-out: $FAN_RUNS runs of 1 and 50 readers, with and without a stall"
SID=$(baton start --machine laptop --dir "$W/scratch" --agent flood)
wait_for 30 "the flood session" session_on "$SID" local
fan() {	# fan KEY READERS BYTES STALLED
  local out
  out=$("$BIN/bench/bench-fanout" "$PORT" "$CLIENT_TOKEN" "$SID" "$2" "$3" \
    "$4") || bfail "bench-fanout $2 readers failed"
  put "$1.median $(field "$out" median)"
  put "$1.min $(field "$out" min)"
  put "$1.aggregate $(field "$out" aggregate)"
  put "$1.first_ms $(field "$out" first_ms)"
}
for ((run = 1; run <= FAN_RUNS; run++)); do
  out=$("$BIN/bench/bench-fanout" --pty "$W/flood.dat" "$FAN_BYTES_1") ||
    bfail "bench-fanout --pty failed"
  put "fan.pty.median $(field "$out" median)"
  fan fan.1 1 "$FAN_BYTES_1" 0
  fan fan.1.stalled 1 "$FAN_BYTES_1" 1
  fan fan.50 50 "$FAN_BYTES_50" 0
  fan fan.50.stalled 50 "$FAN_BYTES_50" 1
done
put "rss.relay_after_fanout_kb $(rss_kb "$RELAY_PID")"
put "rss.local_after_fanout_kb $(rss_kb "$LOCAL_PID")"
baton stop "$SID" >/dev/null
