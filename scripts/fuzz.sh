#!/usr/bin/env bash
# fuzz.sh [SECONDS]: builds the libFuzzer targets of tests/fuzz with clang in
# build-fuzz/ and runs each for SECONDS (default 60), starting from a copy
# of its seed corpus (tests/fuzz/corpus/TARGET) in a temp folder. Prints,
# per target, the runs executed and the coverage reached. Any crash, leak,
# timeout or out-of-memory input is copied into tests/fuzz/crashes/ and
# named, and the script then exits 1. Installs clang through deps.sh --test
# when it is missing.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
case $secs in
  '' | *[!0-9]*) echo "usage: fuzz.sh [SECONDS]" >&2; exit 2 ;;
esac
dir=$src/build-fuzz
targets=(message frame restore)

if ! command -v clang >/dev/null ||
   ! dpkg-query -W -f='${Status}' libclang-rt-dev 2>/dev/null |
     grep -q 'ok installed'; then
  bash "$src/scripts/deps.sh" --test
fi

echo "fuzz: building in $dir (log: $dir.log)"
cmake -S "$src" -B "$dir" -DCMAKE_C_COMPILER=clang -DBATON_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$dir.log" 2>&1 &&
cmake --build "$dir" -j"$(nproc)" $(printf -- '--target fuzz_%s ' \
  "${targets[@]}") >>"$dir.log" 2>&1 ||
  { tail -n 40 "$dir.log" >&2; echo "fuzz: build failed" >&2; exit 1; }

# A tmpfs keeps the restore target's files off the disk.
work=$(mktemp -d /dev/shm/baton-fuzz.XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$work"' EXIT
found=()
for t in "${targets[@]}"; do
  corpus=$work/$t/corpus
  mkdir -p "$corpus" "$work/$t/artifacts" "$work/$t/tmp"
  cp "$src/tests/fuzz/corpus/$t/"* "$corpus/"
  args=(-max_total_time="$secs" -timeout=20 -print_final_stats=1
        -artifact_prefix="$work/$t/artifacts/")
  [ -f "$src/tests/fuzz/$t.dict" ] && args+=(-dict="$src/tests/fuzz/$t.dict")

  echo "fuzz: running $t for ${secs}s"
  rc=0
  TMPDIR=$work/$t/tmp ASAN_OPTIONS=abort_on_error=0:detect_leaks=1 \
    timeout $((secs + 300)) "$dir/tests/fuzz/fuzz_$t" "${args[@]}" \
    "$corpus" >"$work/$t/log" 2>&1 || rc=$?

  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t/log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$t/log")
  # the last status line: cov (edges), ft (features), corp (inputs kept)
  cov=$(grep -E '^#[0-9]+' "$work/$t/log" | tail -n 1 |
        grep -oE '(cov|ft|corp): [0-9]+' | tr '\n' ' ' || true)
  echo "fuzz: $t: ${runs:-?} runs (${rate:-?}/s); coverage ${cov:-?}"

  for f in "$work/$t/artifacts/"*; do
    [ -e "$f" ] || continue
    mkdir -p "$src/tests/fuzz/crashes"
    dest=$src/tests/fuzz/crashes/$t-$(basename "$f")
    cp "$f" "$dest"
    found+=("$dest")
  done
  if [ "$rc" -ne 0 ]; then
    echo "fuzz: $t stopped with status $rc; the end of its log:" >&2
    grep -v '^#' "$work/$t/log" | tail -n 40 >&2
    [ ${#found[@]} -gt 0 ] ||
      { echo "fuzz: $t failed without saving an input" >&2; exit 1; }
  fi
done

if [ ${#found[@]} -gt 0 ]; then
  for f in "${found[@]}"; do
    echo "fuzz: crash saved: $f" >&2
  done
  echo "fuzz: minimize one with build-fuzz/tests/fuzz/fuzz_TARGET" \
       "-minimize_crash=1 -runs=100000 FILE" >&2
  exit 1
fi
echo "fuzz: clean"
