# lib.sh: helpers for the benchmark scripts. Sourced, not run.
#
# Starts the real programs on 127.0.0.1, on ports they pick themselves,
# the way tests/integration/lib.sh does, in a folder of the run ($W), and
# stops everything it started by process id when the script ends.
#
# Needs BIN (the release build folder).

set -euo pipefail

: "${BIN:?set BIN to the release build folder}"
RELAY_BIN=$BIN/relay/baton-relay
LOCAL_BIN=$BIN/agent-local/baton-local
SANDBOX_BIN=$BIN/agent-sandbox/baton-sandbox
CLIENT_BIN=$BIN/client/baton
AGENT_BIN=$BIN/bench/bench-test-agent
GEN_BIN=$BIN/bench/bench-gen-tree

W=$(mktemp -d "${TMPDIR:-/tmp}/bench-run.XXXXXX")
BENCH_PIDS=()
export BATON_LOG=${BATON_LOG:-info}
export GIT_AUTHOR_NAME=Bench GIT_AUTHOR_EMAIL=bench@example.invalid
export GIT_COMMITTER_NAME=Bench GIT_COMMITTER_EMAIL=bench@example.invalid

blog() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
bfail() {
  blog "FAIL: $*"
  for f in "$W"/*.log; do
    [ -f "$f" ] || continue
    echo "----- ${f#"$W"/} (last 20 lines)" >&2
    tail -n 20 "$f" >&2
  done
  exit 1
}

# kill_pid_tree SIGNAL PID: PID and its descendants, found by parent id.
kill_pid_tree() {
  local child
  for child in $(pgrep -P "$2" 2>/dev/null); do
    kill_pid_tree "$1" "$child"
  done
  kill "-$1" "$2" 2>/dev/null || true
}

# stop_pid PID: SIGTERM (the relay stops its sandboxes then), up to 10 s,
# then SIGKILL for whatever of its tree is left.
stop_pid() {
  local pid=$1 kids
  kids=$(pgrep -P "$pid" 2>/dev/null || true)
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  for k in $kids; do kill_pid_tree KILL "$k"; done
  wait "$pid" 2>/dev/null || true
}

bench_cleanup() {
  local rc=$?
  local i
  for ((i = ${#BENCH_PIDS[@]} - 1; i >= 0; i--)); do
    stop_pid "${BENCH_PIDS[$i]}"
  done
  if [ $rc -eq 0 ] && [ -z "${KEEP:-}" ]; then
    rm -rf "$W"
  else
    blog "files kept in $W"
  fi
  exit $rc
}
trap bench_cleanup EXIT

# wait_for SECONDS DESCRIPTION COMMAND...: polls until COMMAND succeeds.
wait_for() {
  local limit=$1 what=$2
  shift 2
  local end=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt "$end" ] || bfail "timed out waiting for $what"
    sleep 0.05
  done
}

# start_relay [ARGS...]: baton-relay on a free port, data in $W/relay;
# sets RELAY_URL, RELAY_PID, RELAY_DATA.
start_relay() {
  RELAY_DATA=$W/relay
  mkdir -p "$RELAY_DATA"
  rm -f "$W/relay.port"
  "$RELAY_BIN" serve --listen 127.0.0.1:0 --data "$RELAY_DATA" \
    --port-file "$W/relay.port" --sandbox-bin "$SANDBOX_BIN" \
    "$@" >>"$W/relay.log" 2>&1 &
  RELAY_PID=$!
  BENCH_PIDS+=("$RELAY_PID")
  wait_for 30 "the relay to listen" test -s "$W/relay.port"
  RELAY_URL=ws://127.0.0.1:$(cat "$W/relay.port")
}

# stop_relay: stops the relay (and its sandboxes) and forgets it.
stop_relay() {
  stop_pid "$RELAY_PID"
  local keep=()
  for p in "${BENCH_PIDS[@]}"; do
    [ "$p" = "$RELAY_PID" ] || keep+=("$p")
  done
  BENCH_PIDS=("${keep[@]}")
}

# token USER KIND: prints a new token.
token() {
  "$RELAY_BIN" token create --data "$RELAY_DATA" --user "$1" --kind "$2"
}

# write_agents: the profiles the benchmarks run: the test agent (keeps a
# conversation, like a coding agent); `echo`, cat on a raw terminal; and
# `flood`, which answers a line N with N bytes of $W/flood.dat (written
# in 64 KiB blocks) and then FLOOD-END.
write_agents() {
  local FLOOD="stty raw -echo; while read -r n; do dd if=$W/flood.dat bs=65536 count=\\\"\$n\\\" iflag=count_bytes status=none; printf 'FLOOD-END\\\\n'; done"
  cat >"$W/agents.json" <<JSON
{"profiles": [{"name": "test",
  "start": ["$AGENT_BIN", "--session", "{session}"],
  "resume": ["$AGENT_BIN", "--session", "{session}", "--resume"],
  "state": ["{home}/.baton-test-agent/projects/{cwd_slug}/{session}.jsonl"],
  "rewrite_cwd": true},
 {"name": "echo",
  "start": ["sh", "-c", "stty raw -echo; exec cat"],
  "resume": ["sh", "-c", "stty raw -echo; exec cat"],
  "state": []},
 {"name": "flood",
  "start": ["sh", "-c", "$FLOOD"],
  "resume": ["sh", "-c", "$FLOOD"],
  "state": []}]}
JSON
}

# start_laptop USER: CLIENT_TOKEN, and a laptop daemon named "laptop";
# sets LOCAL_PID.
start_laptop() {
  CLIENT_TOKEN=$(token "$1" client)
  MACHINE_TOKEN=$(token "$1" machine)
  write_agents
  mkdir -p "$W/home-laptop"
  HOME=$W/home-laptop BATON_TOKEN=$MACHINE_TOKEN "$LOCAL_BIN" \
    --relay "$RELAY_URL" --name laptop --state "$W/state-laptop" \
    --agents "$W/agents.json" >>"$W/local.log" 2>&1 &
  LOCAL_PID=$!
  BENCH_PIDS+=("$LOCAL_PID")
  wait_for 60 "the laptop to register" machine_online laptop
}

# baton ARGS...: the client with the user's token.
baton() {
  BATON_RELAY=$RELAY_URL BATON_TOKEN=$CLIENT_TOKEN "$CLIENT_BIN" "$@"
}

flat() { tr -d '\n\t '; }

machine_online() {
  baton --json machines | flat |
    grep "\"name\":\"$1\"[^}]*\"online\":true" >/dev/null
}

# json_field JSON NAME: the string or number value of a top-level field.
json_field() {
  printf '%s' "$1" | flat |
    sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\)\"\{0,1\}.*/\1/p" | head -n 1
}

# session_on SID KIND: the session runs on a machine of that kind.
session_on() {
  local s
  s=$(baton --json status "$1") || return 1
  [ "$(json_field "$s" kind)" = "$2" ] &&
    [ "$(json_field "$s" state)" = running ]
}

# rss_kb PID: resident set size in KiB; anon_kb PID: its private part.
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
anon_kb() { awk '/^RssAnon:/ {print $2}' "/proc/$1/status"; }

# now_ms: wall clock in milliseconds.
now_ms() { date +%s%3N; }

# new_worktree DIR FILES [SEED]: a generated repository on branch main,
# every file committed, with an origin (never contacted) of its own name.
new_worktree() {
  local dir=$1 files=$2 seed=${3:-1}
  "$GEN_BIN" "$dir" "$files" 12288 "$seed"
  git init -q -b main "$dir"
  git -C "$dir" add -A
  git -C "$dir" commit -q -m "generated: $files files"
  git -C "$dir" remote add origin \
    "https://git.example.invalid/bench/$(basename "$dir").git"
}
