#!/usr/bin/env bash
# bench-redis.sh - the Redis gateway against Redis itself (docs/BENCHMARKS.md, "Redis gateway"):
# one command, both servers alternately in one run, ratios of the same run.
#
#   per rep: a single `redis-server --appendonly yes --appendfsync always` (fsync per write, no
#   replication) on a fresh directory, then a 3-node KeyVal cluster (fresh data directories,
#   fsync on, Redis ports 127.0.0.1:26381-26383), each measured by
#     redis-benchmark -p PORT -t set,get -n N -c 64 -P 16 -d 100 -r 100000 --csv
#   against the leader; then stopped by PID. Printed: per rep and test the requests/s and p50/p99
#   (ms, from --csv), then the medians and KeyVal/Redis ratios.
#
# Knobs (env): REPS=3 N=200000 CLIENTS=64 PIPELINE=16 WORK=/tmp/keyval-bench-redis KEYVAL=build/keyval
#   KV_NODE_FLAGS (added to each `keyval node`)
#   PORT_BASE=26300
set -euo pipefail
KEYVAL=${KEYVAL:-$PWD/build/keyval}
REPS=${REPS:-3}; N=${N:-200000}; CLIENTS=${CLIENTS:-64}; PIPELINE=${PIPELINE:-16}
WORK=${WORK:-/tmp/keyval-bench-redis}; PORT_BASE=${PORT_BASE:-26300}
HOST=127.0.0.1
STARTED_PIDS=()
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
stop_pids() {  # ours only, by PID: TERM, wait up to 15 s, then KILL that PID
  local p
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "$@"; do
    for _ in $(seq 1 75); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
}
cleanup() { local alive=() p; for p in "${STARTED_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive+=("$p"); done
  if ((${#alive[@]})); then stop_pids "${alive[@]}"; fi; return 0; }
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -x "$KEYVAL" ] || die "no keyval binary at $KEYVAL (set KEYVAL)"
command -v redis-server >/dev/null || die "redis-server missing: apt-get install redis-server"
command -v redis-benchmark >/dev/null || die "redis-benchmark missing: apt-get install redis-tools"
rm -rf "$WORK"; mkdir -p "$WORK"
TSV=$WORK/redis.tsv
printf 'server\trep\ttest\trps\tp50_ms\tp99_ms\n' > "$TSV"

bench() {  # SERVER REP PORT
  local out=$WORK/bench-$1-$2.csv
  redis-benchmark -h $HOST -p "$3" -t set,get -n "$N" -c "$CLIENTS" -P "$PIPELINE" -d 100 -r 100000 --csv > "$out" \
    || die "redis-benchmark against $1 failed: $(tail -3 "$out")"
  # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
  tail -n +2 "$out" | tr -d '"' | awk -F, -v s="$1" -v r="$2" '{printf "%s\t%s\t%s\t%s\t%s\t%s\n", s, r, $1, $2, $5, $7}' >> "$TSV"
}

wait_port() {  # PORT
  for _ in $(seq 1 100); do redis-cli -h $HOST -p "$1" PING 2>/dev/null | grep -q PONG && return 0; sleep 0.1; done
  die "nothing answers PING on $1"
}

for rep in $(seq 1 "$REPS"); do
  dir=$WORK/redis-$rep; mkdir -p "$dir"
  redis-server --port $((PORT_BASE+80)) --bind $HOST --dir "$dir" --appendonly yes --appendfsync always \
    --save '' --daemonize no > "$dir/log" 2>&1 &
  STARTED_PIDS+=($!); rpid=$!
  wait_port $((PORT_BASE+80))
  log "rep $rep: redis-server"
  bench redis "$rep" $((PORT_BASE+80))
  stop_pids "$rpid"

  peers="1=$HOST:$((PORT_BASE+1)),2=$HOST:$((PORT_BASE+2)),3=$HOST:$((PORT_BASE+3))"
  pids=()
  for id in 1 2 3; do
    "$KEYVAL" node --id $id --data-dir "$WORK/kv-$rep-$id" --peers "$peers" --bootstrap \
      --client-listen $HOST:$((PORT_BASE+10+id)) --redis-listen $HOST:$((PORT_BASE+80+id)) ${KV_NODE_FLAGS:-} \
      > "$WORK/kv-$rep-$id.log" 2>&1 &
    STARTED_PIDS+=($!); pids+=($!)
  done
  leader=""
  for _ in $(seq 1 100); do
    for id in 1 2 3; do
      if redis-cli -h $HOST -p $((PORT_BASE+80+id)) INFO replication 2>/dev/null | grep -q 'raft_role:leader'; then leader=$id; fi
    done
    [ -n "$leader" ] && break; sleep 0.1
  done
  [ -n "$leader" ] || die "no KeyVal leader (logs in $WORK)"
  log "rep $rep: keyval (leader node $leader)"
  bench keyval "$rep" $((PORT_BASE+80+leader))
  stop_pids "${pids[@]}"
done

python3 - "$TSV" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
med = {}
for server, rep, test, rps, p50, p99 in rows:
    med.setdefault((server, test), []).append((float(rps), float(p50), float(p99)))
print("test  server   req/s(median)  p50_ms  p99_ms")
for test in sorted({t for _, t in med}):
    figures = {}
    for server in ("redis", "keyval"):
        values = med.get((server, test), [])
        if not values: continue
        figures[server] = [statistics.median(v[i] for v in values) for i in range(3)]
        print("%-5s %-7s %14.0f %7.2f %7.2f" % (test, server, *figures[server]))
    if len(figures) == 2:
        print("%-5s keyval/redis req/s: %.2f" % (test, figures["keyval"][0] / figures["redis"][0]))
PY
