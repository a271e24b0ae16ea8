#!/usr/bin/env bash
# test-cli.sh: every program's command line: --help, --version, bad
# options, missing environment, an unreachable relay, an unusable --data.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

# expect_rc WANT DESCRIPTION COMMAND...: runs COMMAND with its output in
# $T/out and $T/err; fails unless it exits WANT.
expect_rc() {
  local want=$1 what=$2 rc=0
  shift 2
  "$@" >"$T/out" 2>"$T/err" </dev/null || rc=$?
  if [ "$rc" -ne "$want" ]; then
    echo "--- stdout:" >&2; cat "$T/out" >&2
    echo "--- stderr:" >&2; cat "$T/err" >&2
    fail "$what: expected exit $want, got $rc"
  fi
}

# has FILE PATTERN DESCRIPTION: FILE matches the extended regex PATTERN.
has() {
  grep -Eqi -- "$2" "$1" || {
    echo "--- $(basename "$1"):" >&2; cat "$1" >&2
    fail "$3"
  }
}

for bin in "$RELAY_BIN" "$LOCAL_BIN" "$SANDBOX_BIN" "$CLIENT_BIN"; do
  name=$(basename "$bin")
  [ -x "$bin" ] || fail "$bin is not built"

  expect_rc 0 "$name --help" "$bin" --help
  has "$T/out" "usage:" "$name --help prints no usage text on stdout"
  [ "$(wc -l <"$T/out")" -ge 3 ] || fail "$name --help is too short"

  expect_rc 0 "$name --version" "$bin" --version
  has "$T/out" "^$name [0-9]+\.[0-9]+(\.[0-9]+)?" \
    "$name --version prints no '$name X.Y.Z'"

  expect_rc 2 "$name --no-such-option" "$bin" --no-such-option
  [ -s "$T/err" ] || fail "$name --no-such-option says nothing on stderr"
  log "$name: --help, --version and a bad option are right"
done

# Bad options and usage in the subcommands as well.
expect_rc 2 "baton-relay serve --no-such-option" \
  "$RELAY_BIN" serve --no-such-option
expect_rc 2 "baton-relay token create --kind bogus" \
  "$RELAY_BIN" token create --data "$T/x" --user u --kind bogus
has "$T/err" "kind" "the bad --kind is not named"
expect_rc 2 "baton machines --no-such-option" \
  env -u BATON_TOKEN "$CLIENT_BIN" machines --no-such-option
expect_rc 2 "baton --timeout without a value" \
  "$CLIENT_BIN" machines --timeout
expect_rc 2 "baton status without a session id" "$CLIENT_BIN" status
expect_rc 2 "baton move without --to" "$CLIENT_BIN" move some-sid
expect_rc 2 "baton with no command" "$CLIENT_BIN"
expect_rc 2 "baton-sandbox with an argument" "$SANDBOX_BIN" extra-arg

# A port nothing listens on: one our own relay listened on and gave up.
start_relay
dead_port=$RELAY_PORT
stop_relay
PIDS=()

# baton-sandbox without its environment names what is missing, one at a time.
sbx_env=(BATON_RELAY=ws://127.0.0.1:$dead_port BATON_BOOTSTRAP=t BATON_MACHINE=m
         BATON_GENERATION=1 BATON_WORKSPACE=$T/ws HOME=$T/sbx-home
         PATH=$PATH)
# BATON_GENERATION is left out here: baton-sandbox treats it as optional;
# so is BATON_BOOTSTRAP, spent by the first connection (a restarted
# sandbox proves itself with its key). The others are required.
for missing in BATON_RELAY BATON_MACHINE BATON_WORKSPACE HOME; do
  vars=()
  for v in "${sbx_env[@]}"; do
    [ "${v%%=*}" = "$missing" ] || vars+=("$v")
  done
  expect_rc 1 "baton-sandbox without $missing" \
    timeout 20 env -i "${vars[@]}" "$SANDBOX_BIN"
  has "$T/err" "$missing" "baton-sandbox without $missing does not name it"
done
log "baton-sandbox names each missing variable"

start=$SECONDS
expect_rc 6 "baton against a closed port" \
  env BATON_TOKEN=not-needed "$CLIENT_BIN" \
  --relay "ws://127.0.0.1:$dead_port" --timeout 2 machines
[ $((SECONDS - start)) -le 15 ] ||
  fail "baton --timeout 2 took $((SECONDS - start)) s"
has "$T/err" "relay|reach|answer|connect" "exit 6 without a clear message"
log "baton against a closed port: exit 6: $(head -n 1 "$T/err")"

# baton with no token at all: exit 3 and how to make one.
expect_rc 3 "baton without a token" \
  env -u BATON_TOKEN "$CLIENT_BIN" --relay "ws://127.0.0.1:$dead_port" \
  --timeout 2 machines
has "$T/err" "token" "no token: the message does not mention the token"

# baton-relay serve with --data naming a file: exit 1 with a message.
printf 'not a folder\n' >"$T/data-file"
expect_rc 1 "baton-relay serve --data FILE" \
  timeout 20 "$RELAY_BIN" serve --listen 127.0.0.1:0 --data "$T/data-file" \
  --port-file "$T/never.port"
has "$T/err" "data-file" "the unusable --data is not named"
[ ! -s "$T/never.port" ] || fail "the relay listened with an unusable --data"
[ "$(cat "$T/data-file")" = "not a folder" ] || fail "the --data file changed"
log "baton-relay with --data FILE: exit 1: $(head -n 1 "$T/err")"

# Nor inside a file: --data FILE/sub.
expect_rc 1 "baton-relay serve --data FILE/sub" \
  timeout 20 "$RELAY_BIN" serve --listen 127.0.0.1:0 \
  --data "$T/data-file/sub" --port-file "$T/never.port"
[ -s "$T/err" ] || fail "--data FILE/sub: no message"

# token create with an unusable --data: exit 1.
expect_rc 1 "baton-relay token create --data FILE" \
  "$RELAY_BIN" token create --data "$T/data-file" --user u --kind client
[ ! -s "$T/out" ] || fail "token create printed a token with an unusable --data"

echo "cli: OK"
