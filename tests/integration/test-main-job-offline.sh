#!/usr/bin/env bash
# The README's main job with the laptop daemon stopped before the move.
exec bash "$(dirname "$0")/../../scripts/main-job.sh" --laptop-offline
