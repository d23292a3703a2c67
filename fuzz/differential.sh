#!/usr/bin/env bash
# The longer run of tests/e2e/forwarding.rs's differential check: MUTATIONS request mutations
# drawn at random (seed SEED) from the same parts, sent through a release statuscope on each
# engine to an upstream that records what it gets, read by PyPI h11 and waitress
# (tests/tools/http1_differential.py). Exits 1, printing the mutation and both readings, when
# something forwarded is read differently or a mutation the two read differently went on as
# written. Stops what it started, by PID.
#   fuzz/differential.sh                    # MUTATIONS=20000 SEED=1
#   MUTATIONS=100000 SEED=7 fuzz/differential.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MUTATIONS=${MUTATIONS:-20000}
SEED=${SEED:-1}
PYTHON=${PYTHON:-.tools/bin/python}
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cargo build --release --quiet
status=0
for engine in fast pingora; do
  mkdir -p "$work/$engine"
  "$PYTHON" tests/tools/http1_differential.py recorder "$work/$engine" > "$work/$engine.ready" &
  pids+=("$!")
  until grep -q READY "$work/$engine.ready" 2>/dev/null; do sleep 0.1; done
  upstream=$(sed 's/READY //' "$work/$engine.ready")
  port=$(free_port)
  admin=$(free_port)
  STATUSCOPE_PROXY__ENGINE=$engine STATUSCOPE_LOG__LEVEL=error target/release/statuscope run \
    --upstream "127.0.0.1:$upstream" --listen "127.0.0.1:$port" --admin "127.0.0.1:$admin" &
  pids+=("$!")
  until curl -sf "http://127.0.0.1:$admin/readyz" > /dev/null; do sleep 0.1; done
  if "$PYTHON" tests/tools/http1_differential.py random "127.0.0.1:$port" "$work/$engine" \
    "$MUTATIONS" "$SEED" > "$work/$engine.json"; then
    echo "$engine: $(head -c 300 "$work/$engine.json")"
  else
    echo "$engine: FAILED"; cat "$work/$engine.json"; status=1
  fi
done
exit "$status"
