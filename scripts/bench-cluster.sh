#!/usr/bin/env bash
# The etcd-shaped cluster benchmark (docs/BENCHMARKS.md): a local 3-node cluster (fsync on),
# 16-byte keys, 100-byte values; puts with 1, 16 and 64 clients and linearizable gets with
# 16 clients, each run RUNS times (default 5); one JSON line per run. Stops what it started.
# Usage: scripts/bench-cluster.sh [BUILD_DIR] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
runs=${2:-5}
keyval="$build/keyval"
dir=$(mktemp -d "${TMPDIR:-/tmp}/keyval-bench-XXXXXX")
"$keyval" cluster start --dir "$dir" --client-port-base 27101 --peer-port-base 27201 > "$dir/cluster.out" 2>&1 &
cluster_pid=$!
trap 'kill $cluster_pid 2>/dev/null; wait $cluster_pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do grep -q '^leader:' "$dir/cluster.out" && break; sleep 0.1; done
grep -q '^leader:' "$dir/cluster.out" || { cat "$dir/cluster.out"; exit 1; }
endpoints=127.0.0.1:27101,127.0.0.1:27102,127.0.0.1:27103
for run in $(seq 1 "$runs"); do
  for clients in 1 16 64; do
    ops=$(( clients == 1 ? 2000 : clients * 600 ))
    "$keyval" bench kv --endpoints "$endpoints" --clients "$clients" --ops "$ops" --value-bytes 100 --op put | tail -1
  done
  "$keyval" bench kv --endpoints "$endpoints" --clients 16 --ops 30000 --value-bytes 100 --op get | tail -1
done
