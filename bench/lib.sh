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
