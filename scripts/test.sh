#!/usr/bin/env bash
# Quick start, "test": installs what is needed, builds, and runs the default
# test suite with CTest (long soaks and sweeps are separate targets).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
cd "${KEYVAL_BUILD_DIR:-build}"
ctest --output-on-failure -j "${KEYVAL_JOBS:-2}" "$@"
