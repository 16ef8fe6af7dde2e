#!/usr/bin/env bash
# One GTStore node (N=1) against one Redis server, GET and SET at pipeline depths 1, 2, 4, 8, 16:
# the servers' CPU per request at each depth, and GTStore's as a multiple of Redis's, both
# measured in the same run. What it separates: a cost paid once per batch of requests read
# together (wake-up, system calls, the step's flushes), which a deeper pipeline spreads, from a
# cost paid per request (parse, the op, the store, the reply), which it does not. With 7 nodes
# behind `redis-benchmark --cluster`, a client's 16-deep pipeline reaches each node about 2.3
# requests at a time, so a cluster runs in the middle of this table, not at its end.
#
# Bounded: fixed request counts, one round, each line run once unmeasured first; both servers
# are stopped on exit.
#
#   bench/pipeline-sweep.sh                       # N=400000 requests per measured run
#   N=100000 DEPTHS="1 16" bench/pipeline-sweep.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n="${N:-400000}"
depths="${DEPTHS:-1 2 4 8 16}"
out="${OUT:-$here/bench/results}"
# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"
mkdir -p "$out"
ensure_redis

bench_workdir sweep
port=7820; redis_port=7920

"$here/gtstore" start --dir "$work/gtstore" --nodes 1 --rep 1 --read-quorum 1 --write-quorum 1 --resp-port "$port" --fsync none >/dev/null
start_redis "$redis_port" "$work/redis"
declare -A pids=([gtstore]="$(gtstore_node_pids "$work/gtstore")" [redis]="$redis_pid")
declare -A ports=([gtstore]=$port [redis]=$redis_port)

for t in gtstore redis; do   # warm-up: compiled code, filled caches, keys held
  measured_run "${pids[$t]}" "${ports[$t]}" no set 16 "$n" >/dev/null
  measured_run "${pids[$t]}" "${ports[$t]}" no get 16 "$n" >/dev/null
done

declare -A cpu
for test in set get; do
  for p in $depths; do
    for t in gtstore redis; do   # interleaved
      read -r rps us sleeps < <(measured_run "${pids[$t]}" "${ports[$t]}" no "$test" "$p" "$n")
      cpu[$t,$test,$p]=$us
      echo "$t ${test^^} -P $p: $rps ops/s, $us µs/request, $sleeps sleeps/request" >&2
    done
  done
done

{
  echo "| test | depth | GTStore CPU µs/request | Redis CPU µs/request | GTStore / Redis |"
  echo "|---|---|---|---|---|"
  for test in set get; do
    for p in $depths; do
      g=${cpu[gtstore,$test,$p]}; r=${cpu[redis,$test,$p]}
      echo "| ${test^^} | $p | $g | $r | $(awk -v g="$g" -v r="$r" 'BEGIN { printf "%.2f", (r > 0) ? g / r : 0 }') |"
    done
  done
  echo
  echo "One GTStore node (N=1, --fsync none) and one Redis server (no persistence); the servers' CPU (user + system, from /proc) per request; redis-benchmark -r 100000 -d 100 -c 50 --threads 2 -n $n; one round after a warm-up; $(date -u +%F) on $(nproc) cores"
} | tee "$out/pipeline-sweep.md"
