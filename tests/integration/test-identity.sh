#!/usr/bin/env bash
# test-identity.sh: machines prove an Ed25519 key, not a token.
#  1. `baton-local pair` shows a code and a QR code; `baton pair approve`
#     binds its key to a machine; the daemon then starts with no token and
#     runs a session.
#  2. A code works once; a read-only token cannot approve; a wrong code is
#     not found (exit 4).
#  3. A code expires (--pair-ttl): pair exits 1, a late approve exits 4,
#     also while the laptop still waits on its connection.
#  4. A copied machine token with the paired name but another key is
#     refused, and the real laptop stays online.
#  5. A machine.json without its key is refused with a pointer to pairing.
#  6. A machine.key that others may read stops baton-local at start.
#  7. A recorded challenge answer is worth nothing on another connection.
#  8. A sandbox's bootstrap credential works once, and its agent never
#     sees it in its environment.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

POKE=$BATON_BIN/tests/ws-poke
[ -x "$POKE" ] || fail "$POKE is not built (target ws-poke)"

# The sandbox starts through a wrapper that notes the environment the
# launcher gives it (step 8 needs its bootstrap credential).
cat >"$T/sandbox-wrapper" <<SH
#!/bin/sh
env >"$T/sandbox-env.\$\$"
exec "$SANDBOX_BIN" "\$@"
SH
chmod +x "$T/sandbox-wrapper"
RELAY_ARGS+=(--sandbox-bin "$T/sandbox-wrapper")
start_relay
CLIENT_TOKEN=$(token alice client)
READ_TOKEN=$("$RELAY_BIN" token create --data "$RELAY_DATA" --user alice \
  --kind client --scope read)
write_agents

# approve_fails NAME WANT ARGS...: `baton pair approve ARGS` exits WANT
# with a message (kept in $T/approve-NAME.log).
approve_fails() {
  local name=$1 want=$2 rc=0
  shift 2
  baton pair approve "$@" >"$T/approve-$name.out" \
    2>"$T/approve-$name.log" || rc=$?
  [ $rc -eq "$want" ] || {
    cat "$T/approve-$name.out" "$T/approve-$name.log" >&2
    fail "approve ($name) exited $rc, not $want"
  }
  [ -s "$T/approve-$name.log" ] || fail "approve ($name) said nothing"
  log "approve ($name): exit $rc: $(head -n 1 "$T/approve-$name.log")"
}

# run_local LOG STATE NAME TOKEN: baton-local in the foreground, at most
# 30 s; its output goes to $T/LOG.log. Prints its exit status.
run_local() {
  local rc=0
  mkdir -p "$T/home-$1"
  HOME=$T/home-$1 BATON_TOKEN=$4 timeout 30 "$LOCAL_BIN" \
    --relay "$RELAY_URL" --state "$2" --name "$3" --agents "$T/agents.json" \
    >"$T/$1.log" 2>&1 </dev/null || rc=$?
  echo "$rc"
}

# poke NAME: runs ws-poke against the relay with the script on stdin; its
# output is in $T/NAME.out.
poke() {
  local rc=0
  cat >"$T/$1.script"
  timeout 60 "$POKE" "$RELAY_PORT" <"$T/$1.script" >"$T/$1.out" \
    2>"$T/$1.err" || rc=$?
  [ $rc -eq 0 ] || fail "ws-poke $1 exited $rc: $(cat "$T/$1.err")"
}

# stopped PID: the background process has ended.
stopped() { ! kill -0 "$1" 2>/dev/null; }

# refusals: how many hellos the relay has refused so far.
refusals() { grep -c ' refused: ' "$T/relay.log" || true; }

# --- 1. pairing, then the daemon with no token
pair_start laptop
CODE=$(pair_code laptop)
[ -n "$CODE" ] || { cat "$T/pair-laptop.out" >&2; fail "no code shown"; }
# The QR code: lines in white on black, drawn with half and full blocks.
qr_lines=$(grep -c $'\033\\[97;40m' "$T/pair-laptop.out" || true)
[ "$qr_lines" -ge 10 ] || fail "pair shows no QR code ($qr_lines lines)"
LC_ALL=C grep -q $'\xe2\x96[\x80\x84\x88]' "$T/pair-laptop.out" ||
  fail "the QR code has no block elements"
! machine_online laptop || fail "the laptop is online before it paired"
baton pair approve "$CODE" >"$T/approve.out"
grep -q '^paired laptop (machine [^)]*) for alice$' "$T/approve.out" ||
  fail "approve printed: $(cat "$T/approve.out")"
rc=0
wait "$PAIR_PID" || rc=$?
[ $rc -eq 0 ] || fail "pair exited $rc: $(cat "$T/pair-laptop.log")"
grep -q '^Paired: this laptop is machine laptop of user alice' \
  "$T/pair-laptop.out" || fail "pair did not say it paired"
[ -f "$T/state-laptop/machine.json" ] || fail "pair wrote no machine.json"
MID=$(json_field "$(cat "$T/state-laptop/machine.json")" machine)
[ -n "$MID" ] || fail "machine.json names no machine"
grep -qF "(machine $MID)" "$T/approve.out" ||
  fail "machine.json names $MID, approve said $(cat "$T/approve.out")"
[ "$(stat -c %a "$T/state-laptop/machine.key")" = 600 ] ||
  fail "machine.key has mode $(stat -c %a "$T/state-laptop/machine.key")"
log "paired with code $CODE as machine $MID; QR code of $qr_lines lines"

# No machine token: the key alone. A client token left in BATON_TOKEN (as
# one exported for `baton`) must not stand in for the key.
start_local laptop "$CLIENT_TOKEN"
wait_for 60 "the paired laptop to register without a machine token" \
  machine_online laptop
grep -F "the token given is not used" "$T/local-laptop.log" >/dev/null ||
  fail "the paired laptop did not say it ignores the token it was given"
new_repo "$T/repo"
SID=$(baton start --machine laptop --dir "$T/repo" --agent test)
wait_output "$SID" "started session $SID in $T/repo" 60
baton send "$SID" "remember the laptop paired with a code"
wait_output "$SID" "noted: the laptop paired with a code" 60
log "the paired laptop registered without a token and runs $SID"

# --- 2. a code works once; read-only tokens and wrong codes do nothing
approve_fails again 4 "$CODE"
grep -qi 'works once' "$T/approve-again.log" ||
  fail "a spent code's refusal does not say a code works once"
pair_start desk
DESK_CODE=$(pair_code desk)
CLIENT_TOKEN=$READ_TOKEN approve_fails read-only 1 "$DESK_CODE"
grep -qi 'read-only' "$T/approve-read-only.log" ||
  fail "the read-only refusal does not say read-only"
kill -0 "$PAIR_PID" || fail "pair stopped after a read-only approve"
[ ! -e "$T/state-desk/machine.json" ] ||
  fail "a read-only approve paired the desk"
! baton --json machines | flat | grep -q '"name":"desk"' ||
  fail "a read-only approve made a machine record"
wrong=ABCD-EFGH
[ "$wrong" != "$DESK_CODE" ] || wrong=HGFE-DCBA
approve_fails wrong 4 "$wrong"
# The desk's code still works: the refusals above spent nothing.
baton pair approve "$DESK_CODE" >"$T/approve-desk.out"
wait "$PAIR_PID" || fail "pair for the desk failed: $(cat "$T/pair-desk.log")"
DESK_MID=$(json_field "$(cat "$T/state-desk/machine.json")" machine)
log "a read-only token and a wrong code spent nothing; desk is $DESK_MID"

# --- 3. expiry, on a relay whose codes live 2 s
mkdir -p "$T/relay-short"
"$RELAY_BIN" serve --listen 127.0.0.1:0 --data "$T/relay-short" \
  --port-file "$T/short.port" --sandbox-bin "$SANDBOX_BIN" --pair-ttl 2 \
  >>"$T/relay-short.log" 2>&1 &
PIDS+=("$!")
wait_for 30 "the short-lived relay to listen" test -s "$T/short.port"
SHORT_URL=ws://127.0.0.1:$(cat "$T/short.port")
SHORT_TOKEN=$("$RELAY_BIN" token create --data "$T/relay-short" \
  --user alice --kind client)
short() { RELAY_URL=$SHORT_URL CLIENT_TOKEN=$SHORT_TOKEN baton "$@"; }

pair_start late "$SHORT_URL"
LATE_CODE=$(pair_code late)
wait_for 20 "pair to give up on its expired code" stopped "$PAIR_PID"
rc=0
wait "$PAIR_PID" || rc=$?
[ $rc -eq 1 ] || fail "pair with an expired code exited $rc, not 1"
grep -q 'code expired' "$T/pair-late.log" ||
  fail "pair does not say the code expired: $(cat "$T/pair-late.log")"
rc=0
short pair approve "$LATE_CODE" >/dev/null 2>"$T/approve-late.log" || rc=$?
[ $rc -eq 4 ] || fail "approving an expired code exited $rc, not 4"
[ ! -e "$T/state-late/machine.json" ] || fail "an expired code paired"
log "pair: exit 1: $(head -n 1 "$T/pair-late.log")"

# The relay itself expires the code, even while the laptop still waits.
hello_pair='{"type":"hello","body":{"version":1,"role":"pair",'\
'"name":"waiter","key":"@PUBKEY@"}}'
cat >"$T/waiter.script" <<EOF
key $T/waiter.key
text $hello_pair
until 10000 "type":"challenge"
answer
until 10000 "type":"pair.code"
wait 30000
EOF
timeout 60 "$POKE" "$(cat "$T/short.port")" <"$T/waiter.script" \
  >"$T/waiter.out" 2>"$T/waiter.err" &
POKE_PID=$!
PIDS+=("$POKE_PID")
wait_for 20 "a code for the waiting connection" \
  grep -q '"type":"pair.code"' "$T/waiter.out"
WAIT_CODE=$(sed -n 's/.*"code":"\([A-Z0-9]\{8\}\)".*/\1/p' "$T/waiter.out")
[ -n "$WAIT_CODE" ] || fail "no code in $(cat "$T/waiter.out")"
sleep 3	# the relay's clock has passed the code's last second
rc=0
short pair approve "$WAIT_CODE" >/dev/null 2>"$T/approve-waiter.log" ||
  rc=$?
[ $rc -eq 4 ] ||
  fail "approving an expired code of a waiting laptop exited $rc, not 4"
# ...and ends the laptop's wait itself, saying why (within its 5 s sweep).
wait "$POKE_PID" || true
grep -q 'the pairing code expired' "$T/waiter.out" ||
  fail "the relay did not tell the waiting laptop its code expired"
[ "$(tail -n 1 "$T/waiter.out")" = closed ] ||
  fail "the relay kept the expired pairing connection open"
! grep -q 'pair.approved' "$T/waiter.out" ||
  fail "the waiting connection was paired with an expired code"
log "the relay refuses a code older than --pair-ttl (exit 4) and hangs up"

# --- 4. a machine token cannot take a paired machine's place
MACHINE_TOKEN=$(token alice machine)
rc=$(run_local local-copy "$T/state-copy" laptop "$MACHINE_TOKEN")
[ "$rc" -eq 1 ] || fail "a token with another key: baton-local exited $rc"
grep -q 'paired with another key' "$T/local-copy.log" ||
  fail "the refusal does not say the machine is paired with another key"
machine_online laptop || fail "the real laptop went offline"
baton send "$SID" "remember the laptop kept its place"
wait_output "$SID" "noted: the laptop kept its place" 60
log "a copied token under the laptop's name: exit 1:" \
  "$(grep -m1 -o 'the machine laptop is paired with another key' \
    "$T/local-copy.log")"

# --- 5. a machine.json without its key
mkdir -p "$T/state-stranger"
cp "$T/state-laptop/machine.json" "$T/state-stranger/"
rc=$(run_local local-stranger "$T/state-stranger" laptop "")
[ "$rc" -eq 1 ] || fail "an unknown key: baton-local exited $rc, not 1"
grep -q "does not know this machine's key" "$T/local-stranger.log" ||
  fail "the refusal does not say the key is unknown"
grep -q 'baton-local pair' "$T/local-stranger.log" ||
  fail "the refusal does not say to pair"
machine_online laptop || fail "the real laptop went offline"
log "machine.json without its key: exit 1, told to pair"

# --- 6. a key others may read
chmod 644 "$T/state-stranger/machine.key"
before=$(refusals)
rc=$(run_local local-leaky "$T/state-stranger" laptop "")
[ "$rc" -eq 1 ] || fail "a readable key: baton-local exited $rc, not 1"
grep -q 'chmod 600' "$T/local-leaky.log" ||
  fail "a readable key: no word of chmod 600: $(cat "$T/local-leaky.log")"
[ "$(refusals)" -eq "$before" ] ||
  fail "baton-local with a readable key still said hello to the relay"
log "machine.key with mode 644: $(grep -m1 -o 'the machine key.*' \
  "$T/local-leaky.log" | cut -c1-90)"

# --- 7. a challenge answer replayed on another connection
hello_desk="{\"type\":\"hello\",\"body\":{\"version\":1,\"role\":\"machine\",\
\"kind\":\"local\",\"name\":\"desk\",\"machine\":\"$DESK_MID\",\
\"key\":\"@PUBKEY@\",\"sessions\":[]}}"
poke replay-a <<EOF
key $T/state-desk/machine.key
text $hello_desk
until 10000 "type":"challenge"
answer
until 10000 "type":"welcome"
close
EOF
grep -q '"type":"welcome"' "$T/replay-a.out" ||
  fail "the desk's own answer was not welcomed: $(cat "$T/replay-a.out")"
SIG=$(sed -n 's/^sent answer \([0-9a-f]*\)$/\1/p' "$T/replay-a.out")
[ ${#SIG} -eq 128 ] || fail "no signature in $(cat "$T/replay-a.out")"
poke replay-b <<EOF
key $T/state-desk/machine.key
text $hello_desk
until 10000 "type":"challenge"
text {"type":"challenge.answer","body":{"signature":"$SIG"}}
until 10000 "code":"unauthorized"
wait 2000
EOF
grep -q '"code":"unauthorized"' "$T/replay-b.out" ||
  fail "a replayed answer was not refused: $(cat "$T/replay-b.out")"
! grep -q '"type":"welcome"' "$T/replay-b.out" ||
  fail "a replayed answer was welcomed"
[ "$(tail -n 1 "$T/replay-b.out")" = closed ] ||
  fail "the relay kept the connection with a replayed answer open"
log "a replayed challenge answer: unauthorized, closed"

# --- 8. a sandbox's bootstrap credential works once
new_repo "$T/shell-repo"
SH_SID=$(baton start --machine laptop --dir "$T/shell-repo" --agent shell)
baton move "$SH_SID" --to sandbox --wait >"$T/move.out" 2>&1
session_on "$SH_SID" sandbox || fail "the shell session is not on a sandbox"
SBX_PID=
for pid in $(pgrep -f "^$SANDBOX_BIN\$" || true); do
  case $(readlink "/proc/$pid/cwd" 2>/dev/null) in
    "$RELAY_DATA"/sandboxes/*) SBX_PID=$pid ;;
  esac
done
[ -n "$SBX_PID" ] || fail "no baton-sandbox of this relay is running"
# sandbox_env NAME: a variable the launcher gave the sandbox.
sandbox_env() {
  sed -n "s/^$1=//p" "$T/sandbox-env.$SBX_PID"
}
CRED=$(sandbox_env BATON_BOOTSTRAP)
! tr '\0' '\n' <"/proc/$SBX_PID/environ" | grep -F "$CRED" >/dev/null ||
  fail "the sandbox's credential is still readable in /proc/PID/environ"
SBX_MID=$(sandbox_env BATON_MACHINE)
SBX_GEN=$(sandbox_env BATON_GENERATION)
if [ -z "$CRED" ] || [ -z "$SBX_MID" ] || [ -z "$SBX_GEN" ]; then
  fail "the sandbox was started without its bootstrap settings"
fi
# The spent credential, shown with a key of our own.
hello_sandbox="{\"type\":\"hello\",\"body\":{\"version\":1,\
\"role\":\"machine\",\"kind\":\"sandbox\",\"machine\":\"$SBX_MID\",\
\"generation\":\"$SBX_GEN\",\"token\":\"$CRED\",\"key\":\"@PUBKEY@\",\
\"sessions\":[]}}"
poke bootstrap <<EOF
key $T/thief.key
text $hello_sandbox
until 10000 "type":"challenge"
answer
until 10000 "code":"unauthorized"
wait 2000
EOF
grep -q '"code":"unauthorized".*works once' "$T/bootstrap.out" ||
  fail "a spent bootstrap credential was not refused: $(cat "$T/bootstrap.out")"
! grep -q '"type":"welcome"' "$T/bootstrap.out" ||
  fail "a spent bootstrap credential was welcomed with another key"
[ "$(tail -n 1 "$T/bootstrap.out")" = closed ] ||
  fail "the relay kept a connection with a spent credential open"
session_on "$SH_SID" sandbox || fail "the sandbox lost its session"

# The agent in the sandbox does not inherit the credential.
# shellcheck disable=SC2016 # expanded by the sandbox's shell
baton send "$SH_SID" 'echo "bootstrap=[${BATON_BOOTSTRAP-unset}] in $PWD"'
wait_output "$SH_SID" "bootstrap=[unset] in $(session_worktree "$SH_SID")" 60
log "a spent bootstrap credential is refused; the sandbox's shell has none"

echo "identity: OK"
