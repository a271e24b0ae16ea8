#!/usr/bin/env bash
# test-worktree-cases.sh: every worktree case of shared/cases/worktrees.sh
# moves to a sandbox and back. On the sandbox the worktree fingerprints
# exactly as the laptop's did; the laptop's worktree and its ignored files
# are untouched by the trip out; ignored files never reach the sandbox;
# after the trip back the laptop's worktree fingerprints as it started.
#
# The relay (and so every sandbox its launcher starts) runs under umask
# 077, to show that exec bits do not depend on the target's umask.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

[ -f "$CASES/worktrees.sh" ] || fail "no cases folder (set BATON_CASES)"

old_umask=$(umask)
umask 077
start_relay
umask "$old_umask"
CLIENT_TOKEN=$(token cases client)
write_agents
start_local laptop "$(token cases machine)"
wait_for 60 "the laptop to register" machine_online laptop
[ "$(awk '/^Umask:/ {print $2}' "/proc/$RELAY_PID/status")" = 0077 ] ||
  fail "the relay does not run under umask 077"

bash "$CASES/worktrees.sh" "$T/cases" >"$T/cases.out" 2>&1 ||
  { cat "$T/cases.out" >&2; fail "worktrees.sh failed"; }
# A user moves a session some time after the last edit: let the clock pass
# the second the cases were written in, so that the test does not depend on
# whether a move lands in that same second (git's racy-clean check covers
# files written in the index's own second; see the ignored case).
newest=$(find "$T/cases" -name index -path '*/.git/*' -printf '%T@\n' | sort -n | tail -n 1)
clock_past() { [ "$(date +%s)" -gt "${newest%.*}" ]; }
wait_for 10 "the clock to pass the cases' second" clock_past

# The ignored files of each case, relative to its session folder.
ignored_files() {
  case $1 in
    ignored) printf '%s\n' build/cache/a.bin .env ;;
  esac
}

# checksums DIR FILES...: "sha256  file" for each, or "missing file".
checksums() {
  local dir=$1 f
  shift
  for f in "$@"; do
    if [ -f "$dir/$f" ]; then
      (cd "$dir" && sha256sum -- "$f")
    else
      echo "missing $f"
    fi
  done
}

# timed_move SID TO OUTFILE: baton move --wait, its output kept; prints ms.
timed_move() {
  local start end rc=0
  start=$(date +%s%N)
  baton move "$1" --to "$2" --wait >"$3" 2>&1 || rc=$?
  end=$(date +%s%N)
  [ $rc -eq 0 ] || { cat "$3" >&2; fail "move of $1 to $2 exited $rc"; }
  echo $(((end - start) / 1000000))
}

# relay_says SID: the relay's own account of the session's last move,
# "(N ms, U bytes up, D down)".
relay_says() {
  grep -F "session $1 now runs on" "$T/relay.log" | tail -n 1 |
    sed -n 's/.*\(([0-9]* ms, [0-9]* bytes up, [0-9]* down)\)$/\1/p'
}

# problem TEXT: records a wrong result and goes on with the next check, so
# that one run shows every case that is wrong; the test fails at the end.
PROBLEMS=()
problem() {
  log "WRONG: $*"
  PROBLEMS+=("$*")
}

# same_fingerprint WHAT EXPECTED DIR: a problem unless DIR fingerprints so.
same_fingerprint() {
  local what=$1 want=$2 dir=$3 got d
  got=$(fingerprint "$dir") || fail "$what: cannot fingerprint $dir"
  if [ "$want" != "$got" ]; then
    d=$(diff <(echo "$want") <(echo "$got") || true)
    echo "$d" >&2
    problem "$what: the fingerprint of $dir differs (< expected, > actual):
$d"
    # What git's index says about the paths that differ (stat data).
    sed -n 's/^[<>] status 1 [^ ]* [^ ]* [^ ]* [^ ]* [^ ]* [^ ]* [^ ]* //p' \
      <<<"$d" | sort -u | while IFS= read -r f; do
      (cd "$dir" && git ls-files --debug -- "$f" &&
        stat -c 'on disk: mtime %.9Y size %s  %n' -- "$f" &&
        echo "content: $(git hash-object -- "$f")  index: $(git rev-parse ":$f")") >&2 || true
    done
    (cd "$dir" && stat -c 'index file: mtime %.9Y' "$(git rev-parse --git-path index)") >&2 || true
    return 1
  fi
}

# The symlinks case links to /etc/hosts, which a minimal root may lack.
hosts_state() { sha256sum </etc/hosts 2>/dev/null || echo "no /etc/hosts"; }
hosts_before=$(hosts_state)
REPORT=()
for c in ignored modes symlinks untracked-tree staged names linked-worktree; do
  dir=$T/cases/$c
  [ "$c" = linked-worktree ] && dir=$T/cases/linked-worktree/wt
  log "case $c: $dir"
  mapfile -t ign < <(ignored_files "$c")
  before=$(fingerprint "$dir")
  ign_before=$(checksums "$dir" "${ign[@]}")
  if [ ${#ign[@]} -gt 0 ] && grep -q '^missing' <<<"$ign_before"; then
    fail "case $c: the ignored files were not built: $ign_before"
  fi

  SID=$(baton start --machine laptop --dir "$dir" --agent test)
  wait_output "$SID" "started session $SID" 60
  baton send "$SID" "remember case $c"
  wait_output "$SID" "noted: case $c" 60

  # To the sandbox.
  ms_out=$(timed_move "$SID" sandbox "$T/move-$c-out.txt")
  relay_out=$(relay_says "$SID")
  status=$(baton --json status "$SID")
  [ "$(json_field "$status" kind)" = sandbox ] ||
    fail "case $c: the session is not on a sandbox: $status"
  SBX=$(json_field "$status" worktree)
  [ -d "$SBX" ] && [ "$SBX" != "$dir" ] ||
    fail "case $c: no sandbox worktree: $status"
  same_fingerprint "case $c, on the sandbox" "$before" "$SBX" || true
  same_fingerprint "case $c, the laptop's source after the move out" \
    "$before" "$dir" || true
  [ "$(checksums "$dir" "${ign[@]}")" = "$ign_before" ] ||
    problem "case $c: the source's ignored files changed on the move out"
  for f in "${ign[@]}"; do
    [ ! -e "$SBX/$f" ] && [ ! -L "$SBX/$f" ] ||
      problem "case $c: the ignored file $f reached the sandbox"
    # Nor the relay's object stores: no blob with the file's content.
    blob=$(git hash-object --no-filters -- "$dir/$f")
    for store in "$RELAY_DATA"/objects/*.git; do
      ! git --git-dir="$store" cat-file -e "$blob" 2>/dev/null ||
        problem "case $c: the ignored file $f is in the relay's store $store"
    done
  done
  if [ "$c" = modes ]; then
    log "modes on the sandbox (umask 077): $(cd "$SBX" &&
      stat -c '%a %n' bin/run.sh lib/x.py tool.sh scripts/new.sh | paste -sd ' ')"
  fi
  baton send "$SID" "recall"
  wait_output "$SID" "turn 1: remember case $c" 60

  # Back to the laptop.
  ms_back=$(timed_move "$SID" laptop "$T/move-$c-back.txt")
  relay_back=$(relay_says "$SID")
  status=$(baton --json status "$SID")
  [ "$(json_field "$status" kind)" = local ] ||
    fail "case $c: the session is not back on the laptop: $status"
  [ "$(json_field "$status" worktree)" = "$dir" ] || {
    cat "$T/move-$c-back.txt" >&2
    fail "case $c: the session came back to another folder: $status"
  }
  same_fingerprint "case $c, back on the laptop" "$before" "$dir" || true
  [ "$(checksums "$dir" "${ign[@]}")" = "$ign_before" ] ||
    problem "case $c: the laptop's ignored files changed after the move back"
  ! grep -q '^note:' "$T/move-$c-back.txt" ||
    problem "case $c: unexpected note on the way back: $(cat "$T/move-$c-back.txt")"
  baton send "$SID" "recall"
  wait_output "$SID" "end of recall" 60
  baton stop "$SID" >/dev/null

  line=$(printf '%-16s out %5d ms %-36s back %5d ms %s' "$c" \
    "$ms_out" "$relay_out" "$ms_back" "$relay_back")
  REPORT+=("$line")
  log "$line"
done

[ "$(hosts_state)" = "$hosts_before" ] ||
  problem "/etc/hosts changed during the symlinks case"
# Nothing was written beside the symlinks case through ../outside.
[ ! -e "$T/cases/outside" ] || problem "a restore wrote through shared-docs"

echo "move --wait wall time as the client saw it, then the relay's own account:"
printf '  %s\n' "${REPORT[@]}"
if [ ${#PROBLEMS[@]} -gt 0 ]; then
  printf '%s\n' "${PROBLEMS[@]}" >&2
  fail "${#PROBLEMS[@]} wrong results (above)"
fi
echo "worktree cases: OK"
