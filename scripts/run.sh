#!/usr/bin/env bash
# Quick start, "run": installs what is needed, builds, and runs the main job: a local
# 3-node cluster on 127.0.0.1 (free ports, a temporary directory) that writes and reads
# keys, loses its leader to SIGKILL under load, elects a new one, restarts and recovers the
# killed node, verifies every acknowledged write and stops every process it started.
# Extra arguments go to `keyval cluster demo` (e.g. --keys 5000 --dir /tmp/kv --keep).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec ./build/keyval cluster demo "$@"
