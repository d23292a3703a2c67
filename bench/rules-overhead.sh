#!/usr/bin/env bash
# Proxy throughput with the rule catalogue on versus off, measured side by side with wrk.
#
# Starts (on loopback only) nginx as a fixed, fast upstream serving a 1 KiB JSON 200 and a
# small JSON 404, and two statuscope processes in front of it: one with everything on (the
# catalogue and 8 KiB body sampling), one with `findings.enabled: false`. Runs wrk against each
# in turn, ROUNDS times, alternating which goes first (the machine is shared and noisy, so only
# side-by-side figures mean anything), and reports for each the median requests/s and the
# median CPU time statuscope spent per request (from /proc/PID/stat), with the on/off ratios.
# Everything it started is stopped by PID on exit. Writes bench/rules-overhead.md.
#
#   ROUNDS=5 DURATION=10s CONNECTIONS=64 bench/rules-overhead.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)

missing=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v wrk >/dev/null || missing+=(wrk)
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

cargo build --release --quiet
BIN=target/release/statuscope

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

body=$(printf '{"id":101,"name":"Alice","items":[%s"end"]}' "$(for i in $(seq 1 60); do printf '"item-%02d",' "$i"; done)")
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:18090;
    location /ok { default_type application/json; return 200 '$body'; }
    location /missing { default_type application/json; return 404 '{"code":"NOT_FOUND","details":["no such user"]}'; }
  }
}
CONF
"$NGINX" -c "$work/nginx.conf" -p "$work" &
pids+=($!)

declare -A pid_of
start_statuscope() { # name listen admin [env...]
  local name=$1 listen=$2 admin=$3
  shift 3
  env "$@" "$BIN" run --upstream 127.0.0.1:18090 --listen "$listen" --admin "$admin" \
    >"$work/$name.log" 2>&1 &
  pids+=($!)
  pid_of[$name]=$!
  for _ in $(seq 1 500); do
    curl -fs "http://$admin/readyz" >/dev/null 2>&1 && return 0
    sleep 0.02
  done
  echo "statuscope ($name) did not become ready" >&2
  cat "$work/$name.log" >&2
  exit 1
}
start_statuscope on 127.0.0.1:17091 127.0.0.1:19091 STATUSCOPE_LOG__LEVEL=warn
start_statuscope off 127.0.0.1:17092 127.0.0.1:19092 STATUSCOPE_LOG__LEVEL=warn STATUSCOPE_FINDINGS__ENABLED=false
for _ in $(seq 1 250); do curl -fs http://127.0.0.1:18090/ok >/dev/null 2>&1 && break; sleep 0.02; done

# CPU ticks (user + system) a process has used so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

declare -A rps cpu
measure() { # name port
  local before after output requests
  before=$(ticks "${pid_of[$1]}")
  output=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" "http://127.0.0.1:$2/ok")
  after=$(ticks "${pid_of[$1]}")
  requests=$(echo "$output" | awk '/requests in/ {print $1}')
  rps[$1]+="$(echo "$output" | awk '/^Requests\/sec/ {print $2}') "
  cpu[$1]+="$(awk -v t=$((after - before)) -v hz="$HZ" -v n="$requests" 'BEGIN {printf "%.2f", t / hz / n * 1e6}') "
}

for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order="on off"; else order="off on"; fi
  for name in $order; do
    if [ "$name" = on ]; then measure on 17091; else measure off 17092; fi
  done
  echo "round $round: on ${rps[on]##* } off ${rps[off]##* }" >&2
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
minmax() { tr ' ' '\n' | grep -v '^$' | sort -g | awk 'NR==1{min=$1} {max=$1} END {printf "%s–%s", min, max}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a/b}'; }
on=$(echo "${rps[on]}" | median)
off=$(echo "${rps[off]}" | median)
on_cpu=$(echo "${cpu[on]}" | median)
off_cpu=$(echo "${cpu[off]}" | median)
throughput=$(ratio "$on" "$off")
cost=$(ratio "$on_cpu" "$off_cpu")
verdict=$(awk -v r="$throughput" 'BEGIN {print (r >= 0.95 ? "pass" : "FAIL")}')

report=bench/rules-overhead.md
{
  echo "# Rules on vs off: proxy throughput"
  echo
  echo "\`bench/rules-overhead.sh\` on $(nproc) cores, $(date -u +%Y-%m-%d); wrk -t1 -c$CONNECTIONS -d$DURATION, $ROUNDS rounds alternating which goes first, GET of a 1 KiB JSON 200 from nginx; statuscope with 1 worker thread."
  echo
  echo "| statuscope | median req/s (min–max) | median CPU µs per request (min–max) |"
  echo "|---|---|---|"
  echo "| rules and 8 KiB sampling on | $on ($(echo "${rps[on]}" | minmax)) | $on_cpu ($(echo "${cpu[on]}" | minmax)) |"
  echo "| rules off (\`findings.enabled: false\`) | $off ($(echo "${rps[off]}" | minmax)) | $off_cpu ($(echo "${cpu[off]}" | minmax)) |"
  echo
  echo "Throughput on/off: **$throughput** (target ≥ 0.95: $verdict). CPU per request on/off: **$cost**."
} > "$report"
cat "$report"
