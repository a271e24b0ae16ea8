#!/usr/bin/env bash
# memory.sh: benchmark 6 of issue 7, run by bench/run.sh.
#
# Idle RSS of the laptop daemon (registered, no session) and of a sandbox
# daemon (started by a move, idle after the move back), and how much of it
# is the process's own (RssAnon: the rest is pages of shared libraries,
# shared with every other process using them); then the relay's
# RSS with no client and with each count in CONNS of idle clients
# (authenticated, nothing attached), held by bench-idle. The relay's
# per-user and rate limits are lifted for this (--max-conns-per-user 0,
# --conn-rate 0, --hello-rate 0), and the fd limit raised.
#
# Appends "KEY VALUE" lines to $RESULTS.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
: "${RESULTS:?}" "${CONNS:?}"

put() { echo "$*" >>"$RESULTS"; }

max=0
for n in $CONNS; do [ "$n" -gt "$max" ] && max=$n; done
need=$((max + 1000))
if [ "$(ulimit -n)" -lt "$need" ]; then
  ulimit -n "$need" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi
[ "$(ulimit -n)" -ge "$need" ] ||
  bfail "the fd limit is $(ulimit -n) (hard $(ulimit -Hn)); $need needed"

start_relay --conn-rate 0 --hello-rate 0 --max-conns-per-user 0
start_laptop bench
sleep 2
put "rss.local_idle_kb $(rss_kb "$LOCAL_PID")"
put "rss.local_idle_anon_kb $(anon_kb "$LOCAL_PID")"

blog "an idle sandbox: a move there and back"
new_repo_dir=$W/small
mkdir -p "$new_repo_dir"
printf 'small\n' >"$new_repo_dir/a.txt"
git init -q -b main "$new_repo_dir"
git -C "$new_repo_dir" add -A
git -C "$new_repo_dir" commit -q -m small
SID=$(baton start --machine laptop --dir "$new_repo_dir" --agent test)
wait_for 30 "the session" session_on "$SID" local
baton move "$SID" --to sandbox --wait >/dev/null 2>&1 || bfail "move failed"
baton move "$SID" --to laptop --wait >/dev/null 2>&1 || bfail "move back failed"
baton stop "$SID" >/dev/null
sleep 2
for pid in $(pgrep -P "$RELAY_PID" -x baton-sandbox); do
  put "rss.sandbox_idle_kb $(rss_kb "$pid")"
  put "rss.sandbox_idle_anon_kb $(anon_kb "$pid")"
done
put "rss.local_idle_after_move_kb $(rss_kb "$LOCAL_PID")"

blog "relay memory with idle clients: $CONNS"
put "rss.relay.0 $(rss_kb "$RELAY_PID")"
coproc IDLE { "$BIN/bench/bench-idle" "${RELAY_URL##*:}" "$CLIENT_TOKEN" \
  2>>"$W/idle.log"; }
IDLE_PID_=$IDLE_PID
BENCH_PIDS+=("$IDLE_PID_")
for n in $CONNS; do
  echo "$n" >&"${IDLE[1]}"
  read -r -t 300 line <&"${IDLE[0]}" || bfail "bench-idle did not open $n"
  [ "$line" = "ready $n" ] || bfail "bench-idle said: $line"
  sleep 1
  put "rss.relay.$n $(rss_kb "$RELAY_PID")"
done
eval "exec ${IDLE[1]}>&-"
wait "$IDLE_PID_" || bfail "bench-idle failed"
