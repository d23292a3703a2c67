#!/usr/bin/env python3
"""What one OTLP export costs: statuscope (release, fast engine) with ROUTES (default 500)
routes tallied, pushing every 200 ms to compare.py's nginx upstream standing in for the
collector (it answers 200 to /v1/metrics), for DURATION seconds (default 20). The CPU time of
the push's own thread (`statuscope-otlp`, from /proc) over the exports taken is one export's
cost: reading the registry, the OpenTelemetry views, protobuf encoding and the POST. Beside it,
the admin thread's CPU per `/metrics` scrape of the same registry. Run by `make bench`; figures
in docs/performance.md.

    ROUTES=500 DURATION=20 bench/otlp_export.py
"""

import os
import subprocess
import sys
import time
import urllib.request

import compare

PORT, ADMIN = 18395, 18396
ROUTES = int(os.environ.get("ROUTES", "500"))
DURATION = float(os.environ.get("DURATION", "20"))
SCRAPES = 100
TICK = os.sysconf("SC_CLK_TCK")


def thread_cpu(pid, name):
    """Seconds of CPU the threads of `pid` called `name` have used."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/comm") as f:
            if f.read().strip() != name[:15]:  # the kernel keeps 15 bytes of a thread name
                continue
        with open(f"/proc/{pid}/task/{task}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def metric(name, label=""):
    with urllib.request.urlopen(f"http://127.0.0.1:{ADMIN}/metrics") as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and label in line)


def main():
    compare.ensure_packages()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=compare.ROOT, check=True)
    try:
        compare.start_upstream()
        env = {
            "STATUSCOPE_LOG__LEVEL": "warn",
            "STATUSCOPE_ROUTES__MAX": str(ROUTES + 100),
            "STATUSCOPE_OTLP__ENDPOINT": f"http://127.0.0.1:{compare.UPSTREAM}",
            "STATUSCOPE_OTLP__INTERVAL": "200ms",
        }
        argv = [os.path.join(compare.ROOT, "target/release/statuscope"), "run", "--upstream",
                f"127.0.0.1:{compare.UPSTREAM}", "--listen", f"127.0.0.1:{PORT}", "--admin", f"127.0.0.1:{ADMIN}"]
        process = compare.start("otlp-export", argv, env)
        compare.wait_port(ADMIN, "/readyz")
        uris = compare.write("otlp-uris.txt", "".join(
            f"http://127.0.0.1:{PORT}/r{n}/ok\n" for n in range(ROUTES)))
        subprocess.run(["h2load", "--h1", "-n", str(ROUTES * 4), "-c", "8", "-t", "1", "-i", uris],
                       check=True, capture_output=True)
        before, exports_before = thread_cpu(process.pid, "statuscope-otlp"), metric("statuscope_otlp_exports_total", 'outcome="success"')
        time.sleep(DURATION)
        cpu, exports = thread_cpu(process.pid, "statuscope-otlp") - before, metric("statuscope_otlp_exports_total", 'outcome="success"') - exports_before
        admin_before = thread_cpu(process.pid, "statuscope-admin")
        for _ in range(SCRAPES):
            urllib.request.urlopen(f"http://127.0.0.1:{ADMIN}/metrics").read()
        admin = thread_cpu(process.pid, "statuscope-admin") - admin_before
        print(f"OTLP export: {cpu / exports * 1000:.2f} ms of CPU per export ({exports:.0f} exports, "
              f"{ROUTES} routes); a /metrics scrape of the same registry: "
              f"{admin / SCRAPES * 1000:.2f} ms", flush=True)
    finally:
        compare.clean_up()


if __name__ == "__main__":
    sys.exit(main())
