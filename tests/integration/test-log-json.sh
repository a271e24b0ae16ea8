#!/usr/bin/env bash
# test-log-json.sh: the relay, a laptop and a sandbox log JSON lines for
# log shippers. The relay is told with --log-format json and hands the
# format on to the sandbox it starts; the laptop is told with
# BATON_LOG_FORMAT=json. One session runs in a worktree whose path holds
# quotes, backslashes, braces and UTF-8 (the relay refuses control bytes in
# paths; tests/unit/test_log.c has those); another moves to the sandbox
# and back. Every line of every log must be one JSON
# object with the fields of a text line (tests/tools/log-check.c), and the
# path comes back byte for byte from the lines that name it. A format the
# programs do not know is a usage error, or a warning in the environment.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

CHECK=$BATON_BIN/tests/log-check
[ -x "$CHECK" ] || fail "$CHECK is not built (target log-check)"

# --- unknown formats
rc=0
"$RELAY_BIN" serve --listen 127.0.0.1:0 --data "$T/bad" --log-format xml \
  >"$T/bad-relay.out" 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "relay --log-format xml exited $rc, not 2"
grep -q "log-format takes json or text, not 'xml'" "$T/bad-relay.out" ||
  fail "relay --log-format xml said: $(cat "$T/bad-relay.out")"
rc=0
"$LOCAL_BIN" --relay ws://127.0.0.1:1 --log-format yaml \
  >"$T/bad-local.out" 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "baton-local --log-format yaml exited $rc, not 2"
rc=0
"$SANDBOX_BIN" --log-format logfmt >"$T/bad-sandbox.out" 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "baton-sandbox --log-format logfmt exited $rc, not 2"
rc=0
BATON_LOG_FORMAT=logfmt "$RELAY_BIN" token list --data "$T/bad" \
  >/dev/null 2>"$T/bad-env.log" || rc=$?
[ $rc -eq 0 ] || fail "token list with BATON_LOG_FORMAT=logfmt exited $rc"
grep -q "WARN  baton-relay\[log\] BATON_LOG_FORMAT is 'logfmt', neither" \
  "$T/bad-env.log" || fail "no warning about BATON_LOG_FORMAT=logfmt: \
$(cat "$T/bad-env.log")"
log "unknown formats: usage errors, or a warning from the environment"

# --- a session, logged as JSON
RELAY_ARGS+=(--log-format json)
start_relay
CLIENT_TOKEN=$(token alice client)
write_agents
export BATON_LOG_FORMAT=json
start_local laptop "$(token alice machine)"
unset BATON_LOG_FORMAT
wait_for 60 "the laptop to register" machine_online laptop

WT=$T/$'we"ird\\ dir {"x": 1} \\u0041 \xc3\xa9\xe2\x82\xac'
new_repo "$WT"
SID=$(baton start --machine laptop --dir "$WT" --agent test)
wait_output "$SID" "started session $SID" 60
baton send "$SID" "remember json"
wait_output "$SID" "noted: json" 60
baton stop "$SID"

new_repo "$T/plain"
MID=$(baton start --machine laptop --dir "$T/plain" --agent test)
wait_output "$MID" "started session $MID" 60
baton send "$MID" "remember moves"
wait_output "$MID" "noted: moves" 60
baton --timeout 120 move "$MID" --to sandbox --wait >"$T/move.out" 2>&1 ||
  fail "the move to the sandbox failed: $(cat "$T/move.out")"
baton send "$MID" "recall"
wait_output "$MID" "end of recall" 60
baton --timeout 120 move "$MID" --to laptop --wait >"$T/back.out" 2>&1 ||
  fail "the move back failed: $(cat "$T/back.out")"
baton stop "$MID"
kill -TERM "$LOCAL_PID_laptop"
wait "$LOCAL_PID_laptop" || fail "the laptop exited $? on SIGTERM"
stop_relay

# --- every line of every log
sandbox_logs=("$T"/relay/sandboxes/*/sandbox.log)
[ -f "${sandbox_logs[0]}" ] || fail "no sandbox log"
for f in "$T/relay.log" "$T/local-laptop.log" "${sandbox_logs[@]}"; do
  [ -s "$f" ] || fail "$f is empty"
  "$CHECK" --print "$f" >"$f.print" 2>"$T/check.err" ||
    fail "$(cat "$T/check.err")"
  log "$(cat "$T/check.err")"
done

# Each program under its own name, the levels and components of the text.
grep -q '^info baton-relay\[relay\] listening on ' "$T/relay.log.print" ||
  fail "the relay's JSON has no 'listening on' line"
grep -q '^info baton-local\[host\] registered with the relay as local ' \
  "$T/local-laptop.log.print" || fail "the laptop's JSON has no register line"
grep -q '^info baton-sandbox\[host\] registered with the relay as sandbox ' \
  "${sandbox_logs[0]}.print" || fail "the sandbox's JSON has no register line"

# The hostile path, decoded from the laptop's JSON, is the path itself.
grep -qF "session $SID: started " "$T/local-laptop.log.print" ||
  fail "the laptop's JSON does not log the session's start"
grep -qF "in $WT (pid " <<<"$(grep -F "session $SID: started " \
  "$T/local-laptop.log.print")" ||
  fail "the worktree path did not survive the JSON: $(grep -F \
    "session $SID: started" "$T/local-laptop.log.print")"
log "relay, laptop and sandbox logged only JSON lines; the path survived"
