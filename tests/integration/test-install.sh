#!/usr/bin/env bash
# test-install.sh: `cmake --install` puts the programs, manual pages,
# shell completion, systemd units and the relay's sysusers file where they
# belong under the prefix, the units naming the installed programs; CPack
# makes the four Debian packages, each holding its program's files and
# depending on the packages of every library that program links, and on
# libwebsockets-evlib-uv, which libwebsockets loads at run time; and the
# installed programs run a session with a move to a sandbox and back.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
# shellcheck source=../packaging/session.sh
source "$here/../packaging/session.sh"

cache=$BATON_BIN/CMakeCache.txt
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$cache")
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$cache")
[ -n "$prefix" ] && [ -n "$version" ] ||
  fail "no install prefix or version in $cache"

log "cmake --install into $T/root$prefix"
DESTDIR=$T/root cmake --install "$BATON_BIN" >"$T/install.log" 2>&1 ||
  fail "cmake --install failed: $(tail -n 20 "$T/install.log")"
p=$T/root$prefix
for f in bin/baton-relay bin/baton-local bin/baton-sandbox bin/baton \
    share/man/man8/baton-relay.8 share/man/man1/baton-local.1 \
    share/man/man1/baton-sandbox.1 share/man/man1/baton.1 \
    share/bash-completion/completions/baton \
    share/zsh/site-functions/_baton \
    lib/systemd/system/baton-relay.service \
    lib/systemd/user/baton-local.service \
    lib/sysusers.d/baton-relay.conf; do
  [ -f "$p/$f" ] || fail "$prefix/$f is not installed"
done
for prog in baton-relay baton-local baton-sandbox baton; do
  [ -x "$p/bin/$prog" ] || fail "$prefix/bin/$prog is not executable"
  out=$("$p/bin/$prog" --version) || fail "$prog --version failed"
  [ "$out" = "$prog $version" ] ||
    fail "$prog --version says '$out', not '$prog $version'"
done
grep -qx "ExecStart=$prefix/bin/baton-relay serve \\\\" \
  "$p/lib/systemd/system/baton-relay.service" ||
  fail "the relay's unit does not run $prefix/bin/baton-relay"
grep -qx "ExecStart=$prefix/bin/baton-local" \
  "$p/lib/systemd/user/baton-local.service" ||
  fail "the laptop's unit does not run $prefix/bin/baton-local"

log "another prefix at install time: the units follow it"
DESTDIR=$T/other cmake --install "$BATON_BIN" --prefix /opt/baton \
  >"$T/install-other.log" 2>&1 || fail "cmake --install --prefix failed"
grep -qx "ExecStart=/opt/baton/bin/baton-local" \
  "$T/other/opt/baton/lib/systemd/user/baton-local.service" ||
  fail "with --prefix /opt/baton the unit names another program"

log "the Debian packages"
sanitized && log "(a sanitized build: what the programs link is not" \
  "compared with the packages' Depends)"
(cd "$BATON_BIN" && cpack -G DEB -B "$T/pkg") >"$T/cpack.log" 2>&1 ||
  fail "cpack failed: $(tail -n 20 "$T/cpack.log")"

# pkg_of PATH: the Debian package that holds a library (dpkg knows it by
# one of its names, with or without /usr).
pkg_of() {
  local q out
  for q in "$1" "$(readlink -f "$1")" "${1#/usr}" "/usr$1"; do
    out=$(dpkg -S "$q" 2>/dev/null | sed -n 1p) && [ -n "$out" ] &&
      { echo "${out%%:*}"; return 0; }
  done
  return 1
}

# check_deb PACKAGE PROGRAM FILES...: the package holds the program and
# FILES (paths under /usr) and depends on what the program links.
check_deb() {
  local pkg=$1 prog=$2 deb depends so path lib f
  shift 2
  deb=$(echo "$T/pkg/${pkg}_${version}-"*.deb)
  [ -f "$deb" ] || fail "cpack made no package $pkg: $(ls "$T/pkg")"
  [ "$(dpkg-deb -f "$deb" Package)" = "$pkg" ] ||
    fail "$deb is not named $pkg"
  dpkg-deb -c "$deb" | awk '{ print $6 }' >"$T/$pkg.files"
  for f in "bin/$prog" "$@"; do
    grep -qx "\./usr/$f" "$T/$pkg.files" ||
      fail "$pkg lacks /usr/$f: $(tr '\n' ' ' <"$T/$pkg.files")"
  done
  depends=", $(dpkg-deb -f "$deb" Depends),"
  [[ $depends == *", libwebsockets-evlib-uv,"* ]] ||
    fail "$pkg does not depend on libwebsockets-evlib-uv: $depends"
  # Packages come from release builds; a sanitized build links more
  # (its runtimes, and libraries --as-needed would have dropped).
  sanitized && return 0
  for so in $(readelf -d "$p/bin/$prog" |
      sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    path=$(ldconfig -p | awk -v s="$so" '$1 == s && !n++ { print $NF }')
    lib=$(pkg_of "$path") || fail "no Debian package holds $so ($path)"
    [[ $depends == *", $lib,"* || $depends == *", $lib ("* ]] ||
      fail "$prog links $so from $lib, but $pkg does not depend on it:" \
        "$depends"
  done
}
web=()	# the web app the relay serves, when this build made it
[ -f "$BATON_BIN/web/index.html" ] && web=(share/baton/web/index.html)
check_deb baton-relay baton-relay share/man/man8/baton-relay.8 \
  lib/systemd/system/baton-relay.service lib/sysusers.d/baton-relay.conf \
  "${web[@]}"
check_deb baton-local baton-local share/man/man1/baton-local.1 \
  lib/systemd/user/baton-local.service
check_deb baton-sandbox baton-sandbox share/man/man1/baton-sandbox.1
check_deb baton baton share/man/man1/baton.1 \
  share/bash-completion/completions/baton
dpkg-deb --ctrl-tarfile "$(echo "$T"/pkg/baton-relay_*.deb)" | tar -tvf - |
  grep '^-rwxr-xr-x .* \./postinst$' >/dev/null ||
  fail "baton-relay has no executable postinst to make its user"

log "a session through the installed programs"
RELAY_BIN=$p/bin/baton-relay
LOCAL_BIN=$p/bin/baton-local
SANDBOX_BIN=$p/bin/baton-sandbox
CLIENT_BIN=$p/bin/baton
short_session
# The installed relay finds the installed web app by itself.
if [ ${#web[@]} -gt 0 ]; then
  curl -sf "http://127.0.0.1:$RELAY_PORT/" | grep -F '<title>Baton' \
    >/dev/null || fail "the installed relay does not serve its web app:" \
    "$(grep -F 'web app' "$T/relay.log")"
fi
