#!/usr/bin/env python3
"""Side-by-side benchmark: statuscope against nginx, HAProxy and Caddy as reverse proxies.

Everything runs on loopback. A fixed nginx upstream serves small JSON responses (1 KiB 200s,
plus 201/204/404/429/500 on other paths, so classification has work). In front of it, each on
its own port and with keep-alive to the upstream: nothing (direct), statuscope with everything
on (the fast engine, the default), the fast engine with rules and sampling off, the pingora
engine with everything on, nginx (`proxy_pass`), HAProxy with its Prometheus exporter, Caddy
(`reverse_proxy`) with its metrics. Every proxy gets the same number of worker threads, 1 and
then 2. wrk drives each concurrency over keep-alive, plus one run with a new connection per
request; contenders run interleaved, round after round, and every ratio is taken against the
best of nginx and HAProxy in the same round, because only side-by-side figures mean anything
on a shared, noisy machine. Then memory and idleness: idle RSS, RSS with 1,000 idle keep-alive
connections, CPU ticks over 20 idle seconds, and RSS during a 1 GiB streamed upload and
download through statuscope.

Writes bench/results.json and bench/results.md. Stops everything it started, by PID.

    ROUNDS=5 DURATION=10 CONCURRENCY=16,64,256 THREADS=1,2 bench/compare.py
"""
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ROUNDS = int(os.environ.get("ROUNDS", "5"))
DURATION = int(os.environ.get("DURATION", "10"))
CONCURRENCY = [int(c) for c in os.environ.get("CONCURRENCY", "16,64,256").split(",")]
THREADS = [int(t) for t in os.environ.get("THREADS", "1,2").split(",")]
STREAM_BYTES = int(os.environ.get("STREAM_BYTES", str(1 << 30)))
CLOCK = os.sysconf("SC_CLK_TCK")
# The targets are taken against the best of these in each round.
PEERS = ["nginx", "haproxy"]
OTHERS = ["caddy"]
# Each statuscope contender and the environment that makes it.
STATUSCOPE_VARIANTS = {
    "statuscope": {},
    "statuscope-off": {"STATUSCOPE_FINDINGS__ENABLED": "false"},
    "statuscope-pingora": {"STATUSCOPE_PROXY__ENGINE": "pingora"},
}
STATUSCOPE = list(STATUSCOPE_VARIANTS)
IDLE_SECONDS = 20
# "Flat" memory while a stream passes: the highest sample at most this far above the start.
FLAT_MIB = 4

UPSTREAM = 18300
PORTS = {"direct": UPSTREAM, "statuscope": 18301, "statuscope-off": 18302, "statuscope-pingora": 18306,
         "nginx": 18303, "haproxy": 18304, "caddy": 18305}
ADMIN = {"statuscope": 18311, "statuscope-off": 18312, "statuscope-pingora": 18316, "haproxy": 18314, "caddy": 18315}

work = tempfile.mkdtemp(prefix="statuscope-bench-")
started = []


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def ensure_packages():
    missing = [pkg for tool, pkg in [("wrk", "wrk"), ("nginx", "nginx-light"), ("haproxy", "haproxy"), ("caddy", "caddy")]
               if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}")]
    if missing:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        # On stderr: bench/hotpath.sh reads the figures callgrind.py prints on stdout.
        subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True, stdout=sys.stderr)
        subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + missing, check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, stdout=sys.stderr)


def binary(name):
    return shutil.which(name) or f"/usr/sbin/{name}"


def start(name, argv, env=None):
    """Starts a process in its own process group; returns the Popen."""
    log_file = open(os.path.join(work, f"{name}.log"), "w")
    process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                               start_new_session=True)
    started.append(process)
    return process


def stop(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def group_pids(leader):
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[2]) == leader:  # field 5: process group
                    pids.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return pids


def cpu_seconds(leader):
    total = 0
    for pid in group_pids(leader):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / CLOCK


def memory(leader, field):
    """Sum of a /proc/PID/status field (VmRSS, VmHWM) over the group, in bytes."""
    total = 0
    for pid in group_pids(leader):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def clean_up():
    """Stops every process this run started and removes its working directory."""
    for process in started:
        stop(process)
    shutil.rmtree(work, ignore_errors=True)


def wait_port(port, path="/", timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as response:
                response.read()
                return
        except Exception:
            time.sleep(0.05)
    raise SystemExit(f"nothing answered on port {port}{path}; logs in {work}")


def write(name, text):
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def nginx_config(name, workers, http, main=""):
    """An nginx configuration running in the foreground from the work directory; `main` adds
    top-level directives."""
    return write(f"{name}.conf", f"""{main}
worker_processes {workers};
daemon off;
pid {work}/{name}.pid;
error_log {work}/{name}-error.log;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  keepalive_requests 10000000;
{http}
}}
""")


def start_upstream():
    body = '{"id":101,"name":"Alice","items":[' + ",".join(f'"item-{i:03d}"' for i in range(90)) + '],"end":true}'
    big = os.path.join(work, "big.bin")
    with open(big, "wb") as f:
        f.truncate(STREAM_BYTES)
    config = nginx_config("upstream", 1, f"""
  client_max_body_size 0;
  default_type application/json;
  server {{
    listen 127.0.0.1:{UPSTREAM} backlog=4096;
    location = /ok {{ return 200 '{body}'; }}
    location = /created {{ add_header Location /orders/7; return 201 '{{"id":7}}'; }}
    location = /empty {{ return 204; }}
    location = /missing {{ return 404 '{{"code":"NOT_FOUND","details":["no such user"]}}'; }}
    location = /limited {{ add_header Retry-After 5; return 429 '{{"code":"RATE_LIMITED"}}'; }}
    location = /error {{ return 500 '{{"code":"INTERNAL","details":["try later"]}}'; }}
    location = /upload {{ return 200 '{{"ok":true}}'; }}
    location = /big {{ default_type application/octet-stream; alias {big}; }}
    # The OTLP benchmarks' collector: takes every export (bench/otlp_export.py, fast-otlp).
    location = /v1/metrics {{ return 200; }}
  }}""")
    start("upstream", [binary("nginx"), "-c", config, "-p", work])
    wait_port(UPSTREAM, "/ok")


def nginx_proxy(port):
    """nginx's `http` block for a streaming reverse proxy on `port`, keeping upstream connections."""
    return f"""
  upstream backend {{ server 127.0.0.1:{UPSTREAM}; keepalive 256; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    client_max_body_size 0;
    location / {{
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_request_buffering off;
      proxy_buffering off;
    }}
  }}"""


def start_contenders(threads):
    processes = {}
    statuscope = os.path.join(ROOT, "target/release/statuscope")
    for name, extra in STATUSCOPE_VARIANTS.items():
        processes[name] = start(name, [statuscope, "run", "--upstream", f"127.0.0.1:{UPSTREAM}",
                                       "--listen", f"127.0.0.1:{PORTS[name]}", "--admin", f"127.0.0.1:{ADMIN[name]}"],
                                {"STATUSCOPE_THREADS": str(threads), "STATUSCOPE_LOG__LEVEL": "warn", **extra})
    nginx = nginx_config(f"nginx-{threads}", threads, nginx_proxy(PORTS["nginx"]))
    processes["nginx"] = start("nginx", [binary("nginx"), "-c", nginx, "-p", work])
    haproxy = write(f"haproxy-{threads}.cfg", f"""
global
  nbthread {threads}
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
frontend proxy
  bind 127.0.0.1:{PORTS['haproxy']}
  default_backend upstream
frontend metrics
  bind 127.0.0.1:{ADMIN['haproxy']}
  http-request use-service prometheus-exporter if {{ path /metrics }}
backend upstream
  http-reuse always
  server upstream 127.0.0.1:{UPSTREAM}
""")
    processes["haproxy"] = start("haproxy", [binary("haproxy"), "-db", "-f", haproxy])
    caddy = write(f"Caddyfile-{threads}", f"""
{{
  admin 127.0.0.1:{ADMIN['caddy']}
  auto_https off
  servers {{
    metrics
  }}
}}
http://127.0.0.1:{PORTS['caddy']} {{
  reverse_proxy 127.0.0.1:{UPSTREAM}
}}
""")
    processes["caddy"] = start("caddy", [binary("caddy"), "run", "--config", caddy, "--adapter", "caddyfile"],
                               {"GOMAXPROCS": str(threads)})
    for name in processes:
        wait_port(PORTS[name], "/ok")
    # Every contender exports metrics: check each answers, so nobody runs without its cost.
    for name in STATUSCOPE + ["haproxy", "caddy"]:
        wait_port(ADMIN[name], "/metrics")
    return processes


# The paths every load cycles through: 80 % 1 KiB JSON 200s, 4 % each of 201/204/404/429/500.
MIX = ["/ok"] * 80 + [path for path in ["/created", "/empty", "/missing", "/limited", "/error"] for _ in range(4)]

WRK_SCRIPT = """
local paths = {""" + ", ".join(f'"{path}"' for path in MIX) + """}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n % #paths) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('JSON {"requests": %d, "duration_us": %d, "socket_errors": %d, "p50_us": %d, "p99_us": %d, "p999_us": %d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
"""


def wrk(port, connections, new_connections):
    script = write("mix.lua", WRK_SCRIPT)
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{DURATION}s", "--timeout", "10s", "-s", script]
    if new_connections:
        argv += ["-H", "Connection: close"]
    output = subprocess.run(argv + [f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True).stdout
    line = next(l for l in output.splitlines() if l.startswith("JSON "))
    return json.loads(line[5:])


def measure(name, process, connections, new_connections):
    before = cpu_seconds(process.pid) if process else 0
    result = wrk(PORTS[name], connections, new_connections)
    after = cpu_seconds(process.pid) if process else 0
    seconds = result["duration_us"] / 1e6
    return {
        "rps": result["requests"] / seconds,
        "p50_ms": result["p50_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "p999_ms": result["p999_us"] / 1000,
        "socket_errors": result["socket_errors"],
        "cpu_s_per_100k": (after - before) / result["requests"] * 100_000 if process else None,
        "peak_rss_mib": memory(process.pid, "VmHWM") / (1 << 20) if process else None,
    }


def idle_connections(port, count=1000):
    sockets = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /ok HTTP/1.1\r\nHost: bench\r\n\r\n")
        sockets.append(s)
    for s in sockets:
        received = b""
        while b"\r\n\r\n" not in received:
            received += s.recv(65536)
    return sockets


def stream(port, upload, sample):
    """Streams STREAM_BYTES up or down through `port`, calling sample() every 50 ms."""
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(60)
    last = time.time()
    if upload:
        s.sendall(f"POST /upload HTTP/1.1\r\nHost: bench\r\nContent-Length: {STREAM_BYTES}\r\n\r\n".encode())
        chunk = b"u" * (1 << 16)
        sent = 0
        while sent < STREAM_BYTES:
            s.sendall(chunk)
            sent += len(chunk)
            if time.time() - last > 0.05:
                sample()
                last = time.time()
        s.recv(65536)
    else:
        s.sendall(b"GET /big HTTP/1.1\r\nHost: bench\r\n\r\n")
        received = 0
        while received < STREAM_BYTES:
            data = s.recv(1 << 20)
            if not data:
                break
            received += len(data)
            if time.time() - last > 0.05:
                sample()
                last = time.time()
    s.close()


def start_sink(port):
    """A plain upstream for the streaming test: drains uploads whole (nginx answers before it has
    read the body) and streams downloads, STREAM_BYTES each, in a thread of this process."""
    import threading

    server = socket.create_server(("127.0.0.1", port))

    def serve(connection):
        with connection:
            buffer = bytearray(1 << 20)
            while True:
                head = b""
                while b"\r\n\r\n" not in head:
                    data = connection.recv(65536)
                    if not data:
                        return
                    head += data
                header, rest = head.split(b"\r\n\r\n", 1)
                if header.startswith(b"POST"):
                    length = int(next(l.split(b":")[1] for l in header.split(b"\r\n") if l.lower().startswith(b"content-length")))
                    left = length - len(rest)
                    while left > 0:
                        left -= connection.recv_into(buffer, min(left, len(buffer)))
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                else:
                    connection.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {STREAM_BYTES}\r\n\r\n".encode())
                    chunk = bytes(1 << 20)
                    sent = 0
                    while sent < STREAM_BYTES:
                        connection.sendall(chunk[: min(len(chunk), STREAM_BYTES - sent)])
                        sent += len(chunk)

    def accept():
        while True:
            connection, _ = server.accept()
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()


def memory_phase():
    """Idle and 1,000-connection RSS and idle CPU ticks of every proxy; statuscope's RSS
    during 1 GiB each way."""
    processes = start_contenders(1)
    time.sleep(1)  # let every process settle after start-up before reading idle memory
    report = {}
    # Every contender sits idle through the same window, after serving traffic.
    before = {name: cpu_seconds(process.pid) for name, process in processes.items()}
    time.sleep(IDLE_SECONDS)
    idle_ticks = {name: round((cpu_seconds(process.pid) - before[name]) * CLOCK) for name, process in processes.items()}
    for name, process in processes.items():
        idle = memory(process.pid, "VmRSS")
        sockets = idle_connections(PORTS[name])
        loaded = memory(process.pid, "VmRSS")
        for s in sockets:
            s.close()
        report[name] = {"idle_rss_mib": idle / (1 << 20), "rss_1000_idle_connections_mib": loaded / (1 << 20),
                        "idle_ticks": idle_ticks[name]}
        log(f"memory {name}: idle {report[name]['idle_rss_mib']:.1f} MiB, 1000 connections {report[name]['rss_1000_idle_connections_mib']:.1f} MiB")
    for process in processes.values():
        stop(process)
    sink = 18320
    start_sink(sink)
    statuscope = os.path.join(ROOT, "target/release/statuscope")
    for name, extra in STATUSCOPE_VARIANTS.items():
        process = start(f"{name}-stream", [statuscope, "run", "--upstream", f"127.0.0.1:{sink}", "--listen",
                                           f"127.0.0.1:{PORTS[name]}", "--admin", f"127.0.0.1:{ADMIN[name]}"],
                        {"STATUSCOPE_LOG__LEVEL": "warn", **extra})
        wait_port(ADMIN[name], "/readyz")
        for direction, upload in [("upload", True), ("download", False)]:
            samples = []
            before = memory(process.pid, "VmRSS")
            stream(PORTS[name], upload, lambda: samples.append(memory(process.pid, "VmRSS")))
            report[name][f"{direction}_rss_mib"] = {"before": before / (1 << 20), "max": max(samples or [before]) / (1 << 20)}
            log(f"memory {name} {direction}: {report[name][f'{direction}_rss_mib']}")
        stop(process)
    return report


def median_range(values):
    values = [v for v in values if v is not None]
    return {"median": statistics.median(values), "min": min(values), "max": max(values)} if values else None


def main():
    ensure_packages()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    start_upstream()
    runs = []
    loads = [(c, False) for c in CONCURRENCY] + [(16, True)]
    try:
        for threads in THREADS:
            processes = start_contenders(threads)
            processes["direct"] = None
            for round_ in range(1, ROUNDS + 1):
                for connections, new_connections in loads:
                    for name in ["direct"] + STATUSCOPE + PEERS + OTHERS:
                        result = measure(name, processes[name], connections, new_connections)
                        result.update(threads=threads, round=round_, connections=connections,
                                      new_connections=new_connections, contender=name)
                        runs.append(result)
                        log(f"t{threads} r{round_} c{connections}{' new-conn' if new_connections else ''} {name}: "
                            f"{result['rps']:.0f} req/s p99 {result['p99_ms']:.2f} ms")
            for name, process in processes.items():
                if process:
                    stop(process)
        memory_report = memory_phase()
    finally:
        clean_up()
    summary = summarise(runs, loads)
    results = {"machine": {"cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d")},
               "settings": {"rounds": ROUNDS, "duration_s": DURATION, "concurrency": CONCURRENCY, "threads": THREADS},
               "runs": runs, "summary": summary, "memory": memory_report}
    with open(os.path.join(HERE, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(HERE, "results.md"), "w") as f:
        f.write(render(results, loads))
    print(render(results, loads))


def summarise(runs, loads):
    summary = []
    for threads in THREADS:
        for connections, new_connections in loads:
            cell = [r for r in runs if r["threads"] == threads and r["connections"] == connections and r["new_connections"] == new_connections]
            row = {"threads": threads, "connections": connections, "new_connections": new_connections, "contenders": {}, "ratios": {}}
            for name in ["direct"] + STATUSCOPE + PEERS + OTHERS:
                mine = [r for r in cell if r["contender"] == name]
                row["contenders"][name] = {k: median_range([r[k] for r in mine]) for k in ["rps", "p50_ms", "p99_ms", "p999_ms", "cpu_s_per_100k", "peak_rss_mib"]}
            # Ratios against the best peer of the same round, for each engine.
            ratios = {name: {"rps": [], "p99": [], "cpu": []} for name in ["statuscope", "statuscope-pingora"]}
            off = []
            for round_ in range(1, ROUNDS + 1):
                by = {r["contender"]: r for r in cell if r["round"] == round_}
                peers = [by[p] for p in PEERS if p in by]
                for name, mine in ratios.items():
                    me = by[name]
                    mine["rps"].append(me["rps"] / max(p["rps"] for p in peers))
                    mine["p99"].append(me["p99_ms"] / min(p["p99_ms"] for p in peers))
                    mine["cpu"].append(me["cpu_s_per_100k"] / min(p["cpu_s_per_100k"] for p in peers))
                off.append(by["statuscope"]["rps"] / by["statuscope-off"]["rps"])
            row["ratios"] = {
                "rps_vs_best_peer": median_range(ratios["statuscope"]["rps"]),
                "p99_vs_best_peer": median_range(ratios["statuscope"]["p99"]),
                "cpu_vs_best_peer": median_range(ratios["statuscope"]["cpu"]),
                "rps_on_vs_off": median_range(off),
                "pingora_rps_vs_best_peer": median_range(ratios["statuscope-pingora"]["rps"]),
                "pingora_p99_vs_best_peer": median_range(ratios["statuscope-pingora"]["p99"]),
                "pingora_cpu_vs_best_peer": median_range(ratios["statuscope-pingora"]["cpu"]),
            }
            row["pass"] = {
                "rps": row["ratios"]["rps_vs_best_peer"]["median"] >= 1.0,
                "p99": row["ratios"]["p99_vs_best_peer"]["median"] <= 1.0,
                "cpu": row["ratios"]["cpu_vs_best_peer"]["median"] <= 1.0,
                "on_vs_off": row["ratios"]["rps_on_vs_off"]["median"] >= 0.95,
            }
            summary.append(row)
    return summary


def fmt(cell, key, digits=0):
    value = cell[key]
    if value is None:
        return "–"
    return f"{value['median']:.{digits}f} ({value['min']:.{digits}f}–{value['max']:.{digits}f})"


def render(results, loads):
    s = results["settings"]
    lines = [
        "# Statuscope against nginx, HAProxy and Caddy",
        "",
        f"`bench/compare.py` on {results['machine']['cores']} cores, {results['machine']['date']}: {s['rounds']} interleaved rounds of "
        f"{s['duration_s']} s per run, wrk with 1 thread; medians with min–max. Upstream: nginx, 1 worker, 1 KiB JSON 200s "
        "(80 %) and 201/204/404/429/500 (4 % each). Every proxy keeps connections to the upstream alive and runs with the "
        "stated number of worker threads. `statuscope` is the fast engine (the default) with every rule on and 8 KiB "
        "sampling, `statuscope-off` the same with `findings.enabled: false`, `statuscope-pingora` the pingora engine "
        "with everything on. Ratios are taken against the best of nginx and HAProxy in the same round.",
        "",
        "## Targets at a glance (the fast engine, everything on)",
        "",
        "| threads | load | req/s ≥ 1× | p99 ≤ 1× | CPU/request ≤ 1× | on/off ≥ 0.95 |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["summary"]:
        load = f"{row['connections']} " + ("new connections" if row["new_connections"] else "keep-alive")
        cells = [f"{row['ratios'][key]['median']:.3f} {'pass' if row['pass'][ok] else '**FAIL**'}" for key, ok in
                 [("rps_vs_best_peer", "rps"), ("p99_vs_best_peer", "p99"), ("cpu_vs_best_peer", "cpu"), ("rps_on_vs_off", "on_vs_off")]]
        lines.append(f"| {row['threads']} | {load} | " + " | ".join(cells) + " |")
    lines.append("")
    for row in results["summary"]:
        load = f"{row['connections']} connections" + (", a new connection per request" if row["new_connections"] else ", keep-alive")
        lines += [f"## {row['threads']} thread{'s' if row['threads'] > 1 else ''}, {load}", "",
                  "| contender | req/s | p50 ms | p99 ms | p99.9 ms | CPU s per 100k req | peak RSS MiB |",
                  "|---|---|---|---|---|---|---|"]
        for name, cell in row["contenders"].items():
            lines.append(f"| {name} | {fmt(cell, 'rps')} | {fmt(cell, 'p50_ms', 2)} | {fmt(cell, 'p99_ms', 2)} | "
                         f"{fmt(cell, 'p999_ms', 2)} | {fmt(cell, 'cpu_s_per_100k', 2)} | {fmt(cell, 'peak_rss_mib', 1)} |")
        r, ok = row["ratios"], row["pass"]
        mark = lambda passed: "pass" if passed else "FAIL"
        lines += ["",
                  f"- req/s vs best peer: {fmt(r, 'rps_vs_best_peer', 3)} — target ≥ 1: **{mark(ok['rps'])}**",
                  f"- p99 vs best peer: {fmt(r, 'p99_vs_best_peer', 3)} — target ≤ 1: **{mark(ok['p99'])}**",
                  f"- CPU per request vs best peer: {fmt(r, 'cpu_vs_best_peer', 3)} — target ≤ 1: **{mark(ok['cpu'])}**",
                  f"- everything on vs off: {fmt(r, 'rps_on_vs_off', 3)} — target ≥ 0.95: **{mark(ok['on_vs_off'])}**",
                  f"- the pingora engine vs best peer: req/s {fmt(r, 'pingora_rps_vs_best_peer', 3)}, p99 "
                  f"{fmt(r, 'pingora_p99_vs_best_peer', 3)}, CPU per request {fmt(r, 'pingora_cpu_vs_best_peer', 3)}", ""]
    lines += ["## Memory and idleness", "",
              f"| contender | idle RSS MiB | RSS with 1,000 idle keep-alive connections MiB | CPU ticks over {IDLE_SECONDS} idle s |",
              "|---|---|---|---|"]
    for name, m in results["memory"].items():
        lines.append(f"| {name} | {m['idle_rss_mib']:.1f} | {m['rss_1000_idle_connections_mib']:.1f} | {m['idle_ticks']} |")
    lines += ["", "Statuscope during 1 GiB streamed through it (RSS before → highest sample):", ""]
    for name in STATUSCOPE:
        m = results["memory"][name]
        for direction in ["upload", "download"]:
            d = m[f"{direction}_rss_mib"]
            lines.append(f"- {name}, {direction}: {d['before']:.1f} → {d['max']:.1f} MiB")
    m = results["memory"]["statuscope"]
    growth = max(m[f"{d}_rss_mib"]["max"] - m[f"{d}_rss_mib"]["before"] for d in ["upload", "download"])
    lines += ["",
              f"- idle RSS ≤ 20 MiB: **{'pass' if m['idle_rss_mib'] <= 20 else 'FAIL'}** ({m['idle_rss_mib']:.1f})",
              f"- RSS with 1,000 idle connections ≤ 64 MiB: **{'pass' if m['rss_1000_idle_connections_mib'] <= 64 else 'FAIL'}** "
              f"({m['rss_1000_idle_connections_mib']:.1f})",
              f"- RSS flat while 1 GiB streams each way (growth ≤ {FLAT_MIB} MiB): **{'pass' if growth <= FLAT_MIB else 'FAIL'}** "
              f"(+{growth:.1f})",
              f"- no CPU tick over {IDLE_SECONDS} idle seconds: **{'pass' if m['idle_ticks'] == 0 else 'FAIL'}** ({m['idle_ticks']})", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
