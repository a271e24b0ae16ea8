#!/usr/bin/env bash
# test-cloud.sh: a session with no laptop. `baton start --sandbox --git URL
# --ref REF` has the workspace's sandbox clone the repository at that ref
# with GIT_USERNAME and GIT_PASSWORD from the remote environment (served
# here over HTTP with basic auth on 127.0.0.1), and the agent pushes with
# the same credentials, which are written nowhere and shown nowhere. A
# wrong password, a missing ref and a URL with a password in it are
# refused with what to do. The repository must be the git account's own
# or an organisation's it belongs to (GIT_ORGS); another person's is
# refused with a fork suggested.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

GIT_HTTP=$BATON_BIN/tests/git-http
[ -x "$GIT_HTTP" ] || fail "$GIT_HTTP is not built (target git-http)"
SECRET=s3cret-cloud-token

# A bare repository with main and a tag, served with basic auth.
mkdir -p "$T/srv/acme"
new_repo "$T/seed"
git -C "$T/seed" tag v1
printf 'after the tag\n' >"$T/seed/later.txt"
git -C "$T/seed" add later.txt && git -C "$T/seed" commit -q -m later
git clone -q --bare "$T/seed" "$T/srv/acme/app.git"
git -C "$T/srv/acme/app.git" config http.receivepack true
mkdir -p "$T/srv/ada" "$T/srv/bob"
git clone -q --bare "$T/seed" "$T/srv/ada/tool.git"
git clone -q --bare "$T/seed" "$T/srv/bob/theirs.git"
"$GIT_HTTP" --root "$T/srv" --user ada --password "$SECRET" \
  --port-file "$T/git.port" --log "$T/git-http.log" &
PIDS+=("$!")
wait_for 30 "the git server to listen" test -s "$T/git.port"
URL=http://127.0.0.1:$(cat "$T/git.port")/acme/app.git

start_relay
CLIENT_TOKEN=$(token ada client)

BASE=http://127.0.0.1:$(cat "$T/git.port")

log "no git account yet: refused with what to do"
rc=0
baton start --sandbox --git "$URL" --agent shell >"$T/noacct.out" 2>&1 ||
  rc=$?
[ $rc -eq 1 ] && grep -F "no git account is connected" "$T/noacct.out" \
  >/dev/null || fail "a start with no account: exit $rc: $(cat "$T/noacct.out")"

log "an account but no password: the clone says how to log in"
TOOL=$BASE/ada/tool.git
printf 'ada\n' | baton env set "$TOOL" GIT_USERNAME >/dev/null
rc=0
baton start --sandbox --git "$TOOL" --agent shell >"$T/nocred.out" 2>&1 ||
  rc=$?
[ $rc -eq 1 ] || fail "a start without a password: exit $rc"
grep -F "GIT_USERNAME and GIT_PASSWORD" "$T/nocred.out" >/dev/null ||
  fail "the refusal does not say how to give credentials: $(cat "$T/nocred.out")"
printf '%s\n' "$SECRET" | baton env set "$TOOL" GIT_PASSWORD >/dev/null
SID0=$(baton start --sandbox --git "$TOOL" --agent shell)
session_on "$SID0" sandbox || fail "the account's own repository did not start"
baton --timeout 60 stop "$SID0" >/dev/null

log "another person's repository: refused, a fork suggested"
THEIRS=$BASE/bob/theirs.git
printf 'ada\n' | baton env set "$THEIRS" GIT_USERNAME >/dev/null
printf '%s\n' "$SECRET" | baton env set "$THEIRS" GIT_PASSWORD >/dev/null
rc=0
baton start --sandbox --git "$THEIRS" --agent shell >"$T/theirs.out" 2>&1 ||
  rc=$?
[ $rc -eq 1 ] && grep -F "fork it to ada" "$T/theirs.out" >/dev/null ||
  fail "another person's repository: exit $rc: $(cat "$T/theirs.out")"

log "an organisation's repository, once the account says it belongs"
printf 'ada\n' | baton env set "$URL" GIT_USERNAME >/dev/null
printf '%s\n' "$SECRET" | baton env set "$URL" GIT_PASSWORD >/dev/null
rc=0
baton start --sandbox --git "$URL" --agent shell >"$T/org.out" 2>&1 || rc=$?
[ $rc -eq 1 ] && grep -F "if acme is an organisation" "$T/org.out" \
  >/dev/null || fail "an undeclared organisation: exit $rc: $(cat "$T/org.out")"
printf 'other-org, acme\n' | baton env set "$URL" GIT_ORGS >/dev/null

log "credentials in the remote environment: clone at a ref, then push"
SID=$(baton start --sandbox --git "$URL" --ref main --agent shell)
session_on "$SID" sandbox || fail "the session is not on the sandbox"
WT=$(session_worktree "$SID")
[ -f "$WT/later.txt" ] || fail "the clone is not at main"
[ "$(git -C "$WT" rev-parse --abbrev-ref HEAD)" = main ] ||
  fail "the clone is not on branch main"
# shellcheck disable=SC2016 # expanded by the sandbox's shell
baton send "$SID" 'echo "pushed: $(printf "cloud edit\n" >cloud.txt && git add cloud.txt && git -c user.name=a -c user.email=a@b commit -qm cloud && git push -q origin main 2>&1 && echo yes)"'
wait_output "$SID" "pushed: yes" 60
git -C "$T/srv/acme/app.git" log --oneline main | grep -F cloud >/dev/null ||
  fail "the push did not reach the server"
baton send "$SID" 'echo "password is $GIT_PASSWORD"'
wait_output "$SID" "password is [redacted]" 60
! grep -rF "$SECRET" "$WT/.git/config" >/dev/null ||
  fail "the password was written into the clone's config"
baton --timeout 60 stop "$SID" >/dev/null

log "a tag: a detached clone at it"
SID2=$(baton start --sandbox --git "$URL" --ref v1 --agent shell)
WT2=$(session_worktree "$SID2")
[ ! -e "$WT2/later.txt" ] || fail "the clone at v1 holds a later file"
[ "$(git -C "$WT2" rev-parse HEAD)" = "$(git -C "$T/seed" rev-parse v1)" ] ||
  fail "the clone is not at v1"
baton --timeout 60 stop "$SID2" >/dev/null

log "refusals: a missing ref, a wrong password, a password in the URL"
expect_start() {
  local want=$1 what=$2 rc=0
  shift 2
  baton start --sandbox "$@" --agent shell >"$T/refused.out" 2>&1 || rc=$?
  [ $rc -ne 0 ] || fail "$what: the start succeeded"
  grep -F "$want" "$T/refused.out" >/dev/null ||
    fail "$what: not told '$want': $(cat "$T/refused.out")"
  log "$what: exit $rc: $(tail -n 1 "$T/refused.out" | cut -c1-100)"
}
expect_start 'no branch, tag or commit "nope"' "a missing ref" \
  --git "$URL" --ref nope
printf 'wrong\n' | baton env set "$URL" GIT_PASSWORD >/dev/null
expect_start "check GIT_USERNAME and GIT_PASSWORD" "a wrong password" \
  --git "$URL" --ref main
expect_start "holds a user or password" "a password in the URL" \
  --git "http://ada:$SECRET@127.0.0.1:$(cat "$T/git.port")/acme/app.git"

leaks=$(grep -rlaF -- "$SECRET" "$RELAY_DATA" "$T"/*.log "$T"/*.out \
  2>/dev/null || true)
[ -z "$leaks" ] || fail "the password is in: $leaks"
log "cloud-only sessions: cloned with the workspace's credentials, pushed"
