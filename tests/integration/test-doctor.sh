#!/usr/bin/env bash
# test-doctor.sh: `baton doctor`, the readiness check (cases
# local-only-config and dotenv). A repository with a localhost MCP server,
# a server that runs a program in the laptop's home, an ignored
# .claude/settings.local.json, paths under the home folder, ignored .env
# files beside a tracked .env.example, a setup script that is not
# executable, and variables .baton/sandbox.json requires: each is named
# with its fix, no value is ever printed, and the exit status is 1. Then
# every problem is fixed and each line turns ok, exit 0. Sync and credits
# where the relay keeps them (else skip). Also: no remote, a token in the
# remote URL, no repository, a setup script for another interpreter, no
# token, and a relay that cannot be reached (the local checks still print;
# exit 6).
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

REMOTE=https://git.example.invalid/acme/app.git
HOME_L=$T/home-laptop	# the laptop's home, as start_local makes it

# doctor ARGS...: runs `baton doctor` as the laptop's user; its output in
# $T/doctor.out, stderr in $T/doctor.log (searched for sanitizer reports);
# sets RC.
doctor() {
  RC=0
  HOME=$HOME_L BATON_RELAY=$RELAY_URL BATON_TOKEN=$CLIENT_TOKEN \
    "$CLIENT_BIN" doctor "$@" >"$T/doctor.out" 2>>"$T/doctor.log" || RC=$?
}

# says LABEL TEXT...: the last doctor output has the line LABEL (ok, warn,
# FAIL, skip, or fix: for the line under an item) and the TEXT words,
# exactly.
says() {
  local want
  if [ "$1" = fix: ]; then
    shift
    want="     fix: $*"
  else
    want=$(printf '%-4s %s' "$1" "${*:2}")
  fi
  grep -Fxq -- "$want" "$T/doctor.out" || {
    cat "$T/doctor.out" >&2
    fail "doctor does not say: $want"
  }
}

# line REGEX WHAT: the last doctor output has a line matching REGEX.
line() {
  grep -Eq -- "$1" "$T/doctor.out" || {
    cat "$T/doctor.out" >&2
    fail "doctor does not say: $2"
  }
}

# no_line REGEX WHAT: the last doctor output has no line matching REGEX.
no_line() {
  ! grep -Eq -- "$1" "$T/doctor.out" || {
    cat "$T/doctor.out" >&2
    fail "doctor says what it should not: $2"
  }
}

# rc WANT WHAT: the last doctor run exited WANT.
rc() {
  [ "$RC" -eq "$1" ] || {
    cat "$T/doctor.out" >&2
    fail "$2: doctor exited $RC, not $1"
  }
}

start_relay
start_laptop alice
mkdir -p "$HOME_L"

log "the repository: cases local-only-config and dotenv"
WT=$T/app
new_repo "$WT"
git -C "$WT" remote add origin "$REMOTE"
mkdir -p "$WT/.baton" "$WT/.claude" "$WT/apps/api"
printf '.env\n.env.local\n.claude/settings.local.json\n' >"$WT/.gitignore"
printf 'API_TOKEN=\nDATABASE_URL=\nEXAMPLE_ONLY=\n' >"$WT/.env.example"
cat >"$WT/.env" <<'ENV'
# the laptop's secrets
API_TOKEN=sk-doctor-one
export DATABASE_URL="postgres://app:sk-doctor-two@db/app"
CERT="-----BEGIN FAKE-----
NOT_A_NAME=sk-doctor-three
-----END FAKE-----"
ENV
printf 'STRIPE_KEY = sk-doctor-four\n' >"$WT/apps/api/.env.local"
cat >"$WT/.mcp.json" <<JSON
{"mcpServers": {
  "api": {"type": "http",
          "url": "http://user:sk-doctor-five@localhost:4000/mcp"},
  "docs": {"type": "http", "url": "https://mcp.example.invalid/docs"},
  "tool": {"command": "$HOME_L/bin/mcp-tool",
           "env": {"TOOL_HOME": "$HOME_L/tool-secret"}},
  "lint": {"command": "npx", "args": ["lint-mcp", "--rules=$HOME_L/rules.json"]}
}}
JSON
cat >"$WT/.claude/settings.local.json" <<JSON
{"permissions": {"allow": ["Read($HOME_L/notes/**)"]},
 "env": {"NOTES": "$HOME_L/private"}}
JSON
printf '#!/bin/bash\necho setting up\n' >"$WT/.baton/setup"
chmod 644 "$WT/.baton/setup"
printf '{"env": ["API_TOKEN", "DATABASE_URL"]}\n' >"$WT/.baton/sandbox.json"
git -C "$WT" add -A
git -C "$WT" commit -q -m "the app"
git -C "$WT" status --porcelain --ignored | grep '^!! .claude/' >/dev/null ||
  fail "the test's settings.local.json is not ignored"

log "before any session: the relay knows no workspace yet"
doctor --dir "$WT"
rc 1 "a repository with FAILs"
line "^warn +the relay knows no workspace $REMOTE yet" "unknown workspace"
line "fix: baton start --machine LAPTOP --dir $WT" "how a workspace is made"
says fix: printf %s VALUE \| baton env set "$REMOTE" API_TOKEN \
  "(once a session has started here)"

log "a session makes the workspace; the full checklist"
SID=$(baton start --machine laptop --dir "$WT" --agent shell)
wait_for 30 "the session's workspace" \
  sh -c "BATON_RELAY=$RELAY_URL BATON_TOKEN=$CLIENT_TOKEN $CLIENT_BIN \
    --json status $SID | grep '\"workspace\"' >/dev/null"
doctor --dir "$WT/apps"
rc 1 "a repository with FAILs"
cp "$T/doctor.out" "$T/doctor-before.out"
line "^ok +$WT is a git repository with remote origin $REMOTE$" "the remote"
line "^ok +the relay knows workspace $REMOTE$" "the workspace"
line "^warn +\.baton/setup is not executable" "setup not executable"
line "^ +fix: chmod \+x \.baton/setup && git add \.baton/setup$" "chmod"
says warn ".claude/settings.local.json is ignored by git (this laptop's" \
  "own): the sandbox will not have it"
line "^ +fix: put what the sandbox needs in \.claude/settings\.json" \
  "where shared settings go"
says FAIL '.mcp.json: server "api" at localhost:4000 is on this laptop' \
  "and cannot work in a sandbox"
says FAIL ".mcp.json: server \"tool\" runs $HOME_L/bin/mcp-tool, a program" \
  "on this laptop, and cannot work in a sandbox"
no_line "server \"(docs|lint)\"" "servers that work anywhere"
says warn ".mcp.json mentions $HOME_L/rules.json, a path on this laptop" \
  "only"
says warn ".claude/settings.local.json mentions $HOME_L/notes/**, a path" \
  "on this laptop only"
no_line "tool-secret|/private" "values under \"env\" (may be secrets)"
says FAIL "API_TOKEN (required by .baton/sandbox.json) is not set in the" \
  "remote environment"
line "^ +fix: printf %s VALUE \| baton env set $REMOTE API_TOKEN$" \
  "how to set API_TOKEN"
line "^FAIL +DATABASE_URL \(required by \.baton/sandbox\.json\)" \
  "the other required variable"
says warn ".env is ignored by git: its values stay on this laptop, and" \
  "the sandbox gets variables only from the remote environment"
line "^warn +apps/api/\.env\.local is ignored by git" "the ignored .env.local"
says warn "STRIPE_KEY (in apps/api/.env.local) is not in the remote" \
  "environment"
line "^ +fix: printf %s VALUE \| baton env set $REMOTE STRIPE_KEY$" \
  "how to set STRIPE_KEY"
[ "$(grep -c 'API_TOKEN' "$T/doctor.out")" -eq 2 ] ||
  fail "API_TOKEN (required, and in .env) is not reported once"
line "^warn +CERT \(in \.env\) is not in the remote environment$" \
  "a variable whose value spans lines"
no_line "NOT_A_NAME|EXAMPLE_ONLY" "names inside a value or the example"
no_line "\.env\.example|cp " "a suggestion to copy .env.example"
no_line "sk-doctor|user:" "a secret value"
line "^warn +no git account is connected" "no git account"
CREDITS=0
"$RELAY_BIN" --help | grep -F "credits set" >/dev/null && CREDITS=1
if [ $CREDITS = 1 ]; then
  says ok "sandbox credits: this relay sets you no limit"
else
  says skip "sandbox credits left (not supported by this relay yet)"
fi
line "^not ready: 4 check\(s\) failed" "the verdict"
SYNC=0
baton --json status "$SID" | flat | grep '"sync":' >/dev/null && SYNC=1
if [ $SYNC = 1 ]; then
  says warn "workspace sync is off: a move to a sandbox needs this laptop" \
    "online"
  line "^ +fix: baton sync on $REMOTE$" "how to turn sync on"
else
  line "^skip +workspace sync \(not supported by this relay yet\)$" \
    "sync skipped"
fi
! grep -F sk-doctor "$T/doctor.log" >/dev/null || fail "a value on stderr"

log "--json: the same checks, and ready false"
doctor --json --dir "$WT"
rc 1 "--json with FAILs"
flat <"$T/doctor.out" >"$T/doctor.flat"
grep -q '"ready":false' "$T/doctor.flat" || fail "--json: ready is not false"
grep -q '"check":"mcp","status":"fail","message":".mcp.json: server \\"api\\"' \
  "$T/doctor.flat" || fail "--json lacks the mcp FAIL: $(cat "$T/doctor.flat")"
grep -q "\"workspace\":\"$REMOTE\"" "$T/doctor.flat" ||
  fail "--json lacks the workspace"

log "fix every problem: env set, chmod, no localhost server, sync"
printf '%s' sk-doctor-one | baton env set "$REMOTE" API_TOKEN >/dev/null
printf '%s' sk-doctor-two | baton env set "$REMOTE" DATABASE_URL >/dev/null
printf 'a\nb\n' | baton env set "$REMOTE" CERT >/dev/null
doctor --dir "$WT"
rc 1 "the MCP servers still FAIL"
line "^ok +the remote environment has API_TOKEN, DATABASE_URL$" \
  "the required variables are set"
says ok ".env stays on this laptop (git ignores it); the remote" \
  "environment has its variables"
line "^warn +apps/api/\.env\.local is ignored by git" ".env.local is not"
printf '%s' sk-doctor-four | baton env set "$REMOTE" STRIPE_KEY >/dev/null
printf '%s' ada | baton env set "$REMOTE" GIT_USERNAME >/dev/null
printf '%s' sk-doctor-git | baton env set "$REMOTE" GIT_PASSWORD >/dev/null
chmod +x "$WT/.baton/setup"
git -C "$WT" add .baton/setup
cat >"$WT/.mcp.json" <<'JSON'
{"mcpServers": {
  "docs": {"type": "http", "url": "https://mcp.example.invalid/docs"},
  "lint": {"command": "npx", "args": ["lint-mcp"]}
}}
JSON
rm "$WT/.claude/settings.local.json"
[ $SYNC = 0 ] || baton sync on "$REMOTE" >/dev/null
doctor --dir "$WT"
rc 0 "every problem fixed"
line "^ok +\.baton/setup is executable and git tracks it$" "setup"
line "^ok +no agent settings that git ignores" "local files"
line "^ok +a git account is connected" "the git account"
says ok "no paths under $HOME_L in .mcp.json or .claude/settings*.json"
line "^ok +\.mcp\.json: 2 server\(s\), none tied to this laptop$" "mcp"
line "^ok +apps/api/\.env\.local stays on this laptop" ".env.local covered"
no_line "^(FAIL|warn)" "a problem left"
[ $SYNC = 0 ] || line "^ok +workspace sync is on" "sync on"
line "^nothing failed; 0 warning\(s\)$" "the verdict"
if [ $CREDITS = 1 ]; then
  "$RELAY_BIN" credits set --data "$RELAY_DATA" --user alice --seconds 0 \
    >/dev/null
  doctor --dir "$WT"
  rc 1 "credits spent"
  says FAIL "your sandbox credits are spent: the relay refuses moves to a" \
    "sandbox"
  says fix: "ask the relay's operator for more (baton-relay credits set)"
  "$RELAY_BIN" credits set --data "$RELAY_DATA" --user alice \
    --seconds 3600 >/dev/null
  doctor --dir "$WT"
  rc 0 "credits left"
  says ok "sandbox credits: 3600 s of sandbox time left"
fi
doctor --json --dir "$WT"
rc 0 "--json, every problem fixed"
flat <"$T/doctor.out" | grep '"ready":true' >/dev/null ||
  fail "--json: not ready"
no_line "sk-doctor" "a secret value"

log "no remote, a setup for another interpreter, an ignored setup"
NR=$T/noremote
new_repo "$NR"
mkdir -p "$NR/.baton"
printf '#!/usr/bin/env -S python3 -u\nprint(1)\n' >"$NR/.baton/setup"
chmod +x "$NR/.baton/setup"
doctor --dir "$NR"
rc 1 "no remote"
line "^FAIL +$NR is a git repository without a remote \(origin\)" "no remote"
line "^ +fix: add a remote: git remote add origin URL$" "how to add it"
says FAIL ".baton/setup starts with #!python3, but the sandbox runs it" \
  "with bash"
line "^skip +workspace sync: the relay is asked only about a repository with" \
  "relay skipped"
printf '.baton/setup\n' >"$NR/.gitignore"
printf '#!/bin/bash -e\ntrue\n' >"$NR/.baton/setup"
doctor --dir "$NR"
says FAIL ".baton/setup is ignored by git, so it never reaches the" \
  "sandbox"
line "^warn +the options on the #! line of \.baton/setup are not used" \
  "#! options"

log "a token in the remote URL is never printed"
git -C "$NR" remote add origin \
  https://ghp_doctortoken@git.example.invalid/acme/nr.git
printf '{"env": ["X_TOKEN"]}\n' >"$NR/.baton/sandbox.json"
doctor --dir "$NR"
rc 1 "a missing required variable"
says ok "$NR is a git repository with remote origin" \
  "https://***@git.example.invalid/acme/nr.git"
# The workspace key leaves the user and password out of the URL.
says fix: 'printf %s VALUE | baton env set' \
  "https://git.example.invalid/acme/nr.git X_TOKEN (once a session has" \
  "started here)"
no_line "ghp_doctortoken" "the token in the remote URL"
! grep -F ghp_doctortoken "$T/doctor.log" >/dev/null ||
  fail "the token in the remote URL is on stderr"

mkdir -p "$T/plain"
doctor --dir "$T/plain"
rc 1 "not a repository"
line "^FAIL +$T/plain is not in a git worktree" "not a repository"
doctor extra
rc 2 "an argument"

log "the relay cannot be reached: local checks, then exit 6"
baton --timeout 60 stop "$SID" >/dev/null
stop_relay
start=$SECONDS
doctor --timeout 3 --dir "$WT"
rc 6 "an unreachable relay"
[ $((SECONDS - start)) -lt 20 ] || fail "doctor waited too long"
line "^ok +\.baton/setup is executable and git tracks it$" "the local checks"
line "^skip +workspace sync: the relay could not be asked" "relay skipped"
line "^nothing failed here, but the relay's checks did not run" "the verdict"
grep -q "no answer from the relay" "$T/doctor.log" ||
  fail "doctor does not say why the relay was not asked"
RC=0
env -u BATON_TOKEN HOME="$HOME_L" "$CLIENT_BIN" doctor --dir "$WT" \
  >"$T/doctor.out" 2>>"$T/doctor.log" || RC=$?
rc 3 "no token"
line "^ok +\.mcp\.json: 2 server" "the local checks without a token"
line "^skip +workspace sync: the relay could not be asked" "no token: skip"
log "doctor: every check named, fixed, and ok"
