"""HTTP/1.1 plain-text hello, one worker: pounce vs uvicorn (pure Python) vs hypercorn, side by side.

Run: python benchmarks/http_hello.py [--duration 10] [--rounds 1] [--connections 64 256]
uvicorn (`--http h11 --loop asyncio`) and hypercorn are installed on first use into `.bench/`
at the repository root; `wrk` is installed from Debian when it is missing. Each server runs in
turn on a free loopback port, pinned to one CPU with wrk on the other. For every connection
count the table gives requests/s, p99 latency and pounce's ratio against each peer (ratios
are what to read on a noisy machine), then a chirp hello route against the raw ASGI app on
pounce. With `--rounds N` the servers take turns N times and the medians are reported.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
from collections.abc import Callable

from harness import CLIENT_CPU, HERE, SERVER_CPU, free_port, peer_python, pin, pounce_command, wait_for, wrk

Command = Callable[[str, int], list[str]]


def servers() -> dict[str, Command]:
    peer = str(peer_python("uvicorn", "hypercorn"))
    return {
        "pounce": lambda app, port: pounce_command(app, port),
        "uvicorn-h11": lambda app, port: [peer, "-m", "uvicorn", app, "--port", str(port), "--http", "h11",
                                          "--loop", "asyncio", "--no-access-log", "--log-level", "warning"],
        "hypercorn": lambda app, port: [peer, "-m", "hypercorn", app, "--bind", f"127.0.0.1:{port}",
                                        "--log-level", "warning"],
    }  # fmt: skip


def measure(command: Command, app: str, duration: int, connections: int) -> tuple[float, float]:
    """Requests/s and p99 (ms) of one server, started fresh and warmed up."""
    port = free_port()
    proc = subprocess.Popen([*pin(SERVER_CPU), *command(app, port)], cwd=HERE, stdout=subprocess.DEVNULL)
    try:
        wait_for(port)
        wrk(port, 2, connections)  # warm-up
        return wrk(port, duration, connections)
    finally:
        proc.terminate()
        proc.wait(10)


def median_of(results: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in results), statistics.median(r[1] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per server (default 10)")
    parser.add_argument("--rounds", type=int, default=1, help="times each server is measured (default 1)")
    parser.add_argument("--connections", type=int, nargs="+", default=[64, 256])
    args = parser.parse_args()
    commands = servers()
    # pounce's two apps run back to back, so the chirp-vs-raw ratio sees the same machine
    cases = [
        ("pounce", "hello_raw:app", "raw ASGI"),
        ("pounce", "apps:chirp_app", "chirp route"),
        ("uvicorn-h11", "hello_raw:app", "raw ASGI"),
        ("hypercorn", "hello_raw:app", "raw ASGI"),
    ]
    print(f"server CPU {SERVER_CPU}, wrk CPU {CLIENT_CPU}, {args.duration}s per run, {args.rounds} round(s)")
    for connections in args.connections:
        runs: list[list[tuple[float, float]]] = [[] for _ in cases]
        for _ in range(args.rounds):  # servers take turns, so slow drift hits all of them
            for i, (name, app, _label) in enumerate(cases):
                runs[i].append(measure(commands[name], app, args.duration, connections))
        raw, chirp, uvicorn, hypercorn = runs

        def ratio(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
            """The median over rounds of a/b requests/s, each round's pair measured minutes apart at most."""
            return statistics.median(x[0] / y[0] for x, y in zip(a, b, strict=True))

        print(f"\n{connections} connections (medians over rounds)")
        print(f"{'server':<12} {'app':<12} {'req/s':>10} {'p99 ms':>8} {'pounce/this':>12}")
        for (name, _app, label), results in zip(cases, runs, strict=True):
            rps, p99 = median_of(results)
            print(f"{name:<12} {label:<12} {rps:>10.0f} {p99:>8.2f} {ratio(raw, results):>12.2f}")
        print(f"pounce / uvicorn-h11: {ratio(raw, uvicorn):.2f}x (target >= 1.0)")
        print(f"pounce / hypercorn:   {ratio(raw, hypercorn):.2f}x (target >= 1.8)")
        print(
            f"p99 pounce vs uvicorn: {median_of(raw)[1]:.2f} ms vs {median_of(uvicorn)[1]:.2f} ms (target: no worse)"
        )
        print(
            f"chirp route over raw ASGI on pounce: +{(ratio(raw, chirp) - 1) * 100:.0f}% time (target <= 25%)"
        )


if __name__ == "__main__":
    main()
