#!/usr/bin/env bash
# test-credits.sh: sandbox credits (issue 5, item 7). A user without credits
# has no limit: `baton credits` says so and a move to the sandbox works.
# `baton-relay credits set`, run while the relay runs, gives a few seconds;
# with --credit-tick 1 the balance `baton credits` shows goes down while the
# session runs in the sandbox, and stops at 0; the sandbox runs on (the
# session still answers). After a move back, a move to the sandbox is
# refused (exit 5, the message says the credits are spent and what to do)
# and the session stays on the laptop. A sandbox left idle is not charged.
# More credits, and the move works again. A read-only token sees the
# balance too. First, on a relay whose tick never comes: a sandbox that
# disconnects is charged its last seconds.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

# left: the seconds `baton --json credits` shows, or "none" without limit.
left() {
  local j
  j=$(baton --json credits | flat)
  if [[ $j == *'"limited":false'* ]]; then
    echo none
  else
    json_field "$j" seconds
  fi
}
# move_to WHERE: moves the session and waits until it runs there.
move_to() {
  baton --timeout 120 move "$SID" --to "$1" --wait >>"$T/move.out" 2>&1 ||
    fail "move to $1: $(tail -n 5 "$T/move.out")"
}
credits_set() {
  "$RELAY_BIN" credits set --data "$RELAY_DATA" --user alice --seconds "$1" \
    >/dev/null
}
# session_in REPO LAPTOP: starts a session of the test agent; sets SID.
session_in() {
  new_repo "$1"
  git -C "$1" remote add origin https://git.example.invalid/acme/app.git
  SID=$(baton start --machine "$2" --dir "$1" --agent test)
  wait_output "$SID" "started session $SID" 60
}

log "a sandbox that disconnects is charged its last seconds"
RELAY_ARGS=(--credit-tick 3600)
RELAY_DATA_DIR=$T/relay-untick
start_relay
CLIENT_TOKEN=$(token alice client)
write_agents
start_local untick "$(token alice machine)"
wait_for 60 "the laptop to register" machine_online untick
session_in "$T/untick" untick
credits_set 100
move_to sandbox
sleep 3
[ "$(left)" = 100 ] || fail "charged $((100 - $(left))) s before any tick"
stop_relay
n=$("$RELAY_BIN" credits show --data "$RELAY_DATA" |
  sed -n 's/^alice  *\([0-9]*\) .*/\1/p')
[ "$n" -le 97 ] && [ "$n" -ge 80 ] ||
  fail "the sandbox's last seconds were not charged: $n s left of 100"
log "charged at the disconnect: $n s left of 100"
kill_tree TERM "$LOCAL_PID_untick"
unset RELAY_PORT RELAY_DATA_DIR

RELAY_ARGS=(--credit-tick 1)
start_relay
start_laptop alice
READ=$("$RELAY_BIN" token create --data "$RELAY_DATA" --user alice \
  --kind client --scope read)
session_in "$T/app" laptop

log "no credits row: no limit, and the sandbox is not refused"
[ "$(baton credits)" = "no limit" ] ||
  fail "baton credits without a row said: $(baton credits)"
"$RELAY_BIN" credits show --data "$RELAY_DATA" --user alice |
  grep -F "alice: no limit" >/dev/null ||
  fail "credits show without a row: $("$RELAY_BIN" credits show \
    --data "$RELAY_DATA" --user alice)"
move_to sandbox
session_on "$SID" sandbox || fail "the session is not in the sandbox"
sleep 2
[ "$(left)" = none ] || fail "a user without credits got a limit: $(left)"

log "credits set while the relay runs: the balance goes down to 0"
credits_set 4
seen=()
end=$((SECONDS + 20))
while :; do
  n=$(left)
  [[ $n =~ ^[0-9]+$ ]] || fail "baton --json credits gave '$n'"
  [ ${#seen[@]} -gt 0 ] && [ "$n" -gt "${seen[-1]}" ] &&
    fail "the balance went up: ${seen[*]} $n"
  [ ${#seen[@]} -gt 0 ] && [ "$n" -eq "${seen[-1]}" ] || seen+=("$n")
  [ "$n" -eq 0 ] && break
  [ $SECONDS -lt $end ] || fail "the balance did not reach 0: ${seen[*]}"
  sleep 0.2
done
[ ${#seen[@]} -ge 3 ] ||
  fail "baton credits did not go down step by step: ${seen[*]}"
log "balances seen: ${seen[*]}"
[[ "$(baton credits)" == "no sandbox time left; ask the relay's"* ]] ||
  fail "baton credits at 0 said: $(baton credits)"
"$RELAY_BIN" credits show --data "$RELAY_DATA" | grep -E '^alice +0 ' \
  >/dev/null || fail "credits show does not list alice at 0"
grep -F "user alice's sandbox credits are spent" "$T/relay.log" >/dev/null ||
  fail "the relay did not log that alice's credits are spent"

log "at 0 the running sandbox runs on"
baton send "$SID" "remember the spent plan"
wait_output "$SID" "noted: the spent plan" 60
session_on "$SID" sandbox || fail "the session left the sandbox at 0"
[ "$(left)" = 0 ] || fail "the balance went below 0 or back up: $(left)"

log "a move back works; a move to the sandbox is refused"
move_to laptop
rc=0
baton --timeout 60 move "$SID" --to sandbox --wait >"$T/refused.out" 2>&1 ||
  rc=$?
[ $rc -eq 5 ] ||
  fail "a move with spent credits exited $rc, not 5: $(cat "$T/refused.out")"
WHY="your sandbox credits are spent (0 s left); ask the relay's operator"
WHY+=" for more (\`baton-relay credits set\`)"
grep -F "$WHY" "$T/refused.out" >/dev/null ||
  fail "the refusal does not say what to do: $(cat "$T/refused.out")"
log "refused: $(cat "$T/refused.out")"
session_on "$SID" local ||
  fail "the refused session is not running on the laptop"
baton send "$SID" "remember the laptop plan"
wait_output "$SID" "noted: the laptop plan" 60

log "an idle sandbox is not charged; read-only tokens see the balance"
# sandbox_online: the sandbox is still connected, idle.
sandbox_online() {
  baton --json machines | flat | grep -o '{[^{}]*"kind":"sandbox"[^{}]*}' |
    grep '"online":true' >/dev/null
}
credits_set 30
sleep 3
sandbox_online || fail "the sandbox went offline after the move back"
[ "$(left)" = 30 ] || fail "the idle sandbox was charged: $(left) s left of 30"
ro_said=$(CLIENT_TOKEN=$READ baton credits)
[ "$ro_said" = "30 s of sandbox time left" ] ||
  fail "a read-only token's baton credits said: $ro_said"

log "more credits: the move works again and is charged"
move_to sandbox
session_on "$SID" sandbox || fail "the session is not in the sandbox again"
below() { [ "$(left)" -lt "$1" ]; }
wait_for 20 "the balance to go down from 30" below 30
baton send "$SID" "recall"
wait_output "$SID" "end of recall" 60
transcript "$SID" | grep -F "the spent plan" >/dev/null ||
  fail "the session lost its conversation"
log "sandbox credits: metered, refused at 0, given again"
