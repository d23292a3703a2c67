#!/usr/bin/env bash
# Instructions per request, counted by callgrind (the same count for the same binary however
# busy the machine), checked against the committed baseline (bench/hotpath-baseline.txt):
#
# - whole proxy: the statuscope process, fast engine, every rule on, in front of nginx, serving
#   compare.py's path mix (bench/callgrind.py) — with nginx's own count beside it, which the
#   fast engine must stay within 1.5 times of, the same with the OTLP push configured (checked
#   against the same baseline), and the pingora engine's for the record;
# - request path: statuscope's own work per exchange without I/O — head check, route, classify,
#   record, rules (bench/hotpath.rs), two runs of different lengths so start-up cancels out.
#
# Fails on a rise of more than 10 % over either baseline, or past 1.5 times nginx.
#   bench/hotpath.sh            # check
#   bench/hotpath.sh --update   # record new baselines (after a deliberate change)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is needed: apt-get install valgrind" >&2; exit 1; }
cargo build --release --quiet --example hotpath
count() {
  local out
  out=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file="$out" target/release/examples/hotpath "$1" 2>/dev/null
  callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
  rm -f "$out"
}
short=$(count 20000)
long=$(count 120000)
request_path=$(( (long - short) / 100000 ))
whole=$(bench/callgrind.py)
echo "$whole" | sed 's/^/whole proxy, /; s/$/ instructions per request/'
fast=$(echo "$whole" | awk '$1 == "fast" {print $2}')
fast_otlp=$(echo "$whole" | awk '$1 == "fast-otlp" {print $2}')
nginx=$(echo "$whole" | awk '$1 == "nginx" {print $2}')
echo "request path: $request_path instructions per request (head check, route, classify, record, rules; no body)"

baseline_file=bench/hotpath-baseline.txt
if [ "${1:-}" = "--update" ]; then
  printf 'whole-proxy %s\nrequest-path %s\n' "$fast" "$request_path" > "$baseline_file"
  echo "baselines updated"
  exit 0
fi
status=0
check() { # name measured
  local baseline limit
  baseline=$(awk -v key="$1" '$1 == key {print $2}' "$baseline_file")
  limit=$(( baseline * 110 / 100 ))
  echo "$1: $2 (baseline $baseline, limit $limit)"
  if [ "$2" -gt "$limit" ]; then
    echo "REGRESSION: $1 more than 10 % above its baseline" >&2
    status=1
  fi
}
check whole-proxy "$fast"
# The OTLP push reads the tallies at export time: configuring it must not move the request path.
check whole-proxy "$fast_otlp"
check request-path "$request_path"
ratio=$(awk -v a="$fast" -v b="$nginx" 'BEGIN {printf "%.2f", a / b}')
echo "fast engine / nginx: ${ratio}× (target ≤ 1.5×)"
if awk -v r="$ratio" 'BEGIN {exit !(r > 1.5)}'; then
  echo "TARGET MISSED: more than 1.5 times nginx's instructions per request" >&2
  status=1
fi
exit $status
