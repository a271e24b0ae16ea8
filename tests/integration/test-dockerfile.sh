#!/usr/bin/env bash
# test-dockerfile.sh: agent-sandbox/Dockerfile, read without a container
# engine. Two stages (build, then runtime); the runtime stage on Debian 12
# installs no build packages, runs as a user that is not root and enters
# through baton-sandbox; every library the build tree's baton-sandbox
# links (ldd, mapped to packages with dpkg -S) comes with a package that
# stage installs, and it installs no library baton-sandbox does not link.
# Broken copies of the Dockerfile must each be refused, saying why.
# tests/packaging/dockerfile-stages.sh runs the build stage for real.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
# shellcheck source=../packaging/dockerfile-lib.sh
source "$here/../packaging/dockerfile-lib.sh"
df_fail() { fail "$*"; }

DF=$here/../../agent-sandbox/Dockerfile
df_check_structure "$DF"
log "structure: $(df_stages "$DF") stages, runtime packages:" \
  $(df_runtime_packages "$DF")
if sanitized; then
  # The image is built without sanitizers; their runtimes are not in it.
  log "libraries: not checked in a sanitizer build"
else
  df_check_libraries "$DF" "$SANDBOX_BIN" >"$T/libs.out"
  log "libraries of $SANDBOX_BIN, each from the runtime stage:"
  cat "$T/libs.out" >&2
fi

# broken NAME SED WANT: a copy of the Dockerfile edited by SED is refused
# with a message holding WANT.
broken() {
  local name=$1 script=$2 want=$3 why=$T/why.$1
  sed -e "$script" "$DF" >"$T/Dockerfile.$name"
  cmp -s "$DF" "$T/Dockerfile.$name" && fail "broken $name: sed changed nothing"
  (df_fail() { echo "$*" >"$why"; exit 1; }
   df_check_structure "$T/Dockerfile.$name"
   sanitized || df_check_libraries "$T/Dockerfile.$name" "$SANDBOX_BIN" \
     >/dev/null) && fail "broken $name: the Dockerfile was not refused"
  [[ $(cat "$why") == *"$want"* ]] ||
    fail "broken $name: said '$(cat "$why")', not '$want'"
}
broken root 's/^USER .*/USER root/' "runs as USER root"
broken no-user '/^USER /d' "has no USER"
broken shell-entry 's|^ENTRYPOINT .*|ENTRYPOINT baton-sandbox|' "exec form"
broken other-entry 's|^ENTRYPOINT .*|ENTRYPOINT ["/bin/bash"]|' "exec form"
broken dev-package 's/\(--no-install-recommends\) \\$/\1 libuv1-dev \\/' \
  "installs build packages: libuv1-dev"
broken one-stage '/^FROM .* AS build$/,/^FROM /{/^FROM .* AS build$/d;}' \
  "stage"
broken no-plugin 's/ libwebsockets-evlib-uv//' "libwebsockets-evlib-uv"
broken old-debian 's/^FROM debian:bookworm-slim$/FROM debian:bullseye-slim/' \
  "not Debian 12"
if ! sanitized; then
  # (not libuv1: libwebsockets-evlib-uv depends on it, so it stays)
  broken no-sodium 's/ libsodium23 / /' \
    "does not provide: libsodium.so.23 (libsodium23)"
  broken extra-lib 's/ libssl3 / libssl3 libsqlite3-0 /' \
    "does not link: libsqlite3-0"
fi
log "broken Dockerfiles: each refused with its reason"
