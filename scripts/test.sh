#!/usr/bin/env bash
# test.sh: installs what is missing, builds, and runs every test: the
# normal build, then the AddressSanitizer + UBSan build.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
jobs=${BATON_TEST_JOBS:-2}
for variant in "" --sanitize; do
  dir=$(bash "$src/scripts/build.sh" --test $variant | tail -n 1)
  echo "== tests in $dir"
  (cd "$dir" && ctest --output-on-failure -j"$jobs" --timeout 600)
done
