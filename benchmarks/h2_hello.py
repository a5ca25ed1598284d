"""HTTP/2 plain-text hello with h2load: pounce vs hypercorn, one worker, on the same event loop.

Run: python benchmarks/h2_hello.py [--requests 50000] [--rounds 3]
hypercorn is installed on first use into `.bench/` at the repository root, and `h2load` from
Debian (nghttp2-client) when it is missing. Both servers speak cleartext HTTP/2 with prior
knowledge, so TLS cost does not blur the comparison, and are compared like with like: pounce
on asyncio against hypercorn's asyncio worker, pounce on uvloop against hypercorn's uvloop
worker. Each server runs pinned to one CPU with h2load (one thread, `-c 16 -m 10`) on the
other; with `--rounds N` the servers take turns N times and the medians are reported, with the
server's CPU time per request (the steadiest figure on a shared machine).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess

import harness
from harness import CLIENT_CPU, SERVER_CPU, pin

TARGET = 1.8


def servers() -> dict[str, list[str]]:
    """Each server's command, with `{port}` for its port."""
    peer = str(harness.peer_python("hypercorn", "uvloop"))
    hypercorn = [peer, "-m", "hypercorn", "hello_raw:app", "--bind", "127.0.0.1:{port}", "--log-level", "warning",
                 "--config", "hypercorn.toml"]  # fmt: skip
    return {
        "pounce asyncio": harness.pounce_command("hello_raw:app", 0, "--loop", "asyncio"),
        "hypercorn asyncio": [*hypercorn, "--worker-class", "asyncio"],
        "pounce uvloop": harness.pounce_command("hello_raw:app", 0, "--loop", "uvloop"),
        "hypercorn uvloop": [*hypercorn, "--worker-class", "uvloop"],
    }


def h2load(port: int, requests: int) -> tuple[float, int]:
    """Requests/s and the number of requests that succeeded."""
    out = subprocess.run(
        [*pin(CLIENT_CPU), harness.require_tool("h2load", "nghttp2-client"), "-t", "1", "-n", str(requests), "-c", "16",
         "-m", "10", f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out).group(1))  # type: ignore[union-attr]
    succeeded = int(re.search(r"(\d+) succeeded", out).group(1))  # type: ignore[union-attr]
    return rps, succeeded


def measure(command: list[str], requests: int) -> tuple[float, int, float]:
    """Requests/s, requests that succeeded and CPU microseconds a request, for one fresh server."""
    port = harness.free_port()
    argv = [arg.replace("{port}", str(port)) for arg in command]
    if "--port" in argv:
        argv[argv.index("--port") + 1] = str(port)
    proc = subprocess.Popen([*pin(SERVER_CPU), *argv], cwd=harness.HERE, stdout=subprocess.DEVNULL)
    try:
        harness.wait_for(port)
        h2load(port, 2000)  # warm-up
        before = harness.cpu_seconds(proc.pid)
        rps, ok = h2load(port, requests)
        return rps, ok, (harness.cpu_seconds(proc.pid) - before) / requests * 1e6
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=1, help="times each server is measured (default 1)")
    args = parser.parse_args()
    commands = servers()
    runs: dict[str, list[tuple[float, int, float]]] = {name: [] for name in commands}
    for _ in range(args.rounds):  # servers take turns, so slow drift hits all of them
        for name, command in commands.items():
            runs[name].append(measure(command, args.requests))
    print(
        f"server CPU {SERVER_CPU}, h2load CPU {CLIENT_CPU}, {args.requests} requests, {args.rounds} round(s)"
    )
    print(f"{'server':<18} {'req/s':>10} {'CPU us/req':>11} {'succeeded':>10}")
    for name, results in runs.items():
        rps, cpu = statistics.median(r[0] for r in results), statistics.median(r[2] for r in results)
        ok = min(r[1] for r in results)
        print(f"{name:<18} {rps:>10.0f} {cpu:>11.1f} {ok:>6}/{args.requests}")
    for loop in ("asyncio", "uvloop"):
        pairs = zip(runs[f"pounce {loop}"], runs[f"hypercorn {loop}"], strict=True)
        ratio = statistics.median(p[0] / h[0] for p, h in pairs)
        print(f"pounce / hypercorn on {loop} (h2): {ratio:.2f}x (target >= {TARGET})")


if __name__ == "__main__":
    main()
