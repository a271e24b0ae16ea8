#!/usr/bin/env bash
# test-hostile-input.sh: the relay against malformed and hostile frames,
# sent raw with tests/tools/ws-poke (target ws-poke).
#
# - Before hello, anything else (text or binary) gets an error and the
#   relay closes; a bad hello (wrong token, version 2, a token of the wrong
#   kind, a bad role) is refused and closed.
# - After a good hello every malformed message gets an error with the right
#   code (and the request's id when it could be read), and the connection
#   stays open: a sessions.list afterwards is answered. Limits are checked
#   on both sides of the boundary (nesting 16/17, id 64/65, 1 MiB/+1).
# - A machine cannot write into a session it does not own, nor learn about
#   another user's session from its hello.
# - 200 random byte strings, as text and as binary frames, and 200 mutated
#   messages (HOSTILE_SEED, default fixed) each get an error; the relay
#   keeps serving, does not crash, and stops cleanly.
# - A session looked up by its id in uppercase (accepted, PROTOCOL.md
#   section 5) still moves to a sandbox.
# - Everything the relay sent is valid UTF-8 and names sessions by UUID.
# After every case the relay still serves another client (`baton
# sessions`). Every case runs to the end; the problems are listed together.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

POKE=$BATON_BIN/tests/ws-poke
[ -x "$POKE" ] || fail "$POKE is not built (target ws-poke)"
SEED=${HOSTILE_SEED:-20261204}
PROBLEMS=()

problem() {
  log "PROBLEM: $*"
  PROBLEMS+=("$*")
}

# poke NAME: runs ws-poke with the script on stdin; output in $T/NAME.out.
poke() {
  local name=$1 rc=0
  cat >"$T/$name.script"
  timeout 120 "$POKE" "$RELAY_PORT" <"$T/$name.script" >"$T/$name.out" \
    2>"$T/$name.err" || rc=$?
  [ $rc -eq 0 ] || problem "$name: ws-poke exited $rc: $(head -c 300 "$T/$name.err")"
}

# show NAME: the output of a case, for a failure report.
show() {
  echo "----- $1: script (first lines, cut at 200 chars)" >&2
  head -n 12 "$T/$1.script" | cut -c1-200 >&2
  echo "----- $1: output (cut at 300 chars)" >&2
  cut -c1-300 "$T/$1.out" | cat -v >&2
}

# has NAME ERE DESCRIPTION: the case's output matches.
has() {
  grep -aEq -- "$2" "$T/$1.out" || { show "$1"; problem "$1: $3"; }
}
hasnt() {
  ! grep -aEq -- "$2" "$T/$1.out" || { show "$1"; problem "$1: $3"; }
}

# last_is NAME WORD: the connection ended "closed" or was still "open".
last_is() {
  local last
  last=$(tail -n 1 "$T/$1.out")
  [ "$last" = "$2" ] || {
    show "$1"
    problem "$1: the connection should be $2 at the end, it is '$last'"
  }
}

# serving CASE: the relay is alive and answers another client.
serving() {
  kill -0 "$RELAY_PID" 2>/dev/null || fail "the relay died after $1"
  baton --json sessions >"$T/serving.out" 2>"$T/serving.err" ||
    problem "after $1: 'baton sessions' failed: $(cat "$T/serving.err")"
}

# error_codes NAME: the codes of the error replies, one a line.
error_codes() {
  grep -a '^recv text {"type":"error"' "$T/$1.out" |
    sed -n 's/.*"code":"\([^"]*\)".*/\1/p'
}

# before_hello NAME CODE SCRIPT-LINES...: an error CODE, then closed.
before_hello() {
  local name=$1 code=$2
  shift 2
  printf '%s\n' "$@" "until 30000 this-never-comes" | poke "$name"
  has "$name" "^recv text \{\"type\":\"error\".*\"code\":\"$code\"" \
    "expected an error '$code' (got: $(error_codes "$name" | tr '\n' ' '))"
  last_is "$name" closed
  serving "$name"
}

HELLO_CLIENT=
# open_case NAME CODE ID LINES...: after a good hello, LINES get an error
# CODE (carrying "id": ID unless ID is "-"), and the connection stays open:
# a sessions.list afterwards is answered.
open_case() {
  local name=$1 code=$2 id=$3
  shift 3
  printf '%s\n' "text $HELLO_CLIENT" "until 30000 \"type\":\"welcome\"" "$@" \
    'text {"type":"sessions.list","id":"after"}' \
    'until 30000 "id":"after"' close | poke "$name"
  has "$name" '^recv text \{"type":"welcome"' "the hello was not welcomed"
  # the error comes before the answer to "after"
  sed '/"id":"after"/,$d' "$T/$name.out" >"$T/$name.before"
  if ! grep -aEq "^recv text \{\"type\":\"error\".*\"code\":\"$code\"" \
      "$T/$name.before"; then
    show "$name"
    problem "$name: expected an error '$code' (got: $(error_codes "$name" | tr '\n' ' '))"
  elif [ "$id" != - ] &&
      ! grep -aEq "^recv text \{\"type\":\"error\",\"id\":\"$id\"" \
        "$T/$name.before"; then
    show "$name"
    problem "$name: the error does not carry the request's id '$id'"
  fi
  has "$name" '^recv text \{"type":"sessions","id":"after"' \
    "the connection did not answer sessions.list afterwards"
  last_is "$name" open
  serving "$name"
}

# bin KIND EPOCH SID SEQ [PAYLOAD-HEX]: a binary frame in hex.
bin() {
  printf '01%02x0000%08x%s%016x%s' "$1" "$2" "${3//-/}" "$4" "${5:-}"
}
hexof() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }

log "relay, tokens, a laptop and a session to guard"
RELAY_ARGS+=(--hello-timeout 3)
start_relay
CLIENT_TOKEN=$(token alice client)
MACHINE_TOKEN=$(token alice machine)
write_agents
start_local laptop "$MACHINE_TOKEN"
wait_for 60 "the laptop to register" machine_online laptop
mkdir -p "$T/repo"
git -C "$T/repo" init -q
printf 'guarded\n' >"$T/repo/file.txt"
git -C "$T/repo" add file.txt
git -C "$T/repo" commit -q -m guarded
SID=$(baton start --machine laptop --dir "$T/repo" --agent test)
wait_output "$SID" "started session $SID" 60
baton send "$SID" "remember the guarded plan"
wait_output "$SID" "noted: the guarded plan" 60
serving "the setup"

HELLO_CLIENT='{"type":"hello","id":"h","body":{"version":1,"role":"client","token":"'"$CLIENT_TOKEN"'"}}'
NOSUCH=0badc0de-0000-4000-8000-000000000001

log "before hello: an error, then the relay closes"
before_hello pre-not-json bad_message 'text this is not json'
before_hello pre-empty bad_message 'text '
before_hello pre-sessions-list unauthorized \
  'text {"type":"sessions.list","id":"pre"}'
has pre-sessions-list '"type":"error","id":"pre"' \
  "the unauthorized error does not carry the request's id"
before_hello pre-unknown-type unknown_type 'text {"type":"bogus"}'
before_hello pre-binary unauthorized "binhex $(bin 2 0 "$NOSUCH" 1 6869)"
before_hello pre-short-binary unauthorized "binhex 0102"
before_hello pre-relay-only-type unauthorized \
  'text {"type":"challenge","id":"c1","body":{"nonce":"00"}}'
# Silence after connecting, and a hello that never answers its challenge:
# the relay ends both after --hello-timeout (3 s here).
before_hello pre-silence unauthorized 'wait 1'
has pre-silence 'no hello, or no answer to the challenge' \
  "the silent connection was not told why it was closed"
before_hello pre-no-answer unauthorized "key $T/silent.key" \
  'text {"type":"hello","body":{"version":1,"role":"pair","key":"@PUBKEY@","name":"silent"}}'
has pre-no-answer '"type":"challenge"' "the pairing hello got no challenge"

log "bad hellos: refused, then closed"
before_hello hello-wrong-token unauthorized \
  'text {"type":"hello","body":{"version":1,"role":"client","token":"not-a-token"}}'
before_hello hello-version-2 version \
  'text {"type":"hello","body":{"version":2,"role":"client","token":"'"$CLIENT_TOKEN"'"}}'
before_hello hello-machine-token-as-client forbidden \
  'text {"type":"hello","body":{"version":1,"role":"client","token":"'"$MACHINE_TOKEN"'"}}'
before_hello hello-client-token-as-machine forbidden \
  "key $T/sneaky.key" \
  'text {"type":"hello","body":{"version":1,"role":"machine","key":"@PUBKEY@","token":"'"$CLIENT_TOKEN"'","name":"sneaky","kind":"local"}}'
before_hello hello-bad-role bad_message \
  'text {"type":"hello","body":{"version":1,"role":"admin","token":"'"$CLIENT_TOKEN"'"}}'
before_hello hello-no-token unauthorized \
  'text {"type":"hello","body":{"version":1,"role":"client"}}'
before_hello hello-version-string bad_message \
  'text {"type":"hello","body":{"version":"1","role":"client","token":"'"$CLIENT_TOKEN"'"}}'

log "after a good hello: an error each, and the connection stays open"
open_case open-invalid-json bad_message - 'text {"type":"sessions.list",'
open_case open-trailing-bytes bad_message - \
  'text {"type":"sessions.list","id":"tb"} x'
open_case open-empty bad_message - 'text '
open_case open-array bad_message - 'text [{"type":"sessions.list"}]'
open_case open-unknown-type unknown_type u1 'text {"type":"no.such.type","id":"u1"}'
# A long unknown type with a non-ASCII letter, all-ASCII on the wire: the
# reply quotes the type, and must stay valid UTF-8 (checked at the end).
open_case open-unknown-type-utf8 unknown_type u2 \
  "text {\"type\":\"$(printf 'a%.0s' $(seq 31))\\u00e9\",\"id\":\"u2\"}"
open_case open-relay-only-type forbidden w1 \
  'text {"type":"welcome","id":"w1","body":{"user":"alice","role":"client","version":1}}'
open_case open-machine-only-type forbidden sp1 \
  'text {"type":"session.spawned","id":"sp1","session":"'"$SID"'","body":{"worktree":"/tmp","workspace":"w"}}'
open_case open-missing-field bad_message m1 \
  'text {"type":"session.start","id":"m1","body":{"machine":"nosuchmachine"}}'
has open-missing-field '"code":"bad_message","message":".*\\"dir\\"' \
  "the error does not name the missing field \"dir\""
open_case open-wrong-field-type bad_message t1 \
  'text {"type":"session.start","id":"t1","body":{"machine":"nosuchmachine","dir":"/tmp","cols":"80"}}'
has open-wrong-field-type '"code":"bad_message","message":".*\\"cols\\"' \
  "the error does not name the field \"cols\""
open_case open-body-not-object bad_message b1 \
  'text {"type":"sessions.list","id":"b1","body":[]}'
open_case open-session-not-uuid bad_message s1 \
  'text {"type":"session.status","id":"s1","session":"not-a-uuid"}'
open_case open-session-missing bad_message s2 \
  'text {"type":"session.status","id":"s2"}'
open_case open-u64-overflow bad_message o1 \
  'text {"type":"session.attach","id":"o1","session":"'"$SID"'","body":{"from":"18446744073709551616"}}'

nest() { # nest N: N-2 arrays inside the body, so N levels with the envelope
  local open close
  open=$(printf '[%.0s' $(seq $(($1 - 2))))
  close=$(printf ']%.0s' $(seq $(($1 - 2))))
  printf '{"type":"sessions.list","id":"n%s","body":{"deep":%s%s}}' \
    "$1" "$open" "$close"
}
open_case open-nesting-17 bad_message n17 "text $(nest 17)"
# 16 levels is within the limit: answered, no error.
printf '%s\n' "text $HELLO_CLIENT" 'until 30000 "type":"welcome"' \
  "text $(nest 16)" 'until 30000 "id":"n16"' close | poke open-nesting-16
has open-nesting-16 '^recv text \{"type":"sessions","id":"n16"' \
  "16 levels of nesting should be accepted"
hasnt open-nesting-16 '"type":"error"' "16 levels of nesting got an error"

ID64=$(printf 'i%.0s' $(seq 64))
open_case open-id-65 bad_message - \
  "text {\"type\":\"sessions.list\",\"id\":\"${ID64}x\"}"
printf '%s\n' "text $HELLO_CLIENT" 'until 30000 "type":"welcome"' \
  "text {\"type\":\"sessions.list\",\"id\":\"$ID64\"}" \
  "until 30000 \"id\":\"$ID64\"" close | poke open-id-64
has open-id-64 "^recv text \\{\"type\":\"sessions\",\"id\":\"$ID64\"" \
  "an id of exactly 64 bytes should be accepted and echoed"

open_case open-big-1100000 too_large - 'big 1100000'
open_case open-big-1MiB-plus-1 too_large - 'big 1048577'
# exactly 1 MiB is within the limit: read, and refused as not JSON
open_case open-big-1MiB bad_message - 'big 1048576'

open_case open-binary-short bad_message - 'binhex 01020000'
open_case open-binary-empty bad_message - 'binhex '
open_case open-binary-bad-kind bad_message - "binhex $(bin 9 0 "$SID" 1 41)"
open_case open-binary-bad-version bad_message - \
  "binhex 07$(bin 2 0 "$SID" 1 41 | cut -c3-)"
open_case open-binary-over-chunk bad_message - \
  "binhex $(bin 2 0 "$NOSUCH" 1)$(head -c 65537 /dev/zero | od -An -v -tx1 | tr -d ' \n')"
open_case open-input-no-such-session not_found - \
  "binhex $(bin 2 0 "$NOSUCH" 1 "$(hexof 'echo hi')")"

before=$(transcript "$SID")
status=$(baton --json status "$SID")
SEQ=$(json_field "$status" seq)
EPOCH=$(json_field "$status" epoch)
[ -n "$SEQ" ] && [ -n "$EPOCH" ] || fail "no seq or epoch in: $status"
open_case open-client-output-frame forbidden - \
  "binhex $(bin 1 "$EPOCH" "$SID" $((SEQ + 1)) "$(hexof 'CLIENT-FORGED')")"

open_case open-nul-in-required-string bad_message z1 \
  'text {"type":"session.start","id":"z1","body":{"machine":"\u0000laptop","dir":"/tmp"}}'
open_case open-nul-in-session bad_message z2 \
  "text {\"type\":\"session.status\",\"id\":\"z2\",\"session\":\"${SID:0:8}\\u0000${SID:9}\"}"
open_case open-second-hello conflict h2 \
  "text ${HELLO_CLIENT/\"id\":\"h\"/\"id\":\"h2\"}"

log "a machine writes into a session it does not own"
printf '%s\n' \
  "key $T/intruder.key" \
  'text {"type":"hello","id":"mh","body":{"version":1,"role":"machine","key":"@PUBKEY@","token":"'"$MACHINE_TOKEN"'","name":"intruder","kind":"local"}}' \
  'until 30000 "type":"challenge"' answer \
  'until 30000 "type":"welcome"' \
  "binhex $(bin 1 "$EPOCH" "$SID" $((SEQ + 1)) "$(hexof 'INTRUDER-1')")" \
  "binhex $(bin 1 "$((EPOCH + 1))" "$SID" $((SEQ + 1)) "$(hexof 'INTRUDER-2')")" \
  "binhex $(bin 1 0 "$SID" $((SEQ + 1)) "$(hexof 'INTRUDER-3')")" \
  "binhex $(bin 1 "$EPOCH" "$SID" $((SEQ + 2)) "$(hexof 'INTRUDER-4')")" \
  "binhex $(bin 3 "$EPOCH" "$SID" 0 "$(hexof 'PACK')")" \
  'text {"type":"session.exited","id":"x1","session":"'"$SID"'","body":{"status":0}}' \
  'text {"type":"session.spawned","id":"x2","session":"'"$SID"'","body":{"worktree":"/tmp/evil","workspace":"evil"}}' \
  'text {"type":"sessions.list","id":"after"}' \
  'until 30000 "id":"after"' close | poke machine-intruder
has machine-intruder '^recv text \{"type":"welcome"' "the intruder machine was not welcomed"
has machine-intruder "\"type\":\"session.stand_down\",\"session\":\"$SID\"" \
  "the intruder was not told to stand down"
has machine-intruder '"type":"error","id":"after".*"code":"forbidden"' \
  "the intruder's connection did not answer afterwards"
last_is machine-intruder open
serving machine-intruder
after=$(transcript "$SID")
[ "$after" = "$before" ] || {
  diff <(echo "$before") <(echo "$after") >&2 || true
  problem "the other machine's frames changed the transcript"
}
status=$(baton --json status "$SID")
[ "$(json_field "$status" seq)" = "$SEQ" ] ||
  problem "the session's seq moved: $SEQ -> $(json_field "$status" seq)"
[ "$(json_field "$status" state)" = running ] ||
  problem "the session is no longer running: $status"
[ "$(json_field "$status" machine)" = laptop ] ||
  problem "the session changed machine: $status"
[ "$(json_field "$status" worktree)" = "$T/repo" ] ||
  problem "the session's worktree changed: $status"
baton send "$SID" "remember after the intruder"
wait_output "$SID" "noted: after the intruder" 60

log "a machine's hello lists sessions that are not its own, and junk"
BOB_MACHINE=$(token bob machine)
printf '%s\n' \
  "key $T/intruder.key" \
  'text {"type":"hello","id":"mh","body":{"version":1,"role":"machine","key":"@PUBKEY@","token":"'"$MACHINE_TOKEN"'","name":"intruder","kind":"local","sessions":[1,"x",null,[],{},{"id":5},{"id":"../../etc/passwd","epoch":"1"},{"id":"'"$SID"'","epoch":"99999999999999999999"},{"id":"'"$SID"'","epoch":"'"$EPOCH"'"},{"id":"'"$NOSUCH"'","epoch":"1"}]}}' \
  'until 30000 "type":"challenge"' answer \
  'until 30000 "type":"welcome"' \
  'text {"type":"sessions.list","id":"after"}' \
  'until 30000 "id":"after"' close | poke machine-hello-junk
has machine-hello-junk '^recv text \{"type":"welcome"' "the machine was not welcomed"
has machine-hello-junk "\"type\":\"session.stand_down\",\"session\":\"$SID\"" \
  "the machine that lists another machine's session is not told to stand down"
has machine-hello-junk '"type":"error","id":"after".*"code":"forbidden"' \
  "the connection did not answer afterwards"
last_is machine-hello-junk open
serving machine-hello-junk
# Another user's machine learns nothing about alice's session: the answer
# is the one for a session that does not exist.
printf '%s\n' \
  "key $T/bobs.key" \
  'text {"type":"hello","id":"mh","body":{"version":1,"role":"machine","key":"@PUBKEY@","token":"'"$BOB_MACHINE"'","name":"bobs","kind":"local","sessions":[{"id":"'"$SID"'","epoch":"1"},{"id":"'"$NOSUCH"'","epoch":"1"}]}}' \
  'until 30000 "type":"challenge"' answer \
  'until 30000 "type":"welcome"' \
  'text {"type":"session.exited","session":"'"$SID"'","body":{"status":0}}' \
  'text {"type":"sessions.list","id":"after"}' \
  'until 30000 "id":"after"' close | poke machine-other-user
has machine-other-user '^recv text \{"type":"welcome"' "bob's machine was not welcomed"
mine=$(grep -a "\"session.stand_down\",\"session\":\"$SID\"" \
  "$T/machine-other-user.out" | head -n 1 | sed 's/.*"body"://')
none=$(grep -a "\"session.stand_down\",\"session\":\"$NOSUCH\"" \
  "$T/machine-other-user.out" | head -n 1 | sed 's/.*"body"://')
[ -n "$none" ] || { show machine-other-user; problem "machine-other-user: no stand_down for a session that does not exist"; }
[ "$mine" = "$none" ] || {
  show machine-other-user
  problem "machine-other-user: another user's session is answered $mine, a missing one $none: its existence and epoch leak"
}
last_is machine-other-user open
serving machine-other-user
status=$(baton --json status "$SID")
[ "$(json_field "$status" state)" = running ] &&
  [ "$(json_field "$status" machine)" = laptop ] ||
  problem "the guarded session changed after the machines' hellos: $status"

log "200 random byte strings as text and as binary, 200 mutated messages (seed $SEED)"
awk -v seed="$SEED" -v sid="$SID" '
  function hexbytes(n,   s, i) {
    s = ""
    for (i = 0; i < n; i++) s = s sprintf("%02x", int(rand() * 256))
    return s
  }
  function randlen() {  # mostly short, sometimes up to 4 KiB
    return rand() < 0.9 ? int(rand() * 200) : int(rand() * 4096)
  }
  function mutate(t,   n, k, pos, h, i, c) {
    h = ""
    for (i = 1; i <= length(t); i++) h = h sprintf("%02x", ord[substr(t, i, 1)])
    n = 1 + int(rand() * 3)
    for (k = 0; k < n; k++) {
      pos = int(rand() * length(t))
      h = substr(h, 1, pos * 2) sprintf("%02x", int(rand() * 256)) \
          substr(h, pos * 2 + 3)
    }
    return h
  }
  BEGIN {
    srand(seed)
    for (i = 32; i < 127; i++) ord[sprintf("%c", i)] = i
    tpl[0] = "{\"type\":\"sessions.list\",\"id\":\"r\"}"
    tpl[1] = "{\"type\":\"session.status\",\"id\":\"r\",\"session\":\"" sid "\"}"
    tpl[2] = "{\"type\":\"session.attach\",\"id\":\"r\",\"session\":\"0badc0de-0000-4000-8000-000000000002\",\"body\":{\"from\":\"0\"}}"
    tpl[3] = "{\"type\":\"session.start\",\"id\":\"r\",\"body\":{\"machine\":\"nosuchmachine\",\"dir\":\"/nonexistent\",\"cols\":80}}"
    tpl[4] = "{\"type\":\"session.move\",\"id\":\"r\",\"session\":\"0badc0de-0000-4000-8000-000000000003\",\"body\":{\"to\":\"nosuchmachine\"}}"
    tpl[5] = "{\"type\":\"machines.list\",\"id\":\"r\",\"body\":{\"a\":[1,{\"b\":null}],\"c\":\"\\u00e9\"}}"
    for (i = 0; i < 200; i++) {
      h = hexbytes(randlen())
      print "texthex " h
      # a third of the binary frames have a plausible version and kind
      if (i % 3 == 0 && length(h) >= 4)
        h = "01" sprintf("%02x", 1 + int(rand() * 3)) substr(h, 5)
      print "binhex " h
    }
    for (i = 0; i < 200; i++) print "texthex " mutate(tpl[int(rand() * 6)])
  }' >"$T/random.lines"
{
  echo "text $HELLO_CLIENT"
  echo 'until 30000 "type":"welcome"'
  head -n 400 "$T/random.lines"
  echo 'text {"type":"sessions.list","id":"after-random"}'
  echo 'until 60000 "id":"after-random"'
  tail -n +401 "$T/random.lines"
  echo 'text {"type":"sessions.list","id":"after"}'
  echo 'until 60000 "id":"after"'
  echo close
} | poke random
has random '^recv text \{"type":"sessions","id":"after-random"' \
  "no answer after the random frames"
has random '^recv text \{"type":"sessions","id":"after"' \
  "no answer after the mutated messages"
last_is random open
n=$(sed '/"id":"after-random"/,$d' "$T/random.out" |
  grep -ac '^recv text {"type":"error"' || true)
[ "$n" -eq 400 ] ||
  problem "400 random frames should get 400 error replies, got $n"
serving "the random frames"
status=$(baton --json status "$SID")
[ "$(json_field "$status" state)" = running ] &&
  [ "$(json_field "$status" machine)" = laptop ] ||
  problem "the guarded session changed after the random frames: $status"
baton send "$SID" "remember after the noise"
wait_output "$SID" "noted: after the noise" 60

log "a session id in uppercase (accepted, section 5) leaves the session whole"
mkdir -p "$T/repo2"
git -C "$T/repo2" init -q
printf 'second\n' >"$T/repo2/file.txt"
git -C "$T/repo2" add file.txt
git -C "$T/repo2" commit -q -m second
SID2=$(baton start --machine laptop --dir "$T/repo2" --agent test)
wait_output "$SID2" "started session $SID2" 60
printf '%s\n' "text $HELLO_CLIENT" 'until 30000 "type":"welcome"' \
  "text {\"type\":\"session.status\",\"id\":\"up\",\"session\":\"${SID2^^}\"}" \
  'until 30000 "id":"up"' close | poke uppercase-status
has uppercase-status "^recv text \\{\"type\":\"session\",\"id\":\"up\",\"session\":\"$SID2\"" \
  "session.status with the uppercase id is not answered with the session"
# The relay must still know what it knew about the session: a move to a
# sandbox needs the agent profile the laptop reported when it started it.
if ! baton move "$SID2" --to sandbox --wait --timeout 120 >"$T/move2.out" 2>&1; then
  cat "$T/move2.out" >&2
  problem "after a session.status with the uppercase id, the move to a sandbox failed: $(tail -n 1 "$T/move2.out")"
fi
serving uppercase-status

# The replies are valid UTF-8, as WebSocket text frames must be.
for f in "$T"/*.out; do
  grep -aq '^warn text frame is not valid UTF-8' "$f" || continue
  grep -aB1 '^warn text frame is not valid UTF-8' "$f" | head -n 4 |
    cut -c1-300 | cat -v >&2
  problem "$(basename "$f" .out): the relay sent a text frame that is not valid UTF-8"
done

# Every envelope the relay sent names a session by a UUID, or none.
for f in "$T"/*.out; do
  bad=$(grep -a '^recv text {"type":"[^"]*",\("id":"[^"]*",\)\{0,1\}"session":"' "$f" |
    sed 's/^recv text {"type":"[^"]*",\("id":"[^"]*",\)\{0,1\}"session":"\([^"]*\)".*/\2/' |
    grep -Eiv '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' |
    head -n 1 || true)
  [ -z "$bad" ] ||
    problem "$(basename "$f" .out): the relay sent a message whose \"session\" is not a UUID: \"$bad\""
done

log "the relay is alive, its log shows no crash, and it stops cleanly"
kill -0 "$RELAY_PID" 2>/dev/null || fail "the relay is not running"
if grep -aEq 'Sanitizer|runtime error|Segmentation|Aborted|assert|FATAL|double free|corrupt' \
    "$T/relay.log"; then
  grep -aEn 'Sanitizer|runtime error|Segmentation|Aborted|assert|FATAL|double free|corrupt' \
    "$T/relay.log" | head -n 20 >&2
  problem "the relay's log shows a crash or memory error"
fi
[ "$(grep -ac 'listening on' "$T/relay.log")" -eq 1 ] ||
  problem "the relay restarted during the test"
stop_relay

if [ ${#PROBLEMS[@]} -gt 0 ]; then
  log "${#PROBLEMS[@]} problem(s):"
  printf '  - %s\n' "${PROBLEMS[@]}" >&2
  fail "hostile input: ${#PROBLEMS[@]} problem(s), listed above"
fi
log "hostile input: OK"
