#!/usr/bin/env bash
# run.sh [--quick]: Baton's benchmark suite (issue 7).
#
# Builds Baton in release mode in build-bench/ (with the tools in bench/),
# runs every benchmark on 127.0.0.1 with the real programs, prints a table
# and writes it, with a description of this machine, between the markers
# of BENCHMARKS.md (the rest of that file is kept as it is). Every figure
# is a median over repeated runs with its range (min-max); every
# comparison is a ratio of runs made side by side in this run.
#
# --quick: fewer and smaller runs, to check the suite works (about three
# minutes); its table goes to build-bench/BENCHMARKS-quick.md instead.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
QUICK=
case ${1:-} in
  --quick) QUICK=1 ;;
  "") ;;
  *) echo "usage: bash bench/run.sh [--quick]" >&2; exit 2 ;;
esac

if [ -n "$QUICK" ]; then
  export SIZES="1000 5000" REPS=2 FIRST_REPS=1
  export ECHO_RUNS=2 ECHO_COUNT=2000 FAN_RUNS=1
  export FAN_BYTES_1=$((16 << 20)) FAN_BYTES_50=$((2 << 20))
  export CONNS="1000"
  out=$src/build-bench/BENCHMARKS-quick.md
else
  export SIZES="1000 5000 20000" REPS=5 FIRST_REPS=3
  export ECHO_RUNS=3 ECHO_COUNT=10000 FAN_RUNS=3
  export FAN_BYTES_1=$((128 << 20)) FAN_BYTES_50=$((16 << 20))
  export CONNS="1000 2500 5000 10000"
  out=$src/BENCHMARKS.md
fi

say() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

say "building in release mode (build-bench/)"
export BIN=$src/build-bench
configure() {
  command -v cmake >/dev/null && command -v git >/dev/null &&
    cmake -S "$src" -B "$BIN" -DCMAKE_BUILD_TYPE=Release \
      -DBATON_TESTS=OFF -DBATON_BENCH=ON >"$BIN.log" 2>&1
}
# On a fresh machine the configure step finds what is missing: then
# scripts/deps.sh installs Baton's packages and it runs again.
if ! configure; then
  bash "$src/scripts/deps.sh"
  configure || { tail -n 30 "$BIN.log" >&2; exit 1; }
fi
cmake --build "$BIN" -j"$(nproc)" --target baton-relay baton-local \
  baton-sandbox baton bench-test-agent bench-gen-tree bench-echo \
  bench-fanout bench-idle >>"$BIN.log" 2>&1 ||
  { tail -n 30 "$BIN.log" >&2; echo "build failed; see $BIN.log" >&2; exit 1; }

export RESULTS
RESULTS=$(mktemp "${TMPDIR:-/tmp}/bench-results.XXXXXX")
started=$(date +%s)
for part in moves stream memory; do
  say "running bench/$part.sh"
  bash "$src/bench/$part.sh" || { echo "bench/$part.sh failed" >&2; exit 1; }
done
took=$(( $(date +%s) - started ))

# ---- the table ----

# agg KEY: "median min max count" of KEY's samples.
agg() {
  awk -v k="$1" '$1 == k { v[n++] = $2 }
    END { if (!n) { print "- - - 0"; exit }
      for (i = 0; i < n; i++) for (j = i + 1; j < n; j++)
        if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
      m = n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2
      print m, v[0], v[n - 1], n }' "$RESULTS"
}
# ratio A B: agg of A_i / B_i over the samples taken side by side.
ratio() {
  awk -v a="$1" -v b="$2" '$1 == a { x[na++] = $2 } $1 == b { y[nb++] = $2 }
    END { n = na < nb ? na : nb
      for (i = 0; i < n; i++) v[i] = y[i] ? x[i] / y[i] : 0
      if (!n) { print "- - - 0"; exit }
      for (i = 0; i < n; i++) for (j = i + 1; j < n; j++)
        if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
      m = n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2
      print m, v[0], v[n - 1], n }' "$RESULTS"
}
# fmt "MED MIN MAX N" DIGITS [DIVISOR]: "MED (MIN-MAX)".
fmt() {
  awk -v d="$2" -v s="${3:-1}" '{ if ($4 == 0) { print "n/a"; exit }
    f = "%." d "f"
    if ($4 == 1) printf f "\n", $1 / s
    else printf f " (" f "–" f ")\n", $1 / s, $2 / s, $3 / s }' <<<"$1"
}
med() { cut -d' ' -f1 <<<"$1"; }
# div A B [DIGITS]: A / B.
div() { awk -v a="$1" -v b="$2" -v d="${3:-1}" 'BEGIN { printf "%." d "f", a / b }'; }
# perconn RSS_N RSS_0 N: KiB per connection, (RSS_N - RSS_0) / N.
perconn() {
  awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.1f", (a - b) / n }'
}
# check EXPR: "yes" or "**no**" (awk arithmetic on numbers).
check() { awk "BEGIN { print ($1) ? \"yes\" : \"**no**\" }"; }
kib() { fmt "$(agg "$1")" 1 1024; }

rows=()
row() {	# row CELL...: a line of the table
  local line="|" cell
  for cell in "$@"; do line+=" $cell |"; done
  rows+=("$line")
}

for n in $SIZES; do
  for kind in small tenpct; do
    what="3 changed + 1 added"
    [ $kind = tenpct ] && what="10% changed ($((n / 10)) files)"
    b=$(agg "move.$n.$kind.wall_ms")
    g=$(agg "move.$n.$kind.git_ms")
    r=$(ratio "move.$n.$kind.git_ms" "move.$n.$kind.wall_ms")
    target=""; met=""
    if [ "$n" = 5000 ] && [ $kind = small ]; then
      target="≤ 100 ms and ≥ 6×"
      met=$(check "$(med "$b") <= 100 && $(med "$r") >= 6")
    fi
    row "1. move after sync, $n files, $what" "$(fmt "$b" 0) ms" \
      "$(fmt "$g" 0) ms" "$(fmt "$r" 2)× faster" "$target" "$met"
  done
done
b=$(agg first.wall_ms)
g=$(agg first.git_total_ms)
r=$(ratio first.git_total_ms first.wall_ms)
row "2. first move, 5000 files, nothing on the sandbox" \
  "$(fmt "$b" 0) ms" "$(fmt "$g" 0) ms" "$(fmt "$r" 2)× faster" "≤ 2000 ms" \
  "$(check "$(med "$b") <= 2000")"
for n in $SIZES; do
  for kind in small tenpct; do
    row "3. bytes on the wire, $n files, $kind (up / down)" \
      "$(kib "move.$n.$kind.bytes_up") / $(kib "move.$n.$kind.bytes_down") KiB" \
      "$(kib "move.$n.$kind.objects_zlib_bytes") KiB zlib objects; $(kib "move.$n.$kind.git_bundle_bytes") KiB bundle" \
      "$(fmt "$(ratio "move.$n.$kind.bytes_up" "move.$n.$kind.objects_zlib_bytes")" 2)× zlib" "" ""
  done
done
row "3. bytes on the wire, first move (up / down)" \
  "$(kib first.bytes_up) / $(kib first.bytes_down) KiB" \
  "$(kib first.git_bundle_all_bytes) KiB bundle --all" \
  "$(fmt "$(ratio first.bytes_up first.git_bundle_all_bytes)" 2)× bundle" "" ""
b=$(agg echo.relay.p50); g=$(agg echo.direct.p50); r=$(agg echo.ratio.p50)
row "4. keystroke echo p50 (µs), $ECHO_RUNS × $ECHO_COUNT" "$(fmt "$b" 0)" \
  "$(fmt "$g" 0) direct" "$(fmt "$r" 2)× direct" "≤ 2× direct" \
  "$(check "$(med "$r") <= 2")"
b=$(agg echo.relay.p99); g=$(agg echo.direct.p99); r=$(agg echo.ratio.p99)
row "4. keystroke echo p99 (µs)" "$(fmt "$b" 0)" "$(fmt "$g" 0) direct" \
  "$(fmt "$r" 2)× direct" "< 1000 µs" "$(check "$(med "$b") < 1000")"
b=$(agg fan.1.median)
row "5. fan-out to 1 client, MiB/s ($((FAN_BYTES_1 >> 20)) MiB)" "$(fmt "$b" 0)" \
  "$(fmt "$(agg fan.pty.median)" 0) reading the PTY alone" \
  "$(fmt "$(ratio fan.1.median fan.pty.median)" 2)× the PTY alone" "≥ 200" \
  "$(check "$(med "$b") >= 200")"
s=$(agg fan.1.stalled.median)
r=$(ratio fan.1.stalled.median fan.1.median)
row "5. fan-out to 1 client beside a stalled one, MiB/s" "$(fmt "$s" 0)" \
  "$(fmt "$b" 0) without" "$(fmt "$r" 2)× without" "not slower" \
  "$(check "$(med "$r") >= 0.9")"
row "5. fan-out to 50 clients, MiB/s per client ($((FAN_BYTES_50 >> 20)) MiB each)" \
  "$(fmt "$(agg fan.50.median)" 1)" \
  "$(fmt "$(agg fan.50.aggregate)" 0) aggregate" "" "" ""
r=$(ratio fan.50.stalled.median fan.50.median)
row "5. fan-out to 50 clients beside a stalled one, MiB/s per client" \
  "$(fmt "$(agg fan.50.stalled.median)" 1)" \
  "$(fmt "$(agg fan.50.stalled.aggregate)" 0) aggregate" \
  "$(fmt "$r" 2)× without" "not slower" "$(check "$(med "$r") >= 0.9")"
for d in local sandbox; do
  l=$(agg "rss.${d}_idle_kb")
  what="registered, no session"
  [ $d = sandbox ] && what="after a move there and back"
  row "6. idle RSS, baton-$d ($what), MiB" "$(fmt "$l" 1 1024)" \
    "$(fmt "$(agg "rss.${d}_idle_anon_kb")" 1 1024) its own (RssAnon)" "" \
    "< 8" "$(check "$(med "$l") < 8192")"
done
row "6. RSS after the move benchmarks, baton-local / baton-sandbox, MiB" \
  "$(kib rss.local_after_moves_kb) / $(kib rss.sandbox_after_moves_kb)" \
  "" "" "" ""
r0=$(med "$(agg rss.relay.0)")
for n in $CONNS; do
  rn=$(med "$(agg "rss.relay.$n")")
  per=$(perconn "$rn" "$r0" "$n")
  target=""; met=""
  if [ "$n" = 10000 ]; then
    target="< 20 KiB per connection"; met=$(check "$per < 20")
  fi
  row "6. relay RSS with $n idle clients" \
    "$(div "$rn" 1024) MiB" "$(div "$r0" 1024) MiB with none" \
    "$per KiB per connection" "$target" "$met"
done

# Growth: move time against size, relay memory against connections.
growth=()
first_n=${SIZES%% *}; last_n=${SIZES##* }
for kind in small tenpct; do
  a=$(med "$(agg "move.$first_n.$kind.wall_ms")")
  z=$(med "$(agg "move.$last_n.$kind.wall_ms")")
  ga=$(med "$(agg "move.$first_n.$kind.git_ms")")
  gz=$(med "$(agg "move.$last_n.$kind.git_ms")")
  growth+=("- move ($kind), $first_n → $last_n files \
($((last_n / first_n))× the files): Baton $a → $z ms ($(div "$z" "$a")×), \
git recipe $ga → $gz ms ($(div "$gz" "$ga")×)")
done
prev=0; prevr=$r0
for n in $CONNS; do
  rn=$(med "$(agg "rss.relay.$n")")
  growth+=("- relay RSS, $prev → $n idle clients: \
+$(perconn "$rn" "$prevr" "$((n - prev))") KiB per added connection")
  prev=$n; prevr=$rn
done

# The move's steps, from the relay's log and the source's.
steps=()
for n in $SIZES; do
  for kind in small tenpct small.back; do
    k=move.$n.$kind
    steps+=("| $n | $kind | $(fmt "$(agg "$k.wall_ms")" 0) | $(fmt "$(agg "$k.source_ms")" 0) | $(fmt "$(agg "$k.checkpoint_ms")" 0) | $(fmt "$(agg "$k.relay_ms")" 0) | $(fmt "$(agg "$k.target_ms")" 0) |")
  done
done
steps+=("| 5000 | first | $(fmt "$(agg first.wall_ms)" 0) | $(fmt "$(agg first.source_ms)" 0) | $(fmt "$(agg first.checkpoint_ms)" 0) | $(fmt "$(agg first.relay_ms)" 0) | $(fmt "$(agg first.target_ms)" 0) |")
gsteps=()
for n in $SIZES; do
  for kind in small tenpct; do
    k=move.$n.$kind
    gsteps+=("| $n | $kind | $(fmt "$(agg "$k.git_ms")" 0) | $(fmt "$(agg "$k.git_snapshot_ms")" 0) | $(fmt "$(agg "$k.git_bundle_ms")" 0) | $(fmt "$(agg "$k.git_fetch_ms")" 0) |")
  done
done
gsteps+=("| 5000 | first | $(fmt "$(agg first.git_total_ms)" 0) | bundle --all $(fmt "$(agg first.git_bundle_all_ms)" 0) | clone $(fmt "$(agg first.git_clone_ms)" 0) | recipe $(fmt "$(agg first.git_ms)" 0) |")

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
os=$(. /etc/os-release && echo "$PRETTY_NAME")
libs=$(for p in libwebsockets libuv libgit2 libsodium libcjson sqlite3 openssl; do
  v=$(pkg-config --modversion "$p" 2>/dev/null || echo '?')
  printf '%s %s, ' "$p" "${v%-}"
done)
virt=$(lscpu | sed -n 's/^Hypervisor vendor: *//p')

report() {
  echo "Run of $(date -u '+%Y-%m-%d %H:%M UTC') with \`bash bench/run.sh${QUICK:+ --quick}\` ($took s)."
  echo
  echo "- CPU: $cpu, $(nproc) cores${virt:+ (virtual machine, $virt)}"
  echo "- RAM: $mem; kernel $(uname -r); $os"
  echo "- compiler: $(cc --version | head -n 1); build type Release"
  echo "- libraries: ${libs%, }; $(git --version)"
  echo "- samples: moves $REPS per size and kind, first move $FIRST_REPS," \
    "echo $ECHO_RUNS × $ECHO_COUNT round trips each way, fan-out" \
    "$FAN_RUNS per case"
  echo
  echo "Median (min–max) over the runs; a ratio is taken run by run, from runs made side by side."
  echo
  echo "| benchmark | Baton | beside it | ratio | target | met |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Growth (7):"
  echo
  printf '%s\n' "${growth[@]}"
  echo
  echo "Where a move's time goes (ms; \`source\` = stop the agent, checkpoint, pack, upload; \`checkpoint\` = the source's checkpoint and pack alone; \`relay\` = store, fence, resume; \`target\` = fetch, restore, start the agent):"
  echo
  echo "| files | kind | wall | source | checkpoint | relay | target |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${steps[@]}"
  echo
  echo "The git command line beside it (ms; snapshot = temporary index, \`add -A\`, \`write-tree\`, \`commit-tree\`; bundle of the new objects; fetch and \`read-tree -u -m\` on the other side):"
  echo
  echo "| files | kind | total | snapshot | bundle | fetch + read-tree |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${gsteps[@]}"
}

table=$(report)
printf '\n%s\n' "$table"
begin='<!-- bench:begin (written by bench/run.sh) -->'
end='<!-- bench:end -->'
if [ -n "$QUICK" ] || [ ! -f "$out" ] || ! grep -qF "$begin" "$out"; then
  printf '# Baton benchmarks\n\n%s\n%s\n%s\n' "$begin" "$table" "$end" >"$out"
else
  awk -v b="$begin" -v e="$end" -v t="$table" '
    $0 == b { print; print t; skip = 1; next }
    $0 == e { skip = 0 }
    !skip { print }' "$out" >"$out.new"
  mv "$out.new" "$out"
fi
cp "$RESULTS" "$BIN/bench-results.txt"
rm -f "$RESULTS"
say "table written to ${out#"$src"/}; raw samples in build-bench/bench-results.txt"
