#!/usr/bin/env bash
# Quick start, "run": installs what is needed, builds, and runs the main job.
# Until the cluster exists, the main job is the storage engine end to end:
# write entries through the WAL and LMDB, reopen both, verify every entry.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec ./build/keyval demo "$@"
