#!/usr/bin/env bash
# h2c through statuscope against the upstream directly, side by side: h2load (Debian's
# nghttp2-client) sends gRPC-shaped calls — POST, `content-type: application/grpc`, a 12-byte
# framed message — to nghttpd (nghttp2-server), which answers each with a 12-byte message (a
# file it serves from memory) and ends it with the trailer `grpc-status: 0`, as a unary gRPC
# server does. (Not `--echo-upload`: nghttpd spools uploads to temporary files, which made its
# CPU per call vary tenfold between runs.) Statuscope runs with `upstream_protocol: h2c`,
# every rule on, one worker thread.
#
# For 1 and 100 streams per connection it reports requests per second for both paths, their
# ratio, and the CPU each process spent per call (from /proc/PID/stat, user + system):
# statuscope's own, and the upstream's, direct and through. Each round runs direct then through,
# so both see the same machine; the medians of ROUNDS rounds are printed and written to
# bench/h2c-results.md.
#   bench/h2c.sh                        # ROUNDS=3 REQUESTS=100000 CLIENTS=8
#   ROUNDS=5 REQUESTS=300000 bench/h2c.sh
#   CALLGRIND=1 bench/h2c.sh            # instead: statuscope under callgrind, instructions per
#                                       # call over REQUESTS (default 20000) calls, 100 streams
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
CALLGRIND=${CALLGRIND:-}
REQUESTS=${REQUESTS:-$([ -n "$CALLGRIND" ] && echo 20000 || echo 100000)}
CLIENTS=${CLIENTS:-8}
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
command -v h2load >/dev/null && command -v nghttpd >/dev/null || {
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nghttp2-client nghttp2-server
}
cargo build --release --quiet

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() { # port
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  exit 1
}
cpu_ticks() { # pid: user + system time in clock ticks
  awk '{print $14 + $15}' "/proc/$1/stat"
}

# A gRPC message: not compressed, 7 bytes long, then its 7 bytes.
printf '\x00\x00\x00\x00\x07item-42' > "$work/call.bin"
mkdir -p "$work/htdocs/shop.Items"
cp "$work/call.bin" "$work/htdocs/shop.Items/Get"

upstream_port=$(free_port)
nghttpd --no-tls --trailer 'grpc-status: 0' -d "$work/htdocs" "$upstream_port" \
  > /dev/null 2>&1 &
upstream=$!
pids+=("$upstream")
wait_port "$upstream_port"

proxy_port=$(free_port)
admin_port=$(free_port)
under=()
[ -z "$CALLGRIND" ] || under=(valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out")
STATUSCOPE_UPSTREAM_PROTOCOL=h2c STATUSCOPE_LOG__LEVEL=warn "${under[@]}" target/release/statuscope run \
  --upstream "127.0.0.1:$upstream_port" --listen "127.0.0.1:$proxy_port" \
  --admin "127.0.0.1:$admin_port" > "$work/statuscope.log" 2>&1 &
statuscope=$!
pids+=("$statuscope")
wait_port "$proxy_port"

ticks_per_second=$(getconf CLK_TCK)
# One h2load run: prints "requests/s upstream-µs-per-call statuscope-µs-per-call".
run() { # port streams
  local up0 sc0 out rps done_ up1 sc1
  up0=$(cpu_ticks "$upstream")
  sc0=$(cpu_ticks "$statuscope")
  out=$(h2load -n "$REQUESTS" -c "$CLIENTS" -m "$2" -t 1 -d "$work/call.bin" \
    -H 'content-type: application/grpc' -H 'te: trailers' \
    "http://127.0.0.1:$1/shop.Items/Get")
  up1=$(cpu_ticks "$upstream")
  sc1=$(cpu_ticks "$statuscope")
  done_=$(echo "$out" | awk '/^requests:/ {print $8}')
  if [ "$done_" != "$REQUESTS" ]; then
    echo "h2load: only $done_ of $REQUESTS calls succeeded:" >&2
    echo "$out" >&2
    exit 1
  fi
  rps=$(echo "$out" | awk '/^finished in/ {gsub(",", "", $4); print $4}')
  awk -v rps="$rps" -v up="$((up1 - up0))" -v sc="$((sc1 - sc0))" -v n="$REQUESTS" \
    -v hz="$ticks_per_second" 'BEGIN {printf "%s %.2f %.2f\n", rps, up / hz / n * 1e6, sc / hz / n * 1e6}'
}
median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

if [ -n "$CALLGRIND" ]; then
  run "$proxy_port" 100 > /dev/null
  kill -INT "$statuscope"
  wait "$statuscope" || true
  total=$(callgrind_annotate "$work/callgrind.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  echo "statuscope, h2c upstream, 100 streams: $((total / REQUESTS)) instructions per call ($total for $REQUESTS calls, start-up included)"
  exit 0
fi

results="$work/results"
for round in $(seq "$ROUNDS"); do
  for streams in 1 100; do
    read -r rps up _ < <(run "$upstream_port" "$streams")
    echo "direct $streams $rps $up" >> "$results"
    read -r rps up sc < <(run "$proxy_port" "$streams")
    echo "through $streams $rps $up $sc" >> "$results"
    tail -n 2 "$results" | sed "s/^/round $round: /" >&2
  done
done

# Every call was tallied once, as the OK it was.
tallied=$(curl -s "127.0.0.1:$admin_port/metrics" \
  | awk '/^statuscope_grpc_responses_total\{.*grpc_code="OK"/ {sum += $2} END {printf "%d", sum}')
expected=$((ROUNDS * 2 * REQUESTS))
[ "$tallied" = "$expected" ] || { echo "tallied $tallied gRPC calls, sent $expected" >&2; exit 1; }

{
  echo "# h2c through statuscope against direct (bench/h2c.sh)"
  echo
  echo "$(date -u +%Y-%m-%d), $(git rev-parse --short HEAD), $(nproc) cores; h2load -n $REQUESTS -c $CLIENTS -t 1,"
  echo "medians of $ROUNDS rounds; every call tallied (\`grpc_code=\"OK\"\`: $tallied)."
  echo
  echo "| streams per connection | direct calls/s | through statuscope calls/s | ratio | statuscope CPU µs/call | upstream CPU µs/call direct | through |"
  echo "|---:|---:|---:|---:|---:|---:|---:|"
  for streams in 1 100; do
    d_rps=$(awk -v s="$streams" '$1 == "direct" && $2 == s {print $3}' "$results" | median)
    t_rps=$(awk -v s="$streams" '$1 == "through" && $2 == s {print $3}' "$results" | median)
    d_up=$(awk -v s="$streams" '$1 == "direct" && $2 == s {print $4}' "$results" | median)
    t_up=$(awk -v s="$streams" '$1 == "through" && $2 == s {print $4}' "$results" | median)
    t_sc=$(awk -v s="$streams" '$1 == "through" && $2 == s {print $5}' "$results" | median)
    ratio=$(awk -v a="$t_rps" -v b="$d_rps" 'BEGIN {printf "%.2f", a / b}')
    echo "| $streams | $d_rps | $t_rps | $ratio | $t_sc | $d_up | $t_up |"
  done
} | tee bench/h2c-results.md
