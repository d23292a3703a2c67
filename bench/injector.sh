#!/usr/bin/env bash
# The admission webhook's throughput and CPU per review: h2load (Debian's nghttp2-client) sends
# the AdmissionReview of tests/inject/shop.yaml's web pod — the whole pod, injected, a JSON Patch
# back — over TLS to `statuscope injector` on loopback, with certificates from the shipped
# make-certs.sh. Two shapes: HTTP/2 with 10 streams on each of 4 connections (as the API
# server multiplexes), and HTTP/1.1 with one request at a time on each of 4 keep-alive
# connections. Reports reviews per second, the injector's CPU per review (from /proc/PID/stat,
# user + system) and its resident memory after the run; the medians of ROUNDS rounds.
#   bench/injector.sh                 # ROUNDS=3 REQUESTS=20000
#   CALLGRIND=1 bench/injector.sh     # instead: the injector under callgrind, instructions per
#                                     # review over REQUESTS (default 2000) on one HTTP/1.1
#                                     # connection (start-up and one handshake included)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
CALLGRIND=${CALLGRIND:-}
REQUESTS=${REQUESTS:-$([ -n "$CALLGRIND" ] && echo 2000 || echo 20000)}
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
command -v h2load >/dev/null || {
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nghttp2-client
}
cargo build --release --quiet

work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

EXTRA_SANS=IP:127.0.0.1 deploy/kubernetes/injector/make-certs.sh "$work/certs" >/dev/null
python3 - "$work/review.json" <<'PY'
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open("tests/inject/shop.yaml")) if d]
web = docs[0]["spec"]["template"]
pod = {"apiVersion": "v1", "kind": "Pod",
       "metadata": dict(web["metadata"], name="web-7d4b9", namespace="shop"), "spec": web["spec"]}
review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
          "request": {"uid": "bench", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                      "operation": "CREATE", "namespace": "shop", "object": pod}}
json.dump(review, open(sys.argv[1], "w"))
PY

port=$(free_port)
admin=$(free_port)
wrapper=()
if [ -n "$CALLGRIND" ]; then
  wrapper=(valgrind --tool=callgrind "--callgrind-out-file=$work/callgrind.out")
fi
"${wrapper[@]}" target/release/statuscope injector --drain 0s --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" \
  --tls-cert "$work/certs/tls.crt" --tls-key "$work/certs/tls.key" 2>/dev/null &
pid=$!
for _ in $(seq 300); do
  curl -sf "http://127.0.0.1:$admin/readyz" >/dev/null && break
  sleep 0.1
done
hz=$(getconf CLK_TCK)

if [ -n "$CALLGRIND" ]; then
  h2load -n "$REQUESTS" -c 1 --h1 -d "$work/review.json" -H 'content-type: application/json' \
    "https://127.0.0.1:$port/inject" | grep -q "status codes: $REQUESTS 2xx"
  kill "$pid"
  wait "$pid" || true
  pid=
  total=$(callgrind_annotate "$work/callgrind.out" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  echo "bench/injector.sh under callgrind: $((total / REQUESTS)) instructions per review ($REQUESTS reviews)"
  exit 0
fi

run() { # label, h2load flags...
  local label=$1
  shift
  local rates=() cpus=()
  for _ in $(seq "$ROUNDS"); do
    local before after out
    before=$(cpu_ticks "$pid")
    out=$(h2load -n "$REQUESTS" -c 4 "$@" -d "$work/review.json" \
      -H 'content-type: application/json' "https://127.0.0.1:$port/inject")
    after=$(cpu_ticks "$pid")
    grep -q "succeeded, 0 failed, 0 errored, 0 timeout" <<<"$out" || { echo "$out" >&2; exit 1; }
    grep -q "status codes: $REQUESTS 2xx" <<<"$out" || { echo "$out" >&2; exit 1; }
    rates+=("$(awk '/^finished in/ {print $4}' <<<"$out")")
    cpus+=("$(awk -v t=$((after - before)) -v hz="$hz" -v n="$REQUESTS" 'BEGIN {printf "%.1f", t / hz / n * 1e6}')")
  done
  local rate cpu
  rate=$(printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  cpu=$(printf '%s\n' "${cpus[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf '%-28s %12s reviews/s %8s µs CPU/review   (rounds: %s)\n' "$label" "$rate" "$cpu" "${rates[*]}"
}

echo "bench/injector.sh: $ROUNDS rounds of $REQUESTS reviews ($(wc -c <"$work/review.json") bytes each)"
run "HTTP/2, 4 conns x 10 streams" -m 10
run "HTTP/1.1, 4 keep-alive conns" --h1
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
echo "resident memory after the runs: $((rss / 1024)) MiB"
curl -s "http://127.0.0.1:$admin/metrics" | grep '^statuscope_injector_admissions_total{result="injected"}'
