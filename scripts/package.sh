#!/usr/bin/env bash
# package.sh [OUTDIR [CMAKE_OPTION...]]: builds Baton's Debian packages,
# baton-relay, baton-local, baton-sandbox and baton, into OUTDIR (default
# build-pkg/debs). Installs what the build needs (scripts/deps.sh),
# configures a release build for /usr in build-pkg/ (the packages'
# layout, cmake/Packaging.cmake; CMAKE_OPTIONs such as -DBATON_WEB=OFF
# are added), and runs CPack. Prints the packages.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
dir=$src/build-pkg
out=${1:-$dir/debs}
shift $(($# > 0))

bash "$src/scripts/deps.sh"
# Debian's zsh reads completion from vendor-completions, not
# site-functions.
cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_INSTALL_PREFIX=/usr -DBATON_TESTS=OFF -DBATON_WERROR=ON \
  -DBATON_ZSH_COMPLETION_DIR=share/zsh/vendor-completions "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)" >"$dir.log" 2>&1 ||
  { tail -n 60 "$dir.log" >&2; echo "build failed; full log in $dir.log" >&2
    exit 1; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
(cd "$dir" && cpack -G DEB -B "$out") >>"$dir.log" 2>&1 ||
  { tail -n 30 "$dir.log" >&2; echo "cpack failed; see $dir.log" >&2
    exit 1; }
rm -rf "$out/_CPack_Packages"
ls "$out"/*.deb
