#!/usr/bin/env bash
# demo.sh: installs what is missing, builds, and runs the main job (a real
# session on a clone of this repository, moved to a sandbox and back, on
# 127.0.0.1). `--laptop-offline` stops the laptop daemon before the move.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
BATON_BIN=$(bash "$src/scripts/build.sh" | tail -n 1)
export BATON_BIN
exec bash "$src/scripts/main-job.sh" "$@"
