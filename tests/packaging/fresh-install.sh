#!/usr/bin/env bash
# fresh-install.sh: Baton's Debian packages on a fresh Debian 12 machine.
# Builds them (scripts/package.sh, which installs the build's packages),
# removes everything the build installed, then installs the four .debs
# with apt-get, which must bring in every library they need; checks what
# they put where, runs each program's --version, and a short session
# through the installed programs (a move to a sandbox and back). Run it
# as root in a clean root, from the repository:
#
#   ../shared/tools/fresh-machine.sh 'bash tests/packaging/fresh-install.sh'
#
# Its arguments are CMake options for the build (scripts/package.sh), e.g.
# -DBATON_WEB=OFF where npm cannot reach its registry.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "fresh-install: run as root" >&2; exit 2; }
export DEBIAN_FRONTEND=noninteractive
say() { printf '== %s\n' "$*"; }

say "building the packages"
manual_before=$(apt-mark showmanual | sort)
debs=$(mktemp -d /tmp/baton-debs.XXXXXX)
bash "$src/scripts/package.sh" "$debs" "$@"

say "removing what the build installed"
comm -13 <(printf '%s\n' "$manual_before") <(apt-mark showmanual | sort) |
  xargs -r apt-mark auto >/dev/null
apt-get autoremove --purge -y -qq >/dev/null
for lib in libuv1 libwebsockets17 libwebsockets-evlib-uv libcjson1 \
    libgit2-1.5 libsodium23 libsqlite3-0 libqrencode4; do
  if dpkg-query -W -f='${Status}' "$lib" 2>/dev/null |
      grep 'ok installed' >/dev/null; then
    echo "fresh-install: $lib is still installed, so installing the" \
      "packages would not show that they depend on it" >&2
    exit 1
  fi
done

say "apt-get install ./*.deb"
apt-get install -y -qq "$debs"/*.deb >/dev/null
for lib in libuv1 libwebsockets17 libwebsockets-evlib-uv libcjson1 \
    libgit2-1.5 libsodium23 libsqlite3-0 libqrencode4 libssl3; do
  dpkg-query -W -f='${Status}' "$lib" | grep 'ok installed' >/dev/null ||
    { echo "fresh-install: $lib was not installed with the packages" >&2
      exit 1; }
done
version=$(dpkg-query -W -f='${Version}' baton-relay)
for prog in baton-relay baton-local baton-sandbox baton; do
  out=$("/usr/bin/$prog" --version)
  [ "$out" = "$prog ${version%-*}" ] ||
    { echo "fresh-install: $prog --version says '$out'" >&2; exit 1; }
  echo "$out"
done
for f in /usr/lib/systemd/system/baton-relay.service \
    /usr/lib/systemd/user/baton-local.service \
    /usr/lib/sysusers.d/baton-relay.conf \
    /usr/share/man/man8/baton-relay.8 /usr/share/man/man1/baton.1 \
    /usr/share/man/man1/baton-local.1 /usr/share/man/man1/baton-sandbox.1 \
    /usr/share/bash-completion/completions/baton \
    /usr/share/zsh/vendor-completions/_baton; do
  [ -f "$f" ] || { echo "fresh-install: no $f" >&2; exit 1; }
done
getent passwd baton-relay >/dev/null ||
  { echo "fresh-install: the package made no baton-relay user" >&2; exit 1; }
grep -qx 'ExecStart=/usr/bin/baton-relay serve \\' \
  /usr/lib/systemd/system/baton-relay.service ||
  { echo "fresh-install: the relay's unit runs another program" >&2; exit 1; }

say "a session through the installed programs"
export BATON_BIN=/usr BATON_SANITIZED=0
# shellcheck source=../integration/lib.sh
source "$src/tests/integration/lib.sh"
# shellcheck source=session.sh
source "$here/session.sh"
RELAY_BIN=/usr/bin/baton-relay
LOCAL_BIN=/usr/bin/baton-local
SANDBOX_BIN=/usr/bin/baton-sandbox
CLIENT_BIN=/usr/bin/baton
short_session

say "baton-local install-service, with no service manager here"
HOME=$T/home XDG_CONFIG_HOME=$T/config "$LOCAL_BIN" install-service \
  --relay "$RELAY_URL" --name fresh >"$T/service.out"
grep -qx 'ExecStart=/usr/bin/baton-local' \
  "$T/config/systemd/user/baton-local.service" ||
  fail "install-service wrote no unit running /usr/bin/baton-local"
say "the packages install on a fresh machine and run"
