#!/usr/bin/env python3
"""Whole-proxy instructions per request under callgrind: statuscope's two engines and nginx.

callgrind counts instructions, not seconds: the same binary given the same requests counts the
same whatever else the machine is doing. Each proxy runs under callgrind twice, in front of
compare.py's nginx upstream, serving SHORT and then LONG requests of compare.py's path mix over
CONNECTIONS keep-alive connections, each with one request in flight; the difference in
instructions over the difference in requests is one request's cost, start-up and shutdown
cancelled out. It is the whole process — every thread, the runtime, the allocator, statuscope's
own code — in user space (the kernel's share is not counted).

Prints one line per contender, `NAME INSTRUCTIONS`; bench/hotpath.sh checks them.

    SHORT=1000 LONG=3000 CONNECTIONS=4 CONTENDERS=fast,pingora,nginx bench/callgrind.py
    CONTENDERS=fast,fast-contract bench/callgrind.py   # what judging against a contract costs
    CONTENDERS=fast,fast-otlp bench/callgrind.py       # the request path with the OTLP push on

`fast-otlp` pushes to the upstream nginx's /v1/metrics with an interval longer than the run, so
the count is the request path's with the push configured; what one export costs is
bench/otlp_export.py's measure.
"""
import os
import selectors
import signal
import socket
import subprocess
import sys

import compare

SHORT = int(os.environ.get("SHORT", "1000"))
LONG = int(os.environ.get("LONG", "3000"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "4"))
CONTENDERS = os.environ.get("CONTENDERS", "fast,fast-otlp,pingora,nginx").split(",")
PORT, ADMIN = 18401, 18402


def load(total):
    """Sends exactly `total` GETs of the mix, each connection waiting for its answer."""
    selector = selectors.DefaultSelector()
    sent = done = 0
    pending = {}

    def send(connection):
        nonlocal sent
        path = compare.MIX[sent % len(compare.MIX)]
        connection.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nAccept: */*\r\n\r\n".encode())
        sent += 1

    for _ in range(min(CONNECTIONS, total)):
        connection = socket.create_connection(("127.0.0.1", PORT))
        connection.setblocking(False)
        pending[connection] = b""
        selector.register(connection, selectors.EVENT_READ)
        send(connection)
    while done < total:
        for key, _ in selector.select(timeout=60):
            connection = key.fileobj
            data = connection.recv(65536)
            if not data:
                raise SystemExit("the proxy closed a connection")
            buffer = pending[connection] + data
            while b"\r\n\r\n" in buffer:
                head, rest = buffer.split(b"\r\n\r\n", 1)
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")[1:]
                               if line.lower().startswith(b"content-length:")), 0)
                if len(rest) < length:
                    break
                buffer = rest[length:]
                done += 1
                if sent < total:
                    send(connection)
            pending[connection] = buffer
    for connection in pending:
        connection.close()


def count(contender, requests):
    """Total instructions of one run of `contender` serving `requests`."""
    out = os.path.join(compare.work, f"callgrind.{contender}.{requests}")
    valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    if contender == "nginx":
        config = compare.nginx_config("callgrind-nginx", 1, compare.nginx_proxy(PORT), main="master_process off;")
        argv, env = [compare.binary("nginx"), "-c", config, "-p", compare.work], {}
    else:
        argv = [os.path.join(compare.ROOT, "target/release/statuscope"), "run", "--upstream",
                f"127.0.0.1:{compare.UPSTREAM}", "--listen", f"127.0.0.1:{PORT}", "--admin", f"127.0.0.1:{ADMIN}"]
        # `fast-contract`: the fast engine judging against bench/mix-openapi.yaml as well;
        # `fast-otlp`: with the OTLP push configured.
        engine, _, extra = contender.partition("-")
        env = {"STATUSCOPE_LOG__LEVEL": "warn", "STATUSCOPE_PROXY__ENGINE": engine}
        if extra == "contract":
            env["STATUSCOPE_CONTRACT__OPENAPI"] = os.path.join(compare.ROOT, "bench/mix-openapi.yaml")
        if extra == "otlp":
            env["STATUSCOPE_OTLP__ENDPOINT"] = f"http://127.0.0.1:{compare.UPSTREAM}"
            env["STATUSCOPE_OTLP__INTERVAL"] = "1h"
    process = compare.start(f"callgrind-{contender}", valgrind + argv, env)
    compare.wait_port(PORT, "/ok", timeout=120)
    load(requests)
    # nginx writes its profile on a graceful quit, statuscope on SIGINT.
    os.killpg(process.pid, signal.SIGQUIT if contender == "nginx" else signal.SIGINT)
    process.wait(timeout=120)
    annotated = subprocess.run(["callgrind_annotate", out], capture_output=True, text=True, check=True).stdout
    total = next(line for line in annotated.splitlines() if "PROGRAM TOTALS" in line)
    return int(total.split()[0].replace(",", ""))


def main():
    compare.ensure_packages()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=compare.ROOT, check=True)
    try:
        compare.start_upstream()
        for contender in CONTENDERS:
            short, long = count(contender, SHORT), count(contender, LONG)
            print(contender, (long - short) // (LONG - SHORT), flush=True)
    finally:
        compare.clean_up()


if __name__ == "__main__":
    sys.exit(main())
