#!/usr/bin/env bash
# dockerfile-stages.sh: builds agent-sandbox/Dockerfile's stages in the
# current root, where no container engine runs. Only for a throwaway
# Debian 12 root, as root:
#
#   ../shared/tools/fresh-machine.sh 'bash tests/packaging/dockerfile-stages.sh'
#
# The build stage's instructions run here as Docker would run them (COPY
# from the repository, RUN with sh -c, ENV, WORKDIR), then the runtime
# stage's (its apt-get install, COPY --from=build, its RUN lines, USER).
# Then: baton-sandbox was built and runs as the image's user, and the
# runtime stage is right (dockerfile-lib.sh: two stages, no build packages,
# a user that is not root, ENTRYPOINT baton-sandbox, and every library
# the built binary needs, by ldd and dpkg -S, from its package list).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
DF=$src/agent-sandbox/Dockerfile
# shellcheck source=dockerfile-lib.sh
source "$src/tests/packaging/dockerfile-lib.sh"

say() { printf '[dockerfile-stages] %s\n' "$*" >&2; }
df_fail() { say "FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || df_fail "run as root in a throwaway root (see above)"
grep -q '^12\.' /etc/debian_version 2>/dev/null ||
  df_fail "this is not Debian 12: $(cat /etc/debian_version 2>/dev/null)"
[ "${CI:-}" = true ] || [ "${DOCKERFILE_STAGES_HERE:-}" = 1 ] ||
  df_fail "this writes into / (as a container build would): run it through \
fresh-machine.sh, or set DOCKERFILE_STAGES_HERE=1 in a root you can lose"

# copy SRC... DEST: COPY from the build context (the repository), or with
# FROM set, from that stage (the same root here).
copy() {
  local args=("$@") dest n from=$src s
  n=${#args[@]}
  dest=${args[n - 1]}
  for s in "${args[@]:0:n-1}"; do
    case $s in
      --from=*) from=""; continue ;;
      --chown=*|--chmod=*) df_fail "COPY $s is not emulated" ;;
    esac
    s=$from/${s#/}
    [ -e "$s" ] || df_fail "COPY: $s does not exist"
    if [ -d "$s" ]; then
      mkdir -p "$dest"
      cp -a "$s/." "$dest/"
    elif [[ $dest == */ ]]; then
      mkdir -p "$dest"
      cp -a "$s" "$dest"
    else
      mkdir -p "$(dirname "$dest")"
      cp -a "$s" "$dest"
    fi
  done
}

# run_stage N: runs stage N's instructions in this root.
run_stage() {
  local kw args user=root dir=/
  while IFS=$'\t' read -r kw args; do
    say "$kw $args"
    case $kw in
      FROM) [[ ${args%% *} =~ ^debian:(12|bookworm) ]] ||
              df_fail "stage $1 is FROM ${args%% *}, not Debian 12" ;;
      COPY) # shellcheck disable=SC2086
            (cd "$dir" && copy $args) ;;
      RUN)  [[ $args != \[* ]] || df_fail "RUN in exec form is not emulated"
            (cd "$dir" && runuser -u "$user" -- sh -c "$args") ||
              df_fail "RUN failed: $args" ;;
      ENV)  # KEY=VALUE pairs, or KEY VALUE
            if [[ $args == *=* ]]; then
              eval "export $args"
            else
              export "${args%% *}=${args#* }"
            fi ;;
      WORKDIR) dir=$args; mkdir -p "$dir" ;;
      USER) user=${args%%:*} ;;
      ENTRYPOINT|CMD|LABEL|EXPOSE|VOLUME) ;;
      *) df_fail "instruction $kw is not emulated" ;;
    esac
  done < <(df_stage "$DF" "$1")
}

build=$(df_build_stage "$DF")
final=$(df_stages "$DF")
[ -n "$build" ] || df_fail "no stage named build"
[ ! -e /src ] && [ ! -e /build ] || df_fail "/src or /build exists already"
export DEBIAN_FRONTEND=noninteractive
say "build stage ($build of $final)"
run_stage "$build"
bin=/build/agent-sandbox/baton-sandbox
[ -x "$bin" ] || df_fail "the build stage built no $bin"
say "runtime stage ($final)"
(run_stage "$final")

user=$(df_stage "$DF" "$final" | awk -F'\t' '$1 == "USER" { u = $2 }
  END { print u }')
runuser -u "${user%%:*}" -- env HOME=/tmp baton-sandbox --version ||
  df_fail "baton-sandbox does not run as ${user%%:*}"
df_check_structure "$DF"
df_check_libraries "$DF" "$bin"
say "passed: the build stage builds baton-sandbox, and the runtime stage" \
  "provides every library it needs"
