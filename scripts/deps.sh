#!/usr/bin/env bash
# deps.sh [--test]: installs the Debian packages Baton needs that are missing.
# Reads scripts/packages.txt (and packages-test.txt with --test). Needs root
# when anything is missing; prints what it installs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lists=("$here/packages.txt")
[ "${1:-}" = --test ] && lists+=("$here/packages-test.txt")

want=$(grep -hv '^#' "${lists[@]}" | sed '/^$/d')
# What the installed packages provide besides themselves: NodeSource's
# nodejs provides npm and conflicts with Debian's npm package.
provided=$(dpkg-query -W -f='${Status}|${Provides}\n' 2>/dev/null |
  sed -n 's/^install ok installed|//p' | tr ',' '\n' |
  sed 's/^ *//; s/ .*//' | sort -u)
missing=()
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep 'ok installed' >/dev/null ||
    grep -Fx "$p" <<<"$provided" >/dev/null ||
    missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages: ${missing[*]}" >&2
  echo "deps: run this script as root, or: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
