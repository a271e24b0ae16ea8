#!/usr/bin/env bash
# test-moved-back-onto-changes.sh (case moved-back-onto-changes): while the
# session is on the sandbox, someone creates scratch.txt and edits a tracked
# file in the laptop's worktree, and the agent edits files in the sandbox.
# On the move back nothing on the laptop is overwritten or deleted: the
# session is restored beside the worktree, `move --wait` says where, the
# session's worktree is that folder, and it holds exactly the sandbox's state.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

start_relay
CLIENT_TOKEN=$(token alice client)
write_agents
start_local laptop "$(token alice machine)"
wait_for 60 "the laptop to register" machine_online laptop

WT=$T/laptop/repo
mkdir -p "$WT"
git -C "$WT" init -q -b main
printf 'line 1\n' >"$WT/tracked.txt"
printf 'other\n' >"$WT/other.txt"
printf 'ignored/\n' >"$WT/.gitignore"
git -C "$WT" add tracked.txt other.txt .gitignore
git -C "$WT" commit -q -m base
mkdir -p "$WT/ignored" && printf 'local only\n' >"$WT/ignored/keep.txt"
printf 'uncommitted before the move\n' >>"$WT/other.txt"

SID=$(baton start --machine laptop --dir "$WT" --agent test)
wait_output "$SID" "started session $SID" 60
baton send "$SID" "remember started on the laptop"
wait_output "$SID" "noted: started on the laptop" 60

baton move "$SID" --to sandbox --wait >"$T/move-out.txt" 2>&1 ||
  { cat "$T/move-out.txt" >&2; fail "the move to the sandbox failed"; }
status=$(baton --json status "$SID")
[ "$(json_field "$status" kind)" = sandbox ] ||
  fail "the session is not on the sandbox: $status"
SBX=$(json_field "$status" worktree)

# Meanwhile, on the laptop.
printf 'scratch made on the laptop\n' >"$WT/scratch.txt"
printf 'line 2 edited on the laptop\n' >>"$WT/tracked.txt"
laptop_state=$(fingerprint "$WT")
laptop_sums=$(cd "$WT" && sha256sum scratch.txt tracked.txt other.txt ignored/keep.txt)

# Meanwhile, in the sandbox: the agent edits the same tracked file and
# creates a file of its own.
baton send "$SID" "edit tracked.txt line 2 edited in the sandbox"
wait_output "$SID" "edited tracked.txt" 60
baton send "$SID" "edit sandbox-notes.txt written in the sandbox"
wait_output "$SID" "edited sandbox-notes.txt" 60
grep -qx 'line 2 edited in the sandbox' "$SBX/tracked.txt" ||
  fail "the agent's edit is not in the sandbox's worktree"
sbx_state=$(fingerprint "$SBX")

# Back to the laptop.
start=$(date +%s%N)
baton move "$SID" --to laptop --wait >"$T/move-back.txt" 2>"$T/move-back.err" || {
  cat "$T/move-back.txt" "$T/move-back.err" >&2
  fail "the move back failed"
}
log "moved back in $((($(date +%s%N) - start) / 1000000)) ms:"
sed 's/^/    /' "$T/move-back.txt" >&2

# Nothing on the laptop was overwritten or deleted.
now_sums=$(cd "$WT" && sha256sum scratch.txt tracked.txt other.txt ignored/keep.txt 2>&1) || true
[ "$now_sums" = "$laptop_sums" ] || {
  diff <(echo "$laptop_sums") <(echo "$now_sums") >&2 || true
  fail "the laptop's files changed on the move back"
}
now_state=$(fingerprint "$WT")
[ "$now_state" = "$laptop_state" ] || {
  diff <(echo "$laptop_state") <(echo "$now_state") >&2 || true
  fail "the laptop's worktree changed on the move back (< before, > after)"
}
[ ! -e "$WT/sandbox-notes.txt" ] ||
  fail "the sandbox's file was written into the changed worktree"

# The user is told where the session went: a note naming a folder.
grep -q '^note: ' "$T/move-back.txt" ||
  fail "move --wait printed no note about where the session was restored"
status=$(baton --json status "$SID")
[ "$(json_field "$status" kind)" = local ] ||
  fail "the session is not back on the laptop: $status"
NEW=$(json_field "$status" worktree)
[ -n "$NEW" ] && [ "$NEW" != "$WT" ] ||
  fail "the session's worktree is the changed one: $status"
grep '^note: ' "$T/move-back.txt" | grep -F -- "$NEW" >/dev/null ||
  fail "the note does not name the session's new folder $NEW"
grep -q "^moved $SID to laptop (local), worktree $NEW\$" "$T/move-back.txt" ||
  fail "the move's last line does not name $NEW"
[ -d "$NEW" ] || fail "$NEW is not a folder"
case $NEW in
  "$(dirname "$WT")"/*) ;;
  *) fail "$NEW is not beside $WT" ;;
esac
log "restored beside the worktree in $NEW"

# That folder holds exactly the sandbox's state.
got=$(fingerprint "$NEW")
[ "$got" = "$sbx_state" ] || {
  diff <(echo "$sbx_state") <(echo "$got") >&2 || true
  fail "$NEW differs from the sandbox's worktree (< sandbox, > laptop)"
}
[ ! -e "$NEW/scratch.txt" ] || fail "the laptop's scratch.txt leaked into $NEW"
[ ! -e "$NEW/ignored/keep.txt" ] || fail "an ignored file travelled into $NEW"

# The agent runs there and remembers every turn.
wait_output "$SID" "resumed session $SID with 3 turns" 60
baton send "$SID" "recall"
wait_output "$SID" "turn 3: edit sandbox-notes.txt written in the sandbox" 60
baton send "$SID" "edit after-return.txt back on the laptop"
wait_output "$SID" "edited after-return.txt" 60
[ -f "$NEW/after-return.txt" ] && [ ! -e "$WT/after-return.txt" ] ||
  fail "the agent does not run in $NEW"
[ "$(fingerprint "$WT")" = "$laptop_state" ] ||
  fail "the laptop's worktree changed after the session came back"

baton stop "$SID"
echo "moved back onto changes: OK (restored in $NEW)"
