#!/usr/bin/env bash
# Configures and builds KeyVal into build/ (or $KEYVAL_BUILD_DIR), two jobs.
# Extra arguments go to CMake's configure step (e.g. -DKEYVAL_SANITIZE=ON).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${KEYVAL_BUILD_DIR:-build}"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="${KEYVAL_BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
cmake --build "$build_dir" -j "${KEYVAL_JOBS:-2}"
