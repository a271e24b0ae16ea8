#!/usr/bin/env bash
# build.sh [--sanitize] [--test]: installs what is missing, then configures
# and builds Baton in build/ (or build-asan/ with --sanitize). Prints the
# build folder on the last line.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
dir=$src/build
flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
deps=()
for arg in "$@"; do
  case $arg in
    --sanitize) dir=$src/build-asan
                flags=(-DCMAKE_BUILD_TYPE=Debug -DBATON_SANITIZE=ON) ;;
    --test) deps=(--test) ;;
    *) echo "build.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done
bash "$src/scripts/deps.sh" "${deps[@]}"
cmake -S "$src" -B "$dir" -DBATON_WERROR=ON "${flags[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)" >"$dir.log" 2>&1 ||
  { tail -n 60 "$dir.log" >&2; echo "build failed; full log in $dir.log" >&2; exit 1; }
# the web app is the one part that needs the npm registry: say so when it
# could not be built (the relay then serves no app, its test skips)
[ ! -f "$dir/web.unavailable" ] || sed 's/^/build.sh: /' "$dir/web.unavailable" >&2
echo "$dir"
