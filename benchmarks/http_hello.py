"""HTTP/1.1 plain-text hello, one worker: pounce vs uvicorn, granian and hypercorn, side by side.

Run: python benchmarks/http_hello.py [--duration 10] [--rounds 1] [--connections 64 256] [--connection-close]
Two groups are compared: pounce's fast path (httptools + uvloop, the `fast` extra) against
uvicorn[standard] (`--http httptools --loop uvloop`) and granian (Rust, its ASGI interface on
uvloop), and pounce on h11 + asyncio against uvicorn (`--http h11 --loop asyncio`) and
hypercorn. Each pair runs with the access log off on
every server, then on on every server (its lines go to /dev/null). The peers are installed on
first use into `.bench/` at the repository root; `wrk` is installed from Debian when it is
missing. Each server runs in turn on a free loopback port, pinned to one CPU with wrk on the
other. For every connection count the table gives requests/s, p99 latency and the ratio of
the pounce row of its pair against each server (ratios are what to read on a noisy machine),
and a chirp hello route on pounce's fast path against the raw ASGI app. With `--rounds N`
the servers take turns N times and the medians are reported. The server's CPU time per
request is given too: the steadiest figure on a machine that other jobs share. With
`--connection-close` every request asks for `Connection: close`, so each one is served on a
connection of its own (as behind a proxy that does not keep upstream connections alive); that
pass runs with the access log off only.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from harness import (
    CLIENT_CPU,
    HERE,
    SERVER_CPU,
    cpu_seconds,
    free_port,
    peer_python,
    pin,
    pounce_command,
    wait_for,
    wrk_run,
)

Command = Callable[[str, int, bool], list[str]]
FAST = ("--http", "httptools", "--loop", "uvloop")
PORTABLE = ("--http", "h11", "--loop", "asyncio")


def pounce(parser: tuple[str, ...]) -> Command:
    def command(app: str, port: int, access: bool) -> list[str]:
        log = ("--access-log",) if access else ()
        return [*pounce_command(app, port, *parser), *log]  # the later --access-log wins

    return command


def uvicorn(peer: str, http: str, loop: str) -> Command:
    def command(app: str, port: int, access: bool) -> list[str]:
        log = ["--log-level", "info"] if access else ["--no-access-log", "--log-level", "warning"]
        return [peer, "-m", "uvicorn", app, "--port", str(port), "--http", http, "--loop", loop, *log]

    return command


def granian(peer: str) -> Command:
    """granian's ASGI interface on uvloop, one worker process (pinned with its server)."""

    def command(app: str, port: int, access: bool) -> list[str]:
        log = ["--access-log"] if access else ["--no-access-log"]
        return [peer, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
                "--workers", "1", "--loop", "uvloop", "--http", "1", "--log-level", "warning", *log, app]  # fmt: skip

    return command


def hypercorn(peer: str) -> Command:
    def command(app: str, port: int, access: bool) -> list[str]:
        log = ["--access-logfile", "-"] if access else []
        return [peer, "-m", "hypercorn", app, "--bind", f"127.0.0.1:{port}", "--log-level", "warning", *log]

    return command


@dataclass(frozen=True)
class Case:
    name: str
    app: str
    command: Command
    pair: str  # the pounce row this one is compared with


def cases() -> list[Case]:
    peer = str(peer_python("uvicorn", "uvloop", "httptools", "hypercorn", "granian"))
    return [
        Case("pounce fast", "hello_raw:app", pounce(FAST), "pounce fast"),
        Case("uvicorn[std]", "hello_raw:app", uvicorn(peer, "httptools", "uvloop"), "pounce fast"),
        Case("granian", "hello_raw:app", granian(peer), "pounce fast"),
        Case("chirp (fast)", "apps:chirp_app", pounce(FAST), "pounce fast"),
        Case("pounce h11", "hello_raw:app", pounce(PORTABLE), "pounce h11"),
        Case("uvicorn h11", "hello_raw:app", uvicorn(peer, "h11", "asyncio"), "pounce h11"),
        Case("hypercorn", "hello_raw:app", hypercorn(peer), "pounce h11"),
    ]


def measure(
    case: Case, duration: int, connections: int, access: bool, close: bool = False
) -> tuple[float, float, float]:
    """Requests/s, p99 (ms) and the server's CPU microseconds per request, for one server
    started fresh and warmed up. The CPU cost is the steadier number on a shared machine:
    requests/s drops when another job takes the server's CPU, the CPU per request hardly does."""
    port = free_port()
    proc = subprocess.Popen(
        [*pin(SERVER_CPU), *case.command(case.app, port, access)],
        cwd=HERE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(port)
        wrk_run(port, 2, connections, close=close)  # warm-up
        before = cpu_seconds(proc.pid)  # taskset runs the server in its own process
        run = wrk_run(port, duration, connections, close=close)
        return run.rps, run.p99_ms, (cpu_seconds(proc.pid) - before) / run.requests * 1e6
    finally:
        proc.terminate()
        proc.wait(10)


Result = tuple[float, float, float]  # requests/s, p99 ms, CPU µs per request


def median_ratio(runs: dict[str, list[Result]], a: str, b: str) -> float:
    """The median over rounds of a/b requests/s, each round's pair measured minutes apart at most."""
    return statistics.median(x[0] / y[0] for x, y in zip(runs[a], runs[b], strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per server (default 10)")
    parser.add_argument("--rounds", type=int, default=1, help="times each server is measured (default 1)")
    parser.add_argument("--connections", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--connection-close", action="store_true", help="a new connection every request")
    args = parser.parse_args()
    table = cases()
    close = args.connection_close
    print(f"server CPU {SERVER_CPU}, wrk CPU {CLIENT_CPU}, {args.duration}s per run, {args.rounds} round(s)")
    for access in (False,) if close else (False, True):
        for connections in args.connections:
            runs: dict[str, list[Result]] = {case.name: [] for case in table}
            for _ in range(args.rounds):  # servers take turns, so slow drift hits all of them
                for case in table:
                    runs[case.name].append(measure(case, args.duration, connections, access, close))

            ratio = functools.partial(median_ratio, runs)
            kind = "connections, Connection: close" if close else "connections"
            print(f"\n{connections} {kind}, access log {'on' if access else 'off'} (medians over rounds)")
            print(f"{'server':<14} {'req/s':>10} {'p99 ms':>8} {'CPU us/req':>11} {'pair/this':>10}")
            for case in table:
                rps, p99, cpu = (statistics.median(r[i] for r in runs[case.name]) for i in range(3))
                print(
                    f"{case.name:<14} {rps:>10.0f} {p99:>8.2f} {cpu:>11.1f} {ratio(case.pair, case.name):>10.2f}"
                )
            print(f"pounce fast / uvicorn[std]: {ratio('pounce fast', 'uvicorn[std]'):.2f}x")
            print(f"pounce fast / granian:      {ratio('pounce fast', 'granian'):.2f}x")
            print(f"pounce h11 / uvicorn h11:   {ratio('pounce h11', 'uvicorn h11'):.2f}x")
            print(f"pounce h11 / hypercorn:     {ratio('pounce h11', 'hypercorn'):.2f}x")
            print(f"pounce fast / pounce h11:   {ratio('pounce fast', 'pounce h11'):.2f}x")
            print(
                f"chirp route over raw ASGI (fast): +{(ratio('pounce fast', 'chirp (fast)') - 1) * 100:.0f}% time"
            )


if __name__ == "__main__":
    main()
