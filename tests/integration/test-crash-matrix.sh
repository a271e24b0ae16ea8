#!/usr/bin/env bash
# The crash matrix: a move from the laptop to a sandbox with each of its
# participants killed at each step (crash-move.sh has the checks).
here=$(dirname "$0")
rc=0
for point in source:suspend source:checkpoint relay:checkpoint-stored \
             relay:fenced target:objects target:restored target:resumed; do
  if ! bash "$here/crash-move.sh" "$point"; then
    echo "crash matrix: $point FAILED"
    rc=1
  fi
done
[ $rc -eq 0 ] && echo "crash matrix: every row OK"
exit $rc
