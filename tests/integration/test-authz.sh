#!/usr/bin/env bash
# test-authz.sh: the authorization matrix (issue 4, item 7).
#
# Every message type of the protocol (the table in proto/proto.c, checked
# against proto/PROTOCOL.md section 8), plus the three kinds of binary
# frame, is sent by each kind of sender, aimed at alice's session, laptop
# and workspace:
#   steer  alice's steer client          read   alice's read-only client
#   bob    bob's steer client            amach  alice's other laptop (desk)
#   bmach  bob's machine                 sbx    alice's sandbox of another
#   nohello  a connection before hello          workspace (acme/lib)
# Machines are raw ws-poke connections that prove a key. The answer to each
# cell is printed as a table (type x sender) and compared with the expected
# table below; any difference fails the test. Every refusal must be an
# error with a code and a sentence, and a line in the relay's log that says
# whose it was. Bob and his machine send everything again at ids that do
# not exist: the answers must be the same. Afterwards alice's own client
# sees her session still running on her laptop, its transcript, her
# machines, sessions and environment unchanged; then her steer client's
# allowed cells take effect. Also: a replayed challenge answer, machine
# tokens and keys that do not match the record they name, and a search of
# every log (at debug level) for every token, bootstrap credential, machine
# secret key, pairing code and environment value used.
here=$(cd "$(dirname "$0")" && pwd)
export BATON_LOG=${BATON_LOG:-debug}	# leaks at debug level count too
# shellcheck source=lib.sh
source "$here/lib.sh"

SRC=${BATON_SRC:-$(cd "$here/../.." && pwd)}
POKE=$BATON_BIN/tests/ws-poke
[ -x "$POKE" ] || fail "$POKE is not built (target ws-poke)"
PROBLEMS=()
problem() {
  log "PROBLEM: $*"
  PROBLEMS+=("$*")
}

SENDERS=(steer read bob amach bmach nohello sbx)

# The expected answer of every cell: the reply's type, or the error's code,
# or "none" (no reply: the message is taken, or ignored without a word).
# A machine that names a session it does not run gets session.stand_down,
# the protocol's answer, the same as for a session that does not exist.
# "+closed": the relay then closes the connection. For steer, conflict on
# session.move means the request was authorized and then refused for the
# session's state (it already runs on that laptop), and its input frame
# ("none") reaches the agent (checked afterwards). Senders run in the order
# nohello sbx bmach amach read bob, then steer, whose cells change things;
# each sender's cells run in the order of the rows.
EXPECTED=$(cat <<'EOF'
type               steer         read      bob           amach              bmach              nohello             sbx
hello              conflict      conflict  conflict      conflict           conflict           welcome             conflict
challenge          forbidden     forbidden forbidden     forbidden          forbidden          unauthorized+closed forbidden
challenge.answer   forbidden     forbidden forbidden     conflict           conflict           unauthorized+closed conflict
welcome            forbidden     forbidden forbidden     forbidden          forbidden          unauthorized+closed forbidden
error              none          none      none          none               none               unauthorized+closed none
ok                 forbidden     forbidden forbidden     forbidden          forbidden          unauthorized+closed forbidden
ping               pong          pong      pong          pong               pong               pong                pong
pong               none          none      none          none               none               none                none
pair.code          forbidden     forbidden forbidden     forbidden          forbidden          unauthorized+closed forbidden
pair.approve       pair.approved forbidden pair.approved forbidden          forbidden          unauthorized+closed forbidden
pair.approved      forbidden     forbidden forbidden     forbidden          forbidden          unauthorized+closed forbidden
env.list           env           env       not_found     forbidden          forbidden          unauthorized+closed forbidden
env.set            ok            forbidden not_found     forbidden          forbidden          unauthorized+closed forbidden
env.unset          ok            forbidden not_found     forbidden          forbidden          unauthorized+closed forbidden
env                forbidden     forbidden forbidden     forbidden          forbidden          unauthorized+closed forbidden
env.sealed         forbidden     forbidden forbidden     forbidden          forbidden          unauthorized+closed forbidden
workspace.sync     ok            forbidden not_found     forbidden          forbidden          unauthorized+closed forbidden
workspace.setup    ok            forbidden not_found     forbidden          forbidden          unauthorized+closed forbidden
machine.stop       forbidden     forbidden forbidden     forbidden          forbidden          unauthorized+closed forbidden
machines.list      machines      machines  machines      forbidden          forbidden          unauthorized+closed forbidden
machines           forbidden     forbidden forbidden     forbidden          forbidden          unauthorized+closed forbidden
sessions.list      sessions      sessions  sessions      forbidden          forbidden          unauthorized+closed forbidden
sessions           forbidden     forbidden forbidden     forbidden          forbidden          unauthorized+closed forbidden
credits.get        credits       credits   credits       forbidden          forbidden          unauthorized+closed forbidden
credits            forbidden     forbidden forbidden     forbidden          forbidden          unauthorized+closed forbidden
login.new          login.code    login.code login.code   forbidden          forbidden          unauthorized+closed forbidden
login.code         forbidden     forbidden forbidden     forbidden          forbidden          unauthorized+closed forbidden
setup.get          setup         setup     not_found     forbidden          forbidden          unauthorized+closed forbidden
setup              forbidden     forbidden forbidden     forbidden          forbidden          unauthorized+closed forbidden
session.start      session       forbidden not_found     forbidden          forbidden          unauthorized+closed forbidden
session            forbidden     forbidden forbidden     forbidden          forbidden          unauthorized+closed forbidden
session.status     session       session   not_found     forbidden          forbidden          unauthorized+closed forbidden
bin:input          none          forbidden not_found     session.stand_down session.stand_down unauthorized+closed session.stand_down
session.attach     attached      attached  not_found     forbidden          forbidden          unauthorized+closed forbidden
attached           forbidden     forbidden forbidden     forbidden          forbidden          unauthorized+closed forbidden
session.detach     ok            ok        not_found     forbidden          forbidden          unauthorized+closed forbidden
session.resize     ok            forbidden not_found     forbidden          forbidden          unauthorized+closed forbidden
session.move       conflict      forbidden not_found     forbidden          forbidden          unauthorized+closed forbidden
move.step          forbidden     forbidden forbidden     forbidden          forbidden          unauthorized+closed forbidden
move.done          forbidden     forbidden forbidden     forbidden          forbidden          unauthorized+closed forbidden
session.exited     forbidden     forbidden forbidden     session.stand_down session.stand_down unauthorized+closed session.stand_down
session.spawn      forbidden     forbidden forbidden     forbidden          forbidden          unauthorized+closed forbidden
session.clone      forbidden     forbidden forbidden     forbidden          forbidden          unauthorized+closed forbidden
session.spawned    forbidden     forbidden forbidden     session.stand_down session.stand_down unauthorized+closed session.stand_down
session.suspend    forbidden     forbidden forbidden     forbidden          forbidden          unauthorized+closed forbidden
session.suspended  forbidden     forbidden forbidden     session.stand_down session.stand_down unauthorized+closed session.stand_down
session.resume     forbidden     forbidden forbidden     forbidden          forbidden          unauthorized+closed forbidden
objects.want       forbidden     forbidden forbidden     session.stand_down session.stand_down unauthorized+closed session.stand_down
bin:pack           forbidden     forbidden not_found     session.stand_down session.stand_down unauthorized+closed session.stand_down
objects.sent       forbidden     forbidden forbidden     forbidden          forbidden          unauthorized+closed forbidden
session.resumed    forbidden     forbidden forbidden     session.stand_down session.stand_down unauthorized+closed session.stand_down
bin:output         forbidden     forbidden not_found     session.stand_down session.stand_down unauthorized+closed session.stand_down
session.stand_down forbidden     forbidden forbidden     forbidden          forbidden          unauthorized+closed forbidden
session.restart    forbidden     forbidden forbidden     forbidden          forbidden          unauthorized+closed forbidden
session.restarted  forbidden     forbidden forbidden     session.stand_down session.stand_down unauthorized+closed session.stand_down
session.sync       forbidden     forbidden forbidden     forbidden          forbidden          unauthorized+closed forbidden
session.synced     forbidden     forbidden forbidden     session.stand_down session.stand_down unauthorized+closed session.stand_down
output.ack         forbidden     forbidden forbidden     forbidden          forbidden          unauthorized+closed forbidden
setup.log          forbidden     forbidden forbidden     none               none               unauthorized+closed none
session.stop       ok            forbidden not_found     forbidden          forbidden          unauthorized+closed forbidden
EOF
)

# One well-formed message per type: TYPE, S when the envelope names the
# session, and the body. @NAME@ is filled in per sender (sample()).
SAMPLES=$(cat <<'EOF'
hello              - {"version":1,"role":"client","token":"@ALICE@"}
challenge          - {"nonce":"@ZERO64@"}
challenge.answer   - {"signature":"@ZERO64@@ZERO64@"}
welcome            - {"user":"alice","role":"client","version":1}
error              - {"code":"failed","message":"a refusal sent by @P@"}
ok                 - {}
ping               - {}
pong               - {}
pair.code          - {"code":"ABCDEFGH","expires":2000000000}
pair.approve       - {"code":"@CODE@"}
pair.approved      - {"machine":"@MID@","name":"laptop","user":"alice"}
env.list           - {"workspace":"@WS@"}
env.set            - {"workspace":"@WS@","name":"API_TOKEN","value":"@VALUE@"}
env.unset          - {"workspace":"@WS@","name":"API_TOKEN"}
env                - {"vars":[]}
env.sealed         - {"sealed":"AAAA"}
workspace.sync     - {"workspace":"@WS@","on":false}
workspace.setup    - {"workspace":"@WS@"}
machine.stop       - {}
session.sync       S {"on":false}
session.synced     S {"checkpoint":"@CKPT@","pack_bytes":"0"}
machines.list      - {}
machines           - {"machines":[]}
sessions.list      - {}
sessions           - {"sessions":[]}
credits.get        - {}
credits            - {"limited":false}
login.new          - {}
login.code         - {"code":"ABCDEFGH","expires":2000000000,"scope":"steer"}
setup.get          - {"machine":"@MID@"}
setup              - {"machine":"laptop","state":"ready","text":"x"}
session.start      - {"machine":"@MID@","dir":"@DIR@","agent":"test"}
session            S {"id":"@SID@","state":"running","machine":"laptop","kind":"local","seq":"0"}
session.status     S {}
session.attach     S {"from":"0"}
attached           S {"seq":"0"}
session.detach     S {}
session.resize     S {"cols":101,"rows":31}
session.move       S {"to":"laptop"}
move.step          S {"step":"fenced","detail":"@P@"}
move.done          S {"machine":"laptop","kind":"local","worktree":"/tmp/@P@"}
session.exited     S {"status":0}
session.spawn      S {"dir":"/tmp/@P@","agent":"test","epoch":"@EPOCH@","seq":"0"}
session.clone      S {"git":"https://git.example.invalid/x.git","agent":"shell","epoch":"@EPOCH@","workspace":"x"}
session.spawned    S {"worktree":"/tmp/@P@","workspace":"@WS@"}
session.suspend    S {"epoch":"@EPOCH@","have":[]}
session.suspended  S {"checkpoint":"@CKPT@","seq":"@SEQ@","pack_bytes":"0"}
session.resume     S {"checkpoint":"@CKPT@","agent":"test","epoch":"@EPOCH@","seq":"0","workspace":"@WS@"}
objects.want       S {"checkpoint":"@CKPT@","have":[]}
objects.sent       S {"checkpoint":"@CKPT@","pack_bytes":"0"}
session.resumed    S {"worktree":"/tmp/@P@","checkpoint":"@CKPT@"}
session.stand_down S {"epoch":"@EPOCH@"}
session.restart    S {"epoch":"@EPOCH@","seq":"0","agent":"test"}
session.restarted  S {"worktree":"/tmp/@P@"}
output.ack         S {"seq":"@SEQ@"}
setup.log          - {"text":"setup output from @P@","done":false}
session.stop       S {}
EOF
)

# ---- the protocol's message types, from both places it is written down

proto_types() {	# TYPE SENDERS (e.g. "session.resize CR"), proto.c's order
  sed -n '/^static const struct msg_type types\[\] = {/,/^};/p' \
    "$SRC/proto/proto.c" |
    sed -n 's/^[[:space:]]*{ "\([a-z._]*\)", \([CMR |]*\),.*/\1 \2/p' |
    awk '{ s = ""; for (i = 2; i <= NF; i++) if ($i != "|") s = s $i
           print $1, s }'
}
doc_types() {
  sed -n '/^## 8\. Messages/,/^### /p' "$SRC/proto/PROTOCOL.md" |
    sed -n 's/^| `\([a-z._]*\)` | \([CMR ]*\) |.*/\1 \2/p' |
    awk '{ s = ""; for (i = 2; i <= NF; i++) s = s $i; print $1, s }'
}
proto_types >"$T/types.proto"
doc_types >"$T/types.doc"
[ "$(wc -l <"$T/types.proto")" -ge 40 ] ||
  fail "cannot read the message table from $SRC/proto/proto.c"
if ! diff <(sort "$T/types.proto") <(sort "$T/types.doc") >"$T/types.diff"; then
  problem "proto/PROTOCOL.md section 8 and proto/proto.c disagree on the message types or their senders ('<' proto.c, '>' PROTOCOL.md): $(grep '^[<>]' "$T/types.diff" | tr '\n' ';')"
fi
[ "$(head -n 1 <<<"$EXPECTED" | tr -s ' ')" = "type ${SENDERS[*]}" ] ||
  fail "the expected table's columns are not: type ${SENDERS[*]}"
CELLS=()
while read -r type _; do
  [ "$type" = type ] || CELLS+=("$type")
done <<<"$EXPECTED"
for t in $(cut -d' ' -f1 "$T/types.proto"); do
  printf '%s\n' "${CELLS[@]}" | grep -x -- "$t" >/dev/null ||
    problem "message type $t (proto/proto.c) has no row in the expected matrix"
  grep -q "^$t " <<<"$SAMPLES" || problem "message type $t has no sample message"
done
for c in "${CELLS[@]}"; do
  [[ $c == bin:* ]] && continue
  grep -q "^$c " "$T/types.proto" ||
    problem "the expected matrix has a row for $c, which proto/proto.c does not define"
done
log "${#CELLS[@]} cells a sender: $(wc -l <"$T/types.proto") message types and 3 binary frame kinds"

# ---- helpers

# poke NAME: ws-poke with the script on stdin; output in $T/NAME.out.
poke() {
  local rc=0
  cat >"$T/$1.script"
  timeout 120 "$POKE" "$RELAY_PORT" <"$T/$1.script" >"$T/$1.out" \
    2>"$T/$1.err" || rc=$?
  [ $rc -eq 0 ] || fail "ws-poke $1 exited $rc: $(head -c 400 "$T/$1.err")"
}

# bin KIND FLAGS EPOCH SID SEQ [PAYLOAD-HEX]: a binary frame in hex.
bin() {
  printf '01%02x%04x%08x%s%016x%s' "$1" "$2" "$3" "${4//-/}" "$5" "${6:-}"
}
hexof() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }

# hello_client TOKEN ID: a client's hello.
hello_client() {
  printf 'text {"type":"hello","id":"%s","body":{"version":1,"role":"client","token":"%s"}}\n' "$2" "$1"
}

# as_alice ARGS...: the client with alice's steer token.
as_alice() { CLIENT_TOKEN=$ALICE baton "$@"; }

# field_of_id JSON ID NAME: NAME of the object whose "id" is ID.
field_of_id() {
  printf '%s' "$1" | flat | grep -o "{[^{}]*\"id\":\"$2\"[^{}]*}" |
    head -n 1 | sed -n "s/.*\"$3\":\"\{0,1\}\([^\",}]*\).*/\1/p"
}

# ---- the world: alice's laptop with her guarded session, two workspaces
# with sandboxes, a second laptop of hers, bob's machine

# The relay starts sandboxes through this wrapper, which keeps each one's
# bootstrap credential so that the logs can be searched for it.
REAL_SANDBOX_BIN=$SANDBOX_BIN
SANDBOX_BIN=$T/sandbox-wrapper
cat >"$SANDBOX_BIN" <<EOF
#!/bin/sh
printf '%s %s\n' "\$BATON_MACHINE" "\$BATON_BOOTSTRAP" >>"$T/bootstraps.txt"
exec "$REAL_SANDBOX_BIN" "\$@"
EOF
chmod +x "$SANDBOX_BIN"
start_relay
ALICE=$(token alice client)
ALICE_READ=$("$RELAY_BIN" token create --data "$RELAY_DATA" --user alice \
  --kind client --scope read)
BOB=$(token bob client)
ALICE_MT=$(token alice machine)
BOB_MT=$(token bob machine)
CLIENT_TOKEN=$ALICE
write_agents
start_local laptop "$ALICE_MT"
wait_for 60 "alice's laptop to register" machine_online laptop

REMOTE=https://git.example.invalid/acme/app.git
REMOTE2=https://git.example.invalid/acme/lib.git
SECRET=sk-authz-$RANDOM$RANDOM-alice
SECRET2=sk-authz-$RANDOM$RANDOM-lib
for d in app app-2 lib scratch; do new_repo "$T/$d"; done
git -C "$T/app" remote add origin "$REMOTE"
git -C "$T/app-2" remote add origin "$REMOTE"	# the same workspace
git -C "$T/lib" remote add origin "$REMOTE2"

SID=$(baton start --machine laptop --dir "$T/app" --agent test)
wait_output "$SID" "started session $SID" 60
baton send "$SID" "remember the guarded plan"
wait_output "$SID" "noted: the guarded plan" 60
SIDX=$(baton start --machine laptop --dir "$T/app-2" --agent shell)
SID2=$(baton start --machine laptop --dir "$T/lib" --agent shell)
has_workspace() { baton --json status "$1" | grep '"workspace"' >/dev/null; }
wait_for 30 "the workspace of $SIDX" has_workspace "$SIDX"
wait_for 30 "the workspace of $SID2" has_workspace "$SID2"
printf '%s\n' "$SECRET" | baton env set "$REMOTE" API_TOKEN >/dev/null
printf '%s\n' "$SECRET2" | baton env set "$REMOTE2" LIB_TOKEN >/dev/null

log "moving a session of each workspace to its sandbox (acme/app, acme/lib)"
baton --timeout 120 move "$SIDX" --to sandbox --wait >"$T/move-x.txt" 2>&1 &
MOVE_X=$!
baton --timeout 120 move "$SID2" --to sandbox --wait >"$T/move-2.txt" 2>&1 &
MOVE_2=$!
wait "$MOVE_X" || fail "move of $SIDX to a sandbox: $(tail -n 5 "$T/move-x.txt")"
wait "$MOVE_2" || fail "move of $SID2 to a sandbox: $(tail -n 5 "$T/move-2.txt")"
session_on "$SIDX" sandbox || fail "$SIDX is not on a sandbox"
session_on "$SID2" sandbox || fail "$SID2 is not on a sandbox"

status=$(baton --json status "$SID")
MID=$(json_field "$status" machine_id)
EPOCH=$(json_field "$status" epoch)
SEQ=$(json_field "$status" seq)
WS_ID=$(json_field "$status" workspace)
CKPT=$(json_field "$(baton --json status "$SIDX")" checkpoint)	# acme/app's
S1=$(json_field "$(baton --json status "$SIDX")" machine_id)
S2_STATUS=$(baton --json status "$SID2")
S2=$(json_field "$S2_STATUS" machine_id)
EPOCH2=$(json_field "$S2_STATUS" epoch)
machines=$(baton --json machines)
G1=$(field_of_id "$machines" "$S1" generation)
G2=$(field_of_id "$machines" "$S2" generation)
for v in MID EPOCH SEQ WS_ID CKPT S1 S2 EPOCH2 G1 G2; do
  [ -n "${!v}" ] || fail "could not learn $v (status: $status; machines: $machines)"
done
S2_KEY=$RELAY_DATA/sandboxes/$S2/home/.baton-sandbox/machine.key
[ -f "$S2_KEY" ] || fail "no key of sandbox $S2 at $S2_KEY"

sandbox_pid() {
  local pid
  for pid in $(pgrep -f "^$REAL_SANDBOX_BIN\$" || true); do
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null |
      grep -x "BATON_MACHINE=$1" >/dev/null && { echo "$pid"; return 0; }
  done
  return 1
}
S2_PID=$(sandbox_pid "$S2") || fail "no process for sandbox $S2"
BOOT1=$(sed -n "s/^$S1 //p" "$T/bootstraps.txt")
BOOT2=$(sed -n "s/^$S2 //p" "$T/bootstraps.txt")
[ -n "$BOOT1" ] && [ -n "$BOOT2" ] || fail "no bootstrap credentials found"

# Alice's second laptop, "desk": a raw connection; this binds its key.
poke desk-first <<EOF
key $T/desk.key
text {"type":"hello","id":"h","body":{"version":1,"role":"machine","kind":"local","name":"desk","token":"$ALICE_MT","key":"@PUBKEY@","sessions":[]}}
until 10000 "type":"challenge"
answer
until 10000 "id":"h"
close
EOF
DESK=$(sed -n 's/.*"type":"welcome".*"machine":"\([^"]*\)".*/\1/p' "$T/desk-first.out")
[ -n "$DESK" ] || fail "desk was not welcomed: $(cat "$T/desk-first.out")"

# Laptops waiting to pair: "laptop" (alice's machine's name), whose code
# everyone but alice presents and bob approves; "tablet", alice's.
wait_pair() {	# NAME: a background connection waiting with a code
  cat >"$T/pair-$1.script" <<EOF
key $T/pair-$1.key
text {"type":"hello","id":"p","body":{"version":1,"role":"pair","name":"$1","key":"@PUBKEY@"}}
until 10000 "type":"challenge"
answer
until 10000 "type":"pair.code"
until 110000 "type":"pair.approved"
EOF
  timeout 120 "$POKE" "$RELAY_PORT" <"$T/pair-$1.script" >"$T/pair-$1.out" \
    2>"$T/pair-$1.err" &
  PIDS+=("$!")
  wait_for 20 "a pairing code for $1" grep -q '"type":"pair.code"' "$T/pair-$1.out"
  sed -n 's/.*"type":"pair.code".*"code":"\([A-Z0-9]*\)".*/\1/p' "$T/pair-$1.out"
}
CODE_BOB=$(wait_pair laptop)
CODE_ALICE=$(wait_pair tablet)
[ -n "$CODE_BOB" ] && [ -n "$CODE_ALICE" ] || fail "no pairing codes"

# What must not change, seen by alice's own client.
snapshot() {
  local s
  s=$(as_alice --json status "$SID")
  for f in state machine machine_id kind worktree epoch seq; do
    printf '%s=%s\n' "$f" "$(json_field "$s" "$f")"
  done
  echo "transcript:"
  as_alice tail "$SID" --from 0
  echo "env:"
  as_alice --json env list | flat
  echo
  echo "machines:"
  as_alice --json machines | flat | grep -o '"id":"[^"]*","name":"[^"]*","kind":"[^"]*"'
  echo "sessions:"
  as_alice --json sessions | flat | grep -o '"id":"[^"]*","state":"[^"]*"'
}
snapshot >"$T/before.txt"
grep -q '^state=running$' "$T/before.txt" && grep -q '^kind=local$' "$T/before.txt" ||
  fail "the guarded session is not running on the laptop: $(head -n 8 "$T/before.txt")"

# ---- the matrix

# sample CELL SENDER [NOWHERE]: the ws-poke line of that cell. NOWHERE:
# aim at ids that do not exist instead of alice's.
NOSID=0badc0de-0000-4000-8000-0000000000a1
NOMID=0badc0de-0000-4000-8000-0000000000a2
# Workspaces are per user: a URL names the sender's own (env.set makes it),
# so alice's workspace is aimed at by its id, and "nowhere" is an id too.
NOWS=0badc0de-0000-4000-8000-0000000000a3
NOCKPT=0123456789abcdef0123456789abcdef01234567
ZERO64=$(printf '0%.0s' $(seq 64))
sample() {
  local cell=$1 p=$2 nowhere=${3:-} sid=$SID mid=$MID ws=$WS_ID ckpt=$CKPT
  local code=$CODE_BOB value="stolen-by-$p-$SECRET_SUFFIX" line flag body
  [ "$p" = steer ] && { code=$CODE_ALICE; value=$STEER_VALUE; }
  [ -n "$nowhere" ] && { sid=$NOSID; mid=$NOMID; ws=$NOWS; ckpt=$NOCKPT; code=ZZZZZZZZ; }
  case $cell in
    bin:input)  echo "binhex $(bin 2 0 0 "$sid" "$(input_id "$p")" \
                  "$(hexof "remember what $p typed")0d")"; return ;;
    bin:output) echo "binhex $(bin 1 0 "$EPOCH" "$sid" $((SEQ + 1)) \
                  "$(hexof "OUTPUT FORGED BY $p")0d0a")"; return ;;
    bin:pack)   echo "binhex $(bin 3 1 "$EPOCH" "$sid" 0 "$(hexof PACK)")"; return ;;
  esac
  line=$(grep "^$cell " <<<"$SAMPLES") || { echo "# no sample for $cell"; return; }
  read -r _ flag body <<<"$line"
  body=${body//@ALICE@/$ALICE}
  body=${body//@ZERO64@/$ZERO64}
  body=${body//@P@/$p}
  body=${body//@CODE@/$code}
  body=${body//@MID@/$mid}
  body=${body//@WS@/$ws}
  body=${body//@VALUE@/$value}
  body=${body//@DIR@/$T/scratch}
  body=${body//@SID@/$sid}
  body=${body//@EPOCH@/$EPOCH}
  body=${body//@SEQ@/$SEQ}
  body=${body//@CKPT@/$ckpt}
  if [ "$flag" = S ]; then
    printf 'text {"type":"%s","id":"%s","session":"%s","body":%s}\n' \
      "$cell" "@ID@" "$sid" "$body"
  else
    printf 'text {"type":"%s","id":"%s","body":%s}\n' "$cell" "@ID@" "$body"
  fi
}
SECRET_SUFFIX=$RANDOM$RANDOM
STEER_VALUE=alice-new-$RANDOM$RANDOM
input_id() {	# a distinct input id per sender
  case $1 in steer) echo 101 ;; read) echo 102 ;; bob) echo 103 ;;
    amach) echo 104 ;; bmach) echo 105 ;; sbx) echo 107 ;; *) echo 109 ;; esac
}

# prelude SENDER: the lines that make the sender's connection; the
# answer's id is SENDER-h.
prelude() {
  case $1 in
    steer) hello_client "$ALICE" "$1-h" ;;
    read) hello_client "$ALICE_READ" "$1-h" ;;
    bob|bob0) hello_client "$BOB" "$1-h" ;;
    amach) printf '%s\n' "key $T/desk.key" \
      "text {\"type\":\"hello\",\"id\":\"$1-h\",\"body\":{\"version\":1,\"role\":\"machine\",\"kind\":\"local\",\"name\":\"desk\",\"machine\":\"$DESK\",\"key\":\"@PUBKEY@\",\"sessions\":[]}}" ;;
    bmach|bmach0) printf '%s\n' "key $T/bobbox.key" \
      "text {\"type\":\"hello\",\"id\":\"$1-h\",\"body\":{\"version\":1,\"role\":\"machine\",\"kind\":\"local\",\"name\":\"bobbox\",\"machine\":\"$MID\",\"token\":\"$BOB_MT\",\"key\":\"@PUBKEY@\",\"sessions\":[]}}" ;;
    sbx) printf '%s\n' "key $S2_KEY" \
      "text {\"type\":\"hello\",\"id\":\"$1-h\",\"body\":{\"version\":1,\"role\":\"machine\",\"kind\":\"sandbox\",\"machine\":\"$S2\",\"generation\":\"$G2\",\"key\":\"@PUBKEY@\",\"sessions\":[{\"id\":\"$SID2\",\"epoch\":\"$EPOCH2\"}]}}" ;;
  esac
  case $1 in
    amach|bmach*|sbx) printf '%s\n' 'until 10000 "type":"challenge"' answer ;;
  esac
  printf '%s\n' "until 10000 \"id\":\"$1-h\"" \
    "text {\"type\":\"ping\",\"id\":\"$1-0-s\"}" "until 10000 \"id\":\"$1-0-s\""
}

# run_row SENDER [NOWHERE]: one connection sends every cell, each followed
# by a ping whose pong marks the end of its answer. Writes
# $T/row-SENDER.txt: CELL <tab> ANSWER <tab> BINARY-FRAMES <tab> REPLIES.
run_row() {
  local p=$1 nowhere=${2:-} k=0 cell
  log_mark "$p" from
  {
    prelude "$p"
    for cell in "${CELLS[@]}"; do
      k=$((k + 1))
      # alice's own input gets a moment to reach her agent before she
      # stops it; her start and stop are answered once the laptop acts.
      [ "$p/$cell" = steer/session.stop ] && echo "wait 1500"
      sample "$cell" "${p%0}" "$nowhere" | sed "s/@ID@/$p-$k/"
      case $p/$cell in
        steer/session.start|steer/session.stop)
          echo "until 20000 \"id\":\"$p-$k\"" ;;
      esac
      echo "text {\"type\":\"ping\",\"id\":\"$p-$k-s\"}"
      echo "until 10000 \"id\":\"$p-$k-s\""
    done
    echo "wait 300"
    echo close
  } | poke "row-$p"
  grep -q "\"id\":\"$p-h\"" "$T/row-$p.out" &&
    ! grep -q "^recv text {\"type\":\"error\",\"id\":\"$p-h\"" "$T/row-$p.out" ||
    fail "$p was not welcomed: $(head -c 600 "$T/row-$p.out")"
  [ "$(tail -n 1 "$T/row-$p.out")" = open ] ||
    problem "$p: the relay closed the connection during the row: $(grep '^recv close' "$T/row-$p.out" | head -n 1)"
  ! grep -q '^timeout ' "$T/row-$p.out" ||
    problem "$p: waits timed out: $(grep '^timeout ' "$T/row-$p.out" | tr '\n' ';')"
  attribute "$p" "${#CELLS[@]}" <"$T/row-$p.out" >"$T/row-$p.txt"
  log_mark "$p" to
}

# log_mark SENDER from|to: where the relay's log stood.
log_mark() { wc -l <"$T/relay.log" >"$T/logmark-$1-$2"; }

# attribute SENDER N: which reply answers which cell. A reply carrying a
# cell's id is that cell's; one without an id belongs to the cell whose
# marker pong comes next.
attribute() {
  awk -v P="$1" -v N="$2" '
    function field(line, name,   re) {
      re = "\"" name "\":\"[^\"]*\""
      if (!match(line, re)) return ""
      return substr(line, RSTART + length(name) + 4, RLENGTH - length(name) - 5)
    }
    BEGIN { cur = 0 }
    /^recv text / {
      id = field($0, "id"); t = field($0, "type")
      if (id ~ ("^" P "-[0-9]+-s$")) {
        k = substr(id, length(P) + 2); sub(/-s$/, "", k); cur = k + 1; next
      }
      if (id ~ ("^" P "-[0-9]+$")) k = substr(id, length(P) + 2) + 0
      else if (id == "") k = cur
      else next
      if (k < 1 || k > N) next
      a = (t == "error") ? field($0, "code") : t
      ans[k] = ans[k] (ans[k] == "" ? "" : ",") a
      line = substr($0, 11)
      gsub(/\t/, " ", line)
      txt[k] = txt[k] (txt[k] == "" ? "" : " | ") line
      next
    }
    /^recv binary / { if (cur >= 1 && cur <= N) bins[cur]++ }
    END {
      for (k = 1; k <= N; k++)
        printf "%d\t%s\t%d\t%s\n", k, (ans[k] == "" ? "none" : ans[k]),
          bins[k], txt[k]
    }'
}

# run_nohello: each cell on a connection of its own, as its first message.
run_nohello() {
  local k=0 cell ans
  log_mark nohello from
  : >"$T/row-nohello.txt"
  for cell in "${CELLS[@]}"; do
    k=$((k + 1))
    {
      sample "$cell" nohello | sed "s/@ID@/nohello-$k/"
      echo 'text {"type":"ping","id":"nohello-s"}'
      echo 'until 5000 "id":"nohello-s"'
      echo close
    } | poke "nohello-$k"
    ans=$(grep -a '^recv text ' "$T/nohello-$k.out" |
      grep -v '"id":"nohello-s"' | head -n 1 |
      sed -n 's/^recv text {"type":"error".*"code":"\([^"]*\)".*/\1/p;
              t; s/^recv text {"type":"\([^"]*\)".*/\1/p' || true)
    [ -n "$ans" ] || ans=none
    [ "$(tail -n 1 "$T/nohello-$k.out")" = closed ] && ans="$ans+closed"
    printf '%d\t%s\t0\t%s\n' "$k" "$ans" \
      "$(grep -a '^recv text ' "$T/nohello-$k.out" | grep -v '"id":"nohello-s"' |
        cut -c11- | tr '\t\n' '  ' || true)" >>"$T/row-nohello.txt"
  done
  log_mark nohello to
}

log "the matrix, alice's steer client last"
run_nohello
# Alice's sandbox of acme/lib is paused while its key speaks here.
CLEANUP+=("kill -CONT $S2_PID 2>/dev/null")
kill -STOP "$S2_PID"
run_row sbx
kill -CONT "$S2_PID"
run_row bmach
run_row amach
run_row read
run_row bob
# bob and bob's machine again, at ids that do not exist: the answers must
# be the same, or they tell alice's things apart from nothing.
run_row bob0 nowhere
run_row bmach0 nowhere

log "nothing changed for alice, as her own client sees it"
snapshot >"$T/after-others.txt"
if ! diff "$T/before.txt" "$T/after-others.txt" >"$T/changed.diff"; then
  cat "$T/changed.diff" >&2
  problem "alice's session, transcript, environment, machines or sessions changed while others tried them (diff above)"
fi
machine_online laptop || problem "alice's laptop went offline"
session_on "$SIDX" sandbox || problem "$SIDX left its sandbox"
session_on "$SID2" sandbox || problem "$SID2 left its sandbox"
grep -q '"type":"pair.approved"' "$T/pair-tablet.out" &&
  problem "alice's pairing code was spent by someone else"

run_row steer

# ---- the table, and the differences

cell_of() {	# SENDER K: the answer
  awk -F'\t' -v k="$2" '$1 == k { print $2 }' "$T/row-$1.txt"
}
{
  printf '%-19s' "type \\ sender"
  for s in "${SENDERS[@]}"; do printf ' %-20s' "$s"; done
  echo
} >"$T/matrix.txt"
k=0
DIFFS=()
while read -r -a row; do
  [ "${row[0]}" = type ] && continue
  k=$((k + 1))
  cell=${row[0]}
  printf '%-19s' "$cell" >>"$T/matrix.txt"
  for i in "${!SENDERS[@]}"; do
    s=${SENDERS[$i]}
    want=${row[$((i + 1))]}
    got=$(cell_of "$s" "$k")
    if [ "$got" = "$want" ]; then
      printf ' %-20s' "$got" >>"$T/matrix.txt"
    else
      printf ' %-20s' "!$got" >>"$T/matrix.txt"
      DIFFS+=("cell $cell x $s: expected $want, got $got: $(awk -F'\t' -v k="$k" '$1 == k { print $4 }' "$T/row-$s.txt" | cut -c1-400)")
    fi
  done
  echo >>"$T/matrix.txt"
done <<<"$EXPECTED"
log "the matrix (type x sender; a cell marked ! differs from the expected table):"
cat "$T/matrix.txt" >&2
for d in "${DIFFS[@]}"; do problem "$d"; done

# Every refusal is an error with a code and a sentence, and carries the
# id of the request it answers (binary frames have none).
for s in "${SENDERS[@]}"; do
  while IFS=$'\t' read -r k ans _ txt; do
    case $ans in
      *forbidden*|*not_found*|*unauthorized*|*bad_message*|*conflict*|*unavailable*) ;;
      *) continue ;;
    esac
    cell=${CELLS[$((k - 1))]}
    msg=$(sed -n 's/.*"message":"\(\([^"\\]\|\\.\)*\)".*/\1/p' <<<"$txt" | head -n 1)
    [ ${#msg} -ge 15 ] ||
      problem "cell $cell x $s: the refusal has no sentence a person can act on: $txt"
    [[ $cell == bin:* ]] || grep -qF "\"id\":\"$s-$k\"" <<<"$txt" ||
      problem "cell $cell x $s: the refusal does not carry the request's id $s-$k: $txt"
  done <"$T/row-$s.txt"
done
log "the refusals' reasons, by sender:"
for s in "${SENDERS[@]}"; do
  cut -f4 "$T/row-$s.txt" | grep -o '"code":"[^"]*","message":"\([^"\\]\|\\.\)*"' |
    sort | uniq -c | sed "s/^/  $s: /" >&2 || true
done

# Bob learns nothing: every answer is the one for ids that do not exist.
for pair in bob:bob0 bmach:bmach0; do
  a=${pair%%:*} b=${pair##*:}
  k=0
  for cell in "${CELLS[@]}"; do
    k=$((k + 1))
    # login.new names nothing of anyone's and answers a new code each time
    case $cell in hello|pair.approve|login.new) continue ;; esac
    x=$(awk -F'\t' -v k="$k" '$1 == k { print $2 "\t" $3 "\t" $4 }' "$T/row-$a.txt" |
      sed "s/$SID/SID/g; s/$MID/MID/g; s/$CKPT/CKPT/g; s|$REMOTE|WS|g; s/\"$a-$k\"/ID/g")
    y=$(awk -F'\t' -v k="$k" '$1 == k { print $2 "\t" $3 "\t" $4 }' "$T/row-$b.txt" |
      sed "s/$NOSID/SID/g; s/$NOMID/MID/g; s/$NOCKPT/CKPT/g; s|$NOWS|WS|g; s/\"$b-$k\"/ID/g")
    [ "$x" = "$y" ] ||
      problem "$a's $cell tells alice's from nothing: for alice's: '$(cut -f3 <<<"$x" | cut -c1-250)'; for ids that do not exist: '$(cut -f3 <<<"$y" | cut -c1-250)'"
  done
done

# What the others were sent holds nothing of alice's.
for s in bob bmach amach sbx read; do
  n=$(grep -c '^recv binary ' "$T/row-$s.out" || true)
  case $s in
    read) [ "$n" -gt 0 ] || problem "the read-only client's attach from 0 got no output" ;;
    *) [ "$n" -eq 0 ] || problem "$s was sent $n binary frames (output or pack of alice's)" ;;
  esac
done
# (bob's own requests name SID, MID and CKPT; the comparison above covers
# what he is told about them.)
for id in "$DESK" "$S1" "$S2" "$SIDX" "$SID2" "$WS_ID"; do
  ! grep -qF "$id" "$T/row-bob.out" "$T/row-bmach.out" ||
    problem "bob was sent alice's id $id: $(grep -hF "$id" "$T/row-bob.out" "$T/row-bmach.out" | head -n 2 | cut -c1-300)"
done
for v in "$SECRET" "$SECRET2" "$STEER_VALUE"; do
  ! grep -qF "$v" "$T"/row-*.out "$T"/nohello-*.out "$T"/pair-*.out ||
    problem "an environment value reached a connection: $(grep -lF "$v" "$T"/row-*.out "$T"/nohello-*.out "$T"/pair-*.out | tr '\n' ' ')"
done
# bmach's hello named alice's laptop's record: it got its own.
grep -q "\"id\":\"bmach-h\".*\"machine\":\"$MID\"" "$T/row-bmach.out" &&
  problem "bob's machine was welcomed as alice's laptop"
# bob's approval paired a laptop named "laptop" for bob, not alice's.
grep -q '"type":"pair.approved".*"user":"bob"' "$T/pair-laptop.out" ||
  problem "bob's approval did not pair the waiting laptop for bob: $(tail -n 3 "$T/pair-laptop.out")"
grep -q "\"machine\":\"$MID\"" "$T/pair-laptop.out" &&
  problem "bob's approval of a laptop named \"laptop\" took alice's laptop's record"
# sbx got its own workspace's environment at its welcome, and nothing else.
[ "$(grep -c '"type":"env.sealed"' "$T/row-sbx.out")" -eq 1 ] ||
  problem "alice's sandbox of acme/lib got $(grep -c '"type":"env.sealed"' "$T/row-sbx.out") env.sealed messages, not 1"

log "alice's steer client's cells took effect"
wait_output "$SID" "noted: what steer typed" 30
sid_exited() { [ "$(json_field "$(as_alice --json status "$SID")" state)" = exited ]; }
wait_for 30 "alice's stop to end the session" sid_exited
env_now=$(as_alice --json env list)
! grep -q '"API_TOKEN"' <<<"$env_now" ||
  problem "alice's env.unset did not remove API_TOKEN"
grep -q '"type":"pair.approved".*"user":"alice"' "$T/pair-tablet.out" ||
  problem "alice's approval did not pair the tablet"
tail_now=$(as_alice tail "$SID" --from 0)
for s in read bob amach bmach sbx nohello; do
  ! grep -q "what $s typed\|FORGED BY $s" <<<"$tail_now" ||
    problem "input or output of $s reached alice's session"
done

# ---- outside the matrix: the handshake

log "a replayed challenge answer: signed on connection A, shown on B"
hello_desk="text {\"type\":\"hello\",\"id\":\"h\",\"body\":{\"version\":1,\"role\":\"machine\",\"kind\":\"local\",\"name\":\"desk\",\"machine\":\"$DESK\",\"key\":\"@PUBKEY@\",\"sessions\":[]}}"
poke replay-a <<EOF
key $T/desk.key
$hello_desk
until 10000 "type":"challenge"
answer
until 10000 "id":"h"
close
EOF
SIG=$(sed -n 's/^sent answer \([0-9a-f]*\)$/\1/p' "$T/replay-a.out")
grep -q '"type":"welcome"' "$T/replay-a.out" && [ ${#SIG} -eq 128 ] ||
  fail "desk's own answer was not welcomed: $(cat "$T/replay-a.out")"
poke replay-b <<EOF
key $T/desk.key
$hello_desk
until 10000 "type":"challenge"
text {"type":"challenge.answer","id":"r","body":{"signature":"$SIG"}}
until 10000 "id":"r"
wait 1000
EOF
grep -q '^recv text {"type":"error","id":"r".*"code":"unauthorized"' "$T/replay-b.out" &&
  ! grep -q '"type":"welcome"' "$T/replay-b.out" &&
  [ "$(tail -n 1 "$T/replay-b.out")" = closed ] ||
  problem "a replayed challenge answer was not refused (unauthorized, closed): $(cat "$T/replay-b.out")"
log "replayed answer: $(grep -o '"code":"[^"]*","message":"[^"]*"' "$T/replay-b.out" | head -n 1)"

# refused NAME CODE TEXT: the hello got error CODE whose message has TEXT,
# no welcome, and the relay closed the connection.
refused() {
  if ! grep -q "^recv text {\"type\":\"error\",\"id\":\"h\".*\"code\":\"$2\".*$3" "$T/$1.out" ||
     grep -q '"type":"welcome"' "$T/$1.out" ||
     [ "$(tail -n 1 "$T/$1.out")" != closed ]; then
    problem "$1: expected $2 ('$3') and a closed connection, got: $(grep -v '^sent answer' "$T/$1.out" | tr '\n' ' ' | cut -c1-400)"
  else
    log "$1: $2: $(grep -o '"message":"[^"]*"' "$T/$1.out" | head -n 1)"
  fi
}
# machine_hello NAME KEY BODY: a machine's hello with BODY's fields, answered.
machine_hello() {
  poke "$1" <<EOF
key $2
text {"type":"hello","id":"h","body":{"version":1,"role":"machine","key":"@PUBKEY@","sessions":[],$3}}
until 10000 "type":"challenge"
answer
until 10000 "id":"h"
wait 1000
EOF
}
log "machine credentials that do not match the record they name"
machine_hello token-laptop-other-key "$T/other.key" \
  "\"kind\":\"local\",\"name\":\"laptop\",\"token\":\"$ALICE_MT\""
refused token-laptop-other-key forbidden "paired with another key"
machine_hello token-desk-other-key "$T/other.key" \
  "\"kind\":\"local\",\"name\":\"desk\",\"machine\":\"$DESK\",\"token\":\"$ALICE_MT\""
refused token-desk-other-key forbidden "paired with another key"
machine_hello record-laptop-other-key "$T/other.key" \
  "\"kind\":\"local\",\"name\":\"laptop\",\"machine\":\"$MID\""
refused record-laptop-other-key unauthorized "does not know this machine"
machine_hello sandbox-other-key "$S2_KEY" \
  "\"kind\":\"sandbox\",\"machine\":\"$S1\",\"generation\":\"$G1\""
refused sandbox-other-key unauthorized "does not know this machine"
machine_hello sandbox-machine-token "$T/other.key" \
  "\"kind\":\"sandbox\",\"machine\":\"$S1\",\"generation\":\"$G1\",\"token\":\"$ALICE_MT\""
refused sandbox-machine-token unauthorized "bootstrap credential"
machine_hello sandbox-bobs-token "$T/other.key" \
  "\"kind\":\"sandbox\",\"machine\":\"$S1\",\"generation\":\"$G1\",\"token\":\"$BOB_MT\""
refused sandbox-bobs-token unauthorized "bootstrap credential"
machine_hello sandbox-spent-credential "$T/other.key" \
  "\"kind\":\"sandbox\",\"machine\":\"$S1\",\"generation\":\"$G1\",\"token\":\"$BOOT1\""
refused sandbox-spent-credential unauthorized "bootstrap credential"
machine_hello client-token-as-machine "$T/other.key" \
  "\"kind\":\"local\",\"name\":\"laptop\",\"token\":\"$ALICE\""
refused client-token-as-machine forbidden "client token"
machine_hello token-sandbox-name "$T/other.key" \
  "\"kind\":\"local\",\"name\":\"sandbox-${WS_ID:0:8}\",\"token\":\"$ALICE_MT\""
refused token-sandbox-name forbidden "not sandbox-"
machine_online laptop || problem "alice's laptop went offline after the impostors"
session_on "$SIDX" sandbox || problem "$SIDX left its sandbox after the impostors"

# ---- logs: no token, credential, code or value

log "searching every log for secrets"
LOGS=()
while IFS= read -r f; do LOGS+=("$f"); done < <(
  find "$T" -maxdepth 1 -name '*.log'
  find "$RELAY_DATA" -name '*.log')
[ ${#LOGS[@]} -ge 4 ] || fail "found only these logs: ${LOGS[*]}"
log "${#LOGS[@]} logs: ${LOGS[*]#"$T"/}"
for v in ALICE ALICE_READ BOB ALICE_MT BOB_MT BOOT1 BOOT2 SECRET SECRET2 \
    STEER_VALUE CODE_BOB CODE_ALICE; do
  hits=$(grep -lF -- "${!v}" "${LOGS[@]}" || true)
  [ -z "$hits" ] || problem "$v appears in: $(echo "$hits" | tr '\n' ' ')"
done
# The machines' secret keys (the first 32 bytes: the seed), in hex.
for f in "$T/state-laptop/machine.key" "$T/desk.key" "$T/bobbox.key" "$S2_KEY" \
    "$RELAY_DATA/sandboxes/$S1/home/.baton-sandbox/machine.key"; do
  seed=$(od -An -v -tx1 -N32 "$f" | tr -d ' \n')
  [ ${#seed} -eq 64 ] || { problem "cannot read the key $f"; continue; }
  hits=$(grep -liF -- "$seed" "${LOGS[@]}" || true)
  [ -z "$hits" ] || problem "the secret key in $f appears in: $hits"
done
hits=$(grep -lF -- "stolen-by-" "${LOGS[@]}" || true)
[ -z "$hits" ] || problem "a refused env.set value appears in: $(echo "$hits" | tr '\n' ' ')"
# The codes also in the dashed form people type.
for c in "$CODE_BOB" "$CODE_ALICE"; do
  hits=$(grep -lF -- "${c:0:4}-${c:4}" "${LOGS[@]}" || true)
  [ -z "$hits" ] || problem "pairing code ${c:0:4}-${c:4} appears in: $hits"
done

# Refusals are logged, and the log says whose they were: during each
# sender's turn the relay logs a line for every refusal, and the lines
# name the sender's user (or the connection, named with its user elsewhere
# in the log).
REFUSAL='refus|forbidden|not_found|not found|no such|unauthori[sz]ed|bad message|may not|stand down|stand_down|denied|read-only|before hello'
for s in nohello sbx bmach amach read bob; do
  from=$(cat "$T/logmark-$s-from") to=$(cat "$T/logmark-$s-to")
  sed -n "$((from + 1)),${to}p" "$T/relay.log" | grep -Ei -- "$REFUSAL" \
    >"$T/refusals-$s.txt" || true
  refused=$(cut -f2 "$T/row-$s.txt" | grep -cv '^\(none\|pong\|welcome\|ok\|env\|machines\|sessions\|credits\|login.code\|setup\|session\|attached\|pair.approved\)$' || true)
  logged=$(wc -l <"$T/refusals-$s.txt")
  case $s in
    nohello) who= ;;
    bob|bmach) who=bob ;;
    *) who=alice ;;
  esac
  named=0
  if [ -z "$who" ]; then
    named=$logged
  else
    while IFS= read -r line; do
      if grep -q "\b$who\b" <<<"$line"; then
        named=$((named + 1))
      elif conn=$(grep -o 'connection [0-9]*' <<<"$line" | head -n 1) &&
          grep -E "$conn\b" "$T/relay.log" | grep "\b$who\b" >/dev/null; then
        named=$((named + 1))
      fi
    done <"$T/refusals-$s.txt"
  fi
  log "$s: $refused refusals; $logged lines about refusals in the relay's log during its turn, $named of them say whose"
  [ "$logged" -ge "$refused" ] ||
    problem "$s: $refused refusals, but only $logged lines about refusals in the relay's log during its turn (among those not logged: $(cut -f2,4 "$T/row-$s.txt" | grep -Ev '^(none|pong|welcome|ok|env|machines|sessions|credits|login.code|setup|session|attached|pair.approved)\s' | grep -v 'may not be sent by' | cut -c1-160 | sort -u | head -n 3 | tr '\n' ';' || true))"
  [ "$named" -ge "$logged" ] ||
    problem "$s: $((logged - named)) of the $logged log lines about its refusals do not say whose they were (user $who), e.g. '$(head -n 1 "$T/refusals-$s.txt" | cut -c1-200)'"
done

stop_relay
if [ ${#PROBLEMS[@]} -gt 0 ]; then
  log "${#PROBLEMS[@]} problem(s):"
  printf '  - %s\n' "${PROBLEMS[@]}" >&2
  fail "authorization: ${#PROBLEMS[@]} problem(s), listed above"
fi
log "authorization matrix: OK"
