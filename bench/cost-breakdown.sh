#!/usr/bin/env bash
# Where a request's CPU goes, one step at a time: the same redis-benchmark load against
#   1. one GTStore node, N=1                       (one process: the cost of the request path)
#   2. 7 nodes, N=1 R=1 W=1                        (+ 7 processes sharing the cores, no messages between nodes)
#   3. 7 nodes, N=3 R=1 W=1                        (+ every write copied to two more replicas)
#   4. 7 nodes, N=3 R=2 W=2                        (+ a second replica asked per read, a second ack awaited per write)
# and one Redis server as the reference measured in the same run. For each it prints ops/s, the
# servers' CPU per request and their sleeps per request (voluntary context switches: each is a
# wake-up later), all from /proc, so the client's cost is not counted.
#
# Each GTStore configuration is a fresh cluster, warmed up (one SET and one GET -P 16 run, not
# counted) before its measured runs; --fsync none, as in compare-redis.sh. Bounded: fixed request
# counts, one round; every process started here is stopped by pid or `gtstore stop` on exit.
#
#   bench/cost-breakdown.sh                # N_P1=200000, N_P16=1000000
#   N_P1=50000 N_P16=200000 bench/cost-breakdown.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n_p1="${N_P1:-200000}"
n_p16="${N_P16:-1000000}"
out="${OUT:-$here/bench/results}"
# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"
mkdir -p "$out"
ensure_redis

bench_workdir breakdown
port=7800; redis_port=7900

lines=("set 16" "get 16" "set 1" "get 1")
requests() { [ "$1" = 16 ] && echo "$n_p16" || echo "$n_p1"; }
declare -A result

measure() { # name pids port cluster
  local line test p
  measured_run "$2" "$3" "$4" set 16 "$n_p16" >/dev/null   # warm-up: compiled code, filled caches, keys held
  measured_run "$2" "$3" "$4" get 16 "$n_p16" >/dev/null
  for line in "${lines[@]}"; do
    read -r test p <<<"$line"
    result[$1,$test,$p]="$(measured_run "$2" "$3" "$4" "$test" "$p" "$(requests "$p")")"
    echo "$1 ${test^^} -P $p: ${result[$1,$test,$p]} (ops/s, CPU µs/request, sleeps/request)" >&2
  done
}

configs=("one node, N=1|1 1 1 1" "7 nodes, N=1|7 1 1 1" "7 nodes, N=3 R=1 W=1|7 3 1 1" "7 nodes, N=3 R=2 W=2|7 3 2 2")
names=()
for config in "${configs[@]}"; do
  name=${config%%|*}; read -r nodes rep r w <<<"${config#*|}"
  names+=("$name")
  "$here/gtstore" start --dir "$work/gtstore" --nodes "$nodes" --rep "$rep" --read-quorum "$r" --write-quorum "$w" \
    --resp-port "$port" --fsync none >/dev/null
  cluster=no; [ "$nodes" -gt 1 ] && cluster=yes
  measure "$name" "$(gtstore_node_pids "$work/gtstore")" "$port" "$cluster"
  "$here/gtstore" stop --dir "$work/gtstore" >/dev/null
  rm -rf "$work/gtstore"
done

start_redis "$redis_port" "$work/redis"
names+=("one Redis server")
measure "one Redis server" "$redis_pid" "$redis_port" no

{
  echo "| configuration | SET -P 16 | GET -P 16 | SET -P 1 | GET -P 1 |"
  echo "|---|---|---|---|---|"
  for name in "${names[@]}"; do
    row="| $name |"
    for line in "${lines[@]}"; do
      read -r test p <<<"$line"
      read -r rps cpu sleep <<<"${result[$name,$test,$p]}"
      row+=" $(printf '%.0f' "$rps") ops/s, $cpu µs, $sleep sleeps |"
    done
    echo "$row"
  done
  echo
  echo "Per request: the servers' CPU (user + system, from /proc) and their threads' voluntary context switches (sleeps; each is a wake-up later). One round, fresh cluster per configuration, warmed up by one SET and one GET -P 16 run; GTStore --fsync none; redis-benchmark -r 100000 -d 100 -c 50 --threads 2, -n $n_p1 (-P 1) / $n_p16 (-P 16), --cluster for 7 nodes; $(date -u +%F) on $(nproc) cores"
} | tee "$out/cost-breakdown.md"
