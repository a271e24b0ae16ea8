#!/usr/bin/env bash
# test-sync.sh: workspace sync and the offline fallback. With sync on, the
# laptop uploads a checkpoint when the worktree or the agent's state
# changes (file events plus a periodic check), only the objects the relay
# lacks, and nothing when nothing changed; `baton status` shows the last
# upload. When the laptop is offline, a move to the sandbox resumes from
# the last upload and says how old it is; with sync off, or nothing
# uploaded yet, the answer says what is missing. When the laptop comes
# back it stands down and its worktree is left as it was.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

export BATON_SYNC_INTERVAL=1
RELAY_ARGS=(--ping-interval 1 --dead-after 3)
start_relay
start_laptop alice

# repo NAME: a repository with an origin (never contacted); prints its dir.
repo() {
  new_repo "$T/$1"
  git -C "$T/$1" remote add origin "https://git.example.invalid/acme/$1.git"
  echo "$T/$1"
}
# syncs: how many uploads the relay has kept so far.
syncs() { grep -c 'synced checkpoint' "$T/relay.log" || true; }
# last_sync_bytes: the size of the last upload's objects.
last_sync_bytes() {
  grep 'synced checkpoint' "$T/relay.log" | tail -n 1 |
    sed 's/.*(\([0-9]*\) bytes of objects).*/\1/'
}

A=$(repo app)
B=$(repo docs)
C=$(repo late)
head -c 200000 /dev/urandom >"$A/big.bin"
git -C "$A" add big.bin && git -C "$A" commit -q -m big
SID=$(baton start --machine laptop --dir "$A" --agent test)
SB=$(baton start --machine laptop --dir "$B" --agent test)
SC=$(baton start --machine laptop --dir "$C" --agent test)
wait_output "$SID" "> " 30
baton send "$SID" "remember the plan from before sync"
wait_output "$SID" "noted: the plan from before sync" 30
baton status "$SID" | grep -E '^sync +off$' >/dev/null ||
  fail "status does not say sync is off: $(baton status "$SID")"

log "sync on: a first upload, then nothing while nothing changes"
baton sync on "https://git.example.invalid/acme/app.git" >/dev/null
wait_for 30 "the first upload" sh -c "[ \$(grep -c 'synced checkpoint' \
  '$T/relay.log') -ge 1 ]"
first=$(last_sync_bytes)
[ "$first" -gt 200000 ] || fail "the first upload held only $first bytes"
n=$(syncs)
sleep 4	# four periodic checks
[ "$(syncs)" = "$n" ] || fail "uploads went on with nothing changed"
baton status "$SID" | grep -E '^sync +on; last .* checkpoint [0-9a-f]{12}$' \
  >/dev/null || fail "status does not show the last upload: $(baton status "$SID")"

log "a file event: only what the relay lacks goes up"
printf 'a new note\n' >"$A/notes.md"
wait_for 30 "an upload after the edit" sh -c "[ \$(grep -c \
  'synced checkpoint' '$T/relay.log') -gt $n ]"
second=$(last_sync_bytes)
[ "$second" -lt 20000 ] ||
  fail "the second upload sent $second bytes: not only what was missing"
log "uploads: $first bytes, then $second"

log "the agent's state counts too"
baton send "$SID" "remember the plan made after sync"
wait_output "$SID" "noted: the plan made after sync" 30
n=$(syncs)
wait_for 30 "an upload of the agent's new turn" sh -c "[ \$(grep -c \
  'synced checkpoint' '$T/relay.log') -gt $n ]"
sleep 2
n=$(syncs)
before=$(fingerprint "$A")

log "the laptop goes offline"
kill -STOP "$LOCAL_PID_laptop"
CLEANUP+=("kill -CONT $LOCAL_PID_laptop 2>/dev/null")
# late: sync turned on while the laptop cannot upload anything
baton sync on "https://git.example.invalid/acme/late.git" >/dev/null
wait_for 30 "the relay to see the laptop offline" sh -c "! \
  BATON_RELAY=$RELAY_URL BATON_TOKEN=$CLIENT_TOKEN $CLIENT_BIN --json \
  machines | tr -d '\n\t ' | grep -q '\"name\":\"laptop\"[^}]*\"online\":true'"

rc=0
baton --timeout 60 move "$SB" --to sandbox --wait >"$T/move-b.out" 2>&1 ||
  rc=$?
[ $rc -eq 5 ] || fail "move with sync off: exit $rc: $(cat "$T/move-b.out")"
grep -F "sync is off" "$T/move-b.out" >/dev/null ||
  fail "move with sync off does not say so: $(cat "$T/move-b.out")"
log "sync off: $(tail -n 1 "$T/move-b.out" | cut -c1-100)..."
rc=0
baton --timeout 60 move "$SC" --to sandbox --wait >"$T/move-c.out" 2>&1 ||
  rc=$?
[ $rc -eq 5 ] && grep -F "uploaded nothing yet" "$T/move-c.out" >/dev/null ||
  fail "move with nothing uploaded: exit $rc: $(cat "$T/move-c.out")"
log "nothing uploaded: $(tail -n 1 "$T/move-c.out" | cut -c1-100)..."

baton --timeout 120 move "$SID" --to sandbox --wait >"$T/move.out" 2>&1 ||
  fail "the offline move failed: $(cat "$T/move.out")"
grep -E "offline: resuming from the checkpoint [0-9a-f]{12} synced [0-9]+ s ago" \
  "$T/move.out" >/dev/null || fail "the move does not say the upload's age: $(cat "$T/move.out")"
session_on "$SID" sandbox || fail "the session is not on the sandbox"
SBX=$(session_worktree "$SID")
diff <(echo "$before") <(fingerprint "$SBX") >&2 ||
  fail "the sandbox does not hold the last uploaded state"
baton send "$SID" "recall"
wait_output "$SID" "turn 2: remember the plan made after sync" 60
log "offline move: $(grep offline: "$T/move.out" | cut -c1-110)"

log "the laptop comes back: it stands down and keeps its files"
printf 'laptop-only edit\n' >"$A/notes.md"
after_edit=$(fingerprint "$A")
kill -CONT "$LOCAL_PID_laptop"
wait_for 60 "the laptop to register again" machine_online laptop
wait_for 30 "the laptop to stand down" grep -q \
  "session $SID: the relay says another machine owns it" "$T/local-laptop.log"
session_on "$SID" sandbox || fail "the session left the sandbox"
[ "$(fingerprint "$A")" = "$after_edit" ] ||
  fail "the laptop's worktree was changed on its return"
grep -F 'laptop-only edit' "$A/notes.md" >/dev/null ||
  fail "the laptop's own edit is gone"
log "workspace sync: incremental, quiet when idle, the offline move works"
