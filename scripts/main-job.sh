#!/usr/bin/env bash
# main-job.sh: Baton's main job, end to end, on 127.0.0.1 in a temporary
# folder. The relay serves wss:// with a certificate from a throwaway CA,
# and the laptop is paired with a one-time code rather than a token. It
# clones this repository as a real workspace, makes edits of every kind,
# starts a session with an agent that keeps a conversation, moves it to a
# sandbox, has the agent continue there, moves it back, and checks that
# the laptop's worktree holds exactly the sandbox's state. Exits non-zero
# if anything differs; leaves no process running.
#
# With --laptop-offline, the workspace syncs and the laptop daemon is
# stopped before the move: the sandbox resumes from the last upload, and
# the daemon comes back before the move home.
#
# Needs BATON_BIN (the build folder; scripts/demo.sh sets it) and openssl.
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
# shellcheck source=../tests/integration/lib.sh
source "$src/tests/integration/lib.sh"

step() { printf '\n== %s\n' "$*"; }

OFFLINE=
case ${1:-} in
  --laptop-offline) OFFLINE=1 ;;
  "") ;;
  *) fail "main-job.sh: unknown option $1 (only --laptop-offline)" ;;
esac
# synced: the session's workspace has an upload.
synced() { baton --json status "$SID" | grep -q '"synced_checkpoint"'; }

command -v openssl >/dev/null ||
  fail "the openssl tool is missing: apt-get install openssl" \
    "(or scripts/deps.sh)"

step "a throwaway CA and a certificate for 127.0.0.1"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$T/ca.key" -out "$T/ca.pem" -days 2 -subj "/CN=Baton demo CA" \
  -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign,cRLSign 2>>"$T/openssl.log"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$T/relay.key" -out "$T/relay.csr" -subj "/CN=127.0.0.1" \
  2>>"$T/openssl.log"
printf '%s\n' subjectAltName=IP:127.0.0.1 basicConstraints=CA:FALSE \
  extendedKeyUsage=serverAuth >"$T/relay.ext"
openssl x509 -req -in "$T/relay.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" \
  -CAcreateserial -days 2 -extfile "$T/relay.ext" -out "$T/relay.pem" \
  2>>"$T/openssl.log"
openssl x509 -in "$T/relay.pem" -noout -subject -ext subjectAltName
# baton, baton-local and `baton-local pair` trust only this CA; the relay
# hands it to the sandboxes it starts (--ca).
export BATON_CA=$T/ca.pem

step "the relay on wss://127.0.0.1, and a client token"
RELAY_ARGS=(--tls-cert "$T/relay.pem" --tls-key "$T/relay.key"
  --ca "$T/ca.pem")
RELAY_SCHEME=wss
start_relay
CLIENT_TOKEN=$(token demo client)
echo "relay at $RELAY_URL, data in $RELAY_DATA"
echo "client token for user demo made with baton-relay token create"

step "pair the laptop: baton-local pair shows a code, the client approves it"
pair_start laptop
CODE=$(pair_code laptop)
[ -n "$CODE" ] || fail "baton-local pair showed no code"
grep -v $'\033' "$T/pair-laptop.out" | sed '/^$/d; s/^/  | /'
echo "  (and a QR code of $(grep -c $'\033' "$T/pair-laptop.out") lines)"
baton pair approve "$CODE"
wait "$PAIR_PID" || fail "baton-local pair failed: $(cat "$T/pair-laptop.log")"
grep '^Paired' "$T/pair-laptop.out"
echo "the laptop's key: $(stat -c '%A' "$T/state-laptop/machine.key")" \
  "$T/state-laptop/machine.key"
echo "its record: $(flat <"$T/state-laptop/machine.json")"

step "the laptop daemon, with its key and no token"
write_agents
start_local laptop ""
wait_for 30 "the laptop to register" machine_online laptop
baton machines

step "a real workspace: a clone of this repository, edited every way"
WT=$T/laptop/baton
git clone -q "$src" "$WT"
cd "$WT"
git checkout -q -B demo-branch
printf '\nEdited on the laptop.\n' >>README.md               # modified
printf '# staged\n' >>CMakeLists.txt && git add CMakeLists.txt # staged
printf '# and edited again\n' >>CMakeLists.txt                # MM
mkdir -p notes/deep/er && printf 'todo\n' >notes/deep/er/todo.md # untracked
git rm -q --cached scripts/packages-test.txt                  # staged delete
rm -f .gitignore                                              # deleted
chmod +x proto/PROTOCOL.md                                    # exec bit
ln -s README.md readme-link                                   # symlink
ln -s ../outside dangling-link
mkdir -p build-demo && printf 'ignored\n' >build-demo/ignored.txt
printf '/build-demo/\n' >>.git/info/exclude                   # ignored
cd - >/dev/null
before=$(fingerprint "$WT")
git -C "$WT" status --short | head -n 20

step "a session with the test agent, steered through the relay"
SID=$(baton start --machine laptop --dir "$WT" --agent test)
echo "session $SID"
wait_output "$SID" "> "
baton send "$SID" "remember the plan was made on the laptop"
wait_output "$SID" "noted: the plan was made on the laptop"

if [ -n "$OFFLINE" ]; then
  step "sync on, then the laptop daemon stops (the laptop went to sleep)"
  baton sync on "$(json_field "$(baton --json status "$SID")" workspace)"
  wait_for 60 "the first upload" synced
  baton status "$SID" | grep '^sync'
  kill -TERM "$LOCAL_PID_laptop"
  wait "$LOCAL_PID_laptop" || fail "baton-local did not stop cleanly"
  wait_for 60 "the relay to see the laptop offline" \
    sh -c "! BATON_RELAY=$RELAY_URL BATON_TOKEN=$CLIENT_TOKEN \
      $CLIENT_BIN --json machines | tr -d '\n\t ' |
      grep -q '\"name\":\"laptop\"[^}]*\"online\":true'"
  baton machines
fi

step "move to a sandbox"
baton move "$SID" --to sandbox --wait
status=$(baton --json status "$SID")
[ "$(json_field "$status" kind)" = sandbox ] ||
  fail "the session is not on the sandbox: $status"
SBX=$(json_field "$status" worktree)
echo "now in $SBX"
diff <(echo "$before") <(fingerprint "$SBX") ||
  fail "the sandbox's worktree differs from the laptop's"
echo "the sandbox's worktree is identical to the laptop's"
grep -q "relay $RELAY_URL, CAs from $T/ca.pem" \
  "$RELAY_DATA"/sandboxes/*/sandbox.log ||
  fail "the sandbox did not connect over wss:// trusting the job's CA"
echo "the sandbox connected to $RELAY_URL trusting only the job's CA"

step "the agent continues in the sandbox and remembers"
baton send "$SID" "recall"
wait_output "$SID" "turn 1: remember the plan was made on the laptop"
baton send "$SID" "edit sandbox-notes.txt written in the sandbox"
wait_output "$SID" "edited sandbox-notes.txt"
[ -f "$SBX/sandbox-notes.txt" ] || fail "the agent's edit is missing"
in_sandbox=$(fingerprint "$SBX")

if [ -n "$OFFLINE" ]; then
  step "the laptop wakes up: its daemon starts again"
  start_local laptop ""
  wait_for 60 "the laptop to register again" machine_online laptop
  baton machines
fi

step "move back to the laptop"
baton move "$SID" --to laptop --wait
status=$(baton --json status "$SID")
[ "$(json_field "$status" kind)" = local ] ||
  fail "the session is not back on the laptop: $status"
[ "$(json_field "$status" worktree)" = "$WT" ] ||
  fail "the session came back to another folder: $status"
diff <(echo "$in_sandbox") <(fingerprint "$WT") ||
  fail "the laptop's worktree differs from the sandbox's"
[ "$(cat "$WT/build-demo/ignored.txt")" = ignored ] ||
  fail "the laptop's ignored file was touched"
echo "the laptop's worktree holds exactly the sandbox's state"

step "one conversation, one transcript"
baton send "$SID" "recall"
wait_output "$SID" "turn 3: edit sandbox-notes.txt written in the sandbox"
n=$(transcript "$SID" | grep -c "resumed session $SID" || true)
[ "$n" -eq 2 ] || fail "expected two resumes in the transcript, saw $n"
baton stop "$SID"
baton --json status "$SID"

step "shutdown"
stop_relay
for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
wait 2>/dev/null || true
if pgrep -f "$T/" >/dev/null; then
  pgrep -af "$T/" >&2
  fail "processes were left running"
fi
echo "main job: OK"
