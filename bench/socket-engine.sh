#!/usr/bin/env bash
# GTStore's own epoll reactor against .NET's socket engine (GTSTORE_SOCKET_REACTOR=0), on the
# cluster bench/compare-redis.sh measures: 7 nodes, N=3 R=2 W=2, --fsync none, redis-benchmark
# --cluster. Each round starts a fresh cluster per engine, in turn, warms it up unmeasured, then
# measures SET and GET at -P 1 and -P 16; the table gives the servers' CPU per request and ops/s
# of both engines, the median of the rounds.
#
# Bounded: fixed request counts and rounds; the cluster is stopped on exit.
#
#   bench/socket-engine.sh                 # 3 rounds
#   ROUNDS=1 bench/socket-engine.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds="${ROUNDS:-3}"
out="${OUT:-$here/bench/results}"
# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"
mkdir -p "$out"
ensure_redis

bench_workdir engine
port=7840
declare -A requests=([1]=100000 [16]=600000)
declare -A rps cpu sleep

median() { tr -s ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for round in $(seq 1 "$rounds"); do
  for engine in dotnet reactor; do
    flag=1; [ "$engine" = dotnet ] && flag=0
    GTSTORE_SOCKET_REACTOR=$flag "$here/gtstore" start --dir "$work/gtstore" --nodes 7 --rep 3 --read-quorum 2 --write-quorum 2 \
      --resp-port "$port" --fsync none >/dev/null
    pids="$(gtstore_node_pids "$work/gtstore")"
    measured_run "$pids" "$port" yes set 16 300000 >/dev/null   # warm-up: compiled code, keys held
    measured_run "$pids" "$port" yes get 16 300000 >/dev/null
    measured_run "$pids" "$port" yes set 1 50000 >/dev/null
    for test in set get; do
      for p in 1 16; do
        read -r r u s < <(measured_run "$pids" "$port" yes "$test" "$p" "${requests[$p]}")
        rps[$engine,$test,$p]+="$r "; cpu[$engine,$test,$p]+="$u "; sleep[$engine,$test,$p]+="$s "
        echo "round $round $engine ${test^^} -P $p: $r ops/s, $u µs/request, $s sleeps/request" >&2
      done
    done
    "$here/gtstore" stop --dir "$work/gtstore" >/dev/null
    rm -rf "$work/gtstore"
  done
done

{
  echo "| test | .NET engine ops/s | reactor ops/s | .NET engine CPU µs/req | reactor CPU µs/req | reactor / .NET CPU | sleeps/req .NET → reactor |"
  echo "|---|---|---|---|---|---|---|"
  for test in set get; do
    for p in 1 16; do
      dr=$(median <<<"${rps[dotnet,$test,$p]}"); rr=$(median <<<"${rps[reactor,$test,$p]}")
      dc=$(median <<<"${cpu[dotnet,$test,$p]}"); rc=$(median <<<"${cpu[reactor,$test,$p]}")
      ds=$(median <<<"${sleep[dotnet,$test,$p]}"); rs=$(median <<<"${sleep[reactor,$test,$p]}")
      echo "| ${test^^} -P $p | $dr | $rr | $dc | $rc | $(awk -v a="$rc" -v b="$dc" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }') | $ds → $rs |"
    done
  done
  echo
  echo "7 GTStore nodes, N=3 R=2 W=2, --fsync none; redis-benchmark --cluster -r 100000 -d 100 -c 50 --threads 2, 100k requests at -P 1 and 600k at -P 16; the servers' CPU (user + system, from /proc) per request; median of $rounds rounds, a fresh warmed-up cluster per engine and round, engines in turn; $(date -u +%F) on $(nproc) cores"
} | tee "$out/socket-engine.md"
