# shellcheck shell=bash
# Sourced by the scripts that measure a running cluster (thread-cost.sh, syscalls.sh): a fresh
# 3-node cluster on 127.0.0.1, fsync on, started with --bootstrap, each node logging to
# WORK/kv-ID.log, stopped by PID when the script exits.
#
# Needs KEYVAL, WORK, PORT_BASE (peers on +1..+3, clients on +11..+13) and, optionally,
# KV_NODE_FLAGS (added to each `keyval node`). Sets `pids` (the nodes' PIDs, node 1 first),
# `endpoints` (the client addresses) and returns once a put has been answered.
HOST=127.0.0.1
pids=()
extra_pids=()  # the sourcing script's own children, stopped before the nodes
stop_measured_cluster() {
  local p
  for p in "${extra_pids[@]}" "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${extra_pids[@]}" "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap stop_measured_cluster EXIT
trap 'exit 130' INT TERM

start_measured_cluster() {
  [ -x "$KEYVAL" ] || { echo "no keyval binary at $KEYVAL (set KEYVAL)" >&2; exit 1; }
  rm -rf "$WORK"; mkdir -p "$WORK"
  local peers="1=$HOST:$((PORT_BASE+1)),2=$HOST:$((PORT_BASE+2)),3=$HOST:$((PORT_BASE+3))" id
  for id in 1 2 3; do
    # shellcheck disable=SC2086
    "$KEYVAL" node --id $id --data-dir "$WORK/kv-$id" --peers "$peers" --bootstrap \
      --client-listen $HOST:$((PORT_BASE+10+id)) ${KV_NODE_FLAGS:-} > "$WORK/kv-$id.log" 2>&1 &
    pids+=($!)
  done
  endpoints="$HOST:$((PORT_BASE+11)),$HOST:$((PORT_BASE+12)),$HOST:$((PORT_BASE+13))"
  # Wait for a leader: a write answers.
  for _ in $(seq 1 100); do
    "$KEYVAL" put --endpoints "$endpoints" measure-probe x > /dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "no leader answered a put within 10 s (logs in $WORK)" >&2
  exit 1
}
