#!/usr/bin/env bash
# Disk trouble at the relay: its data folder fills up while an agent is
# printing. The relay says why, keeps serving, and stores nothing broken;
# the laptop keeps the output it could not deliver and sends it again once
# there is room, so the transcript ends up whole, each byte once.
source "$(dirname "$0")/lib.sh"

if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: needs root to mount a small tmpfs for the full disk"
  exit 0
fi
mkdir -p "$T/small"
mount -t tmpfs -o size=6m tmpfs "$T/small" ||
  fail "cannot mount a tmpfs to fill (is this a container without mount?)"
CLEANUP+=("umount -l '$T/small'")

RELAY_DATA_DIR=$T/small/relay start_relay
start_laptop flo

WT=$T/repo
new_repo "$WT"
SID=$(baton start --machine laptop --dir "$WT" --agent test)
wait_output "$SID" "> "

BURST=16000000
baton send "$SID" "burst $BURST"
full() { grep -q "cannot store output" "$T/relay.log"; }
wait_for 120 "the relay's disk to fill" full
log "relay: $(grep -m1 'cannot store output' "$T/relay.log" | cut -c25-)"

# The relay still answers, and the agent ran to the end meanwhile.
baton sessions >/dev/null || fail "the relay stopped answering"
conv=$(find "$T/home-laptop/.baton-test-agent" -name "$SID.jsonl")
finished() { grep -q "burst done" "$conv"; }
wait_for 120 "the agent to finish its burst" finished

mount -o remount,size=64m "$T/small"
wait_output "$SID" "burst done" 180
transcript "$SID" | tr -d '\r' | grep -E '^[0-9]{8} [a-z]+$' |
  awk -v want=$(((BURST + 63) / 64)) '
    { if ($1 != sprintf("%08d", ((NR - 1) * 64) % 100000000)) {
        print "line " NR " is " $1; bad = 1; exit } }
    END { if (!bad && NR != want) { print NR " lines, not " want; bad = 1 }
          exit bad }' >&2 || fail "the burst arrived damaged"
echo "disk full: nothing lost, nothing doubled"
