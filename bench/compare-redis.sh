#!/usr/bin/env bash
# Side-by-side redis-benchmark of (a) GTStore, 7 nodes, N=3 R=2 W=2, (b) a Redis Cluster of 6
# servers (3 masters + 3 replicas) and (c) one Redis server, all on loopback, with the same
# parameters, interleaved, median of ROUNDS runs each. Prints ops/s and GTStore / Redis Cluster
# ratios. Bounded: every run has a fixed request count; every process started here is stopped by
# pid on exit.
#
# Durability is matched: the Redis servers run with appendonly no and no snapshots, so GTStore
# runs with --fsync none (writes reach RocksDB's log and the OS, not the disk, before the ack).
# GTSTORE_START_ARGS overrides it, e.g. "--fsync always" for GTStore's durable default.
# Both clusters are driven as clusters (redis-benchmark --cluster): it reads CLUSTER NODES and
# sends each key to the node that serves its slot, a master for Redis Cluster, a replica (which
# coordinates the quorum) for GTStore. GTSTORE_CLUSTER=no sends everything to GTStore's node 1,
# which forwards what it does not replicate.
# redis-benchmark times a multi-threaded run in steps of about 250 ms, rounded up: its reported
# rates are requests / (k x 0.25 s) (999000.94, 798084.56, 498504.47 at 1M). One Redis server
# doing GET -P 16 was reported at 999k ops/s for 1M requests (1.00 s) and 1.07-1.14M for 4M
# (2026-12-07): short runs understate the faster store by up to a quarter. The defaults make
# every Redis run last 4 s or more (GTStore's are longer), so the rounding costs it at most about 6%.
#
# GTStore's nodes run under SCHED_BATCH by default (gtstore start --scheduling); REDIS_SCHEDULING=batch
# starts the Redis servers under it too (chrt -b 0), to see what the policy alone gives Redis.
#
# Every line is first run once, unmeasured, on every target (WARMUP_REQUESTS, default 200000; 4x at
# -P 16): see the warm-up below.
#
#   bench/compare-redis.sh               # ROUNDS=3, N_P1=600000, N_P16=4000000
#   ROUNDS=5 GTSTORE_START_ARGS="--fsync always" bench/compare-redis.sh
#   TESTS=get PIPELINES=1 ROUNDS=1 bench/compare-redis.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds="${ROUNDS:-3}"
n_p1="${N_P1:-600000}"
n_p16="${N_P16:-4000000}"
gt_args="${GTSTORE_START_ARGS:---fsync none}"
out="${OUT:-$here/bench/results}"
# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"
mkdir -p "$out"

ensure_redis

work="$(mktemp -d /tmp/gtstore-compare-XXXXXX)"
pids=()
cleanup() {
  "$here/gtstore" stop --dir "$work/gtstore" >/dev/null 2>&1 || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

gt_port=7400; cluster_base=7500; single_port=7600
redis_sched=()
case "${REDIS_SCHEDULING:-normal}" in
  normal) ;;
  batch) redis_sched=(chrt -b 0) ;;
  *) echo "REDIS_SCHEDULING must be normal or batch, got '$REDIS_SCHEDULING'" >&2; exit 2 ;;
esac

echo "== starting GTStore: 7 nodes, N=3 R=2 W=2, $gt_args (RESP on $gt_port..$((gt_port + 6)))"
"$here/gtstore" start --dir "$work/gtstore" --nodes 7 --rep 3 --read-quorum 2 --write-quorum 2 --resp-port "$gt_port" $gt_args >/dev/null

echo "== starting a Redis Cluster: 6 servers (3 masters + 3 replicas) on $cluster_base..$((cluster_base + 5))"
for i in 0 1 2 3 4 5; do
  port=$((cluster_base + i)); dir="$work/redis-$port"; mkdir -p "$dir"
  "${redis_sched[@]}" redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --cluster-enabled yes --cluster-config-file nodes.conf \
    --save "" --appendonly no --daemonize no --protected-mode no >"$dir/log" 2>&1 &
  pids+=($!)
done
echo "== starting one Redis server on $single_port"
mkdir -p "$work/redis-single"
"${redis_sched[@]}" redis-server --port "$single_port" --bind 127.0.0.1 --dir "$work/redis-single" --save "" --appendonly no --daemonize no >"$work/redis-single/log" 2>&1 &
pids+=($!)

wait_ping() { for _ in $(seq 1 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "port $1 never answered" >&2; exit 1; }
for i in 0 1 2 3 4 5; do wait_ping $((cluster_base + i)); done
wait_ping "$single_port"
redis-cli --cluster create $(for i in 0 1 2 3 4 5; do printf '127.0.0.1:%d ' $((cluster_base + i)); done) --cluster-replicas 1 --cluster-yes >/dev/null
for _ in $(seq 1 100); do
  redis-cli -p "$cluster_base" cluster info | grep -q 'cluster_state:ok' && break; sleep 0.2
done

# Server processes of each target, for the CPU they spend per request (user + system time from
# /proc): a cost that depends far less on the machine's noise than throughput does.
declare -A server_pids
server_pids[gtstore]="$(gtstore_node_pids "$work/gtstore")"
server_pids[cluster]="${pids[*]:0:6}"
server_pids[single]="${pids[6]}"

# One run: prints requests per second of one test and the servers' CPU microseconds per request.
run() { # target port test pipeline requests
  local extra=() before rps
  [ "$1" = cluster ] && extra=(--cluster)
  [ "$1" = gtstore ] && [ "${GTSTORE_CLUSTER:-yes}" = yes ] && extra=(--cluster)
  # shellcheck disable=SC2086 # a list of pids
  before=$(cpu_ticks ${server_pids[$1]})
  rps=$(benchmark_rps -h 127.0.0.1 -p "$2" "${extra[@]}" -r 100000 -d 100 -c 50 --threads 2 -t "$3" -P "$4" -n "$5")
  # shellcheck disable=SC2086
  echo "$rps $(us_per_request $(( $(cpu_ticks ${server_pids[$1]}) - before )) "$5")"
}

declare -A samples cpus
targets=(gtstore cluster single)
declare -A ports=([gtstore]=$gt_port [cluster]=$cluster_base [single]=$single_port)

# Round 0 is a warm-up, not measured: every target runs every line once first. A GTStore node is
# a .NET process whose hot code is compiled, profiled and recompiled (tiered compilation with
# dynamic PGO) in its first seconds of load; measured cold, the first round spent up to 4x the
# CPU per request of later ones. The Redis servers get the same pass (their hash tables and
# allocator fill up too). WARMUP_REQUESTS=0 skips it.
warmup="${WARMUP_REQUESTS:-200000}"
first_round=1; [ "$warmup" -gt 0 ] && first_round=0
for round in $(seq "$first_round" "$rounds"); do
  for test in ${TESTS:-set get}; do
    for p in ${PIPELINES:-1 16}; do
      n=$n_p1; [ "$p" = 16 ] && n=$n_p16
      [ "$round" = 0 ] && { n=$warmup; [ "$p" = 16 ] && n=$((warmup * 4)); }
      for t in "${targets[@]}"; do   # interleaved: every target once per round and line
        read -r rps cpu < <(run "$t" "${ports[$t]}" "$test" "$p" "$n")
        if [ "$round" = 0 ]; then
          echo "warm-up: $t ${test^^} -P $p: $rps ops/s, servers' CPU $cpu us/request (not counted)"
          continue
        fi
        samples[$t,$test,$p]+="$rps "
        cpus[$t,$test,$p]+="$cpu "
        echo "round $round: $t ${test^^} -P $p: $rps ops/s, servers' CPU $cpu us/request"
      done
    done
  done
done

median() { tr ' ' '\n' | { grep -v '^$' || true; } | sort -g | awk '{a[NR]=$1} END {if (NR == 0) print 0; else print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
{
  echo "| test | GTStore ops/s | Redis Cluster ops/s | Redis ops/s | GTStore / Redis Cluster | CPU µs/request GTStore | Redis Cluster | Redis Cluster / GTStore |"
  echo "|---|---|---|---|---|---|---|---|"
  for test in ${TESTS:-set get}; do
    for p in ${PIPELINES:-1 16}; do
      g=$(echo "${samples[gtstore,$test,$p]}" | median)
      c=$(echo "${samples[cluster,$test,$p]}" | median)
      s=$(echo "${samples[single,$test,$p]}" | median)
      ratio=$(awk -v g="$g" -v c="$c" 'BEGIN { printf "%.2f", (c > 0) ? g / c : 0 }')
      gc=$(echo "${cpus[gtstore,$test,$p]}" | median)
      cc=$(echo "${cpus[cluster,$test,$p]}" | median)
      cpu_ratio=$(awk -v g="$gc" -v c="$cc" 'BEGIN { printf "%.2f", (g > 0) ? c / g : 0 }')
      echo "| ${test^^} -P $p | $g | $c | $s | $ratio | $gc | $cc | $cpu_ratio |"
    done
  done
  echo
  echo "CPU µs/request: user + system time of the servers (GTStore's 7 nodes, the Redis Cluster's 6 servers) over the run, divided by its requests; the client's is not counted."
  echo "redis-benchmark -r 100000 -d 100 -c 50 --threads 2, -n $n_p1 (-P 1) / $n_p16 (-P 16), median of $rounds interleaved rounds after an unmeasured warm-up of every line ($warmup requests at -P 1, 4x that at -P 16); GTStore: 7 nodes N=3 R=2 W=2 $gt_args, --cluster ${GTSTORE_CLUSTER:-yes}; Redis: appendonly no, no snapshots, scheduling ${REDIS_SCHEDULING:-normal}; $(date -u +%F) on $(nproc) cores"
} | tee "$out/compare-redis.md"
