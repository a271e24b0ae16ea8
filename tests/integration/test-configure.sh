#!/usr/bin/env bash
# Configure stops early and says what to install when a dependency is
# missing (here: pkg-config finds none of them).
source "$(dirname "$0")/lib.sh"
: "${BATON_SRC:?set BATON_SRC to the source folder}"

mkdir -p "$T/empty"
rc=0
PKG_CONFIG_LIBDIR=$T/empty PKG_CONFIG_PATH= \
  cmake -S "$BATON_SRC" -B "$T/build" >"$T/configure.log" 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "configure succeeded without any dependency"
# cmake re-wraps messages: compare with runs of blanks squeezed.
tr -s ' \n' ' ' <"$T/configure.log" |
  grep -q "libuv not found. Install it: apt-get install libuv1-dev" ||
  { cat "$T/configure.log" >&2;
  fail "configure did not say which package to install"; }
echo "configure: refuses a missing dependency with the package to install"
