#!/usr/bin/env bash
# fingerprint.sh WORKTREE: one line per fact of a worktree's state as git
# sees it (HEAD, branch, the staged index, status, and every visible file
# with its type, exec bit, link target or content hash; ignored files left
# out), so two worktrees hold the same state exactly when the outputs are
# equal. Reads only: no index refresh, no lock. Used by the main job when
# the team's shared cases are not beside this checkout.
set -euo pipefail
export GIT_OPTIONAL_LOCKS=0 LC_ALL=C
cd "${1:?usage: fingerprint.sh WORKTREE}"

printf 'head %s\n' "$(git rev-parse -q --verify HEAD || echo none)"
printf 'branch %s\n' "$(git symbolic-ref -q --short HEAD || echo detached)"
printf 'index %s\n' "$(git ls-files --stage | sha256sum | cut -c1-64)"
git status --porcelain=v2 --untracked-files=all --ignored=no |
  sed 's/^/status /'

git ls-files -z --cached --others --exclude-standard | sort -z -u |
  while IFS= read -r -d '' path; do
    if [ -L "$path" ]; then
      printf 'link %s -> %s\n' "$path" "$(readlink "$path")"
    elif [ -f "$path" ]; then
      if [ -x "$path" ]; then bits=755; else bits=644; fi
      printf 'file %s %s %s\n' "$bits" \
        "$(sha256sum <"$path" | cut -c1-64)" "$path"
    elif [ -d "$path" ]; then
      printf 'dir %s\n' "$path"
    elif [ -e "$path" ]; then
      printf 'other %s\n' "$path"
    else
      printf 'gone %s\n' "$path"
    fi
  done
