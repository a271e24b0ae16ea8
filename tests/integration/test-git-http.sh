#!/usr/bin/env bash
# test-git-http.sh: the git-http test tool serves a bare repository over
# smart HTTP behind basic authentication, driven by the git command line.
# Without credentials, or with a wrong password, git gets 401 and fails;
# with the right ones it clones and pushes: a small push, a large one that
# git sends chunked, and a clone whose request git sends gzipped. A client
# that connects and says nothing holds up no one, headers over 64 KiB get
# 431, a missing repository 404. The log names every request and never the
# password. SIGTERM stops the tool with status 0. Everything on 127.0.0.1.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

GIT_HTTP_BIN=$BATON_BIN/tests/git-http
[ -x "$GIT_HTTP_BIN" ] ||
  fail "$GIT_HTTP_BIN is missing: build the git-http target"

NAME=octo
SECRET=tok-$RANDOM$RANDOM-secret
BARE=$T/root/acme/app.git
HTTP_LOG=$T/git-http.log

# Git without the user's configuration, credential helpers or prompts.
export HOME=$T/home GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0
unset GIT_ASKPASS SSH_ASKPASS
mkdir -p "$HOME" "$T/root/acme"

# tgit ARGS...: git, stopped if it takes more than 20 seconds.
tgit() { timeout 20 git "$@"; }

# logged PATTERN: the log has a line matching the extended regex PATTERN.
logged() { grep -Eq -- "$1" "$HTTP_LOG"; }

# A repository on main with 40 more branches, each on its own commit, so
# that a clone asks for enough commits to make git gzip its request.
new_repo "$T/seed"
for i in $(seq 40); do
  git -C "$T/seed" commit -q --allow-empty -m "c$i"
  git -C "$T/seed" branch "b$i"
done
git -C "$T/seed" reset -q --hard main~40
git clone -q --bare "$T/seed" "$BARE"

"$GIT_HTTP_BIN" --root "$T/root" --user "$NAME" --password "$SECRET" \
  --port-file "$T/git-http.port" --log "$HTTP_LOG" \
  2>>"$T/git-http-stderr.log" &
GIT_HTTP_PID=$!
PIDS+=("$GIT_HTTP_PID")
wait_for 10 "git-http to listen" test -s "$T/git-http.port"
PORT=$(cat "$T/git-http.port")
URL=http://127.0.0.1:$PORT/acme/app.git
AUTH_URL=http://$NAME:$SECRET@127.0.0.1:$PORT/acme/app.git
log "git-http serves $T/root on port $PORT"

# A client that connects and sends nothing must not hold up the others.
exec 3<>"/dev/tcp/127.0.0.1/$PORT"

if tgit clone -q "$URL" "$T/anon" 2>"$T/anon.err"; then
  fail "a clone without credentials succeeded"
fi
logged 'GET /acme/app\.git/info/refs\?service=git-upload-pack 401 \(no cred' ||
  fail "no 401 logged for the clone without credentials"
log "a clone without credentials fails with 401"

tgit clone -q "$AUTH_URL" "$T/work" 2>"$T/clone.err" ||
  fail "the clone with credentials failed: $(cat "$T/clone.err")"
[ "$(cat "$T/work/base.txt")" = base ] || fail "the clone lacks base.txt"
[ "$(git -C "$T/work" branch -r | grep -c 'origin/b')" = 40 ] ||
  fail "the clone lacks the 40 branches"
logged 'POST /acme/app\.git/git-upload-pack 200 body [0-9]+ gzip' ||
  fail "no gzipped upload-pack request logged"
log "a clone with credentials works, its request gzipped"
exec 3>&-

printf 'more\n' >"$T/work/more.txt"
git -C "$T/work" add more.txt
git -C "$T/work" commit -q -m more
tgit -C "$T/work" push -q origin main 2>"$T/push.err" ||
  fail "the push failed: $(cat "$T/push.err")"
[ "$(git -C "$BARE" rev-parse main)" = "$(git -C "$T/work" rev-parse HEAD)" ] ||
  fail "the pushed commit is not on main in the bare repository"
log "a push arrives in the bare repository"

# With a post buffer smaller than the pack, git sends it chunked.
head -c 300000 /dev/urandom >"$T/work/big.bin"
git -C "$T/work" add big.bin
git -C "$T/work" commit -q -m big
tgit -C "$T/work" -c http.postBuffer=65536 push -q origin main \
  2>"$T/push-big.err" || fail "the large push failed: $(cat "$T/push-big.err")"
[ "$(git -C "$BARE" rev-parse main)" = "$(git -C "$T/work" rev-parse HEAD)" ] ||
  fail "the large push is not on main in the bare repository"
logged 'POST /acme/app\.git/git-receive-pack 200 body [0-9]+ chunked' ||
  fail "no chunked receive-pack request logged"
log "a large push, sent chunked, arrives too"

if tgit clone -q "http://$NAME:wrong-$SECRET@127.0.0.1:$PORT/acme/app.git" \
    "$T/wrong" 2>"$T/wrong.err"; then
  fail "a clone with a wrong password succeeded"
fi
logged 'info/refs\?service=git-upload-pack 401 \(wrong credentials\)' ||
  fail "no 401 logged for the wrong password"
log "a wrong password fails with 401"

if tgit ls-remote "http://$NAME:$SECRET@127.0.0.1:$PORT/acme/none.git" \
    >/dev/null 2>"$T/none.err"; then
  fail "ls-remote of a missing repository succeeded"
fi
logged 'GET /acme/none\.git/info/refs\?service=git-upload-pack 404' ||
  fail "no 404 logged for a missing repository"
log "a missing repository is 404"

exec 4<>"/dev/tcp/127.0.0.1/$PORT"
{
  printf 'GET /acme/app.git/info/refs HTTP/1.1\r\nX-Big: '
  head -c 70000 /dev/zero | tr '\0' a
  printf '\r\n\r\n'
} >&4
read -r -t 10 answer <&4 || fail "no answer to headers over 64 KiB"
exec 4>&-
[[ $answer == "HTTP/1.1 431 "* ]] ||
  fail "headers over 64 KiB got '$answer', not 431"
log "headers over 64 KiB get 431"

if grep -qF -e "$SECRET" \
    -e "$(printf '%s:%s' "$NAME" "$SECRET" | base64)" \
    "$HTTP_LOG" "$T/git-http-stderr.log"; then
  fail "the log holds the password"
fi

kill -TERM "$GIT_HTTP_PID"
wait "$GIT_HTTP_PID" || fail "git-http exited with status $? on SIGTERM"
log "PASS"
