# lib.sh: shared helpers for the integration tests and the main job.
# Sourced, not run. Starts the real programs on 127.0.0.1 with ports they
# pick themselves, in a temporary folder, and stops everything on exit.
#
# Needs BATON_BIN (the build folder). Sets T (the temporary folder).

set -euo pipefail

: "${BATON_BIN:?set BATON_BIN to the build folder}"
RELAY_BIN=$BATON_BIN/relay/baton-relay
LOCAL_BIN=$BATON_BIN/agent-local/baton-local
SANDBOX_BIN=$BATON_BIN/agent-sandbox/baton-sandbox
CLIENT_BIN=$BATON_BIN/client/baton
AGENT_BIN=$BATON_BIN/tests/baton-test-agent

# sanitized: true when the programs under test carry ASan/UBSan. ctest says
# so in BATON_SANITIZED; by hand, ldd tells (gcc links libasan shared).
sanitized() {
  if [ -n "${BATON_SANITIZED:-}" ]; then
    [ "$BATON_SANITIZED" = 1 ]
  else
    local libs
    libs=$(ldd "$RELAY_BIN")
    [[ $libs == *libasan* ]]
  fi
}
CASES=${BATON_CASES:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../shared/cases" 2>/dev/null && pwd || true)}

T=$(mktemp -d "${TMPDIR:-/tmp}/baton-test.XXXXXX")
# No test reads the settings of whoever runs it (baton-local's local.conf).
export XDG_CONFIG_HOME=$T/config
PIDS=()
export BATON_LOG=${BATON_LOG:-info}
export GIT_AUTHOR_NAME=Baton GIT_AUTHOR_EMAIL=baton@example.invalid
export GIT_COMMITTER_NAME=Baton GIT_COMMITTER_EMAIL=baton@example.invalid

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() {
  log "FAIL: $*"
  for f in "$T"/*.log "$T"/relay/sandboxes/*/sandbox.log; do
    [ -f "$f" ] || continue
    echo "----- ${f#"$T"/} (last 40 lines)" >&2
    tail -n 40 "$f" >&2
  done
  exit 1
}

# A command that fails under set -e says where, instead of ending the test
# without a word.
on_error() {
  log "ERROR: ${BASH_SOURCE[1]##*/}:$2: '$BASH_COMMAND' exited with status $1"
}
trap 'on_error $? $LINENO' ERR

CLEANUP=()	# commands a test adds, run before anything is removed

# kill_tree SIGNAL PID: PID and everything it started. A shell function
# run with & (`baton tail --follow ... &`) is a subshell whose child is the
# real program: killing the subshell alone would leave that running.
kill_tree() {
  local child
  for child in $(pgrep -P "$2" 2>/dev/null); do
    kill_tree "$1" "$child"
  done
  kill "-$1" "$2" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do
    kill_tree TERM "$pid"
  done
  # Whatever else a test left in the background (baton tail --follow &).
  for pid in $(pgrep -P $$ 2>/dev/null); do
    kill_tree TERM "$pid"
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  done
  # Sandboxes are started by the relay; none may outlive it.
  if pgrep -f "$T/" >/dev/null 2>&1; then
    pkill -KILL -f "$T/" 2>/dev/null || true
  fi
  for cmd in "${CLEANUP[@]}"; do eval "$cmd" || true; done
  # A sanitizer report in any program's log fails the test.
  if grep -rlE "ERROR: (Address|Leak)Sanitizer|runtime error:" \
      --include='*.log' "$T" >/dev/null 2>&1; then
    log "FAIL: a sanitizer reported errors:"
    grep -rE -A20 "ERROR: (Address|Leak)Sanitizer|runtime error:" \
      --include='*.log' "$T" | head -n 80 >&2
    rc=1
  fi
  if [ $rc -eq 0 ] && [ -z "${KEEP:-}" ]; then
    rm -rf "$T"
  else
    log "files kept in $T"
  fi
  exit $rc
}
trap cleanup EXIT

# wait_for SECONDS DESCRIPTION COMMAND...: polls until COMMAND succeeds.
wait_for() {
  local limit=$1 what=$2
  shift 2
  local end=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt "$end" ] || fail "timed out waiting for $what"
    sleep 0.1
  done
}

RELAY_ARGS=()	# more options for baton-relay serve (TLS, in test-tls.sh)
RELAY_SCHEME=ws	# wss when RELAY_ARGS turn TLS on
LOCAL_ARGS=()	# more options for baton-local

# start_relay: runs baton-relay on a free port; sets RELAY_URL, RELAY_DATA.
start_relay() {
  RELAY_DATA=${RELAY_DATA_DIR:-$T/relay}
  mkdir -p "$RELAY_DATA"
  rm -f "$T/relay.port"
  "$RELAY_BIN" serve --listen 127.0.0.1:${RELAY_PORT:-0} \
    --data "$RELAY_DATA" --port-file "$T/relay.port" \
    --sandbox-bin "$SANDBOX_BIN" "${RELAY_ARGS[@]}" >>"$T/relay.log" 2>&1 &
  RELAY_PID=$!
  PIDS+=("$RELAY_PID")
  wait_for 30 "the relay to listen" test -s "$T/relay.port"
  RELAY_PORT=$(cat "$T/relay.port")
  RELAY_URL=$RELAY_SCHEME://127.0.0.1:$RELAY_PORT
}

stop_relay() {
  kill -TERM "$RELAY_PID"
  wait "$RELAY_PID" || fail "the relay exited with status $? on SIGTERM"
}

# token USER KIND: prints a new token.
token() {
  "$RELAY_BIN" token create --data "$RELAY_DATA" --user "$1" --kind "$2"
}

# start_local NAME TOKEN: runs baton-local for a laptop named NAME.
start_local() {
  local name=$1 tok=$2
  mkdir -p "$T/home-$name"
  HOME=$T/home-$name BATON_TOKEN=$tok "$LOCAL_BIN" --relay "$RELAY_URL" \
    --name "$name" --state "$T/state-$name" --agents "$T/agents.json" \
    "${LOCAL_ARGS[@]}" >>"$T/local-$name.log" 2>&1 &
  PIDS+=("$!")
  eval "LOCAL_PID_${name//-/_}=$!"
}

# write_agents: the user's profile file naming the test agent.
write_agents() {
  cat >"$T/agents.json" <<JSON
{"profiles": [{"name": "test",
  "start": ["$AGENT_BIN", "--session", "{session}"],
  "resume": ["$AGENT_BIN", "--session", "{session}", "--resume"],
  "state": ["{home}/.baton-test-agent/projects/{cwd_slug}/{session}.jsonl"],
  "rewrite_cwd": true}]}
JSON
}

# start_laptop USER: tokens for USER (CLIENT_TOKEN for the client,
# MACHINE_TOKEN for daemons), the agent profiles, and a laptop daemon named
# "laptop" registered with the relay.
start_laptop() {
  CLIENT_TOKEN=$(token "$1" client)
  MACHINE_TOKEN=$(token "$1" machine)
  write_agents
  start_local laptop "$MACHINE_TOKEN"
  wait_for 60 "the laptop to register" machine_online laptop
}

# new_repo DIR: a git repository on branch main with one commit.
new_repo() {
  git init -q -b main "$1"
  printf 'base\n' >"$1/base.txt"
  git -C "$1" add base.txt
  git -C "$1" commit -q -m base
}

# baton ARGS...: the client with the current user's token.
baton() {
  BATON_RELAY=$RELAY_URL BATON_TOKEN=$CLIENT_TOKEN "$CLIENT_BIN" "$@"
}

# flat: JSON on one line, without the layout's tabs and newlines.
flat() { tr -d '\n\t'; }

machine_online() {
  baton --json machines | flat |
    grep "\"name\":\"$1\"[^}]*\"online\":true" >/dev/null
}

# json_field JSON NAME: the string or number value of a top-level field.
json_field() {
  printf '%s' "$1" | flat |
    sed -n "s/.*\"$2\":[ ]*\"\{0,1\}\([^\",}]*\)\"\{0,1\}.*/\1/p" | head -n 1
}

# transcript SID: the whole transcript so far.
transcript() {
  baton tail "$1" --from 0
}

# wait_output SID TEXT [SECONDS]: until the transcript holds TEXT.
wait_output() {
  local sid=$1 text=$2 limit=${3:-30}
  local end=$((SECONDS + limit))
  until transcript "$sid" 2>/dev/null | grep -F -- "$text" >/dev/null; do
    [ $SECONDS -lt "$end" ] || {
      log "transcript of $sid:"; transcript "$sid" | tail -n 30 >&2 || true
      fail "timed out waiting for '$text' in session $sid"
    }
    sleep 0.2
  done
}

# wait_count SID TEXT N [SECONDS]: until TEXT is in N lines of the
# transcript (for answers that an earlier turn printed too).
wait_count() {
  local sid=$1 text=$2 want=$3 limit=${4:-30} n
  local end=$((SECONDS + limit))
  while :; do
    n=$(transcript "$sid" 2>/dev/null | grep -cF -- "$text" || true)
    [ "$n" -ge "$want" ] && return 0
    [ $SECONDS -lt "$end" ] ||
      fail "timed out waiting for $want lines of '$text' in $sid (saw $n)"
    sleep 0.2
  done
}

# fingerprint WORKTREE: the cases' fingerprint, or our copy of it when the
# team's shared cases are not beside this checkout.
fingerprint() {
  if [ -f "$CASES/fingerprint.sh" ]; then
    bash "$CASES/fingerprint.sh" "$1"
  else
    bash "$(dirname "${BASH_SOURCE[0]}")/../tools/fingerprint.sh" "$1"
  fi
}

# session_on SID KIND: the session runs on a machine of that kind.
session_on() {
  local s
  s=$(baton --json status "$1") || return 1
  [ "$(json_field "$s" kind)" = "$2" ] &&
    [ "$(json_field "$s" state)" = running ]
}

# session_worktree SID: where the session runs now.
session_worktree() {
  json_field "$(baton --json status "$1")" worktree
}

# pair_start NAME [URL]: runs `baton-local pair` in the background for a
# laptop NAME, with the state folder start_local uses ($T/state-NAME); its
# stdout goes to $T/pair-NAME.out, its stderr to $T/pair-NAME.log. Sets
# PAIR_PID. For wss://, export BATON_CA.
pair_start() {
  "$LOCAL_BIN" pair --relay "${2:-$RELAY_URL}" --name "$1" \
    --state "$T/state-$1" >"$T/pair-$1.out" 2>"$T/pair-$1.log" &
  PAIR_PID=$!
  PIDS+=("$PAIR_PID")
}

# pair_code NAME: waits for the code `baton-local pair` shows; prints it.
pair_code() {
  wait_for 30 "the pairing code of $1" \
    grep -q 'baton pair approve ' "$T/pair-$1.out"
  sed -n 's/^ *baton pair approve \([A-Z0-9]\{4\}-[A-Z0-9]\{4\}\)$/\1/p' \
    "$T/pair-$1.out" | head -n 1
}
