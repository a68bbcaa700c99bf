#!/usr/bin/env bash
# bench-security.sh - what the cluster secret and TLS cost (docs/BENCHMARKS.md, docs/SECURITY.md):
# one command, the same 3-node cluster shape as ../shared/bench/compare.sh, run plain, with a
# cluster secret, with TLS (mutual between peers, TLS clients), and with both.
#
#   per rep and mode: 3 `keyval node` processes on fresh data directories (fsync on; clients
#   127.0.0.1:27301-27303, peers :27401-27403), WARMUP puts at c=16 (not recorded), then
#     keyval bench kv --clients C --ops OPS --value-bytes 100 --key-bytes 16 --op put --keys 1000000   C = 16, 64
#     keyval bench kv --clients 16 --ops OPS --value-bytes 100 --key-bytes 16 --op get --keys 1
#   with --tls-ca/--tls-cert/--tls-key in the TLS modes; then the cluster is stopped by PID.
#   The order of the modes rotates per rep so a shared machine's drift hits all alike.
# Recorded: ops/s, p50, p99 (ms), server CPU us/op (utime+stime of the three PIDs around the
# load, over the successful operations). Summary: per case and mode the median over the reps,
# and the ratio of each mode's ops/s and CPU to plain's. Raw rows in $WORK/security.tsv.
#
# Knobs (env): REPS=3 OPS=20000 WARMUP=1000 WORK=/tmp/keyval-bench-security KEYVAL=build/keyval
#   PORT_BASE=27300 LOAD_TIMEOUT=300 MODES="plain secret tls tls+secret"
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
KEYVAL=${KEYVAL:-$PWD/build/keyval}
REPS=${REPS:-3}; OPS=${OPS:-20000}; WARMUP=${WARMUP:-1000}; LOAD_TIMEOUT=${LOAD_TIMEOUT:-300}
WORK=${WORK:-/tmp/keyval-bench-security}; PORT_BASE=${PORT_BASE:-27300}
read -r -a MODES <<< "${MODES:-plain secret tls tls+secret}"
HOST=127.0.0.1
C_PORTS=($((PORT_BASE+1)) $((PORT_BASE+2)) $((PORT_BASE+3)))
P_PORTS=($((PORT_BASE+101)) $((PORT_BASE+102)) $((PORT_BASE+103)))
EPS="$HOST:${C_PORTS[0]},$HOST:${C_PORTS[1]},$HOST:${C_PORTS[2]}"
PEERS="1=$HOST:${P_PORTS[0]},2=$HOST:${P_PORTS[1]},3=$HOST:${P_PORTS[2]}"
CASES=("put 16" "put 64" "get 16")
TSV=$WORK/security.tsv; CERTS=$WORK/certs; SECRET=$WORK/secret
STARTED_PIDS=(); SYS_PIDS=()
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
cpu_ticks() { local s=0 p v; for p in "$@"; do v=$(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0); s=$((s+v)); done; echo "$s"; }
json_num() { grep '^{' "$2" | tail -1 | sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p"; }

[ -x "$KEYVAL" ] || die "no keyval binary at $KEYVAL (set KEYVAL)"
rm -rf "$WORK"; mkdir -p "$WORK/logs" "$WORK/runs"
"$HERE/make-certs.sh" "$CERTS" 1 2 3 >/dev/null
(umask 077; head -c 32 /dev/urandom | base64 > "$SECRET")
HZ=$(getconf CLK_TCK)
printf 'mode\tcase\trep\tok\terrors\tops_per_s\tp50_ms\tp99_ms\tsrv_cpu_us_per_op\n' > "$TSV"

node_flags() {  # MODE ID
  case $1 in *secret*) printf -- '--cluster-secret-file %s ' "$SECRET" ;; esac
  case $1 in tls*) local n=$CERTS/node-$2
    printf -- '--peer-cert %s.crt --peer-key %s.key --peer-ca %s/ca.crt --client-cert %s.crt --client-key %s.key ' \
      "$n" "$n" "$CERTS" "$n" "$n" ;; esac
}
client_flags() { case $1 in tls*) printf -- '--tls-ca %s/ca.crt --tls-cert %s/client.crt --tls-key %s/client.key' "$CERTS" "$CERTS" "$CERTS" ;; esac; }

start_cluster() {  # MODE REP -> SYS_PIDS
  local mode=$1 rep=$2 i d=$WORK/data/$1-r$2 s
  mkdir -p "$d"; SYS_PIDS=()
  for i in 1 2 3; do
    # shellcheck disable=SC2046
    "$KEYVAL" node --id "$i" --data-dir "$d/n$i" --peers "$PEERS" --bootstrap --cluster "bench-$rep" \
      --peer-listen "$HOST:${P_PORTS[$((i-1))]}" --client-listen "$HOST:${C_PORTS[$((i-1))]}" \
      $(node_flags "$mode" "$i") > "$WORK/logs/$mode-r$rep-n$i.log" 2>&1 &
    SYS_PIDS+=($!); STARTED_PIDS+=($!)
  done
  for _ in $(seq 1 60); do
    # shellcheck disable=SC2046
    s=$(timeout 10 "$KEYVAL" status --endpoints "$EPS" $(client_flags "$mode") 2>/dev/null | grep '^{' | tail -1 || true)
    if [[ $s == *'"nodes_answered":3'* && $s =~ \"leader\":[1-9] ]]; then return 0; fi
    for i in "${SYS_PIDS[@]}"; do kill -0 "$i" 2>/dev/null || { log "$mode: PID $i exited early"; return 1; }; done
    sleep 0.5
  done
  log "$mode cluster did not elect a leader in 30 s"; return 1
}

run_case() {  # MODE OP C REP
  local mode=$1 op=$2 c=$3 rep=$4 f keys=1000000 c0 c1 ok
  f=$WORK/runs/$mode.$op.c$c.r$rep.txt
  [ "$op" = get ] && keys=1
  c0=$(cpu_ticks "${SYS_PIDS[@]}")
  # shellcheck disable=SC2046
  timeout -k 5 "$LOAD_TIMEOUT" "$KEYVAL" bench kv --endpoints "$EPS" --clients "$c" --ops "$OPS" --value-bytes 100 \
    --key-bytes 16 --op "$op" --keys "$keys" $(client_flags "$mode") > "$f" 2>&1 || true
  c1=$(cpu_ticks "${SYS_PIDS[@]}")
  ok=$(json_num ok "$f"); ok=${ok:-0}
  printf '%s\t%s.c%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$op" "$c" "$rep" "$ok" "$(json_num errors "$f")" \
    "$(json_num ops_per_s "$f")" "$(json_num p50_ms "$f")" "$(json_num p99_ms "$f")" \
    "$(awk -v a="$c0" -v b="$c1" -v n="$ok" -v hz="$HZ" 'BEGIN{ if (n>0) printf "%.1f", (b-a)/hz*1e6/n; else print 0 }')" >> "$TSV"
  log "  $mode $op c=$c rep $rep: $(tail -1 "$TSV" | cut -f6-9 | tr '\t' ' ') (ops/s p50 p99 cpu-us/op)"
}

log "keyval $KEYVAL (git $(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo '?')); $(nproc) cores; REPS=$REPS OPS=$OPS; load $(cut -d' ' -f1-3 /proc/loadavg)"
for rep in $(seq 1 "$REPS"); do
  n=${#MODES[@]}
  for k in $(seq 0 $((n-1))); do
    mode=${MODES[$(( (k + rep - 1) % n ))]}
    log "rep $rep: $mode"
    start_cluster "$mode" "$rep" || { stop_pids "${SYS_PIDS[@]}"; continue; }
    # shellcheck disable=SC2046
    [ "$WARMUP" -gt 0 ] && timeout 120 "$KEYVAL" bench kv --endpoints "$EPS" --clients 16 --ops "$WARMUP" --value-bytes 100 \
      --key-bytes 16 --op put --keys 1000000 $(client_flags "$mode") > /dev/null 2>&1 || true
    for cs in "${CASES[@]}"; do read -r op c <<< "$cs"; run_case "$mode" "$op" "$c" "$rep"; done
    stop_pids "${SYS_PIDS[@]}"
    rm -rf "$WORK/data/$mode-r$rep"
  done
done

echo "median over $REPS reps, $OPS ops per run; ratio = mode / plain (ops/s; server CPU per op); load at end $(cut -d' ' -f1-3 /proc/loadavg)"
awk -F'\t' '
  function med(k,   n, i, j, t, a) { n = cnt[k]; if (!n) return -1
    for (i = 1; i <= n; i++) a[i] = v[k, i]
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j] < a[j-1]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
    return (n % 2) ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2 }
  NR == 1 { next }
  $4 > 0 { if (!($1 in ms)) { ms[$1] = 1; mo[++nm] = $1 } if (!($2 in cs)) { cs[$2] = 1; co[++nc] = $2 }
           for (m = 6; m <= 9; m++) { k = $1 SUBSEP $2 SUBSEP m; v[k, ++cnt[k]] = $m } }
  END {
    printf "%-11s %-8s %9s %8s %8s %8s %9s %9s\n", "mode", "case", "ops/s", "p50_ms", "p99_ms", "cpu_us", "ops/plain", "cpu/plain"
    for (i = 1; i <= nc; i++) for (j = 1; j <= nm; j++) { c = co[i]; m = mo[j]
      r = med(m SUBSEP c SUBSEP 6); if (r < 0) continue
      p = med("plain" SUBSEP c SUBSEP 6); cp = med("plain" SUBSEP c SUBSEP 9); cu = med(m SUBSEP c SUBSEP 9)
      printf "%-11s %-8s %9.0f %8.2f %8.2f %8.0f %9s %9s\n", m, c, r, med(m SUBSEP c SUBSEP 7), med(m SUBSEP c SUBSEP 8), cu,
        (p > 0 ? sprintf("%.2f", r / p) : "-"), (cp > 0 ? sprintf("%.2f", cu / cp) : "-") } }' "$TSV"
echo "raw: $TSV  logs: $WORK/logs"
