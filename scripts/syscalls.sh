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
HOST=127.0.0.1
pids=(); perf_pids=()
cleanup() {
  local p
  for p in "${perf_pids[@]}" "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${perf_pids[@]}" "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -x "$KEYVAL" ] || { echo "no keyval binary at $KEYVAL (set KEYVAL)" >&2; exit 1; }
command -v perf > /dev/null || { echo "perf missing (linux-perf)" >&2; exit 1; }
rm -rf "$WORK"; mkdir -p "$WORK"
peers="1=$HOST:$((PORT_BASE+1)),2=$HOST:$((PORT_BASE+2)),3=$HOST:$((PORT_BASE+3))"
for id in 1 2 3; do
  # shellcheck disable=SC2086
  "$KEYVAL" node --id $id --data-dir "$WORK/kv-$id" --peers "$peers" --bootstrap \
    --client-listen $HOST:$((PORT_BASE+10+id)) ${KV_NODE_FLAGS:-} > "$WORK/kv-$id.log" 2>&1 &
  pids+=($!)
done
endpoints="$HOST:$((PORT_BASE+11)),$HOST:$((PORT_BASE+12)),$HOST:$((PORT_BASE+13))"
for _ in $(seq 1 100); do
  "$KEYVAL" put --endpoints "$endpoints" syscalls-probe x > /dev/null 2>&1 && break
  sleep 0.1
done
events=raw_syscalls:sys_enter
for name in epoll_wait epoll_ctl recvfrom sendto sendmsg read write futex pwrite64 fdatasync; do
  events+=",syscalls:sys_enter_$name"
done
for i in 0 1 2; do
  perf stat -x, -e "$events" -p "${pids[$i]}" -o "$WORK/perf-$((i + 1)).txt" &
  perf_pids+=($!)
done
sleep 0.5
"$KEYVAL" bench kv --endpoints "$endpoints" --clients "$CLIENTS" --ops "$OPS" --value-bytes 100 --op "$OP" \
  > "$WORK/bench.txt" 2>&1
for p in "${perf_pids[@]}"; do kill -INT "$p"; done
for p in "${perf_pids[@]}"; do wait "$p" 2>/dev/null || true; done
perf_pids=()
tail -1 "$WORK/bench.txt"
leader=$(for id in 1 2 3; do grep -l "elected leader" "$WORK/kv-$id.log" > /dev/null 2>&1 && echo $id; done | tail -1)
for id in 1 2 3; do
  printf "node %s%s:" "$id" "$([ "$id" = "$leader" ] && echo " (leader)")"
  grep -v '^#' "$WORK/perf-$id.txt" | awk -F, -v n="$OPS" 'NF > 2 && $1 ~ /^[0-9]+$/ {
    name = $3; sub(/.*sys_enter_?/, "", name); if (name == "") name = "all"; printf " %s %.2f", name, $1 / n }'
  echo
done
