#!/usr/bin/env bash
# test-web.sh: the web app in headless Chromium at phone size (driven by
# tests/e2e/web.mjs with playwright-core): sign in with a token, start a
# session from the page and type into it, reload and see the history once,
# move it to a sandbox and back from the page, a second user sees nothing
# of the first, a one-time sign-in address works once, sign-out ends the
# sign-in, the QR code of `baton-local pair` opens an offer to approve the
# laptop. Screenshots go to $BATON_BIN/web-screens. Skips (77) without
# Chromium or the built app.
here=$(cd "$(dirname "$0")" && pwd)
src=${BATON_SRC:-$(cd "$here/../.." && pwd)}
: "${BATON_BIN:?set BATON_BIN to the build folder}"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
  echo "skip: no Chromium at $CHROMIUM (apt-get install chromium," \
    "or scripts/deps.sh --test)"
  exit 77
fi
if [ ! -f "$BATON_BIN/web/index.html" ]; then
  echo "skip: the web app is not built in $BATON_BIN/web (BATON_WEB=OFF," \
    "or node and npm are missing)"
  [ ! -f "$BATON_BIN/web.unavailable" ] || cat "$BATON_BIN/web.unavailable"
  exit 77
fi
# shellcheck source=lib.sh
source "$here/lib.sh"

RELAY_ARGS+=(--web "$BATON_BIN/web")
start_relay
start_laptop alice
TOKEN_B=$(token bob client)
new_repo "$T/repo"

# A one-time sign-in address, when this client has `baton login`.
LOGIN_URL=
if baton login --help >/dev/null 2>&1; then
  baton login --qr >"$T/login.out" 2>>"$T/login.log" ||
    fail "baton login --qr failed: $(cat "$T/login.log")"
  LOGIN_URL=$(grep -o 'https\?://[^ ]*#login=[A-Za-z0-9-]*' "$T/login.out" |
    head -n 1)
  [ -n "$LOGIN_URL" ] || fail "baton login --qr printed no address"
else
  log "baton login is missing: the sign-in code step is skipped"
fi

# A laptop waiting to be paired, whose QR code's address the page opens.
pair_start laptop2
pair_code laptop2 >/dev/null
PAIR_URL=$(grep -o 'https\?://[^ ]*#pair=[A-Z0-9]*' "$T/pair-laptop2.out" |
  head -n 1)
[ -n "$PAIR_URL" ] || fail "baton-local pair printed no address"

SCREENS=$BATON_BIN/web-screens
rm -rf "$SCREENS"
# Chromium's profile lands in $T, so nothing of it outlives the test.
TMPDIR=$T BASE=http://127.0.0.1:$RELAY_PORT TOKEN_A=$CLIENT_TOKEN \
  TOKEN_B=$TOKEN_B REPO=$T/repo SCREENS=$SCREENS LOGIN_URL=$LOGIN_URL \
  PAIR_URL=$PAIR_URL \
  BATON_SRC=$src CHROMIUM=$CHROMIUM CLIENT_BIN=$CLIENT_BIN \
  RELAY_URL=$RELAY_URL node "$src/tests/e2e/web.mjs" ||
  fail "the web app's end-to-end test failed"
ls "$SCREENS"/*.png >/dev/null 2>&1 || fail "no screenshots in $SCREENS"
echo "screenshots in $SCREENS"
echo "web: OK"
