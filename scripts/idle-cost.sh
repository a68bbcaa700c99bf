#!/usr/bin/env bash
# idle-cost.sh - what a 3-node cluster costs while nobody uses it: CPU and context switches
# (voluntary and not) summed over the three `keyval node` processes and all their threads,
# read from /proc/PID/task/*/{stat,status} before and after SECONDS of idleness. Mostly
# ticks: a leader ticks every --tick-ms, a follower wakes once an election timeout
# (docs/DATAPATH.md, "ticks").
#
#   scripts/idle-cost.sh                  10 s
#   SECONDS_IDLE=30 KEYVAL=/tmp/other/keyval scripts/idle-cost.sh
#
# Knobs (env): SECONDS_IDLE=10 KV_NODE_FLAGS WORK=/tmp/keyval-idle-cost KEYVAL=build/keyval
#   PORT_BASE=27600
# Printed: one line, CPU in ms (at the kernel's clock tick, 10 ms) and context switches.
set -euo pipefail
KEYVAL=${KEYVAL:-$PWD/build/keyval}
SECONDS_IDLE=${SECONDS_IDLE:-10}
WORK=${WORK:-/tmp/keyval-idle-cost}; PORT_BASE=${PORT_BASE:-27600}
# shellcheck source=scripts/measure-cluster.sh
. "$(dirname "$0")/measure-cluster.sh"
start_measured_cluster

totals() {  # ticks switches, over every thread of the nodes
  local p t ticks=0 switches=0
  for p in "${pids[@]}"; do
    for t in /proc/"$p"/task/*; do
      ticks=$((ticks + $(awk '{print $14 + $15}' "$t/stat")))
      switches=$((switches + $(awk '/ctxt_switches/ {s += $2} END {print s}' "$t/status")))
    done
  done
  echo "$ticks $switches"
}
sleep 2  # past the election and the first heartbeats
read -r ticks0 switches0 < <(totals)
sleep "$SECONDS_IDLE"
read -r ticks1 switches1 < <(totals)
hz=$(getconf CLK_TCK)
echo "idle ${SECONDS_IDLE} s, 3 nodes: $(( (ticks1 - ticks0) * 1000 / hz )) ms CPU, $((switches1 - switches0)) context switches"
