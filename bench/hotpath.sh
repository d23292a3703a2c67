#!/usr/bin/env bash
# Instructions per request on statuscope's own request path (bench/hotpath.rs), counted by
# callgrind: two runs of different lengths, so start-up cost cancels out. Compares with the
# committed baseline (bench/hotpath-baseline.txt) and fails on a rise of more than 10 %.
#   bench/hotpath.sh            # check
#   bench/hotpath.sh --update   # record a new baseline (after a deliberate change)
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
per_request=$(( (long - short) / 100000 ))
echo "statuscope request path: $per_request instructions per request (head check, route, classify, record, rules; no body)"
baseline_file=bench/hotpath-baseline.txt
if [ "${1:-}" = "--update" ]; then
  echo "$per_request" > "$baseline_file"
  echo "baseline updated"
  exit 0
fi
baseline=$(cat "$baseline_file")
limit=$(( baseline * 110 / 100 ))
echo "baseline: $baseline (limit $limit)"
if [ "$per_request" -gt "$limit" ]; then
  echo "REGRESSION: more than 10 % above the baseline" >&2
  exit 1
fi
