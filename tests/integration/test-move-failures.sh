#!/usr/bin/env bash
# Moves that cannot finish: a sandbox that dies before it connects, and a
# setup script that fails. Each time the session must come back to the
# laptop at its checkpoint, with its conversation, and the client must be
# told why.
source "$(dirname "$0")/lib.sh"

start_relay
start_laptop carol

WT=$T/repo
git init -q -b main "$WT"
printf 'one\n' >"$WT/a.txt"
git -C "$WT" add a.txt && git -C "$WT" commit -q -m one
printf 'dirty\n' >>"$WT/a.txt"
before=$(fingerprint "$WT")

SID=$(baton start --machine laptop --dir "$WT" --agent test)
wait_output "$SID" "> "
baton send "$SID" "remember first turn"
wait_output "$SID" "noted: first turn"

# 1. The setup script's pipeline fails: start_error, back to the laptop.
mkdir -p "$WT/.baton"
printf 'echo setting up\nfalse | cat\n' >"$WT/.baton/setup"
if out=$(baton move "$SID" --to sandbox --wait 2>&1); then
  fail "the move succeeded although the setup script failed: $out"
fi
echo "$out" | grep "start_error" >/dev/null ||
  fail "the client was not told of start_error: $out"
echo "$out" | grep "setting up" >/dev/null ||
  fail "the setup log did not reach the client: $out"
wait_for 60 "the session to run on the laptop again" session_on "$SID" local
[ "$(session_worktree "$SID")" = "$WT" ] ||
  fail "the session came back to another folder"
rm -rf "$WT/.baton"
diff <(echo "$before") <(fingerprint "$WT") ||
  fail "the laptop's worktree changed after a failed move"
baton send "$SID" "recall"
wait_output "$SID" "turn 1: remember first turn"

# 2. The sandbox program dies at once: the move falls back to the laptop.
stop_relay
printf '#!/bin/sh\necho "sandbox failing on purpose" >&2\nexit 3\n' \
  >"$T/broken-sandbox"
chmod +x "$T/broken-sandbox"
SANDBOX_BIN=$T/broken-sandbox start_relay
wait_for 30 "the laptop to come back" machine_online laptop
if out=$(baton move "$SID" --to sandbox --wait 2>&1); then
  fail "the move succeeded with a broken sandbox: $out"
fi
echo "$out" | grep "exited with status 3" >/dev/null ||
  fail "the client was not told why: $out"
wait_count "$SID" "resumed session $SID" 2
baton send "$SID" "recall"
wait_count "$SID" "end of recall" 2
n=$(transcript "$SID" | grep -c "turn 1: remember first turn")
[ "$n" -ge 2 ] || fail "the conversation did not survive the failed moves"
echo "failed moves: OK"
