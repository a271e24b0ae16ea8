#!/usr/bin/env bash
# test-man.sh: the manual pages in dist/man render without a warning
# (groff -man -ww, and man -l where man is installed), and each names
# every option its program's --help lists (and the help of each
# subcommand), and every BATON_* variable, so a new option cannot go
# undocumented.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

src=${BATON_SRC:-$here/../..}
command -v groff >/dev/null ||
  fail "groff is missing: apt-get install groff-base (packages-test.txt)"

# check PAGE HELP...: PAGE renders cleanly and names what each HELP
# (a file of --help output) lists.
check() {
  local page=$src/dist/man/$1 help word
  shift
  groff -man -Tutf8 -ww -z "$page" 2>"$T/groff.err"
  [ ! -s "$T/groff.err" ] ||
    fail "groff warns about $(basename "$page"): $(cat "$T/groff.err")"
  if command -v man >/dev/null; then
    MANWIDTH=80 man -l "$page" >/dev/null 2>"$T/man.err" ||
      fail "man -l $(basename "$page") failed: $(cat "$T/man.err")"
    [ ! -s "$T/man.err" ] ||
      fail "man -l $(basename "$page") says: $(cat "$T/man.err")"
  fi
  # One long line a paragraph, no hyphenation: options stay whole.
  groff -man -Tascii -rHY=0 -rLL=1000n -P-cbou "$page" >"$T/page.txt"
  for help in "$@"; do
    for word in $(grep -oE -- '(--[a-z][a-z-]*|BATON_[A-Z_]+)' "$help" |
        sort -u); do
      grep -qF -- "$word" "$T/page.txt" ||
        fail "$(basename "$page") does not mention $word" \
          "(from $(basename "$help"))"
    done
  done
  log "$(basename "$page"): renders, names all of $(basename "$1")"
}

"$RELAY_BIN" --help >"$T/baton-relay.help"
"$SANDBOX_BIN" --help >"$T/baton-sandbox.help"
"$CLIENT_BIN" --help >"$T/baton.help"
"$LOCAL_BIN" --help >"$T/baton-local.help"
for cmd in pair install-service uninstall-service status; do
  "$LOCAL_BIN" "$cmd" --help >"$T/baton-local-$cmd.help"
done

check baton-relay.8 "$T/baton-relay.help"
check baton-sandbox.1 "$T/baton-sandbox.help"
check baton.1 "$T/baton.help"
check baton-local.1 "$T/baton-local.help" "$T"/baton-local-*.help
