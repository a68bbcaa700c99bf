#!/usr/bin/env bash
# bench-client-ab.sh - two builds of the load generator against one cluster (docs/BENCHMARKS.md,
# "The load generator's clients on one thread"): a fresh 3-node cluster of NODES (fsync on,
# --bootstrap), then `keyval bench kv` from each binary of CLIENTS in turn, REPS times, for each
# case. Per run it prints the bench's ops/s, p99 and errors, the bench's own CPU (user + system,
# from /usr/bin/time) per operation, and the nodes' CPU per operation (utime + stime of the three
# node PIDs around the run). One cluster serves every run, so the node side is the same code.
#
#   NODES=build/keyval CLIENTS="/tmp/keyval-old build/keyval" scripts/bench-client-ab.sh
#
# Knobs (env): NODES=build/keyval  CLIENTS="build/keyval"  REPS=3  OPS=30000
#   CASES="get 16,put 16,put 64" (op and clients, comma-separated)  WORK=/tmp/keyval-client-ab
#   PORT_BASE=27600  KV_NODE_FLAGS (added to each `keyval node`)
set -euo pipefail
KEYVAL=${NODES:-$PWD/build/keyval}
CLIENTS=${CLIENTS:-$KEYVAL}; REPS=${REPS:-3}; OPS=${OPS:-30000}; CASES=${CASES:-get 16,put 16,put 64}
WORK=${WORK:-/tmp/keyval-client-ab}; PORT_BASE=${PORT_BASE:-27600}
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian package time)" >&2; exit 1; }
# shellcheck source=scripts/measure-cluster.sh
. "$(dirname "$0")/measure-cluster.sh"
start_measured_cluster
hz=$(getconf CLK_TCK)
node_ticks() { local p s=0; for p in "${pids[@]}"; do s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$s"; }
json() { grep '^{' "$WORK/run.txt" | tail -1 | sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p"; }
IFS=, read -r -a cases <<< "$CASES"
for rep in $(seq 1 "$REPS"); do
  for client in $CLIENTS; do
    for spec in "${cases[@]}"; do
      read -r op n <<< "$spec"
      keys=1000000; [ "$op" = get ] && keys=1
      t0=$(node_ticks)
      /usr/bin/time -f 'client_cpu %U %S' -o "$WORK/time.txt" "$client" bench kv --endpoints "$endpoints" \
        --clients "$n" --ops "$OPS" --value-bytes 100 --key-bytes 16 --op "$op" --keys "$keys" > "$WORK/run.txt" 2>&1
      t1=$(node_ticks)
      awk -v rep="$rep" -v bin="$client" -v op="$op" -v n="$n" -v rps="$(json ops_per_s)" -v p99="$(json p99_ms)" \
          -v err="$(json errors)" -v ops="$OPS" -v hz="$hz" -v t="$((t1 - t0))" '
        /client_cpu/ { printf "rep %s %-28s %s c%-3s %8.0f ops/s  p99 %6.2f ms  errors %s  bench %5.1f us/op  nodes %6.1f us/op\n",
                       rep, bin, op, n, rps, p99, err, ($2 + $3) * 1e6 / ops, t * 1e6 / hz / ops }' "$WORK/time.txt"
    done
  done
done
