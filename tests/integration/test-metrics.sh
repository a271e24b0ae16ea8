#!/usr/bin/env bash
# test-metrics.sh: the relay's /healthz, /readyz and /metrics on its own
# port (plain HTTP beside the WebSockets). The metrics count connections by
# role, sessions by state, moves started, finished and failed with a
# duration histogram, bytes relayed, and the store's size on disk.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

# http PATH: the relay's answer to GET PATH, headers and body.
http() {
  exec 3<>"/dev/tcp/127.0.0.1/$RELAY_PORT"
  printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' \
    "$1" >&3
  tr -d '\r' <&3
  exec 3<&-
}
# metric NAME: its value in the last /metrics answer.
metric() {
  grep -F "$1 " "$T/metrics" | grep -v '^#' | head -n 1 | awk '{print $NF}'
}

start_relay
start_laptop mia
http /healthz >"$T/healthz"
head -n 1 "$T/healthz" | grep -F "200" >/dev/null &&
  tail -n 1 "$T/healthz" | grep -Fx ok >/dev/null ||
  fail "/healthz: $(cat "$T/healthz")"
http /readyz >"$T/readyz"
head -n 1 "$T/readyz" | grep -F "200" >/dev/null &&
  grep -Fx ready "$T/readyz" >/dev/null || fail "/readyz: $(cat "$T/readyz")"

WT=$T/repo
new_repo "$WT"
SID=$(baton start --machine laptop --dir "$WT" --agent test)
wait_output "$SID" "> " 30
baton send "$SID" "remember the metrics"
wait_output "$SID" "noted: the metrics" 30
baton --timeout 120 move "$SID" --to sandbox --wait >/dev/null
baton --timeout 120 move "$SID" --to laptop --wait >/dev/null
baton tail "$SID" --follow >/dev/null 2>&1 &
PIDS+=("$!")
# follower_counted: /metrics shows the follower's connection.
follower_counted() {
  http /metrics | grep -q 'baton_connections{role="client"} [1-9]'
}
wait_for 30 "the follower to connect" follower_counted

http /metrics >"$T/metrics"
head -n 1 "$T/metrics" | grep -F "200" >/dev/null ||
  fail "/metrics: $(head -n 5 "$T/metrics")"
grep -F "Content-Type: text/plain; version=0.0.4" "$T/metrics" >/dev/null ||
  grep -Fi "content-type: text/plain; version=0.0.4" "$T/metrics" >/dev/null ||
  fail "/metrics is not in the Prometheus text format"
check() {
  local name=$1 test=$2 want=$3 got
  got=$(metric "$name")
  [ -n "$got" ] || fail "/metrics has no $name"
  awk -v g="$got" -v w="$want" "BEGIN { exit !(g $test w) }" ||
    fail "$name is $got, not $test $want"
}
check 'baton_connections{role="machine"}' "==" 2   # laptop, sandbox
check 'baton_connections{role="client"}' ">=" 1
check 'baton_sessions{state="running"}' "==" 1
check 'baton_moves_total{result="started"}' "==" 2
check 'baton_moves_total{result="finished"}' "==" 2
check 'baton_moves_total{result="failed"}' "==" 0
check 'baton_move_duration_seconds_count' "==" 2
check 'baton_move_duration_seconds_bucket{le="+Inf"}' "==" 2
check 'baton_relayed_bytes_total' ">" 0
check 'baton_store_bytes{kind="transcripts"}' ">" 0
check 'baton_store_bytes{kind="objects"}' ">" 0
log "metrics: $(grep -c '^baton_' "$T/metrics") series"

log "a failed move counts as failed"
printf '#!/bin/sh\nexit 3\n' >"$T/broken-sandbox"
chmod +x "$T/broken-sandbox"
stop_relay
SANDBOX_BIN=$T/broken-sandbox start_relay
wait_for 30 "the laptop to come back" machine_online laptop
rc=0
baton --timeout 60 move "$SID" --to sandbox --wait >/dev/null 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "the move with a broken sandbox succeeded"
http /metrics >"$T/metrics"
check 'baton_moves_total{result="started"}' "==" 1
check 'baton_moves_total{result="failed"}' "==" 1
check 'baton_moves_total{result="finished"}' "==" 0
log "health and metrics: OK"
