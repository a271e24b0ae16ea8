#!/usr/bin/env bash
# test-completion.sh: the bash completion of baton (dist/completion)
# offers every command and option `baton --help` lists, the words of each
# command, files and folders where they go, and, from a running relay,
# session ids and machine names. Where zsh is installed, its completion
# is loaded into an interactive zsh and asked the same way.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

src=${BATON_SRC:-$here/../..}
# shellcheck source=../../dist/completion/baton.bash
source "$src/dist/completion/baton.bash"
complete -p baton >/dev/null || fail "the completion does not register"

# offers WORD... : EXPECTED...: completes the line WORD... (the last word
# being completed); every EXPECTED must be among the offers.
offers() {
  local words=() want w
  while [ "$1" != : ]; do words+=("$1"); shift; done
  shift
  COMP_WORDS=("$CLIENT_BIN" "${words[@]}")
  COMP_CWORD=${#words[@]}
  COMPREPLY=()
  set +e
  _baton
  set -e
  for want in "$@"; do
    for w in "${COMPREPLY[@]}"; do [ "$w" = "$want" ] && continue 2; done
    fail "'baton ${words[*]}<Tab>' offers '${COMPREPLY[*]}', not '$want'"
  done
}
# only WORD... : EXPECTED...: the offers are exactly EXPECTED, in any
# order.
only() {
  local words=()
  offers "$@"
  while [ "$1" != : ]; do words+=("$1"); shift; done
  shift
  [ "$(printf '%s\n' "${COMPREPLY[@]}" | sort)" = \
    "$(printf '%s\n' "$@" | sort)" ] ||
    fail "'baton ${words[*]}<Tab>' offers '${COMPREPLY[*]}', not '$*'"
}

# Everything `baton --help` lists: commands, their options, the global
# options. A command line's own part ends where two spaces begin its
# description.
"$CLIENT_BIN" --help >"$T/help"
sed -n '/^Commands:/,/^$/p' "$T/help" | grep -E '^  [a-z]' |
  sed -E 's/^  //; s/  .*//' >"$T/commands"
[ "$(wc -l <"$T/commands")" -ge 15 ] || fail "few commands in --help"
cut -d' ' -f1 "$T/commands" | sort -u >"$T/names"
# shellcheck disable=SC2046
offers "" : $(cat "$T/names")
while read -r cmd rest; do
  opts=$(grep -oE -- '--[a-z-]+' <<<"$rest" | tr '\n' ' ' || true)
  # shellcheck disable=SC2086
  [ -n "$opts" ] && offers "$cmd" -- : $opts
done <"$T/commands"
sed -n '/^Options/,/^$/p' "$T/help" | grep -oE -- '^  (-h, )?--[a-z-]+' |
  sed 's/.*--/--/' >"$T/options"
[ "$(wc -l <"$T/options")" -ge 8 ] || fail "few options in --help"
# shellcheck disable=SC2046
offers -- : $(cat "$T/options")
offers status -- : --json --relay
log "every command and option of --help is offered"

only st : start status stop
only --relay ws://x --json tai : tail
only tail SID --f : --from --follow
only start --agent c : claude codex
only --log-level "" : error warn info debug
only pair "" : approve
only env "" : set unset list
only sync o : on off
only workspace "" : setup clear-setup
mkdir -p "$T/files/setups"
: >"$T/files/setup.sh"
only workspace setup WS "$T/files/se" : "$T/files/setup.sh" "$T/files/setups"
only start --dir "$T/files/se" : "$T/files/setups"
only --timeout "" :
only -- --rel :		# after --, no options
log "each command's words, files and folders"

log "session ids and machine names, from the relay"
start_relay
start_laptop hal
new_repo "$T/repo"
SID=$(baton start --machine laptop --dir "$T/repo" --agent test)
export BATON_RELAY=$RELAY_URL BATON_TOKEN=$CLIENT_TOKEN
only status "" : "$SID"
only stop "${SID:0:4}" : "$SID"
only start --machine "" : laptop
offers move "$SID" --to "" : sandbox laptop
unset BATON_TOKEN
only status "" :		# no token: nothing, and quickly
only --token "$CLIENT_TOKEN" send "" : "$SID"
baton stop "$SID"

if ! command -v zsh >/dev/null; then
  log "zsh is not installed: its completion is not tried"
  exit 0
fi
log "zsh: _baton in an interactive zsh"
mkdir -p "$T/zfunc" "$T/zbin"
cp "$src/dist/completion/_baton" "$T/zfunc/"
ln -s "$CLIENT_BIN" "$T/zbin/baton"
zsh -n "$T/zfunc/_baton" || fail "zsh cannot parse _baton"
cat >"$T/complete.zsh" <<'EOF'
# complete.zsh LINE EXPECTED: types LINE and Tab in an interactive zsh
# with _baton loaded; succeeds when EXPECTED shows within ten seconds.
zmodload zsh/zpty
typeset -F SECONDS
zpty z zsh -f -i
zpty -w z "PS1='> '; fpath=($ZFUNC \$fpath)"
zpty -w z "autoload -U compinit; compinit -u -D; print ready"
out= chunk=
wait_for() {
  local end=$((SECONDS + 10))
  while (( SECONDS < end )); do
    if zpty -rt z chunk 2>/dev/null; then
      out+=$chunk
      [[ ${out//$'\r'/} == *$1* ]] && return 0
    else
      sleep 0.05
    fi
  done
  print -r -- "${(q+)out}" >&2
  return 1
}
wait_for $'\nready' || exit 2
out=
zpty -n -w z "$1"$'\t'
wait_for "$2"
EOF
zcomplete() {
  ZFUNC=$T/zfunc PATH=$T/zbin:$PATH timeout 30 zsh -f "$T/complete.zsh" \
    "$1" "$2" 2>"$T/zsh.err" ||
    fail "zsh: '$1<Tab>' did not show '$2': $(cat "$T/zsh.err")"
}
zcomplete "baton st" "status  -- show one session"
zcomplete "baton start --ag" "baton start --agent"
zcomplete "baton sync " "baton sync o"
zcomplete "baton tail --fo" "baton tail --follow"
log "zsh completes commands, options and words"
