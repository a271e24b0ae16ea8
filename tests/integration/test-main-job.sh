#!/usr/bin/env bash
# The README's main job, as a test.
exec bash "$(dirname "$0")/../../scripts/main-job.sh"
