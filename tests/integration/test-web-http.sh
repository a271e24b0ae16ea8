#!/usr/bin/env bash
# test-web-http.sh: what the relay serves a browser, checked with curl and
# ws-poke (the browser itself is test-web.sh): the app's files with a
# content security policy on every answer, nothing outside the app's
# folder, sign-in by token and by a one-time code from `baton login`, the
# cookie that carries the sign-in (HttpOnly, SameSite=Strict, and only
# from the relay's own page), and sign-out revoking it.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
command -v curl >/dev/null || fail "curl is missing (scripts/deps.sh --test)"

WEB=$T/web
mkdir -p "$WEB"
printf '<!doctype html><title>baton test page</title>\n' >"$WEB/index.html"
printf 'console.log("the app");\n' >"$WEB/app.js"
gzip -k -9 "$WEB/app.js"
printf 'secret\n' >"$T/outside.txt"
printf 'hidden\n' >"$WEB/.hidden"
RELAY_ARGS=(--web "$WEB")
start_relay
BASE=http://127.0.0.1:$RELAY_PORT
ORIGIN=$BASE
CLIENT_TOKEN=$(token ann client)
READ_TOKEN=$("$RELAY_BIN" token create --data "$RELAY_DATA" --user ann \
  --kind client --scope read)
MACHINE_TOKEN=$(token ann machine)

# get PATH [CURL ARGS...]: headers and body of GET PATH into $T/out.
get() {
  local path=$1
  shift
  curl -sS -D "$T/headers" -o "$T/body" "$@" "$BASE$path" ||
    fail "curl $path failed"
  tr -d '\r' <"$T/headers" >"$T/h"
}
# post PATH BODY [CURL ARGS...]: as get, for a POST with a JSON body.
post() {
  local path=$1 body=$2
  shift 2
  curl -sS -D "$T/headers" -o "$T/body" -X POST \
    -H 'Content-Type: application/json' --data "$body" "$@" "$BASE$path" ||
    fail "curl POST $path failed"
  tr -d '\r' <"$T/headers" >"$T/h"
}
status() { head -n 1 "$T/h" | awk '{print $2}'; }
expect_status() {
  [ "$(status)" = "$1" ] ||
    fail "$2: status $(status), not $1: $(cat "$T/body")"
}
has_csp() {
  grep -i "^content-security-policy: default-src 'none'; script-src 'self';" \
    "$T/h" >/dev/null || fail "$1: no content security policy: $(cat "$T/h")"
  grep -i '^x-content-type-options: nosniff' "$T/h" >/dev/null ||
    fail "$1: no x-content-type-options"
}

log "the app's files, each with the policy"
get /
expect_status 200 "GET /"
grep -F 'baton test page' "$T/body" >/dev/null || fail "/ is not index.html"
grep -i '^content-type: text/html' "$T/h" >/dev/null || fail "/ not html"
has_csp "GET /"
get /app.js -H 'Accept-Encoding: gzip'
expect_status 200 "GET /app.js"
grep -i '^content-encoding: gzip' "$T/h" >/dev/null ||
  fail "app.js was not served compressed to a client that takes gzip"
cmp -s "$T/body" "$WEB/app.js.gz" || fail "app.js.gz is not what was sent"
get /app.js
grep -i '^content-encoding' "$T/h" >/dev/null &&
  fail "app.js compressed for a client that did not ask"
cmp -s "$T/body" "$WEB/app.js" || fail "app.js is not what was sent"
has_csp "GET /app.js"
for path in /healthz /no-such-file /.hidden /../outside.txt /%2e%2e/outside.txt \
  /api/login; do
  get "$path" --path-as-is
  has_csp "GET $path"
  grep -F secret "$T/body" >/dev/null && fail "$path: a file outside the app"
  grep -F hidden "$T/body" >/dev/null && fail "$path: a hidden file"
done
get /api/login
expect_status 405 "GET /api/login"

log "sign-in: refused from another page, with a bad body or a wrong token"
post /api/login "{\"token\":\"$CLIENT_TOKEN\"}"
expect_status 403 "a sign-in with no Origin"
post /api/login "{\"token\":\"$CLIENT_TOKEN\"}" -H 'Origin: http://evil.invalid'
expect_status 403 "a sign-in from another site's page"
grep -i '^set-cookie' "$T/h" >/dev/null && fail "a refused sign-in set a cookie"
post /api/login 'not json' -H "Origin: $ORIGIN"
expect_status 400 "a sign-in that is not JSON"
post /api/login '{"token":"bt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}' \
  -H "Origin: $ORIGIN"
expect_status 401 "a sign-in with a wrong token"
post /api/login "{\"token\":\"$MACHINE_TOKEN\"}" -H "Origin: $ORIGIN"
expect_status 401 "a sign-in with a machine token"
head -c 5000 /dev/zero | tr '\0' x >"$T/big"
post /api/login "@$T/big" -H "Origin: $ORIGIN"
expect_status 413 "a sign-in of 5000 bytes"

log "sign-in with a token"
post /api/login "{\"token\":\"$CLIENT_TOKEN\"}" -H "Origin: $ORIGIN"
expect_status 200 "a sign-in with a client token"
grep -F '"user":"ann"' "$T/body" >/dev/null || fail "sign-in: $(cat "$T/body")"
cookie=$(grep -i '^set-cookie: baton_web=' "$T/h") ||
  fail "a sign-in set no cookie"
for attr in HttpOnly SameSite=Strict Path=/; do
  [[ $cookie == *"$attr"* ]] || fail "the sign-in cookie lacks $attr: $cookie"
done
WEB_TOKEN=$(printf '%s' "$cookie" | sed 's/^[^=]*=\([^;]*\);.*/\1/')
[ "$WEB_TOKEN" != "$CLIENT_TOKEN" ] ||
  fail "the cookie holds the token typed: signing out would revoke it"

log "the cookie opens a WebSocket only from the relay's own page"
# ws_hello ORIGIN_HOST: the relay's answer to a hello with no token, with
# the cookie and the Origin http://ORIGIN_HOST (lws adds the scheme).
ws_hello() {
  printf '%s\n' 'text {"type":"hello","id":"h","body":{"version":1,"role":"client"}}' \
    'until 10000 "type"' 'text {"type":"machines.list","id":"m"}' \
    'until 10000 "m"' 'close' |
    WS_POKE_COOKIE="baton_web=$WEB_TOKEN" WS_POKE_ORIGIN="$1" \
      WS_POKE_HOST="127.0.0.1:$RELAY_PORT" \
      "$BATON_BIN/tests/ws-poke" "$RELAY_PORT" 2>&1
}
ws_hello "127.0.0.1:$RELAY_PORT" >"$T/ws-own"
grep -F '"type":"welcome"' "$T/ws-own" >/dev/null ||
  fail "the cookie did not sign a WebSocket in: $(cat "$T/ws-own")"
grep -F '"user":"ann"' "$T/ws-own" >/dev/null || fail "welcome for whom?"
grep -F '"type":"machines"' "$T/ws-own" >/dev/null ||
  fail "a signed-in WebSocket could not list machines: $(cat "$T/ws-own")"
ws_hello "evil.invalid" >"$T/ws-evil"
grep -F '"code":"unauthorized"' "$T/ws-evil" >/dev/null ||
  fail "another site's page used the cookie: $(cat "$T/ws-evil")"
grep -F 'sign-in cookie ignored' "$T/relay.log" >/dev/null ||
  fail "the relay did not say it ignored a cookie from another page"

log "a one-time code from baton login"
baton login --qr >"$T/login" || fail "baton login --qr failed"
url=$(grep -o "http://127.0.0.1:$RELAY_PORT/#login=[A-Z0-9]*" "$T/login") ||
  fail "baton login printed no address: $(cat "$T/login")"
grep -F '█' "$T/login" >/dev/null || fail "baton login --qr drew no QR code"
code=${url##*=}
[ ${#code} -eq 8 ] || fail "the code '$code' is not 8 characters"
typed="$(printf '%s' "${code:0:4}" | tr 'A-Z' 'a-z')-${code:4}"
post /api/login "{\"code\":\"$typed\"}" -H "Origin: $ORIGIN"
expect_status 200 "a sign-in with the code, typed in lower case with a dash"
grep -i '^set-cookie: baton_web=' "$T/h" >/dev/null || fail "no cookie"
post /api/login "{\"code\":\"$code\"}" -H "Origin: $ORIGIN"
expect_status 401 "the same code a second time"
BATON_TOKEN=$READ_TOKEN BATON_RELAY=$RELAY_URL "$CLIENT_BIN" --json login \
  | flat >"$T/login-read" || fail "baton login with a read-only token failed"
grep -F '"scope":"read"' "$T/login-read" >/dev/null ||
  fail "a read-only token's code is not read-only: $(cat "$T/login-read")"
code=$(sed -n 's/.*"code":"\([A-Z0-9]*\)".*/\1/p' "$T/login-read")
post /api/login "{\"code\":\"$code\"}" -H "Origin: $ORIGIN"
grep -F '"scope":"read"' "$T/body" >/dev/null ||
  fail "a read-only code signed in with more: $(cat "$T/body")"

log "sign-out revokes the sign-in"
post /api/logout '{}' -H "Origin: $ORIGIN" -H "Cookie: baton_web=$WEB_TOKEN"
expect_status 200 "sign-out"
grep -i '^set-cookie: baton_web=;.*Max-Age=0' "$T/h" >/dev/null ||
  fail "sign-out did not clear the cookie: $(cat "$T/h")"
ws_hello "127.0.0.1:$RELAY_PORT" >"$T/ws-after"
grep -F '"code":"unauthorized"' "$T/ws-after" >/dev/null ||
  fail "the cookie still signs in after sign-out: $(cat "$T/ws-after")"
post /api/login "{\"token\":\"$CLIENT_TOKEN\"}" -H "Origin: $ORIGIN"
expect_status 200 "the token typed still signs in after a sign-out"

log "no secret in the relay's log"
for secret in "$CLIENT_TOKEN" "$WEB_TOKEN" "$READ_TOKEN" "$code"; do
  grep -F "$secret" "$T/relay.log" >/dev/null &&
    fail "a secret is in the relay's log"
done

log "a relay with no app says so at /"
stop_relay
RELAY_ARGS=(--web none)
start_relay
BASE=http://127.0.0.1:$RELAY_PORT
get /
expect_status 404 "GET / with no app"
grep -F 'serves no web app' "$T/body" >/dev/null ||
  fail "GET / with no app: $(cat "$T/body")"
log "ok"
