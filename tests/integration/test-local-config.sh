#!/usr/bin/env bash
# test-local-config.sh: baton-local's settings file,
# $XDG_CONFIG_HOME/baton/local.conf. Its settings start the daemon with no
# flags; the environment overrides the file and flags override both; with
# none of them, the relay and name the laptop was paired with. A secret in
# the file (a token key, or a value that looks like a token), an unknown
# key or a bad value stops it, saying where, and never echoes the secret.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

export HOME=$T/home XDG_CONFIG_HOME=$T/config
unset BATON_RELAY BATON_TOKEN BATON_CA
conf=$XDG_CONFIG_HOME/baton/local.conf
mkdir -p "$HOME" "${conf%/*}"
start_relay
CLIENT_TOKEN=$(token gus client)
MACHINE_TOKEN=$(token gus machine)
DEAD=ws://127.0.0.1:1	# nothing listens there

# run_local NAME ARGS...: baton-local with the machine token and ARGS,
# until the relay shows machine NAME online; then stopped.
run_local() {
  local name=$1 pid
  shift
  BATON_TOKEN=$MACHINE_TOKEN "$LOCAL_BIN" "$@" >>"$T/local-$name.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_for 60 "machine $name online" machine_online "$name"
  kill -TERM "$pid"
  wait "$pid" || fail "baton-local ($name) exited with status $? on SIGTERM"
}

log "the file alone: relay, name and state from local.conf"
cat >"$conf" <<EOF
# a comment, then a blank line

relay = $RELAY_URL
name = "from-file"
state = $T/state-file
ping_interval = 5
EOF
run_local from-file
[ -f "$T/state-file/machine.key" ] || fail "state = in the file was not used"

log "the environment over the file"
printf 'relay = %s\nname = env-wins\nstate = %s\n' "$DEAD" "$T/state-env" \
  >"$conf"
BATON_RELAY=$RELAY_URL run_local env-wins

log "flags over the environment and the file"
BATON_RELAY=$DEAD run_local flag-wins --relay "$RELAY_URL" --name flag-wins \
  --state "$T/state-flag"

log "paired: the relay and name it was paired with, no settings at all"
rm -f "$conf"
pair_start paired-one
code=$(pair_code paired-one)
baton pair approve "$code" >/dev/null
wait "$PAIR_PID" || fail "baton-local pair exited $?"
"$LOCAL_BIN" --state "$T/state-paired-one" >"$T/local-paired.log" 2>&1 &
PAIRED=$!
PIDS+=("$PAIRED")
wait_for 60 "the paired laptop online" machine_online paired-one
kill -TERM "$PAIRED"
wait "$PAIRED" || fail "the paired baton-local exited with status $?"

# refused WHY LINE: baton-local, its status and install-service all stop
# with exit 1 on this local.conf, naming its line and saying WHY.
refused() {
  local why=$1 line=$2 cmd rc
  for cmd in "" status install-service; do
    rc=0
    # shellcheck disable=SC2086
    "$LOCAL_BIN" $cmd --relay "$RELAY_URL" >"$T/refused.out" 2>&1 || rc=$?
    [ $rc -eq 1 ] ||
      fail "baton-local $cmd exited $rc on: $(cat "$conf")"
    grep -qF "$conf:$line: " "$T/refused.out" &&
      grep -qF "$why" "$T/refused.out" ||
      fail "baton-local $cmd did not say '$why' at line $line:" \
        "$(cat "$T/refused.out")"
  done
}

log "a secret in the file is refused: pair instead"
printf 'relay = %s\ntoken = %s\n' "$RELAY_URL" "$MACHINE_TOKEN" >"$conf"
refused "pair it with \`baton-local pair" 2
! grep -qF "$MACHINE_TOKEN" "$T/refused.out" || fail "the token was echoed"
# --help and --version still answer: the file may be what needs help
"$LOCAL_BIN" --help >"$T/help.out" 2>&1 ||
  fail "baton-local --help failed with a bad local.conf: $(cat "$T/help.out")"
grep -qF 'local.conf' "$T/help.out" || fail "--help did not show the usage"
"$LOCAL_BIN" --version | grep -q '^baton-local ' ||
  fail "baton-local --version failed with a bad local.conf"
printf 'Machine_Password = hunter2\n' >"$conf"
refused "is a secret" 1
lookalike=Zk81mQ0pWc7Rt5yNb2Xe9Lh4Vd6Gs3Ja
printf 'name = %s\n' "$lookalike" >"$conf"
refused "looks like a token" 1
! grep -qF "$lookalike" "$T/refused.out" ||
  fail "the token-like value was echoed"

log "unknown keys, bad values and repeats are refused with their line"
printf '\nrelays = %s\n' "$RELAY_URL" >"$conf"
refused "unknown key 'relays'" 2
printf 'insecure = maybe\n' >"$conf"
refused "insecure takes yes or no" 1
printf 'dead-after = 0\n' >"$conf"
refused "dead-after takes seconds" 1
printf 'name = a\nname = b\n' >"$conf"
refused "name is set twice" 2
printf 'just words\n' >"$conf"
refused "expected \`key = value\`" 1
log "local.conf works, in its order, and keeps secrets out"
