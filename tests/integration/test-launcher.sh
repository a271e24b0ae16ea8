#!/usr/bin/env bash
# The command launcher (--sandbox-launcher command:TEMPLATE): a script
# stands in for a container runtime. It records its arguments and the
# names in its environment, then runs baton-sandbox in the foreground,
# starts it detached and exits 0 (like docker run -d), or fails at once.
# Sessions move to such sandboxes and back; the placeholders are replaced;
# the bootstrap credential is in the environment and in no argv or log;
# a failing command fails the move and the session comes back to the
# laptop; the stop command runs when the relay stops, or else SIGTERM.
source "$(dirname "$0")/lib.sh"

# 1. Bad templates are usage errors before anything starts.
bad_launcher() {
  local want=$1 out rc=0
  shift
  out=$(timeout 10 "$RELAY_BIN" serve --listen 127.0.0.1:0 \
        --data "$T/never" "$@" 2>&1) || rc=$?
  [ "$rc" -eq 2 ] || fail "serve $* exited with $rc, not 2: $out"
  grep -qF -- "$want" <<<"$out" || fail "serve $* did not say '$want': $out"
}
bad_launcher "the command template is empty" --sandbox-launcher command:
bad_launcher "the command template is empty" --sandbox-launcher 'command:  '
bad_launcher "unknown placeholder {image}" \
  --sandbox-launcher 'command:docker run {image}'
bad_launcher "'{' without '}'" --sandbox-launcher 'command:x {machine'
bad_launcher "takes process or command:TEMPLATE, not 'docker'" \
  --sandbox-launcher docker
bad_launcher "unknown placeholder {id}" --sandbox-launcher command:x \
  --sandbox-stop 'command:docker rm -f {id}'
bad_launcher "--sandbox-stop goes with --sandbox-launcher" \
  --sandbox-stop 'command:docker rm -f baton-{machine}'
[ ! -e "$T/never" ] || fail "serve made its data folder despite bad options"

# 2. The stand-in runtime and its stop command. Its sandboxes run from
# $T/bin, so that lib.sh's cleanup finds any left behind.
mkdir -p "$T/bin" "$T/calls"
ln -s "$SANDBOX_BIN" "$T/bin/baton-sandbox"
echo exec >"$T/runtime.mode"
cat >"$T/bin/runtime" <<EOF
#!/usr/bin/env bash
# runtime run --name NAME ...: records, then runs the sandbox as told.
set -eu
name=\$3
rec=$T/calls/\$name
printf '%s\n' "\$@" >"\$rec.argv"
tr '\0' '\n' </proc/\$\$/cmdline >"\$rec.cmdline"
compgen -e | sort >"\$rec.env"
(umask 077; printf '%s' "\$BATON_BOOTSTRAP" >"\$rec.secret")
case \$(cat $T/runtime.mode) in
exec)
  echo \$\$ >"\$rec.pid"
  exec $T/bin/baton-sandbox ;;
detach)
  $T/bin/baton-sandbox </dev/null &
  echo \$! >"\$rec.pid" ;;
fail)
  echo "runtime: cannot pull the image" >&2
  exit 125 ;;
vanish)
  echo "runtime: started (but nothing will come up)" ;;
esac
EOF
cat >"$T/bin/stop" <<EOF
#!/usr/bin/env bash
# stop NAME: stops the sandbox runtime started as NAME and waits for it,
# as docker stop does.
echo "\$1" >>$T/stopped
pid=\$(cat $T/calls/\$1.pid)
kill -TERM "\$pid"
while [ -d /proc/\$pid ] && ! grep -q ') Z' /proc/\$pid/stat; do
  sleep 0.05
done
EOF
chmod +x "$T/bin/runtime" "$T/bin/stop"
# Words are split on spaces, tabs and newlines.
LAUNCH="command:$T/bin/runtime run --name baton-{machine}-{generation}"
LAUNCH+=" --user {user} --workspace {workspace}"$'\t'"--relay {relay}"
LAUNCH+=$'\n'"  --home {home} --workdir {workdir}"
RELAY_ARGS=(--sandbox-launcher "$LAUNCH" --launch-timeout 3
            --sandbox-stop "command:$T/bin/stop baton-{machine}-{generation}")
start_relay
start_laptop lena

# alive PID: the process runs (a zombie waiting for its parent does not).
alive() {
  [ -d "/proc/$1" ] && ! grep -q ') Z' "/proc/$1/stat" 2>/dev/null
}

# repo DIR: a repository of its own (its own workspace, so its own sandbox).
repo() {
  new_repo "$1"
  printf '%s\n' "$1" >"$1/name.txt"
  git -C "$1" add name.txt && git -C "$1" commit -q -m name
}

# to_sandbox SID: moves the session to a sandbox and has the agent work
# there; sets MID to the sandbox's machine id, WID to its workspace id.
to_sandbox() {
  baton move "$1" --to sandbox --wait >/dev/null ||
    fail "session $1 did not move to a sandbox"
  wait_for 30 "session $1 to run in its sandbox" session_on "$1" sandbox
  baton send "$1" "remember working in the sandbox"
  wait_output "$1" "noted: working in the sandbox"
  MID=$(session_worktree "$1" |
        sed -n "s|^$T/relay/sandboxes/\([^/]*\)/.*|\1|p")
  [ -n "$MID" ] || fail "session $1 runs outside the sandbox folders"
  WID=$(json_field "$(baton --json status "$1")" workspace)
}

# back_home SID: moves the session back; the agent remembers its turns.
back_home() {
  baton move "$1" --to laptop --wait >/dev/null ||
    fail "session $1 did not move back to the laptop"
  wait_for 30 "session $1 to run on the laptop" session_on "$1" local
  baton send "$1" "recall"
  wait_output "$1" "turn 1: remember working in the sandbox"
}

# check_call NAME MACHINE WORKSPACE: the runtime got each placeholder's
# value, and BATON_BOOTSTRAP in its environment, never as an argument.
check_call() {
  local rec=$T/calls/$1 dir=$T/relay/sandboxes/$2
  [ -f "$rec.argv" ] || fail "the runtime was not run as $1: $(ls "$T/calls")"
  diff "$rec.argv" - <<EOF || fail "wrong arguments for $1"
run
--name
$1
--user
lena
--workspace
$3
--relay
$RELAY_URL
--home
$dir/home
--workdir
$dir/workspace
EOF
  for v in BATON_RELAY BATON_BOOTSTRAP BATON_MACHINE BATON_GENERATION \
           BATON_WORKSPACE HOME; do
    grep -qx "$v" "$rec.env" || fail "the runtime's environment lacked $v"
  done
  [ "$(wc -c <"$rec.secret")" -ge 20 ] || fail "BATON_BOOTSTRAP was empty"
  grep -qFf "$rec.secret" "$rec.cmdline" && fail "BATON_BOOTSTRAP in argv"
  true
}

# no_secret_shown: no bootstrap credential in any process's argv or in
# any log (grep -f: the credential is in no argv of grep's either).
no_secret_shown() {
  local f
  for f in "$T"/calls/*.secret; do
    grep -qaFf "$f" /proc/[0-9]*/cmdline 2>/dev/null &&
      fail "a bootstrap credential shows in a process's argv"
    grep -rqaFf "$f" --include='*.log' "$T" &&
      fail "a bootstrap credential is in a log"
  done
  true
}

# 3. The runtime runs the sandbox in the foreground.
WA=$T/repo-a
repo "$WA"
SA=$(baton start --machine laptop --dir "$WA" --agent test)
wait_output "$SA" "> "
to_sandbox "$SA"
MA=$MID
check_call "baton-$MA-1" "$MA" "$WID"
no_secret_shown
back_home "$SA"

# 4. The runtime starts the sandbox detached and exits 0 at once.
echo detach >"$T/runtime.mode"
WB=$T/repo-b
repo "$WB"
SB=$(baton start --machine laptop --dir "$WB" --agent test)
wait_output "$SB" "> "
to_sandbox "$SB"
MB=$MID
check_call "baton-$MB-1" "$MB" "$WID"
grep -q "the command of sandbox $MB exited with status 0" "$T/relay.log" ||
  fail "the runtime did not exit before the sandbox connected"
no_secret_shown
back_home "$SB"

# 5. The runtime fails at once: the move fails, the session comes back.
echo fail >"$T/runtime.mode"
WC=$T/repo-c
repo "$WC"
SC=$(baton start --machine laptop --dir "$WC" --agent test)
wait_output "$SC" "> "
if out=$(baton move "$SC" --to sandbox --wait 2>&1); then
  fail "the move succeeded although the runtime failed: $out"
fi
grep -q "exited with status 125" <<<"$out" ||
  fail "the client was not told why the move failed: $out"
wait_for 30 "session $SC to run on the laptop again" session_on "$SC" local
[ "$(session_worktree "$SC")" = "$WC" ] || fail "the session changed folder"
baton send "$SC" "remember still here"
wait_output "$SC" "noted: still here"

# 5b. The runtime exits 0 but no sandbox ever connects: after
# --launch-timeout (3 s here) the move fails and the session comes back.
echo vanish >"$T/runtime.mode"
if out=$(baton --timeout 60 move "$SC" --to sandbox --wait 2>&1); then
  fail "the move succeeded although no sandbox came up: $out"
fi
grep -q "did not connect within 3 s" <<<"$out" ||
  fail "the client was not told the sandbox never connected: $out"
wait_for 30 "session $SC to run on the laptop again" session_on "$SC" local
baton send "$SC" "remember still here after a silent runtime"
wait_output "$SC" "noted: still here after a silent runtime"

# 6. The relay stops: the stop command runs for every sandbox whose
# command succeeded (the two that ran, and the one that never connected),
# and only those; the sandbox the failed runtime never started needs none.
MC=$(ls "$T/calls" | sed -n 's/^baton-\(.*\)-1\.argv$/\1/p' |
  grep -v -e "$MA" -e "$MB")
stop_relay
[ -f "$T/stopped" ] || fail "the stop command did not run"
sort "$T/stopped" >"$T/stopped.sorted"
diff "$T/stopped.sorted" <(printf 'baton-%s\n' "$MA-1" "$MB-1" "$MC-2" |
  sort) || fail "the stop command ran for other sandboxes than the three"
for m in "$MA" "$MB"; do
  alive "$(cat "$T/calls/baton-$m-1.pid")" &&
    fail "sandbox $m still runs after the relay stopped"
done

# 7. Without --sandbox-stop, the relay SIGTERMs a runtime still running
# (the sandbox then exits 0; SIGKILL, 5 s later, would show as 137).
echo exec >"$T/runtime.mode"
from=$(wc -l <"$T/relay.log")
RELAY_ARGS=(--sandbox-launcher "$LAUNCH")
start_relay
wait_for 60 "the laptop to come back" machine_online laptop
to_sandbox "$SA"
[ "$MID" = "$MA" ] || fail "session $SA moved to another sandbox machine"
check_call "baton-$MA-2" "$MA" "$WID"
pid=$(cat "$T/calls/baton-$MA-2.pid")
stop_relay
alive "$pid" && fail "the runtime still runs after the relay"
sed -n "$((from + 1)),\$p" "$T/relay.log" |
  grep -q "the command of sandbox $MA exited with status 0" ||
  fail "the relay did not stop the runtime with SIGTERM"
echo "command launcher: OK"
