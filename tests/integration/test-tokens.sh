#!/usr/bin/env bash
# test-tokens.sh: scoped, expiring, revocable client tokens. A read-only
# token lists, reads the status of and tails a session, but send, move,
# stop and start are refused (exit 1, "read-only") and nothing it types
# reaches the agent. A revoked and an expired token are refused at connect
# (exit 3) with a message that says which. `token list` never shows a token.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

start_relay
STEER=$(token alice client)
READ=$("$RELAY_BIN" token create --data "$RELAY_DATA" --user alice \
  --kind client --scope read)
MACHINE=$(token alice machine)
CLIENT_TOKEN=$STEER
write_agents

# ro ARGS...: the client with the read-only token.
ro() { CLIENT_TOKEN=$READ baton "$@"; }

start_local laptop "$MACHINE"
wait_for 60 "the laptop to register" machine_online laptop
mkdir -p "$T/repo"
git -C "$T/repo" init -q
printf 'x\n' >"$T/repo/a.txt"
git -C "$T/repo" add a.txt
git -C "$T/repo" commit -q -m first

SID=$(baton start --machine laptop --dir "$T/repo" --agent test)
wait_output "$SID" "started session $SID in $T/repo" 60
baton send "$SID" "remember the steer token's plan"
wait_output "$SID" "noted: the steer token's plan" 60

# Watching works.
ro sessions | grep -F "$SID" >/dev/null || fail "a read-only token does not list sessions"
ro --json machines | flat | grep '"name":"laptop"' >/dev/null ||
  fail "a read-only token does not list machines"
[ "$(json_field "$(ro --json status "$SID")" state)" = running ] ||
  fail "a read-only token cannot read the status"
ro tail "$SID" --from 0 | grep -F "noted: the steer token's plan" >/dev/null ||
  fail "a read-only token cannot tail the session"
before=$(baton tail "$SID" --from 0)
log "read-only token: sessions, machines, status and tail work"

# expect_read_only DESCRIPTION ARGS...: the command exits 1 and says why.
expect_read_only() {
  local what=$1 rc=0
  shift
  ro "$@" >"$T/ro.out" 2>"$T/ro.err" </dev/null || rc=$?
  [ $rc -eq 1 ] || {
    cat "$T/ro.out" "$T/ro.err" >&2
    fail "a read-only $what exited $rc, not 1"
  }
  grep -qi 'read-only' "$T/ro.err" || {
    cat "$T/ro.err" >&2
    fail "a read-only $what's refusal does not say read-only"
  }
  log "read-only $what: exit 1: $(grep -i 'read-only' "$T/ro.err" | head -n 1 | cut -c1-100)"
}
expect_read_only send send "$SID" "edit pwned.txt read-only was here"
expect_read_only move move "$SID" --to laptop --wait
expect_read_only stop stop "$SID"
expect_read_only start start --machine laptop --dir "$T/repo" --agent test
[ "$(ro --json sessions | flat | grep -o '"id"' | wc -l)" -eq 1 ] ||
  fail "a read-only start made a session"

# Nothing reached the session: the steer token's recall lists one turn.
baton send "$SID" "recall"
wait_output "$SID" "end of recall" 60
after=$(baton tail "$SID" --from 0)
[ "${after:0:${#before}}" = "$before" ] ||
  fail "the transcript changed while the read-only token tried it"
printf '%s\n' "${after:${#before}}" | tr -d '\r' >"$T/after.txt"
[ "$(grep -c '^turn ' "$T/after.txt")" -eq 1 ] || {
  cat "$T/after.txt" >&2
  fail "the agent got a turn the steer token did not send"
}
! grep -q 'pwned\|read-only was here' "$T/after.txt" ||
  fail "read-only input reached the agent"
[ ! -e "$T/repo/pwned.txt" ] || fail "read-only input reached the agent"
[ "$(json_field "$(baton --json status "$SID")" state)" = running ] ||
  fail "the session is no longer running"
log "nothing the read-only token sent reached the session"

# token list: ids and scopes, never a token.
"$RELAY_BIN" token list --data "$RELAY_DATA" >"$T/list.txt"
for t in "$STEER" "$READ" "$MACHINE"; do
  ! grep -qF "${t:3}" "$T/list.txt" || fail "token list shows a token"
done
grep -q 'alice .*client .*read ' "$T/list.txt" ||
  { cat "$T/list.txt" >&2; fail "token list does not show the read scope"; }
[ "$(grep -c 'alice' "$T/list.txt")" -eq 3 ] ||
  { cat "$T/list.txt" >&2; fail "token list does not show alice's 3 tokens"; }

# Revoked: works before, refused (exit 3, "revoked") after, while the
# relay runs.
CAROL=$(token carol client)
CLIENT_TOKEN=$CAROL baton sessions >/dev/null || fail "carol's new token fails"
"$RELAY_BIN" token list --data "$RELAY_DATA" --user carol >"$T/carol.txt"
! grep -qF "${CAROL:3}" "$T/carol.txt" || fail "token list shows carol's token"
CAROL_ID=$(awk 'NR == 2 { print $1 }' "$T/carol.txt")
[ -n "$CAROL_ID" ] && [ "$(wc -l <"$T/carol.txt")" -eq 2 ] ||
  { cat "$T/carol.txt" >&2; fail "token list --user carol is not one token"; }
"$RELAY_BIN" token revoke --data "$RELAY_DATA" "$CAROL_ID" >/dev/null
"$RELAY_BIN" token list --data "$RELAY_DATA" --user carol |
  grep -q "^$CAROL_ID .* revoked$" || fail "token list does not say revoked"
rc=0
CLIENT_TOKEN=$CAROL baton sessions >"$T/rev.out" 2>"$T/rev.err" || rc=$?
[ $rc -eq 3 ] || { cat "$T/rev.err" >&2; fail "a revoked token got exit $rc"; }
grep -qi 'revoked' "$T/rev.err" ||
  fail "the revoked token's refusal does not say so: $(cat "$T/rev.err")"
log "revoked token: exit 3: $(head -n 1 "$T/rev.err")"
rc=0
"$RELAY_BIN" token revoke --data "$RELAY_DATA" 0123456789ab \
  2>"$T/norev.err" || rc=$?
[ $rc -eq 1 ] && grep -q 'token list' "$T/norev.err" ||
  fail "revoking an unknown id exited $rc: $(cat "$T/norev.err")"

# Expired: a 3 s token works at once, then is refused (exit 3, "expired").
made=$SECONDS
SHORT=$("$RELAY_BIN" token create --data "$RELAY_DATA" --user dave \
  --kind client --expires 3s)
rc=0
CLIENT_TOKEN=$SHORT baton sessions >/dev/null 2>&1 || rc=$?
# (Only when this machine was quick enough to ask within the 3 s.)
[ $rc -eq 0 ] || [ $((SECONDS - made)) -ge 2 ] ||
  fail "a token that expires in 3 s was refused at once (exit $rc)"
expired() {
  local rc=0
  CLIENT_TOKEN=$SHORT baton sessions >"$T/exp.out" 2>"$T/exp.err" || rc=$?
  [ $rc -eq 3 ]
}
wait_for 15 "the 3 s token to expire" expired
grep -qi 'expired' "$T/exp.err" ||
  fail "the expired token's refusal does not say so: $(cat "$T/exp.err")"
log "expired token: exit 3: $(head -n 1 "$T/exp.err")"
"$RELAY_BIN" token list --data "$RELAY_DATA" --user dave | grep ' expired$' >/dev/null ||
  fail "token list does not say expired"

# Bad durations and scopes are usage errors.
for args in "--expires 5x" "--expires -1h" "--scope admin" \
            "--kind machine --scope read"; do
  rc=0
  # shellcheck disable=SC2086
  "$RELAY_BIN" token create --data "$RELAY_DATA" --user erin --kind client \
    $args >/dev/null 2>&1 || rc=$?
  [ $rc -eq 2 ] || fail "token create $args exited $rc, not 2"
done

baton stop "$SID"
echo "tokens: OK"
