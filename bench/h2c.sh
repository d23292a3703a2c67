#!/usr/bin/env bash
# gRPC-shaped calls over h2c through statuscope, nginx (`grpc_pass`) and HAProxy (`proto h2` on
# both sides), side by side on one machine, one worker each, in front of the same upstream:
# h2load (Debian's nghttp2-client) sends POSTs with `content-type: application/grpc` and a
# 12-byte framed message to nghttpd (nghttp2-server), which answers each with a 12-byte message
# from memory and ends it with the trailer `grpc-status: 0`, as a unary gRPC server does. (Not
# `--echo-upload`: nghttpd spools uploads to temporary files, which made its CPU per call vary
# tenfold between runs.) Statuscope runs with `upstream_protocol: h2c`, every rule on.
#
# For 1 and 100 streams per connection, ROUNDS interleaved rounds (each round runs direct,
# statuscope, nginx, HAProxy in turn, so all see the same machine) report calls per second, the
# proxy's CPU per call (from /proc/PID/stat, user + system) and the 99th percentile of the call
# time (h2load's per-request log). The medians, statuscope's ratios against the best of nginx and
# HAProxy, and pass or fail against the targets of docs/performance.md are printed and written
# to bench/h2c-results.md. Every call through statuscope must be tallied as the OK it was.
#   bench/h2c.sh                        # ROUNDS=3 REQUESTS=60000 CLIENTS=8
#   ROUNDS=5 REQUESTS=300000 bench/h2c.sh
#   CALLGRIND=1 bench/h2c.sh            # instead: instructions per call under callgrind for
#                                       # statuscope, HAProxy and nginx, 1 and 100 streams: two
#                                       # runs of different lengths each, so start-up cancels out
#   MEMORY=1 bench/h2c.sh               # instead: statuscope's memory idle, with 1,000 idle
#                                       # HTTP/2 connections, and during 1 GiB each way over
#                                       # one stream
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
CALLGRIND=${CALLGRIND:-}
MEMORY=${MEMORY:-}
REQUESTS=${REQUESTS:-60000}
CLIENTS=${CLIENTS:-8}
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
missing=()
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v nghttpd >/dev/null || missing+=(nghttp2-server)
command -v nginx >/dev/null || missing+=(nginx-light)
command -v haproxy >/dev/null || missing+=(haproxy)
command -v curl >/dev/null || missing+=(curl)
[ -z "$CALLGRIND" ] || command -v valgrind >/dev/null || missing+=(valgrind)
if [ ${#missing[@]} -gt 0 ]; then
  { $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"; } >&2
fi
cargo build --release --quiet

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() { # port
  for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  exit 1
}
cpu_ticks() { # pid: user + system time in clock ticks
  awk '{print $14 + $15}' "/proc/$1/stat"
}
rss_kib() { # pid
  awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}

# A gRPC message: not compressed, 7 bytes long, then its 7 bytes.
printf '\x00\x00\x00\x00\x07item-42' > "$work/call.bin"
mkdir -p "$work/htdocs/shop.Items"
cp "$work/call.bin" "$work/htdocs/shop.Items/Get"

upstream_port=$(free_port)
nghttpd --no-tls --trailer 'grpc-status: 0' -d "$work/htdocs" "$upstream_port" > /dev/null 2>&1 &
upstream=$!
pids+=("$upstream")
wait_port "$upstream_port"

# Starts statuscope on a free port in front of $2 (default: the nghttpd upstream), under the
# command words $@ after the first two (valgrind, or nothing); sets $port, $admin and $pid.
start_statuscope() { # name upstream-port [wrapper...]
  local name=$1 up=$2
  shift 2
  port=$(free_port)
  admin=$(free_port)
  STATUSCOPE_UPSTREAM_PROTOCOL=h2c STATUSCOPE_THREADS=1 STATUSCOPE_LOG__LEVEL=warn \
    "$@" target/release/statuscope run --upstream "127.0.0.1:$up" \
    --listen "127.0.0.1:$port" --admin "127.0.0.1:$admin" > "$work/$name.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  wait_port "$port"
}
start_nginx() { # name [wrapper...]
  local name=$1
  shift
  port=$(free_port)
  mkdir -p "$work/$name"
  cat > "$work/$name.conf" <<EOF
worker_processes 1;
master_process off;
daemon off;
pid $work/$name/nginx.pid;
error_log $work/$name/error.log;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 10000000;
  client_body_temp_path $work/$name;
  upstream grpc_upstream { server 127.0.0.1:$upstream_port; keepalive 64; }
  server {
    listen 127.0.0.1:$port http2;
    location / { grpc_pass grpc://grpc_upstream; }
  }
}
EOF
  "$@" "$(command -v nginx)" -c "$work/$name.conf" -p "$work/$name" > "$work/$name.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  wait_port "$port"
}
start_haproxy() { # name [wrapper...]
  local name=$1
  shift
  port=$(free_port)
  cat > "$work/$name.cfg" <<EOF
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend grpc
  bind 127.0.0.1:$port proto h2
  default_backend upstream
backend upstream
  http-reuse always
  server upstream 127.0.0.1:$upstream_port proto h2
EOF
  "$@" "$(command -v haproxy)" -db -f "$work/$name.cfg" > "$work/$name.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  wait_port "$port"
}

# One h2load run of $2 calls; prints "calls/s proxy-µs-per-call p99-µs" ($3: the proxy's PID,
# or 0 for none).
run() { # port calls proxy-pid streams
  local cpu0=0 cpu1=0 out rps done_
  [ "$3" = 0 ] || cpu0=$(cpu_ticks "$3")
  # h2load appends to its log.
  rm -f "$work/calls.log"
  out=$(h2load -n "$2" -c "$CLIENTS" -m "$4" -t 1 -d "$work/call.bin" \
    -H 'content-type: application/grpc' -H 'te: trailers' --log-file="$work/calls.log" \
    "http://127.0.0.1:$1/shop.Items/Get")
  [ "$3" = 0 ] || cpu1=$(cpu_ticks "$3")
  done_=$(echo "$out" | awk '/^requests:/ {print $8}')
  if [ "$done_" != "$2" ]; then
    echo "h2load: only $done_ of $2 calls succeeded:" >&2
    echo "$out" >&2
    exit 1
  fi
  rps=$(echo "$out" | awk '/^finished in/ {gsub(",", "", $4); print $4}')
  p99=$(cut -f3 "$work/calls.log" | sort -n | awk '{a[NR] = $1} END {print a[int(NR * 0.99)]}')
  awk -v rps="$rps" -v cpu="$((cpu1 - cpu0))" -v n="$2" -v p99="$p99" -v hz="$(getconf CLK_TCK)" \
    'BEGIN {printf "%s %.2f %d\n", rps, cpu / hz / n * 1e6, p99}'
}
median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
total_instructions() { # callgrind output file
  callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}

if [ -n "$CALLGRIND" ]; then
  short=2000
  long=${CALLGRIND_CALLS:-12000}
  # Instructions for $2 calls at $3 streams per connection, start-up and shutdown included, by
  # contender $1.
  count() { # contender calls streams
    local out="$work/callgrind.$1.$2.$3"
    local under=(valgrind --tool=callgrind --callgrind-out-file="$out")
    case $1 in
      statuscope) start_statuscope "callgrind-$3" "$upstream_port" "${under[@]}" ;;
      nginx) start_nginx "nginx-callgrind-$3" "${under[@]}" ;;
      haproxy) start_haproxy "haproxy-callgrind-$3" "${under[@]}" ;;
    esac
    run "$port" "$2" 0 "$3" > /dev/null
    # Each stops on its own signal and writes its counts on the way out.
    case $1 in
      statuscope) kill -INT "$pid" ;;
      nginx) kill -QUIT "$pid" ;;
      haproxy) kill -USR1 "$pid" ;;
    esac
    wait "$pid" || true
    total_instructions "$out"
  }
  for streams in 1 100; do
    declare -A per_call=()
    for contender in statuscope haproxy nginx; do
      a=$(count "$contender" "$short" "$streams")
      b=$(count "$contender" "$long" "$streams")
      per_call[$contender]=$(( (b - a) / (long - short) ))
      echo "$contender: ${per_call[$contender]} instructions per call ($streams streams per connection)"
    done
    best=$(( per_call[haproxy] < per_call[nginx] ? per_call[haproxy] : per_call[nginx] ))
    ratio=$(awk -v a="${per_call[statuscope]}" -v b="$best" 'BEGIN {printf "%.2f", a / b}')
    verdict=$(awk -v r="$ratio" 'BEGIN {print (r <= 1.0 ? "pass" : "FAIL")}')
    echo "$streams streams: statuscope / best peer: ${ratio}× (target ≤ 1.0×): $verdict"
  done
  exit 0
fi

if [ -n "$MEMORY" ]; then
  start_statuscope memory "$upstream_port"
  sleep 1
  echo "idle: $(( $(rss_kib "$pid") / 1024 )) MiB (target ≤ 20 MiB)"
  # 1,000 HTTP/2 connections that sent the preface and their SETTINGS, then nothing.
  python3 - "$port" <<'EOF' &
import socket, sys, time
conns = []
for _ in range(1000):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    conns.append(s)
print("open", flush=True)
time.sleep(8)
EOF
  holder=$!
  sleep 6
  echo "1,000 idle HTTP/2 connections: $(( $(rss_kib "$pid") / 1024 )) MiB (target ≤ 64 MiB)"
  wait "$holder"
  # 1 GiB each way over one stream, against nginx as an h2c upstream that serves a 1 GiB file
  # and stores uploads (WebDAV PUT reads the whole body; a `return` answers before reading it,
  # and curl then never ends its upload); the peak resident size is sampled while they run.
  big_port=$(free_port)
  mkdir -p "$work/big"
  truncate -s 1G "$work/big/gib"
  cat > "$work/big.conf" <<EOF
worker_processes 1;
master_process off;
daemon off;
pid $work/big/nginx.pid;
error_log $work/big/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_max_body_size 0;
  client_body_temp_path $work/big;
  server {
    listen 127.0.0.1:$big_port http2;
    location = /gib { root $work/big; }
    location /upload/ { root $work/big; dav_methods PUT; create_full_put_path on; }
  }
}
EOF
  nginx -c "$work/big.conf" -p "$work/big" > /dev/null 2>&1 &
  pids+=("$!")
  wait_port "$big_port"
  start_statuscope bigproxy "$big_port"
  peak=0
  sample() { while kill -0 "$1" 2>/dev/null; do r=$(rss_kib "$pid"); [ "$r" -gt "$peak" ] && peak=$r; echo "$peak" > "$work/peak"; sleep 0.2; done; }
  curl -s --http2-prior-knowledge -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$port/gib" > "$work/status" &
  sample $! ; echo "1 GiB download ($(cat "$work/status")): peak $(( $(cat "$work/peak") / 1024 )) MiB (target ≤ 64 MiB, flat)"
  peak=0
  curl -s --http2-prior-knowledge -o /dev/null -w '%{http_code}\n' -T "$work/big/gib" \
    "http://127.0.0.1:$port/upload/gib" > "$work/status" &
  sample $! ; echo "1 GiB upload ($(cat "$work/status")): peak $(( $(cat "$work/peak") / 1024 )) MiB (target ≤ 64 MiB, flat)"
  exit 0
fi

start_statuscope statuscope "$upstream_port"
statuscope=$pid
statuscope_admin=$admin
declare -A ports procs
ports[direct]=$upstream_port
procs[direct]=0
ports[statuscope]=$port
procs[statuscope]=$statuscope
start_nginx nginx
ports[nginx]=$port
procs[nginx]=$pid
start_haproxy haproxy
ports[haproxy]=$port
procs[haproxy]=$pid
contenders=(direct statuscope nginx haproxy)

results="$work/results"
for round in $(seq "$ROUNDS"); do
  for streams in 1 100; do
    for contender in "${contenders[@]}"; do
      read -r rps cpu p99 < <(run "${ports[$contender]}" "$REQUESTS" "${procs[$contender]}" "$streams")
      echo "$contender $streams $rps $cpu $p99" >> "$results"
      echo "round $round: $contender, $streams streams: $rps calls/s, $cpu µs CPU/call, p99 $p99 µs" >&2
    done
  done
done

# Every call through statuscope was tallied once, as the OK it was.
tallied=$(curl -s "127.0.0.1:$statuscope_admin/metrics" \
  | awk '/^statuscope_grpc_responses_total\{.*grpc_code="OK"/ {sum += $2} END {printf "%d", sum}')
expected=$((ROUNDS * 2 * REQUESTS))
[ "$tallied" = "$expected" ] || { echo "tallied $tallied gRPC calls, sent $expected" >&2; exit 1; }

figure() { # contender streams column(3 calls/s, 4 cpu, 5 p99)
  awk -v c="$1" -v s="$2" -v k="$3" '$1 == c && $2 == s {print $k}' "$results" | median
}
status=0
{
  echo "# gRPC over h2c: statuscope, nginx and HAProxy side by side (bench/h2c.sh)"
  echo
  echo "$(date -u +%Y-%m-%d), $(git rev-parse --short HEAD), $(nproc) cores; h2load -n $REQUESTS -c $CLIENTS -t 1;"
  echo "medians of $ROUNDS interleaved rounds; one worker each; every call through statuscope tallied"
  echo "(\`grpc_code=\"OK\"\`: $tallied). CPU is the proxy process's own."
  echo
  echo "| streams/conn | contender | calls/s | CPU µs/call | p99 µs |"
  echo "|---:|---|---:|---:|---:|"
  for streams in 1 100; do
    for contender in "${contenders[@]}"; do
      cpu=$(figure "$contender" "$streams" 4)
      [ "$contender" = direct ] && cpu=–
      echo "| $streams | $contender | $(figure "$contender" "$streams" 3) | $cpu | $(figure "$contender" "$streams" 5) |"
    done
  done
  echo
  echo "| streams/conn | target | statuscope / best of nginx and HAProxy | verdict |"
  echo "|---:|---|---:|---|"
  for streams in 1 100; do
    for k in "4|CPU per call|≤ 1.0×|min" "3|calls/s|≥ 1.0×|max" "5|p99|≤ 1.0×|min"; do
      IFS='|' read -r column name want best <<< "$k"
      n=$(figure nginx "$streams" "$column")
      h=$(figure haproxy "$streams" "$column")
      s=$(figure statuscope "$streams" "$column")
      read -r ratio verdict < <(awk -v s="$s" -v n="$n" -v h="$h" -v best="$best" 'BEGIN {
        b = (best == "max") ? (n > h ? n : h) : (n < h ? n : h); r = s / b
        ok = (best == "max") ? (r >= 1.0) : (r <= 1.0)
        printf "%.2f %s\n", r, ok ? "pass" : "FAIL" }')
      [ "$verdict" = pass ] || status=1
      echo "| $streams | $name $want | ${ratio}× | $verdict |"
    done
  done
} | tee bench/h2c-results.md
exit $status
