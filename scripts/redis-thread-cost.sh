#!/usr/bin/env bash
# redis-thread-cost.sh - what one Redis command costs each thread of a 3-node cluster
# (docs/BENCHMARKS.md, "Redis GET as one GetBatch"): CPU microseconds per command, per thread,
# read from /proc/PID/task/*/stat before and after a redis-benchmark run against the leader's
# Redis port, as scripts/thread-cost.sh does for the native API.
#
#   scripts/redis-thread-cost.sh                 1,500,000 GETs (after 200,000 SETs to fill the keys)
#   OP=set N=400000 scripts/redis-thread-cost.sh SETs (after 20,000 to warm up)
#
# Knobs (env): OP=get N (per OP: 1500000 gets, 400000 sets) CLIENTS=64 PIPELINE=16
#   WORK=/tmp/keyval-redis-thread-cost KEYVAL=build/keyval PORT_BASE=28900 KV_NODE_FLAGS
# Printed: redis-benchmark's CSV line, the leader's node id, then "node-pid/tid thread
# µs/command" for every thread above 0.05 µs, and the total over the three nodes. The shape is
# the Redis target's: `-c 64 -P 16 -d 100 -r 100000`. Nodes are stopped by PID at exit.
set -euo pipefail
KEYVAL=${KEYVAL:-$PWD/build/keyval}
OP=${OP:-get}; CLIENTS=${CLIENTS:-64}; PIPELINE=${PIPELINE:-16}
WORK=${WORK:-/tmp/keyval-redis-thread-cost}; PORT_BASE=${PORT_BASE:-28900}
case "$OP" in
  get) N=${N:-1500000}; WARM=200000 ;;
  set) N=${N:-400000}; WARM=20000 ;;
  *) echo "OP must be get or set, not '$OP'" >&2; exit 2 ;;
esac
[ -x "$KEYVAL" ] || { echo "no keyval binary at $KEYVAL (set KEYVAL)" >&2; exit 1; }
command -v redis-benchmark > /dev/null || { echo "redis-benchmark missing: apt-get install redis-tools" >&2; exit 1; }
HOST=127.0.0.1
pids=()
stop_nodes() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap stop_nodes EXIT
trap 'exit 130' INT TERM
rm -rf "$WORK"; mkdir -p "$WORK"
peers="1=$HOST:$((PORT_BASE+1)),2=$HOST:$((PORT_BASE+2)),3=$HOST:$((PORT_BASE+3))"
for id in 1 2 3; do
  # shellcheck disable=SC2086
  "$KEYVAL" node --id $id --data-dir "$WORK/kv-$id" --peers "$peers" --bootstrap \
    --client-listen $HOST:$((PORT_BASE+10+id)) --redis-listen $HOST:$((PORT_BASE+30+id)) ${KV_NODE_FLAGS:-} \
    > "$WORK/kv-$id.log" 2>&1 &
  pids+=($!)
done
endpoints="$HOST:$((PORT_BASE+11)),$HOST:$((PORT_BASE+12)),$HOST:$((PORT_BASE+13))"
answered=0
for _ in $(seq 1 100); do
  "$KEYVAL" put --endpoints "$endpoints" measure-probe x > /dev/null 2>&1 && { answered=1; break; }
  sleep 0.1
done
[ "$answered" = 1 ] || { echo "no leader answered a put within 10 s (logs in $WORK)" >&2; exit 1; }
leader=""
for id in 1 2 3; do grep -q "elected leader" "$WORK/kv-$id.log" && leader=$id; done
[ -n "$leader" ] || { echo "no node logged its election (logs in $WORK)" >&2; exit 1; }
port=$((PORT_BASE+30+leader))
shape=(-c "$CLIENTS" -P "$PIPELINE" -d 100 -r 100000)
redis-benchmark -h $HOST -p $port -t set -n $WARM "${shape[@]}" -q > /dev/null 2>&1
snapshot() {  # node-pid/tid name ticks
  local p t
  for p in "${pids[@]}"; do
    for t in /proc/"$p"/task/*; do echo "$p/$(basename "$t") $(cat "$t/comm") $(awk '{print $14 + $15}' "$t/stat")"; done
  done
}
snapshot > "$WORK/before"
redis-benchmark -h $HOST -p $port -t "$OP" -n "$N" "${shape[@]}" --csv > "$WORK/bench.csv" 2>&1
snapshot > "$WORK/after"
tail -1 "$WORK/bench.csv"
echo "leader: node $leader (pid ${pids[$((leader-1))]})"
hz=$(getconf CLK_TCK)
join <(sort "$WORK/before") <(sort "$WORK/after") | awk -v n="$N" -v hz="$hz" -v op="$OP" '
  { us = ($5 - $3) * 1e6 / hz / n; total += us
    if (us > 0.05) printf "%s %-16s %6.2f us/%s\n", $1, $2, us, op }
  END { printf "total %.2f us/%s\n", total, op }'
