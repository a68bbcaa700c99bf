#!/usr/bin/env bash
# syscalls.sh - the system calls one request costs each node of a 3-node cluster
# (docs/DATAPATH.md, "System calls per put"): `perf stat` counts the syscall tracepoints of
# each node process (all its threads) during a `keyval bench kv` run; printed per request.
#
#   scripts/syscalls.sh                      16 clients' puts
#   OP=get OPS=80000 scripts/syscalls.sh     linearizable gets
#
# Knobs (env): CLIENTS=16 OPS=40000 OP=put KV_NODE_FLAGS (added to each `keyval node`)
#   WORK=/tmp/keyval-syscalls KEYVAL=build/keyval PORT_BASE=27600
# Needs perf with the syscalls tracepoints (root, or perf_event_paranoid permitting).
set -euo pipefail
KEYVAL=${KEYVAL:-$PWD/build/keyval}
CLIENTS=${CLIENTS:-16}; OPS=${OPS:-40000}; OP=${OP:-put}
WORK=${WORK:-/tmp/keyval-syscalls}; PORT_BASE=${PORT_BASE:-27600}
command -v perf > /dev/null || { echo "perf missing (linux-perf)" >&2; exit 1; }
# shellcheck source=scripts/measure-cluster.sh
. "$(dirname "$0")/measure-cluster.sh"
start_measured_cluster
events=raw_syscalls:sys_enter
for name in epoll_wait epoll_ctl recvfrom sendto sendmsg read write futex pwrite64 fdatasync; do
  events+=",syscalls:sys_enter_$name"
done
for i in 0 1 2; do
  perf stat -x, -e "$events" -p "${pids[$i]}" -o "$WORK/perf-$((i + 1)).txt" &
  extra_pids+=($!)
done
sleep 0.5
"$KEYVAL" bench kv --endpoints "$endpoints" --clients "$CLIENTS" --ops "$OPS" --value-bytes 100 --op "$OP" \
  > "$WORK/bench.txt" 2>&1
for p in "${extra_pids[@]}"; do kill -INT "$p"; done
for p in "${extra_pids[@]}"; do wait "$p" 2>/dev/null || true; done
extra_pids=()
tail -1 "$WORK/bench.txt"
# The node that last logged its election (every grep that finds nothing is not a failure here).
leader=$(for id in 1 2 3; do if grep -q "elected leader" "$WORK/kv-$id.log" 2>/dev/null; then echo "$id"; fi; done | tail -1)
for id in 1 2 3; do
  printf "node %s%s:" "$id" "$([ "$id" = "$leader" ] && echo " (leader)")"
  grep -v '^#' "$WORK/perf-$id.txt" | awk -F, -v n="$OPS" 'NF > 2 && $1 ~ /^[0-9]+$/ {
    name = $3; sub(/.*sys_enter_?/, "", name); if (name == "") name = "all"; printf " %s %.2f", name, $1 / n }'
  echo
done
