"""HTTP/1.1 plain-text hello, one worker, 64 connections: pounce vs uvicorn (h11) vs hypercorn.

Run: python benchmarks/http11_hello.py [--duration 10]
Needs `wrk` on PATH and `pip install uvicorn hypercorn` (the `bench` extra).
Each server runs in turn on a free loopback port; the table gives requests/s, p99 latency
and the ratio against pounce, which is what to read on a noisy machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


# With two or more CPUs the one-worker server and the load generator each get their own
# CPU, so they do not take turns on one and the run-to-run noise shrinks.
SERVER_CPU, CLIENT_CPU = 0, 1


def pin(cpu: int) -> list[str]:
    if shutil.which("taskset") and len(os.sched_getaffinity(0)) >= 2:
        return ["taskset", "-c", str(cpu)]
    return []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start")


SERVERS = {
    "pounce": lambda app, port: [sys.executable, "-m", "pounce", "serve", "--app", app, "--port", str(port),
                                 "--no-access-log", "--log-level", "warning"],
    "uvicorn-h11": lambda app, port: [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--http", "h11",
                                      "--loop", "asyncio", "--no-access-log", "--log-level", "warning"],
    "hypercorn": lambda app, port: [sys.executable, "-m", "hypercorn", app, "--bind", f"127.0.0.1:{port}",
                                    "--log-level", "warning"],
}  # fmt: skip


def wrk(port: int, duration: int, connections: int = 64, pinned: bool = True) -> tuple[float, float]:
    out = subprocess.run(
        [*(pin(CLIENT_CPU) if pinned else []), "wrk", "-t", "2", "-c", str(connections), "-d", f"{duration}s", "--latency",
         f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99_text = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99_text, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99_text.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    if errors:
        print(f"  warning: {errors.group(0)}", file=sys.stderr)
    return rps, float(p99_text.group(1)) * scale


def measure(name: str, app: str, duration: int) -> tuple[float, float]:
    port = free_port()
    proc = subprocess.Popen(
        [*pin(SERVER_CPU), *SERVERS[name](app, port)], cwd=HERE, stdout=subprocess.DEVNULL
    )
    try:
        wait_for(port)
        wrk(port, 2)  # warm-up
        return wrk(port, duration)
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    args = parser.parse_args()
    rows = []
    for name in SERVERS:
        rows.append((name, "raw ASGI", *measure(name, "apps:raw", args.duration)))
    rows.append(("pounce", "chirp route", *measure("pounce", "apps:chirp_app", args.duration)))
    base = rows[0][2]
    print(f"{'server':<12} {'app':<12} {'req/s':>10} {'p99 ms':>8} {'pounce/this':>12}")
    for name, app, rps, p99 in rows:
        print(f"{name:<12} {app:<12} {rps:>10.0f} {p99:>8.2f} {base / rps:>12.2f}")
    uvicorn, hypercorn, chirp = rows[1][2], rows[2][2], rows[3][2]
    print(f"\npounce / uvicorn-h11: {base / uvicorn:.2f}x (target >= 1.0)")
    print(f"pounce / hypercorn:   {base / hypercorn:.2f}x (target >= 1.8)")
    print(f"p99 pounce vs uvicorn: {rows[0][3]:.2f} ms vs {rows[1][3]:.2f} ms (target: no worse)")
    print(f"chirp route overhead over raw ASGI on pounce: {(base / chirp - 1) * 100:.0f}% (target <= 25%)")


if __name__ == "__main__":
    main()
