"""Soak: does one pounce worker give back its memory and file descriptors over a long run?

Run: python benchmarks/soak.py [--requests 1000000] [--connections 100000] [--ws 10000]
                               [--sse 10000] [--json OUT] [--tracemalloc FRAMES]

Starts `pounce serve` (one worker pinned to one CPU, access log off, a free loopback port read
from its `serving on` log line) with `soak_app.py`, a raw ASGI app, and drives four phases
through the same process, the load generators pinned to the other CPU:

1. keep-alive: `--requests` GETs over 64 keep-alive connections (wrk, in runs of a few seconds
   until the count is reached); target: RSS grows by at most 5 MB from the end of the warm-up;
2. connections: `--connections` connections, each opened, used for one GET and closed by the
   client; target: open fds back to where they were after the warm-up;
3. websocket: `--ws` WebSocket connections (handshake with permessage-deflate, one echo, close);
4. sse: `--sse` SSE streams, each closed by the client after the first event; the server must
   notice every disconnect on its own. Target for 3 and 4: fds back to the baseline as in 2.

The first 5 % of each phase is its warm-up (lazy imports, caches filled once, the allocator's
first arenas); RSS is also sampled after each quarter, which tells a leak (steady growth) from
allocator noise (a step that then plateaus). fds are read after the server has had up to
`SETTLE` seconds to close what the clients closed. With `--tracemalloc N` the server traces
allocations (N frames) and the script prints, per phase, the largest growths between its
snapshots after the warm-up and at the end. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness import CLIENT_CPU, HERE, SERVER_CPU, pin, pin_self, pounce_command, wrk_run
from soak_app import SNAPSHOT_DIR_ENV, SNAPSHOT_PATH

RSS_GROWTH_TARGET_MB = 5.0
WARMUP_SHARE = 0.05
SETTLE = 10.0  # seconds the server gets to close what the clients closed
CLIENT_TIMEOUT = 10.0  # per connection, so a stuck connection is an error, not a hang
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
SSE_REQUEST = b"GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"


class ServerProcess:
    """The pounce worker under test: started, measured through /proc, stopped."""

    def __init__(self, workdir: Path, tracemalloc_frames: int) -> None:
        self.log = workdir / "pounce.log"
        env = dict(os.environ)
        if tracemalloc_frames:
            env["PYTHONTRACEMALLOC"] = str(tracemalloc_frames)
            env[SNAPSHOT_DIR_ENV] = str(workdir)
        command = [*pin(SERVER_CPU), *pounce_command("soak_app:app", 0, log_level="info")]
        with self.log.open("wb") as out:  # the child writes to the file, never to an unread pipe
            self.proc = subprocess.Popen(command, cwd=HERE, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.port = self._wait_for_port()

    def _wait_for_port(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"serving on http://127\.0\.0\.1:(\d+)", self.log.read_text(errors="replace"))
            if found:
                return int(found.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise SystemExit(f"error: pounce did not start; its log:\n{self.log.read_text(errors='replace')}")

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def fd_targets(self) -> list[str]:
        """What each open fd is (for a report when they do not come back)."""
        directory = f"/proc/{self.proc.pid}/fd"
        targets = []
        for name in os.listdir(directory):
            with contextlib.suppress(OSError):
                targets.append(os.readlink(f"{directory}/{name}"))
        return sorted(targets)

    def settle(self, target: int | None) -> int:
        """Open fds once they are back to `target` (or, with None, have stopped changing)."""
        deadline = time.monotonic() + SETTLE
        last, since = self.fds(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.fds()
            if target is not None and now <= target:
                return now
            if now != last:
                last, since = now, time.monotonic()
            elif target is None and time.monotonic() - since >= 0.5:
                return now
        return self.fds()

    def snapshot(self) -> tracemalloc.Snapshot:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{SNAPSHOT_PATH}", timeout=120) as answer:
            path = answer.read().decode()
        if not path.startswith("/"):
            raise SystemExit(f"error: {path}")
        return tracemalloc.Snapshot.load(path)

    def problems(self) -> list[str]:
        """The warnings, errors and tracebacks the server has logged so far."""
        text = self.log.read_text(errors="replace").splitlines()
        return [line for line in text if re.search(r" (WARNING|ERROR|CRITICAL) |^Traceback", line)]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Phase:
    """One phase's results, as printed and written to --json."""

    name: str
    target: str
    count: int = 0
    seconds: float = 0.0
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    fds_before: int = 0
    fds_after: int = 0
    rss_samples: list[tuple[int, float]] = field(default_factory=list)  # (count so far, RSS MB)
    errors: int = 0
    first_error: str | None = None
    met: bool = False

    @property
    def growth_mb(self) -> float:
        return self.rss_after_mb - self.rss_before_mb


Connect = Callable[[], Awaitable[None]]  # one whole client connection
# A driver performs about n more units of its phase and returns how many it did and how many failed.
Driver = Callable[[int], tuple[int, int, str | None]]


def run_phase(server: ServerProcess, phase: Phase, total: int, drive: Driver, traced: bool) -> Phase:
    """Warm up, then drive the rest of `total` in quarters, sampling RSS and fds around them."""
    start = time.monotonic()

    def advance(goal: int) -> None:
        if goal > phase.count:
            done, failed, first = drive(goal - phase.count)
            phase.count += done
            phase.errors += failed
            phase.first_error = phase.first_error or first

    advance(max(1, int(total * WARMUP_SHARE)))
    phase.fds_before = server.settle(None)
    phase.rss_before_mb = server.rss_mb()
    phase.rss_samples.append((phase.count, phase.rss_before_mb))
    before = server.snapshot() if traced else None
    for quarter in range(1, 5):
        advance(total * quarter // 4)
        phase.fds_after = server.settle(phase.fds_before)
        phase.rss_samples.append((phase.count, server.rss_mb()))
    phase.seconds = time.monotonic() - start
    phase.rss_after_mb = phase.rss_samples[-1][1]
    fds_back = phase.fds_after <= phase.fds_before
    if phase.name == "keep-alive":
        phase.met = phase.growth_mb <= RSS_GROWTH_TARGET_MB and not phase.errors
    else:
        phase.met = fds_back and not phase.errors
    if not fds_back:
        print(f"  {phase.name}: fds still open after {SETTLE:.0f}s: {server.fd_targets()}", file=sys.stderr)
    if before is not None:
        report_growth(phase.name, before, server.snapshot())
    return phase


def report_growth(name: str, before: tracemalloc.Snapshot, after: tracemalloc.Snapshot) -> None:
    """The allocation sites that grew most over a phase: where a leak would show, by traceback."""
    ignore = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    ]
    diff = after.filter_traces(ignore).compare_to(before.filter_traces(ignore), "traceback")
    print(f"\n{name}: largest allocation growths in the server since the warm-up (tracemalloc)")
    for stat in diff[:8]:
        print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks")
        for line in stat.traceback.format(most_recent_first=True)[:6]:
            print(f"      {line}")


# -- the drivers ---------------------------------------------------------------------------
def keep_alive_driver(port: int, connections: int) -> Driver:
    """wrk runs sized from the rate of the last one, so the count overshoots by about a second's worth."""
    rate = 0.0

    def drive(n: int) -> tuple[int, int, str | None]:
        nonlocal rate
        done = failed = 0
        first = None
        while done < n:
            seconds = 1 if not rate else max(1, math.ceil((n - done) / rate))
            run = wrk_run(port, seconds, connections)
            rate = run.requests / seconds
            done += run.requests
            if run.errors:  # counted per wrk run: wrk reports totals, not which requests failed
                failed += 1
                first = first or run.errors
        return done, failed, first

    return drive


def client_driver(connect: Connect, concurrency: int) -> Driver:
    """Run `connect()` (a coroutine: one whole connection) n times, `concurrency` at a time."""

    def drive(n: int) -> tuple[int, int, str | None]:
        failures: list[str] = []

        async def worker(share: int) -> None:
            for _ in range(share):
                try:
                    async with asyncio.timeout(CLIENT_TIMEOUT):
                        await connect()
                except Exception as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")

        async def main() -> None:
            shares = [n // concurrency + (i < n % concurrency) for i in range(concurrency)]
            await asyncio.gather(*(worker(share) for share in shares if share))

        asyncio.run(main())
        return n, len(failures), failures[0] if failures else None

    return drive


@contextlib.asynccontextmanager
async def opened(port: int, request: bytes) -> AsyncIterator[asyncio.StreamReader]:
    """A connection that has sent `request`; the client closes it on the way out."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        yield reader
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def read_head(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200 "):
        raise RuntimeError(f"unexpected response: {head[:60]!r}")
    return head


def one_request(port: int) -> Connect:
    async def connect() -> None:
        async with opened(port, REQUEST) as reader:
            head = await read_head(reader)
            length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)

    return connect


def websocket_echo(port: int) -> Connect:
    from websockets.asyncio.client import connect as ws_connect  # dev extra

    async def connect() -> None:
        async with ws_connect(f"ws://127.0.0.1:{port}/ws", proxy=None) as ws:
            await ws.send("ping")
            if await ws.recv() != "ping":
                raise RuntimeError("the echo did not match")

    return connect


def sse_first_event(port: int) -> Connect:
    async def connect() -> None:
        async with opened(port, SSE_REQUEST) as reader:
            await read_head(reader)
            if b"data: hello" not in await reader.readuntil(b"\n\n"):
                raise RuntimeError("the first event was not data: hello")
        # leaving the block closes the connection mid-stream

    return connect


# -- output ----------------------------------------------------------------------------------
def print_table(phases: list[Phase]) -> None:
    print(f"\n{'phase':<11} {'count':>10} {'time s':>7} {'per s':>7} {'RSS before':>10} {'after':>6} "
          f"{'growth':>7} {'fds before':>10} {'after':>5}  {'target':<26} met")  # fmt: skip
    for p in phases:
        print(f"{p.name:<11} {p.count:>10,} {p.seconds:>7.1f} {p.count / p.seconds:>7,.0f} "
              f"{p.rss_before_mb:>8.1f}MB {p.rss_after_mb:>6.1f} {p.growth_mb:>+7.2f} {p.fds_before:>10} "
              f"{p.fds_after:>5}  {p.target:<26} {'yes' if p.met else 'NO'}")  # fmt: skip
    print("\nRSS (MB) after the warm-up and each quarter:")
    for p in phases:
        samples = "  ".join(f"{count:,}: {rss:.1f}" for count, rss in p.rss_samples)
        print(f"  {p.name:<11} {samples}")
    for p in phases:
        if p.errors:
            print(f"  {p.name}: {p.errors} failed, first: {p.first_error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000, help="keep-alive requests (phase 1)")
    parser.add_argument("--connections", type=int, default=100_000, help="one-request connections (phase 2)")
    parser.add_argument("--ws", type=int, default=10_000, help="WebSocket connections (phase 3)")
    parser.add_argument("--sse", type=int, default=10_000, help="SSE connections (phase 4)")
    parser.add_argument("--concurrency", type=int, default=32, help="connections at once in phases 2-4")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON")
    parser.add_argument("--tracemalloc", type=int, default=0, metavar="FRAMES",
                        help="trace the server's allocations and diff them per phase (slow)")  # fmt: skip
    args = parser.parse_args()
    pin_self(CLIENT_CPU)
    phases: list[Phase] = []
    with tempfile.TemporaryDirectory(prefix="pounce-soak-") as tmp:
        server = ServerProcess(Path(tmp), args.tracemalloc)
        try:
            print(f"pounce pid {server.proc.pid} on port {server.port}; RSS at start {server.rss_mb():.1f} MB, "
                  f"{server.fds()} fds")  # fmt: skip
            port, traced = server.port, bool(args.tracemalloc)
            plan: list[tuple[str, str, int, Driver]] = [
                ("keep-alive", f"RSS growth <= {RSS_GROWTH_TARGET_MB:g} MB", args.requests,
                 keep_alive_driver(port, 64)),
                ("connections", "fds back to baseline", args.connections,
                 client_driver(one_request(port), args.concurrency)),
                ("websocket", "fds back to baseline", args.ws, client_driver(websocket_echo(port), args.concurrency)),
                ("sse", "fds back to baseline", args.sse, client_driver(sse_first_event(port), args.concurrency)),
            ]  # fmt: skip
            for name, target, total, drive in plan:
                if total > 0:
                    print(f"{name}: {total:,} ...", flush=True)
                    phases.append(run_phase(server, Phase(name, target), total, drive, traced))
            problems = server.problems()
        finally:
            server.stop()
    print_table(phases)
    if args.tracemalloc:
        print("\nnote: with --tracemalloc, RSS includes the tracer's tables: read the diffs instead")
    if problems:
        print(f"\nthe server logged {len(problems)} warning or error line(s), the first: {problems[0]}")
    if args.json:
        results = {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": " ".join(["python", "benchmarks/soak.py", *sys.argv[1:]]),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "server_log_problems": problems,
            "phases": [{**asdict(p), "growth_mb": p.growth_mb} for p in phases],
        }
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    sys.exit(0 if all(p.met for p in phases) else 1)


if __name__ == "__main__":
    main()
