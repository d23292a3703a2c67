#!/usr/bin/env python3
"""The observed contract's memory: statuscope (release, fast engine) in front of an nginx
upstream answering a JSON object on every path, driven with EXCHANGES (default 1,000,000)
requests over ROUTES (default 500) distinct routes by h2load (HTTP/1.1, 32 connections); the
resident memory idle and after, with learning on and, for comparison, off
(`observed.enabled: false`). Run by `make bench`; figures in docs/performance.md.

    bench/observed_memory.py
"""

import json
import os
import subprocess
import sys
import urllib.request

import compare

PORT, ADMIN = 18390, 18391
EXCHANGES = int(os.environ.get("EXCHANGES", "1000000"))
ROUTES = int(os.environ.get("ROUTES", "500"))


def upstream():
    body = '{"id":101,"name":"Alice","email":"alice@example.com","created":"2026-12-05T10:00:00Z","tags":["a","b"],"address":{"city":"Lyon","zip":"69001"},"manager":null}'
    config = compare.nginx_config("observed-upstream", 1, f"""
  default_type application/json;
  server {{
    listen 127.0.0.1:{compare.UPSTREAM} backlog=4096;
    location / {{ add_header X-Request-Id r1; return 200 '{body}'; }}
  }}""")
    compare.start("observed-upstream", [compare.binary("nginx"), "-c", config, "-p", compare.work])
    compare.wait_port(compare.UPSTREAM, "/")


def run(learning):
    """Resident bytes of statuscope idle, and after the load, with learning on or off."""
    env = {
        "STATUSCOPE_LOG__LEVEL": "warn",
        "STATUSCOPE_ROUTES__MAX": str(ROUTES + 100),
        "STATUSCOPE_OBSERVED__ENABLED": "true" if learning else "false",
    }
    argv = [os.path.join(compare.ROOT, "target/release/statuscope"), "run", "--upstream",
            f"127.0.0.1:{compare.UPSTREAM}", "--listen", f"127.0.0.1:{PORT}", "--admin", f"127.0.0.1:{ADMIN}"]
    process = compare.start(f"observed-{learning}", argv, env)
    try:
        compare.wait_port(ADMIN, "/readyz")
        idle = compare.memory(process.pid, "VmRSS")
        uris = compare.write("uris.txt", "".join(
            f"http://127.0.0.1:{PORT}/r{n}/items?page=1\n" for n in range(ROUTES)))
        subprocess.run(["h2load", "--h1", "-n", str(EXCHANGES), "-c", "32", "-t", "1", "-i", uris],
                       check=True, capture_output=True)
        after = compare.memory(process.pid, "VmRSS")
        paths = 0
        if learning:
            with urllib.request.urlopen(f"http://127.0.0.1:{ADMIN}/contract/observed?format=json") as r:
                paths = len(json.load(r)["paths"])
        return idle, after, paths
    finally:
        compare.stop(process)


def main():
    compare.ensure_packages()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=compare.ROOT, check=True)
    mib = 1024 * 1024
    try:
        upstream()
        for learning in (False, True):
            idle, after, paths = run(learning)
            what = "learning on " if learning else "learning off"
            print(f"{what}: idle {idle / mib:.1f} MiB, after {EXCHANGES} exchanges over {ROUTES} routes "
                  f"{after / mib:.1f} MiB (+{(after - idle) / mib:.1f} MiB)"
                  + (f", {paths} paths in /contract/observed" if learning else ""), flush=True)
    finally:
        compare.clean_up()


if __name__ == "__main__":
    sys.exit(main())
