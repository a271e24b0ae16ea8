#!/usr/bin/env bash
# test-users.sh: two users on one relay are kept apart. Bob sees none of
# Alice's machines or sessions, and every command of his on Alice's session
# fails with not_found (exit 4), exactly as for a session that does not
# exist, while nothing reaches Alice's session. Bad tokens: a garbage token
# gets exit 3, a machine token is refused to the client, a client token is
# refused to baton-local (logged; it never registers).
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

start_relay
ALICE=$(token alice client)
BOB=$(token bob client)
ALICE_MACHINE=$(token alice machine)
BOB_MACHINE=$(token bob machine)
write_agents

# as USER ARGS...: the client as alice or bob.
as() {
  local who=$1
  shift
  case $who in
    alice) CLIENT_TOKEN=$ALICE baton "$@" ;;
    bob) CLIENT_TOKEN=$BOB baton "$@" ;;
  esac
}
CLIENT_TOKEN=$ALICE

# Alice's laptop is named "laptop"; so is Bob's, which must not matter.
start_local laptop "$ALICE_MACHINE"
mkdir -p "$T/home-bob"
HOME=$T/home-bob BATON_TOKEN=$BOB_MACHINE "$LOCAL_BIN" --relay "$RELAY_URL" \
  --name laptop --state "$T/state-bob" --agents "$T/agents.json" \
  >>"$T/local-bob.log" 2>&1 &
PIDS+=("$!")
wait_for 60 "alice's laptop to register" machine_online laptop
bob_online() { CLIENT_TOKEN=$BOB machine_online laptop; }
wait_for 60 "bob's laptop to register" bob_online

for who in alice bob; do
  mkdir -p "$T/$who/repo"
  git -C "$T/$who/repo" init -q
  printf '%s\n' "$who" >"$T/$who/repo/owner.txt"
  git -C "$T/$who/repo" add owner.txt
  git -C "$T/$who/repo" commit -q -m "$who's"
done

SID=$(as alice start --machine laptop --dir "$T/alice/repo" --agent test)
wait_output "$SID" "started session $SID in $T/alice/repo" 60
as alice send "$SID" "remember alice's secret plan"
wait_output "$SID" "noted: alice's secret plan" 60
BOB_SID=$(as bob start --machine laptop --dir "$T/bob/repo" --agent test)
CLIENT_TOKEN=$BOB wait_output "$BOB_SID" "started session $BOB_SID in $T/bob/repo" 60
# Bob's "laptop" is his own: the session runs as his daemon, in his home.
[ -n "$(find "$T/home-bob/.baton-test-agent" -name "$BOB_SID.jsonl")" ] ||
  fail "bob's session did not run on bob's laptop"
[ -z "$(find "$T/home-laptop/.baton-test-agent" -name "$BOB_SID.jsonl")" ] ||
  fail "bob's session ran on alice's laptop"

alice_transcript=$(as alice tail "$SID" --from 0)
alice_status=$(as alice --json status "$SID")
alice_machines=$(as alice --json machines | flat)

# Bob's lists hold nothing of Alice's.
bob_machines=$(as bob --json machines | flat)
bob_sessions=$(as bob --json sessions | flat)
alice_mid=$(json_field "$alice_status" machine_id)
[ -n "$alice_mid" ] || fail "no machine_id in alice's status: $alice_status"
! grep -qF "$alice_mid" <<<"$bob_machines" ||
  fail "bob's machines list alice's laptop: $bob_machines"
[ "$(grep -o '"name"' <<<"$bob_machines" | wc -l)" -eq 1 ] ||
  fail "bob should see exactly his one machine: $bob_machines"
! grep -qF "$SID" <<<"$bob_sessions" ||
  fail "bob's sessions list alice's session: $bob_sessions"
grep -qF "$BOB_SID" <<<"$bob_sessions" || fail "bob's own session is not listed"
! grep -qF "$BOB_SID" <<<"$(as alice --json sessions)" ||
  fail "alice's sessions list bob's session"
as bob machines | grep -F "$alice_mid" >/dev/null && fail "bob's plain machines show alice's"
as bob sessions | grep -F "$SID" >/dev/null && fail "bob's plain sessions show alice's"

# expect_not_found DESCRIPTION ARGS...: bob's command exits 4 and says the
# same as it does for a session id that does not exist.
NOSID=00000000-0000-4000-8000-000000000000
expect_not_found() {
  local what=$1 rc=0 rc2=0
  shift
  as bob "$@" >"$T/bob.out" 2>"$T/bob.err" </dev/null || rc=$?
  [ $rc -eq 4 ] || {
    cat "$T/bob.out" "$T/bob.err" >&2
    fail "bob's $what on alice's session exited $rc, not 4 (not_found)"
  }
  local args=("${@//$SID/$NOSID}")
  as bob "${args[@]}" >"$T/none.out" 2>"$T/none.err" </dev/null || rc2=$?
  [ $rc2 -eq 4 ] || fail "bob's $what on a missing session exited $rc2"
  if ! diff <(sed "s/$SID/SID/g; s/^[0-9T:.-]*Z //" "$T/bob.err") \
            <(sed "s/$NOSID/SID/g; s/^[0-9T:.-]*Z //" "$T/none.err") >&2 ||
     ! diff <(sed "s/$SID/SID/g" "$T/bob.out") \
            <(sed "s/$NOSID/SID/g" "$T/none.out") >&2; then
    fail "bob's $what tells alice's session apart from a missing one"
  fi
  log "bob's $what: exit 4: $(grep -v '^20[0-9][0-9]-' "$T/bob.err" | head -n 1)"
}
expect_not_found status status "$SID"
expect_not_found "json status" --json status "$SID"
expect_not_found send send "$SID" "edit pwned.txt bob was here"
expect_not_found tail tail "$SID" --from 0
expect_not_found "tail --follow" --timeout 10 tail "$SID" --follow
expect_not_found "move to a sandbox" move "$SID" --to sandbox --wait
expect_not_found "move to his laptop" move "$SID" --to laptop --wait
expect_not_found stop stop "$SID"

# Nor may Bob start anything on Alice's machine by its id.
rc=0
as bob start --machine "$alice_mid" --dir "$T/alice/repo" --agent test \
  >"$T/bob.out" 2>"$T/bob.err" || rc=$?
[ $rc -eq 4 ] || { cat "$T/bob.out" "$T/bob.err" >&2;
  fail "bob's start on alice's machine id exited $rc, not 4"; }

# Nothing reached Alice's session. Her own recall comes after everything
# Bob sent: it must list her one turn only.
as alice send "$SID" "recall"
wait_output "$SID" "end of recall" 60
after=$(as alice tail "$SID" --from 0)
[ "${after:0:${#alice_transcript}}" = "$alice_transcript" ] || {
  printf '%s\n' "$after" | tail -n 20 >&2
  fail "alice's transcript changed while bob tried her session"
}
printf '%s\n' "${after:${#alice_transcript}}" | tr -d '\r' >"$T/alice-after.txt"
grep -q "turn 1: remember alice's secret plan" "$T/alice-after.txt" ||
  fail "alice's agent lost its turn"
[ "$(grep -c '^turn ' "$T/alice-after.txt")" -eq 1 ] || {
  cat "$T/alice-after.txt" >&2
  fail "alice's agent got a turn she did not send"
}
! grep -q 'pwned\|bob was here' "$T/alice-after.txt" ||
  fail "bob's input reached alice's agent"
[ ! -e "$T/alice/repo/pwned.txt" ] || fail "bob's input reached alice's agent"
now=$(as alice --json status "$SID")
for f in state machine kind worktree epoch; do
  [ "$(json_field "$now" $f)" = "$(json_field "$alice_status" $f)" ] ||
    fail "alice's session's $f changed: $alice_status -> $now"
done
[ "$(as alice --json machines | flat)" = "$alice_machines" ] ||
  fail "alice's machines changed"
log "nothing of bob's reached alice's session"

# A garbage token: exit 3, and the message says how to make a token.
rc=0
BATON_RELAY=$RELAY_URL BATON_TOKEN=garbage-token "$CLIENT_BIN" machines \
  >"$T/garbage.out" 2>"$T/garbage.err" || rc=$?
[ $rc -eq 3 ] || { cat "$T/garbage.err" >&2; fail "a garbage token got exit $rc, not 3"; }
grep -qi 'token' "$T/garbage.err" && grep -q 'baton-relay token create' "$T/garbage.err" ||
  fail "the garbage token's message is not clear: $(cat "$T/garbage.err")"
[ ! -s "$T/garbage.out" ] || fail "a garbage token got output: $(cat "$T/garbage.out")"
log "garbage token: exit 3: $(head -n 1 "$T/garbage.err")"

# A machine token used with the client: refused (exit 3), clearly.
rc=0
BATON_RELAY=$RELAY_URL BATON_TOKEN=$ALICE_MACHINE "$CLIENT_BIN" sessions \
  >"$T/mt.out" 2>"$T/mt.err" || rc=$?
[ $rc -eq 3 ] ||
  { cat "$T/mt.err" >&2; fail "a machine token with the client got exit $rc"; }
grep -qi 'machine token' "$T/mt.err" && grep -qi 'client' "$T/mt.err" ||
  fail "the machine token's refusal is not clear: $(cat "$T/mt.err")"
! grep -qF "$SID" "$T/mt.out" || fail "a machine token listed alice's sessions"
log "machine token with the client: exit $rc: $(head -n 1 "$T/mt.err")"

# A client token used for baton-local: refused, logged, never registered.
mkdir -p "$T/home-intruder"
HOME=$T/home-intruder BATON_TOKEN=$ALICE "$LOCAL_BIN" --relay "$RELAY_URL" \
  --name intruder --state "$T/state-intruder" --agents "$T/agents.json" \
  >>"$T/local-intruder.log" 2>&1 &
INTRUDER_PID=$!
PIDS+=("$INTRUDER_PID")
refused() { grep -qi 'client token' "$T/local-intruder.log"; }
wait_for 60 "baton-local to log the refusal of a client token" refused
log "baton-local with a client token logs: $(grep -i 'client token' "$T/local-intruder.log" | head -n 1 | cut -c26-)"
for who in alice bob; do
  ! as "$who" --json machines | grep '"intruder"' >/dev/null ||
    fail "a daemon with a client token registered for $who"
done
! grep -q 'machine intruder of user' "$T/relay.log" ||
  fail "the relay registered the daemon with a client token"
# Retrying cannot help: the daemon stops by itself with status 1.
gone() { ! kill -0 "$INTRUDER_PID" 2>/dev/null; }
wait_for 30 "baton-local with a refused token to stop" gone
rc=0
wait "$INTRUDER_PID" || rc=$?
[ $rc -eq 1 ] || fail "baton-local with a refused token exited with $rc"
n=$(grep -c 'client token' "$T/local-intruder.log" || true)
[ "$n" -le 2 ] || fail "baton-local retried a refused token $n times"
log "baton-local with a refused token stopped with status 1"
# Alice's own daemon is unaffected.
machine_online laptop || fail "alice's laptop went offline"

as alice stop "$SID"
as bob stop "$BOB_SID"
echo "users: OK"
