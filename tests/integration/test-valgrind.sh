#!/usr/bin/env bash
# The relay and both daemons under valgrind through a session and a move
# there and back: no invalid access, no leak at shutdown. Skipped in the
# sanitizer build, where ASan and LSan check the same things.
source "$(dirname "$0")/lib.sh"

if sanitized; then
  echo "sanitizer build: valgrind is not used here"
  exit 0
fi
command -v valgrind >/dev/null || fail "valgrind is not installed"

VG=(valgrind --quiet --error-exitcode=99 --leak-check=full
    --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect
    --track-fds=no --child-silent-after-fork=yes)
cat >"$T/vg-sandbox" <<SH
#!/bin/sh
exec ${VG[*]} --log-file=$T/vg-sandbox-%p.log "$SANDBOX_BIN" "\$@"
SH
chmod +x "$T/vg-sandbox"

RELAY_DATA=$T/relay
mkdir -p "$RELAY_DATA"
"${VG[@]}" --log-file="$T/vg-relay.log" "$RELAY_BIN" serve \
  --listen 127.0.0.1:0 --data "$RELAY_DATA" --port-file "$T/relay.port" \
  --sandbox-bin "$T/vg-sandbox" >>"$T/relay.log" 2>&1 &
RELAY_PID=$!
PIDS+=("$RELAY_PID")
wait_for 120 "the relay to listen" test -s "$T/relay.port"
RELAY_URL=ws://127.0.0.1:$(cat "$T/relay.port")

CLIENT_TOKEN=$(token vera client)
write_agents
mkdir -p "$T/home"
HOME=$T/home BATON_TOKEN=$(token vera machine) "${VG[@]}" \
  --log-file="$T/vg-local.log" "$LOCAL_BIN" --relay "$RELAY_URL" \
  --name laptop --state "$T/state" --agents "$T/agents.json" \
  >>"$T/local-laptop.log" 2>&1 &
LOCAL_PID=$!
PIDS+=("$LOCAL_PID")
wait_for 120 "the laptop to register" machine_online laptop

WT=$T/repo
git init -q -b main "$WT"
printf 'x\n' >"$WT/x.txt" && git -C "$WT" add x.txt &&
  git -C "$WT" commit -q -m x
printf 'y\n' >"$WT/y.txt"

SID=$(baton --timeout 120 start --machine laptop --dir "$WT" --agent test)
wait_output "$SID" "> " 120
baton send "$SID" "remember valgrind"
wait_output "$SID" "noted: valgrind" 120
baton --timeout 300 move "$SID" --to sandbox --wait
baton send "$SID" "recall"
wait_output "$SID" "turn 1: remember valgrind" 120
baton --timeout 300 move "$SID" --to laptop --wait
baton --timeout 120 stop "$SID"

kill -TERM "$LOCAL_PID"
wait "$LOCAL_PID" || fail "baton-local under valgrind exited with $?"
kill -TERM "$RELAY_PID"
wait "$RELAY_PID" || fail "baton-relay under valgrind exited with $?"
for f in "$T"/vg-*.log; do
  if [ -s "$f" ]; then
    cat "$f" >&2
    fail "valgrind reported errors in $(basename "$f")"
  fi
done
n=$(ls "$T"/vg-sandbox-*.log 2>/dev/null | wc -l)
[ "$n" -ge 1 ] || fail "the sandbox never ran under valgrind"
echo "valgrind: relay, laptop and $n sandbox run(s) clean"
