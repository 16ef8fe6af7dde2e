#!/usr/bin/env bash
# Memory per key: 1,000,000 keys with 100-byte values written through the Redis protocol into
# (a) one GTStore node (N=1) with the in-memory engine, (b) one GTStore node with RocksDB, and
# (c) one Redis server. Reports resident-memory growth per key (and, for RocksDB, disk bytes per
# key). Bounded: a fixed key count; every process started here is stopped on exit.
#
#   bench/memory-per-key.sh            # KEYS=1000000
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
keys="${KEYS:-1000000}"
out="${OUT:-$here/bench/results}"
# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"
mkdir -p "$out"
ensure_redis

work="$(mktemp -d /tmp/gtstore-memory-XXXXXX)"
pids=()
cleanup() {
  for d in "$work"/gt-*; do [ -d "$d" ] && "$here/gtstore" stop --dir "$d" >/dev/null 2>&1 || true; done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# SET key:000000000 <100 bytes> ... in RESP, generated once.
value=$(head -c 100 /dev/zero | tr '\0' 'v')
awk -v n="$keys" -v v="$value" 'BEGIN { for (i = 0; i < n; i++) { k = sprintf("key:%09d", i); printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v } }' > "$work/load.resp"

rss_kib() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }

measure() { # name pid port
  local before after
  before=$(rss_kib "$2")
  redis-cli -p "$3" --pipe < "$work/load.resp" >/dev/null
  after=$(rss_kib "$2")
  awk -v n="$keys" -v b="$before" -v a="$after" -v name="$1" 'BEGIN { printf "| %s | %.1f MiB | %.1f MiB | %.1f |\n", name, b/1024, a/1024, (a - b) * 1024 / n }'
}

node_pid() { "$here/gtstore" status --dir "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["nodes"][0]["pid"])'; }

{
  echo "| store | RSS before | RSS after | bytes per key (RSS growth / keys) |"
  echo "|---|---|---|---|"
  for engine in memory rocksdb; do
    dir="$work/gt-$engine"
    port=$([ "$engine" = memory ] && echo 7700 || echo 7701)
    "$here/gtstore" start --dir "$dir" --nodes 1 --rep 1 --engine "$engine" --fsync none --resp-port "$port" >/dev/null
    measure "GTStore, 1 node, N=1, $engine engine" "$(node_pid "$dir")" "$port"
    if [ "$engine" = rocksdb ]; then
      disk=$(du -sb "$dir/nodes/1/db" | cut -f1)
      awk -v d="$disk" -v n="$keys" 'BEGIN { printf "| (RocksDB on disk) | | %.1f MiB | %.1f |\n", d/1048576, d/n }'
    fi
    "$here/gtstore" stop --dir "$dir" >/dev/null
  done
  redis-server --port 7702 --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do redis-cli -p 7702 ping >/dev/null 2>&1 && break; sleep 0.1; done
  measure "Redis $(redis-server --version | awk '{print $3}' | cut -d= -f2)" "${pids[-1]}" 7702
  # This block runs in a subshell (it is piped to tee), so the exit trap never sees this pid: stop it here.
  kill "${pids[-1]}" 2>/dev/null || true
  wait "${pids[-1]}" 2>/dev/null || true
  echo
  echo "$keys keys of 13 bytes with 100-byte values, loaded with redis-cli --pipe; $(date -u +%F)"
} | tee "$out/memory-per-key.md"
