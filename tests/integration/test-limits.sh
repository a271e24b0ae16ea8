#!/usr/bin/env bash
# test-limits.sh: the relay's limits on what a peer can make it do. Each
# refuses with code `limited` and a message that says what to do, `baton`
# exits 5, and the same request succeeds once the message's wait is over or
# something was closed or stopped:
#   - new connections per address (--conn-rate), counted before hello;
#   - hellos per token (--hello-rate), counted before the token is looked
#     up (so a wrong token is limited too), per token, never logged;
#   - open connections per user (--max-conns-per-user);
#   - live sessions per machine (--max-sessions-per-machine).
# A refusal is logged at info at most every 10 s, so a flood cannot fill
# the log. Rates are 0.2 a second (bursts of 2, one back every 5 s): slower
# than this script, so its own pace cannot refill a bucket by accident.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
POKE=$BATON_BIN/tests/ws-poke
[ -x "$POKE" ] || fail "$POKE is not built (target ws-poke)"

# hello NAME TOKEN: one connection saying hello with TOKEN; ws-poke's
# output in $T/NAME.out.
hello() {
  local body="{\"version\":1,\"role\":\"client\",\"token\":\"$2\"}"
  printf '%s\n' "text {\"type\":\"hello\",\"id\":\"h\",\"body\":$body}" \
    'until 10000 "type":"' close |
    timeout 60 "$POKE" "$RELAY_PORT" >"$T/$1.out" 2>&1 || true
}
welcomed() { grep -F '"type":"welcome"' "$T/$1.out" >/dev/null; }
limited() { grep -F '"code":"limited"' "$T/$1.out" >/dev/null; }

# hello_until_limited NAME TOKEN [ANSWER]: hellos until one is refused,
# at most 6 (the burst is 2); until then each gets ANSWER (a welcome by
# default). The refused one's output is $T/NAME.out.
hello_until_limited() {
  local try answer=${3:-'"type":"welcome"'}
  for try in 1 2 3 4 5 6; do
    hello "$1" "$2"
    limited "$1" && return 0
    grep -F -- "$answer" "$T/$1.out" >/dev/null ||
      fail "$1 (try $try): neither $answer nor limited: $(cat "$T/$1.out")"
  done
  fail "$1: 6 connections in a row and none was limited"
}

# says FILE TEXT: FILE holds TEXT, or the test fails showing FILE.
says() {
  grep -F -- "$2" "$1" >/dev/null ||
    fail "${1##*/} does not say '$2': $(cat "$1")"
}

# wait_hint FILE: sleeps as long as the refusal in FILE asks.
wait_hint() {
  local s
  s=$(sed -n 's/.*try again in \([0-9]*\) s.*/\1/p' "$1" | head -n 1)
  if [ -z "$s" ] || [ "$s" -lt 1 ] || [ "$s" -gt 10 ]; then
    fail "no sensible 'try again in N s' in: $(cat "$1")"
  fi
  sleep "$s"
}

# expect_limited DESCRIPTION TEXT ARGS...: baton ARGS exits 5 and its
# message holds TEXT.
expect_limited() {
  local what=$1 text=$2 rc=0
  shift 2
  baton "$@" >"$T/limited.out" 2>"$T/limited.err" </dev/null || rc=$?
  [ $rc -eq 5 ] || {
    cat "$T/limited.out" "$T/limited.err" >&2
    fail "$what: baton exited $rc, not 5"
  }
  says "$T/limited.err" "$text"
  log "$what: exit 5: $(head -n 1 "$T/limited.err" | cut -c1-150)"
}

# baton_until_limited: `baton sessions` until one exits 5, at most 6; its
# stderr is $T/baton.err.
baton_until_limited() {
  local try rc
  for try in 1 2 3 4 5 6; do
    rc=0
    baton sessions >/dev/null 2>"$T/baton.err" || rc=$?
    [ $rc -eq 5 ] && return 0
    [ $rc -eq 0 ] ||
      fail "baton sessions (try $try) exited $rc: $(cat "$T/baton.err")"
  done
  fail "baton sessions was never limited"
}

# info_refusals: the refusals logged at info so far.
info_refusals() { grep -c 'INFO .*over a limit' "$T/relay.log" || true; }

# --- connections per address
RELAY_ARGS=(--conn-rate 0.2 --hello-rate 0)
start_relay
CLIENT_TOKEN=$(token lee client)
hello_until_limited addr "$CLIENT_TOKEN"
says "$T/addr.out" 'too many connections from your address; try again in'
grep -x closed "$T/addr.out" >/dev/null ||
  fail "the refused connection stayed open: $(cat "$T/addr.out")"
# A flood of refusals: the log gets a line now and then, not one each.
for n in 1 2 3 4 5; do hello "flood$n" "$CLIENT_TOKEN"; done
[ "$(info_refusals)" -le 2 ] ||
  fail "$(info_refusals) refusals logged at info; a flood fills the log"
grep 'INFO .*over a limit' "$T/relay.log" | grep -F '127.0.0.1' >/dev/null ||
  fail "the refusal was not logged at info with the address"
# The client exits 5 and says when to try again; then it works.
baton_until_limited
says "$T/baton.err" 'too many connections from your address; try again in'
log "per address: exit 5: $(head -n 1 "$T/baton.err")"
wait_hint "$T/baton.err"
baton sessions >/dev/null || fail "still limited after the wait it asked for"
log "per address: after the wait the same command works"
stop_relay

# --- hellos per token
RELAY_ARGS=(--conn-rate 0 --hello-rate 0.2)
start_relay
OTHER=$(token lee client)
hello_until_limited tok "$CLIENT_TOKEN"
says "$T/tok.out" 'this token has connected too often lately; try again in'
hello other "$OTHER"
welcomed other || fail "another token of the same user was limited too"
# Counted before the lookup: a wrong token is limited, not looked up.
hello_until_limited wrong "bt_not-a-token-of-this-relay" \
  '"code":"unauthorized"'
says "$T/wrong.out" 'this token has connected too often'
! grep -F -e "$CLIENT_TOKEN" -e "bt_not-a-token" "$T/relay.log" >/dev/null ||
  fail "a token reached the relay's log"
wait_hint "$T/tok.out"
hello tok-again "$CLIENT_TOKEN"
welcomed tok-again ||
  fail "still limited after the wait: $(cat "$T/tok-again.out")"
log "per token: limited, other tokens unaffected, fine after the wait"
stop_relay

# --- sessions per machine, connections per user
RELAY_ARGS=(--conn-rate 0 --hello-rate 0 --max-conns-per-user 3
  --max-sessions-per-machine 2)
start_relay
start_laptop lee	# the machine's connection is lee's first
for n in 1 2 3; do new_repo "$T/repo$n"; done
S1=$(baton start --machine laptop --dir "$T/repo1" --agent test)
S2=$(baton start --machine laptop --dir "$T/repo2" --agent test)
expect_limited "a third session" \
  "machine laptop runs 2 sessions, the most this relay allows; stop one" \
  start --machine laptop --dir "$T/repo3" --agent test
[ "$(baton --json sessions | flat | grep -o '"id"' | wc -l)" -eq 2 ] ||
  fail "the refused start made a session"
baton stop "$S1"
S3=$(baton start --machine laptop --dir "$T/repo3" --agent test)
wait_output "$S3" "started session $S3" 60
log "per machine: after a stop the third session starts"

# The clients themselves in the background (not the baton function), so
# that $! is the pid that holds the connection.
BATON_RELAY=$RELAY_URL BATON_TOKEN=$CLIENT_TOKEN "$CLIENT_BIN" tail "$S2" \
  --follow >"$T/follow1.out" 2>&1 &
F1=$!
PIDS+=("$F1")
BATON_RELAY=$RELAY_URL BATON_TOKEN=$CLIENT_TOKEN "$CLIENT_BIN" tail "$S3" \
  --follow >"$T/follow2.out" 2>&1 &
PIDS+=("$!")
wait_for 30 "the first follower" grep -qF "started session $S2" \
  "$T/follow1.out"
wait_for 30 "the second follower" grep -qF "started session $S3" \
  "$T/follow2.out"
expect_limited "a fourth connection" \
  "user lee has 3 connections open, the most this relay allows; close some" \
  sessions
kill -TERM "$F1"
wait "$F1" || true
wait_for 15 "a connection to be free again" baton sessions
log "per user: after closing a follower the same command works"
[ "$(json_field "$(baton --json status "$S3")" state)" = running ] ||
  fail "session $S3 is not running"
echo "limits: per address, token, user and machine: limited, then fine"
