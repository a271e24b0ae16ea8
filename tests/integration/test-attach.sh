#!/usr/bin/env bash
# test-attach.sh: `baton attach` in a real terminal. util-linux `script`
# gives the client a pseudo-terminal whose keyboard is a fifo we write to.
# Typed text reaches the agent (its answer shows in the transcript and on
# the attached terminal), Ctrl-] detaches: the client exits 0, says
# "detached", gives the terminal back in its normal mode, and the session
# keeps running.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

command -v script >/dev/null || fail "util-linux 'script' is not installed"

start_relay
CLIENT_TOKEN=$(token alice client)
MACHINE_TOKEN=$(token alice machine)
write_agents
start_local laptop "$MACHINE_TOKEN"
wait_for 60 "the laptop to register" machine_online laptop

mkdir -p "$T/repo"
git -C "$T/repo" init -q
printf 'attach me\n' >"$T/repo/file.txt"
git -C "$T/repo" add file.txt
git -C "$T/repo" commit -q -m attach
SID=$(baton start --machine laptop --dir "$T/repo" --agent test)
wait_output "$SID" "started session $SID" 60
wait_output "$SID" "> " 60

# The terminal: `script` runs the client on a new pseudo-terminal, copies
# everything written to it to attach.out, and feeds it our keystrokes from
# a fifo. We hold the fifo open (fd 7), so it never sees end of input.
# After the client exits, the same terminal reports its mode (stty -a).
mkfifo "$T/keys"
exec 7<>"$T/keys"
cmd="'$CLIENT_BIN' attach $SID; rc=\$?; echo; echo attach-exit=\$rc; stty -a; exit \$rc"
BATON_RELAY=$RELAY_URL BATON_TOKEN=$CLIENT_TOKEN SHELL=/bin/sh \
  script -qfec "$cmd" /dev/null <"$T/keys" >"$T/attach.out" 2>"$T/attach.err" &
ATTACH_PID=$!
PIDS+=("$ATTACH_PID")

screen_has() { grep -aqF -- "$1" "$T/attach.out"; }
screen() { echo "----- the attached terminal:" >&2; cat -v "$T/attach.out" >&2; }

end=$((SECONDS + 30))
until screen_has "attached to $SID"; do
  kill -0 "$ATTACH_PID" 2>/dev/null || { screen; fail "baton attach ended before it attached"; }
  [ $SECONDS -lt $end ] || { screen; fail "baton attach did not attach in 30 s"; }
  sleep 0.1
done
log "attached; typing"

printf 'remember typed in attach\r' >&7
wait_output "$SID" "noted: typed in attach" 60
end=$((SECONDS + 30))
until screen_has "noted: typed in attach"; do
  [ $SECONDS -lt $end ] || { screen; fail "the agent's answer never reached the attached terminal"; }
  sleep 0.1
done
log "the agent answered, in the transcript and on the terminal; detaching"

printf '\035' >&7   # Ctrl-]
end=$((SECONDS + 30))
while kill -0 "$ATTACH_PID" 2>/dev/null; do
  [ $SECONDS -lt $end ] || { screen; fail "baton attach did not exit within 30 s of Ctrl-]"; }
  sleep 0.1
done
rc=0
wait "$ATTACH_PID" || rc=$?
exec 7>&-

screen_has "attach-exit=0" || { screen; fail "baton attach did not exit 0 after Ctrl-] (script exited $rc)"; }
[ "$rc" -eq 0 ] || { screen; fail "script exited $rc"; }
screen_has "detached" || { screen; fail "baton attach did not print 'detached'"; }
# The terminal is back in its normal (cooked, echoing) mode.
modes=$(sed -n '/attach-exit=/,$p' "$T/attach.out" | tr -s ' \r\n;' '\n')
grep -qx -- "-icanon" <<<"$modes" && { screen; fail "the terminal was left without icanon (raw)"; }
grep -qx -- "-echo" <<<"$modes" && { screen; fail "the terminal was left without echo"; }
grep -qx -- "icanon" <<<"$modes" || { screen; fail "no 'stty -a' report after the client exited"; }

status=$(baton --json status "$SID")
[ "$(json_field "$status" state)" = running ] ||
  fail "the session does not run after the detach: $status"
# and it still answers, with nobody attached
baton send "$SID" "remember after the detach"
wait_output "$SID" "noted: after the detach" 60
log "attach: OK"
