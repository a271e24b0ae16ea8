#!/usr/bin/env bash
# moves.sh: benchmarks 1 to 3 of issue 7, run by bench/run.sh.
#
# For generated worktrees of each size (files of about 12 KB, committed),
# a session with the test agent moves from the laptop to a sandbox and
# back; then, REPS times each, 3 files are changed and 1 added (or 10% of
# the files changed) on the laptop and the session moves to the sandbox
# and back, each move timed from `baton move` to the agent running on the
# target. Beside every move the same change travels with the git command
# line between two repositories (git_recipe). Then the first move of the
# 5,000-file worktree to a sandbox that has nothing, against `git bundle
# create --all`, a clone of it, and the recipe.
#
# Appends "KEY VALUE" lines to $RESULTS; run.sh reads them.
# Environment: BIN, RESULTS, SIZES (file counts), REPS, FIRST_REPS.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
: "${RESULTS:?}" "${SIZES:?}" "${REPS:?}" "${FIRST_REPS:?}"

put() { echo "$*" >>"$RESULTS"; }

# ms_now: milliseconds, without a fork.
ms_now() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# log_ms LINE: the relay log line's time of day in milliseconds.
log_ms() {
  local t=${1:11:12}	# HH:MM:SS.mmm
  echo $(( (10#${t:0:2} * 3600 + 10#${t:3:2} * 60 + 10#${t:6:2}) * 1000 \
    + 10#${t:9:3} ))
}

# breakdown KEY SID FROM_LINE SOURCE_LOG: the steps of the move that the
# relay logged after line FROM_LINE of its log, as KEY.source_ms (stop the
# agent, checkpoint, pack, upload), KEY.relay_ms (store, fence, resume),
# KEY.target_ms (fetch, restore, start the agent) and, from the source's
# log, KEY.checkpoint_ms (checkpoint and pack alone).
breakdown() {
  local key=$1 sid=$2 from=$3 srclog=$4 lines t_sus t_ck t_send t_done
  lines=$(tail -n +"$from" "$W/relay.log" | grep "session $sid")
  t_sus=$(log_ms "$(grep -m1 ': suspending:' <<<"$lines")")
  t_ck=$(log_ms "$(grep -m1 ': checkpoint: ' <<<"$lines")")
  t_send=$(log_ms "$(grep -m1 ': sending: ' <<<"$lines" ||
    grep -m1 ': restoring: ' <<<"$lines")")
  t_done=$(log_ms "$(grep -m1 ' now runs on ' <<<"$lines")")
  put "$key.source_ms $((t_ck - t_sus))"
  put "$key.relay_ms $((t_send - t_ck))"
  put "$key.target_ms $((t_done - t_send))"
  grep "session $sid: checkpoint .*, pack of" "$srclog" | tail -n 1 |
    sed -n 's/.* in \([0-9]*\) ms$/\1/p' |
    while read -r v; do put "$key.checkpoint_ms $v"; done
}

# move_to KEY SID TARGET SOURCE_LOG: one timed move; records KEY.wall_ms
# (from starting `baton move` to its answer that the agent runs on the
# target), KEY.relay_ms as the relay counts it, bytes up and down, and the
# breakdown.
move_to() {
  local key=$1 sid=$2 to=$3 srclog=$4 from t0 t1 out
  from=$(($(wc -l <"$W/relay.log") + 1))
  t0=$(ms_now)
  out=$(baton --json move "$sid" --to "$to" --wait) ||
    bfail "move of $sid to $to failed: $out"
  t1=$(ms_now)
  put "$key.wall_ms $((t1 - t0))"
  put "$key.bytes_up $(json_field "$out" bytes_up)"
  put "$key.bytes_down $(json_field "$out" bytes_down)"
  breakdown "$key" "$sid" "$from" "$srclog"
}

# sandbox_log: the log of the newest sandbox.
sandbox_log() { ls -t "$RELAY_DATA"/sandboxes/*/sandbox.log | head -n 1; }

# files_of DIR: the generated files, sorted, one a line.
files_of() { (cd "$1" && find pkg* -name '*.c' | sort); }

# change KIND REP DIR...: the same edit in each DIR. small: 3 files
# changed and 1 added; tenpct: every tenth file changed.
change() {
  local kind=$1 rep=$2 d f i n
  shift 2
  n=${#FILES[@]}
  for d in "$@"; do
    if [ "$kind" = small ]; then
      for i in 1 2 3; do
        f=${FILES[$(((rep * 37 + i * 101) % n))]}
        printf 'edit %s of rep %s\n' "$i" "$rep" >>"$d/$f"
      done
      { printf '/* added in rep %s */\n' "$rep"; cat "$d/${FILES[rep]}"; } \
        >"$d/added-$rep.c"
    else
      for ((i = rep % 10; i < n; i += 10)); do
        printf 'edit of rep %s (10%%)\n' "$rep" >>"$d/${FILES[i]}"
      done
    fi
  done
}

# git_recipe KEY SRC DST BASE: moves SRC's worktree state to DST with the
# git command line, as a user without Baton would: a temporary index
# (seeded from the real one, as Baton's is), `git add -A`, write-tree,
# commit-tree on BASE (the last state both sides have), a bundle of the
# new objects, fetch on the other side, `read-tree -u -m`. Neither side's
# HEAD moves. Records KEY.git_ms, its steps, the bundle's bytes and the
# loose (zlib-compressed) size of the new objects; sets RECIPE_COMMIT.
git_recipe() {
  local key=$1 src=$2 dst=$3 base=$4 idx=$W/recipe.index
  local b=$W/recipe.bundle t0 t1 t2 t3 tree commit ref
  ref=refs/bench/$((++RECIPE_N))
  t0=$(ms_now)
  cp "$src/.git/index" "$idx"
  GIT_INDEX_FILE=$idx git -C "$src" add -A
  tree=$(GIT_INDEX_FILE=$idx git -C "$src" write-tree)
  commit=$(git -C "$src" commit-tree -p "$base" -m snapshot "$tree")
  t1=$(ms_now)
  git -C "$src" update-ref "$ref" "$commit"
  git -C "$src" bundle create -q "$b" "$ref" "^$base" 2>/dev/null
  t2=$(ms_now)
  git -C "$dst" fetch -q "$b" "$ref:$ref"
  git -C "$dst" read-tree -u -m "$base" "$commit"
  t3=$(ms_now)
  RECIPE_MS=$((t3 - t0))
  put "$key.git_ms $RECIPE_MS"
  put "$key.git_snapshot_ms $((t1 - t0))"
  put "$key.git_bundle_ms $((t2 - t1))"
  put "$key.git_fetch_ms $((t3 - t2))"
  put "$key.git_bundle_bytes $(stat -c %s "$b")"
  put "$key.objects_zlib_bytes $(git -C "$src" rev-list --objects \
    "$commit" "^$base" | cut -d' ' -f1 |
    git -C "$src" cat-file --batch-check='%(objectsize:disk)' |
    awk '{ s += $1 } END { print s + 0 }')"
  RECIPE_COMMIT=$commit
}
RECIPE_N=0

# template N: a generated, committed worktree of N files, made once.
template() {
  local dir=$W/tpl-$1
  [ -d "$dir" ] || new_worktree "$dir" "$1" >&2
  echo "$dir"
}

# copy_worktree N NAME: a copy of the template with an origin of its own
# (so a workspace of its own on the relay).
copy_worktree() {
  local dir=$W/$2
  cp -a "$(template "$1")" "$dir"
  git -C "$dir" remote set-url origin \
    "https://git.example.invalid/bench/$2.git"
  echo "$dir"
}

# start_session DIR: a session of the test agent in DIR; prints its id.
start_session() {
  local sid
  sid=$(baton start --machine laptop --dir "$1" --agent test)
  wait_for 30 "session $sid to run" session_on "$sid" local
  echo "$sid"
}

start_relay
start_laptop bench

for n in $SIZES; do
  blog "moves: $n files"
  WT=$(copy_worktree "$n" "wt-$n")
  mapfile -t FILES < <(files_of "$WT")
  GA=$(copy_worktree "$n" "git-a-$n")
  git clone -q "$GA" "$W/git-b-$n"
  GB=$W/git-b-$n
  base=$(git -C "$GA" rev-parse HEAD)
  SID=$(start_session "$WT")
  move_to "move.$n.seed" "$SID" sandbox "$W/local.log"
  move_to "move.$n.seedback" "$SID" laptop "$(sandbox_log)"
  for kind in small tenpct; do
    for ((rep = 1; rep <= REPS; rep++)); do
      change "$kind" "$rep" "$WT" "$GA"
      move_to "move.$n.$kind" "$SID" sandbox "$W/local.log"
      git_recipe "move.$n.$kind" "$GA" "$GB" "$base"
      base=$RECIPE_COMMIT
      move_to "move.$n.$kind.back" "$SID" laptop "$(sandbox_log)"
    done
  done
  baton stop "$SID" >/dev/null
  rm -rf "$GA" "$GB"
done

blog "first move: 5000 files to a sandbox that has nothing"
mapfile -t FILES < <(files_of "$(template 5000)")
for ((rep = 1; rep <= FIRST_REPS; rep++)); do
  WT=$(copy_worktree 5000 "first-$rep")
  GA=$(copy_worktree 5000 "git-first-$rep")
  change small "$rep" "$WT" "$GA"
  SID=$(start_session "$WT")
  move_to first "$SID" sandbox "$W/local.log"
  baton stop "$SID" >/dev/null
  t0=$(ms_now)
  git -C "$GA" bundle create -q "$W/all.bundle" --all 2>/dev/null
  t1=$(ms_now)
  git clone -q "$W/all.bundle" "$W/git-firstb-$rep" 2>/dev/null
  t2=$(ms_now)
  git_recipe first "$GA" "$W/git-firstb-$rep" "$(git -C "$GA" rev-parse HEAD)"
  put "first.git_total_ms $((t2 - t0 + RECIPE_MS))"
  put "first.git_bundle_all_ms $((t1 - t0))"
  put "first.git_clone_ms $((t2 - t1))"
  put "first.git_bundle_all_bytes $(stat -c %s "$W/all.bundle")"
  rm -rf "$GA" "$W/git-firstb-$rep" "$W/all.bundle"
done

# Idle daemons after all that: the laptop and the last sandbox, which
# runs no session now.
sleep 1
put "rss.local_after_moves_kb $(rss_kb "$LOCAL_PID")"
for pid in $(pgrep -P "$RELAY_PID" -x baton-sandbox); do
  put "rss.sandbox_after_moves_kb $(rss_kb "$pid")"
done
