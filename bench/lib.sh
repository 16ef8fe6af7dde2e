# Helpers shared by the bench/ scripts (sourced, not run). Every figure is read from /proc of the
# server processes, so it does not count the client's CPU.

# The pids of a GTStore cluster's nodes, space separated.
gtstore_node_pids() { # dir
  "$here/gtstore" status --dir "$1" --json | python3 -c 'import json, sys; print(" ".join(str(n["pid"]) for n in json.load(sys.stdin)["nodes"]))'
}

# Clock ticks of CPU (user + system) the processes have used so far.
cpu_ticks() { # pids...
  local total=0 p
  for p in "$@"; do total=$((total + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done
  echo "$total"
}

# Voluntary context switches (a thread going to sleep) of every thread of the processes so far.
sleeps() { # pids...
  local p
  for p in "$@"; do cat "/proc/$p/task/"*/status 2>/dev/null; done | awk '/^voluntary_ctxt_switches/ { total += $2 } END { print total + 0 }'
}

# Requests per second of one redis-benchmark run (its --csv output's first result line).
benchmark_rps() { # redis-benchmark arguments...
  redis-benchmark "$@" --csv 2>/dev/null | awk -F'","' '/^"test"/ { header = 1; next } header { gsub(/"/, "", $2); print $2; exit }'
}

# CPU clock ticks spent on n requests, as microseconds per request.
us_per_request() { # ticks n
  awk -v t="$1" -v hz="$(getconf CLK_TCK)" -v n="$2" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }'
}

# Installs redis-server and redis-tools unless both are here (a fresh machine has no package lists yet).
ensure_redis() {
  command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null && return 0
  echo "installing redis-server and redis-tools" >&2
  apt-get update -qq && apt-get install -y -qq redis-server redis-tools >/dev/null
}

# Starts one Redis server in the background, without persistence, and waits until it answers;
# its pid is left in $redis_pid.
start_redis() { # port dir
  mkdir -p "$2"
  redis-server --port "$1" --bind 127.0.0.1 --dir "$2" --save "" --appendonly no --daemonize no >"$2/log" 2>&1 &
  redis_pid=$!
  local _
  for _ in $(seq 1 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "redis on port $1 never answered" >&2
  return 1
}

# One measured redis-benchmark run: prints "ops/s cpu-us/request sleeps/request" of the servers.
measured_run() { # pids port cluster(yes|no) test pipeline requests
  local pids=$1 extra=() t0 s0 rps
  [ "$3" = yes ] && extra=(--cluster)
  # shellcheck disable=SC2086 # a list of pids
  t0=$(cpu_ticks $pids); s0=$(sleeps $pids)
  rps=$(benchmark_rps -h 127.0.0.1 -p "$2" "${extra[@]}" -r 100000 -d 100 -c 50 --threads 2 -t "$4" -P "$5" -n "$6")
  # shellcheck disable=SC2086
  echo "$rps $(us_per_request $(( $(cpu_ticks $pids) - t0 )) "$6") $(awk -v s="$(( $(sleeps $pids) - s0 ))" -v n="$6" 'BEGIN { printf "%.2f", s / n }')"
}

# A scratch directory for one script's run ($work), with a trap that stops the GTStore cluster in
# $work/gtstore and the Redis server start_redis left, and removes the directory, on exit.
bench_workdir() { # name
  work="$(mktemp -d "/tmp/gtstore-$1-XXXXXX")"
  redis_pid=""
  trap stop_bench_servers EXIT
}

stop_bench_servers() {
  "$here/gtstore" stop --dir "$work/gtstore" >/dev/null 2>&1 || true
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
