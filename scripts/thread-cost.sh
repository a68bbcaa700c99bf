#!/usr/bin/env bash
# thread-cost.sh - what one request costs each thread of a 3-node cluster (docs/DATAPATH.md,
# "What each thread spends"): CPU microseconds and voluntary context switches (a thread going
# to sleep: the other side of every hand-off) per request, per thread, read from
# /proc/PID/task/*/{stat,status} before and after a `keyval bench kv` run.
#
#   scripts/thread-cost.sh                      16 clients' puts
#   CLIENTS=1 OPS=4000 scripts/thread-cost.sh   one client's puts
#   OP=get OPS=80000 scripts/thread-cost.sh     linearizable gets
#
# Knobs (env): CLIENTS=16 OPS=40000 OP=put VALUE_BYTES=100 KV_NODE_FLAGS (added to each
#   `keyval node`, e.g. "--threads 1") WORK=/tmp/keyval-thread-cost KEYVAL=build/keyval
#   PORT_BASE=27500
# Printed: the bench's own line, then "node-pid thread µs/request switches/request" for every
# thread that did anything, and the total over the three nodes. The thread names are the
# node's (kv.worker, kv.wal, kv.indexer, kv.state; caf.multiplexer is CAF's network thread).
# The figures include the kernel's time on behalf of each thread (stime), at the kernel's
# clock tick (10 ms): use enough OPS for a few seconds of load.
set -euo pipefail
KEYVAL=${KEYVAL:-$PWD/build/keyval}
CLIENTS=${CLIENTS:-16}; OPS=${OPS:-40000}; OP=${OP:-put}; VALUE_BYTES=${VALUE_BYTES:-100}
WORK=${WORK:-/tmp/keyval-thread-cost}; PORT_BASE=${PORT_BASE:-27500}
# shellcheck source=scripts/measure-cluster.sh
. "$(dirname "$0")/measure-cluster.sh"
start_measured_cluster

snapshot() {  # node-pid/tid name ticks voluntary-switches
  local p t
  for p in "${pids[@]}"; do
    for t in /proc/"$p"/task/*; do
      echo "$p/$(basename "$t") $(cat "$t/comm") $(awk '{print $14 + $15}' "$t/stat") \
$(awk '/^voluntary_ctxt_switches/ {print $2}' "$t/status")"
    done
  done
}
snapshot > "$WORK/before"
"$KEYVAL" bench kv --endpoints "$endpoints" --clients "$CLIENTS" --ops "$OPS" --value-bytes "$VALUE_BYTES" \
  --op "$OP" > "$WORK/bench.txt" 2>&1
snapshot > "$WORK/after"
tail -1 "$WORK/bench.txt"  # the JSON line (progress lines go before it)
hz=$(getconf CLK_TCK)
join <(sort "$WORK/before") <(sort "$WORK/after") | awk -v n="$OPS" -v hz="$hz" '
  { us = ($6 - $3) * 1e6 / hz / n; cs = ($7 - $4) / n; split($1, id, "/")
    total_us += us; total_cs += cs
    if (us > 0 || cs >= 0.01) printf "%s %-16s %7.1f us %6.2f switches\n", id[1], $2, us, cs }
  END { printf "total %.1f us %.2f switches per request\n", total_us, total_cs }'
