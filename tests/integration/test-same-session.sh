#!/usr/bin/env bash
# test-same-session.sh (case same-session): a session started from the
# laptop's client, three inputs from the "phone" (another client token of
# the same user), then the laptop's client types again. One session id
# throughout, and every client sees one continuous history: a follower
# started at the beginning (tail --follow) ends when the session ends with
# exactly what `tail --from 0` shows afterwards, from either client.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

start_relay
LAPTOP_TOKEN=$(token alice client)
PHONE_TOKEN=$(token alice client)
CLIENT_TOKEN=$LAPTOP_TOKEN
write_agents
start_local laptop "$(token alice machine)"
wait_for 60 "the laptop to register" machine_online laptop

# phone ARGS...: the client with the phone's token.
phone() { CLIENT_TOKEN=$PHONE_TOKEN baton "$@"; }

WT=$T/laptop/repo
mkdir -p "$WT"
git -C "$WT" init -q
printf 'base\n' >"$WT/base.txt"
git -C "$WT" add base.txt
git -C "$WT" commit -q -m base

SID=$(baton start --machine laptop --dir "$WT" --agent test)
[[ $SID =~ ^[0-9a-f-]{36}$ ]] || fail "baton start printed '$SID', not a session id"

# A third client follows the session from the start, in its own process.
BATON_RELAY=$RELAY_URL BATON_TOKEN=$PHONE_TOKEN "$CLIENT_BIN" \
  tail "$SID" --follow >"$T/follow.out" 2>"$T/follow.err" &
FOLLOW_PID=$!
PIDS+=("$FOLLOW_PID")
wait_output "$SID" "started session $SID" 60

# sessions_ids TOKEN: the ids `baton --json sessions` lists.
session_ids() {
  CLIENT_TOKEN=$1 baton --json sessions | flat |
    grep -o '"id":[ ]*"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/'
}
one_session() {
  local who
  for who in "$LAPTOP_TOKEN" "$PHONE_TOKEN"; do
    [ "$(session_ids "$who")" = "$SID" ] || {
      CLIENT_TOKEN=$who baton --json sessions >&2
      fail "baton sessions does not list exactly $SID"
    }
  done
}
one_session

# Three inputs from the phone, one right after the other.
phone send "$SID" "remember phone one"
phone send "$SID" "remember phone two"
phone send "$SID" "remember phone three"
wait_output "$SID" "noted: phone three" 60
one_session
# The laptop's client types again.
baton send "$SID" "remember laptop again"
wait_output "$SID" "noted: laptop again" 60
phone send "$SID" "recall"
wait_output "$SID" "end of recall" 60
one_session

# Both clients see the same session, at the same seq once output settles.
same_view() {
  local s1 s2
  s1=$(baton --json status "$SID") && s2=$(phone --json status "$SID") &&
    [ "$(json_field "$s1" id)" = "$SID" ] &&
    [ "$(json_field "$s2" id)" = "$SID" ] &&
    [ "$(json_field "$s1" seq)" = "$(json_field "$s2" seq)" ] &&
    [ "$(json_field "$s1" machine)" = "$(json_field "$s2" machine)" ]
}
wait_for 30 "both clients to see the same session and seq" same_view

baton stop "$SID"
stopped() {
  [ "$(json_field "$(baton --json status "$SID")" state)" != running ]
}
wait_for 60 "the session to stop" stopped

# The follower ends by itself when the session exits.
follower_ended() { ! kill -0 "$FOLLOW_PID" 2>/dev/null; }
wait_for 60 "tail --follow to end after the session exited" follower_ended
rc=0
wait "$FOLLOW_PID" || rc=$?
[ $rc -eq 0 ] || { cat "$T/follow.err" >&2; fail "tail --follow exited $rc"; }

baton tail "$SID" --from 0 >"$T/laptop-tail.out"
phone tail "$SID" --from 0 >"$T/phone-tail.out"
cmp -s "$T/laptop-tail.out" "$T/phone-tail.out" ||
  fail "the laptop's and the phone's full transcripts differ"
if ! cmp -s "$T/follow.out" "$T/laptop-tail.out"; then
  diff <(tr -d '\r' <"$T/follow.out") <(tr -d '\r' <"$T/laptop-tail.out") >&2 || true
  fail "what tail --follow saw differs from the stored transcript (< follow, > tail)"
fi

# One continuous history: every turn once, in order.
tr -d '\r' <"$T/follow.out" | sed 's/^\(> \)*//' >"$T/history.txt"
want=("started session $SID in $WT"
      "noted: phone one" "noted: phone two" "noted: phone three"
      "noted: laptop again"
      "turn 1: remember phone one" "turn 2: remember phone two"
      "turn 3: remember phone three" "turn 4: remember laptop again"
      "end of recall")
at=0
for w in "${want[@]}"; do
  [ "$(grep -cxF -- "$w" "$T/history.txt")" -eq 1 ] ||
    fail "'$w' is not in the history exactly once"
  n=$(grep -nxF -- "$w" "$T/history.txt" | cut -d: -f1)
  [ "$n" -gt "$at" ] || fail "'$w' is out of order in the history"
  at=$n
done
[ "$(grep -c 'resumed session\|started session' "$T/history.txt")" -eq 1 ] ||
  fail "the agent was started more than once"
one_session
echo "same session: OK ($SID, $(wc -c <"$T/follow.out") bytes seen by every client)"
