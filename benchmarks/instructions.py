"""Instructions per request under callgrind: pounce's fast path against uvicorn[standard].

Run: python benchmarks/instructions.py [--suite http1|chirp|h2] [--requests 3000] [--access-log] [--branches]
                                       [--connection-close]

A count of the instructions a server executes for a request does not move when other jobs
share the machine, unlike requests/s or even CPU time, so it is the figure to compare two
versions of pounce with on a busy machine. Each server runs under `valgrind --tool=callgrind`
(about 50 times slower, so a few thousand requests are enough) and is sent the hello request
by a small asyncio client over keep-alive connections, after a warm-up. Started twice, once
with no requests after the warm-up and once with `--requests`, the difference of the two
totals divided by the request count is the cost of a request, without start-up and shutdown.
Only user-space instructions count: the system calls (one receive and one send a request on
both servers) are the kernel's. The peers run from their environment in `.bench/`.

`--branches` runs the servers under cachegrind's branch simulator instead and also reports the
branches it predicts wrongly a request. Two servers that execute the same instructions can still
differ in CPU time: an interpreter's dispatch of each bytecode is an indirect jump that the CPU
often mispredicts, so work done in Python bytecode costs more cycles than the same count of
instructions in C. The simulator is simple, but it is the same for both servers.

Suites: `http1` (the default) pounce's fast path against uvicorn[standard]; `chirp` the hello
as a chirp route against the raw ASGI app, both on pounce's fast path; `h2` cleartext HTTP/2
(h2load, 16 connections, 10 streams each) on pounce against hypercorn, both on uvloop (hypercorn
serves from a child process, which callgrind follows).

`--connection-close` sends every HTTP/1.1 request on a new connection, with `Connection: close`,
so the count is that of a connection's whole life: accepted, served once, closed.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

from harness import HERE, free_port, peer_python, require_tool, wait_for

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
REQUEST_CLOSE = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


async def load(port: int, total: int, connections: int, close: bool = False) -> None:
    """`total` hello requests over `connections` keep-alive connections, one at a time on each;
    with `close`, each on a connection of its own that the server closes after answering."""
    left = total

    async def client() -> None:
        nonlocal left
        while left > 0:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            while left > 0:
                left -= 1
                writer.write(REQUEST_CLOSE if close else REQUEST)
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)\r\ncontent-length: (\d+)", head)
                assert length, head
                await reader.readexactly(int(length.group(1)))
                if close:
                    assert await reader.read() == b"", "the server kept the connection open"
                    break
            writer.close()

    await asyncio.gather(*(client() for _ in range(connections)))


def h2load(port: int, total: int) -> None:
    """`total` HTTP/2 hello requests with h2load: 16 connections, 10 streams at a time on each."""
    out = subprocess.run(
        [require_tool("h2load", "nghttp2-client"), "-n", str(total), "-c", "16", "-m", "10", f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert f"{total} succeeded" in out, out


def drive(
    server: subprocess.Popen[bytes],
    port: int,
    requests: int,
    connections: int,
    h2: bool = False,
    close: bool = False,
) -> None:
    """Once `server` listens on `port`: a warm-up, then `requests`; then SIGINT, and wait for it to
    finish (a slow one under valgrind or a tracer too)."""
    try:
        wait_for(port, timeout=180)
        if h2:
            h2load(port, 320)
            if requests:
                h2load(port, requests)
        else:
            asyncio.run(load(port, 200, connections, close))
            if requests:
                asyncio.run(load(port, requests, connections, close))
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(180)


class Counts(NamedTuple):
    instructions: int
    mispredicts: int  # 0 unless counted with the branch simulator


def counts(
    command: list[str],
    requests: int,
    connections: int,
    log: Path,
    h2: bool = False,
    branches: bool = False,
    close: bool = False,
) -> Counts:
    """What the server (and any child process of it) executed in all, serving a warm-up and
    then `requests`: instructions, and with `branches` the branches mispredicted."""
    port = free_port()
    argv = [arg.replace("{port}", str(port)) for arg in command]
    valgrind = require_tool("valgrind", "valgrind")
    tool = (
        ["--tool=cachegrind", "--cache-sim=no", "--branch-sim=yes", "--cachegrind-out-file=/dev/null"]
        if branches
        else ["--tool=callgrind", "--callgrind-out-file=/dev/null"]
    )
    server = subprocess.Popen(
        [valgrind, *tool, "--trace-children=yes", f"--log-file={log}.%p", *argv],
        cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    drive(server, port, requests, connections, h2, close)
    total = Counts(0, 0)
    for part in log.parent.glob(f"{log.name}.*"):
        text = part.read_text()
        part.unlink()
        executed = re.search(r"(?:Collected :|I\s+refs:)\s+([\d,]+)", text)
        if executed is None and "resource_tracker" in text:
            continue  # multiprocessing's bookkeeping process, which outlives the server a moment
        assert executed, text[-2000:]
        missed = re.search(r"Mispredicts:\s+([\d,]+)", text)
        total = Counts(
            total.instructions + _number(executed.group(1)),
            total.mispredicts + (_number(missed.group(1)) if missed else 0),
        )
    return total


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def suites(suite: str, on: bool) -> dict[str, list[str]]:
    """The two servers a suite compares, the first against the second, `{port}` for the port."""
    log = ["--access-log" if on else "--no-access-log"]

    def pounce(app: str, *flags: str) -> list[str]:
        return [sys.executable, "-m", "pounce", "serve", "--app", app, "--port", "{port}", "--log-level", "warning",
                *flags, *log]  # fmt: skip

    fast = ("--http", "httptools", "--loop", "uvloop")
    if suite == "chirp":
        return {"chirp route": pounce("apps:chirp_app", *fast), "raw ASGI": pounce("hello_raw:app", *fast)}
    if suite == "h2":
        peer = str(peer_python("hypercorn", "uvloop"))
        return {
            "pounce": pounce("hello_raw:app", "--loop", "uvloop"),
            "hypercorn": [peer, "-m", "hypercorn", "hello_raw:app", "--bind", "127.0.0.1:{port}", "--log-level",
                          "warning", "--config", "hypercorn.toml", "--worker-class", "uvloop",
                          *(["--access-logfile", "-"] if on else [])],
        }  # fmt: skip
    peer = str(peer_python("uvicorn", "uvloop", "httptools"))
    return {
        "pounce fast": pounce("hello_raw:app", *fast),
        "uvicorn[std]": [peer, "-m", "uvicorn", "hello_raw:app", "--port", "{port}", "--http", "httptools", "--loop",
                         "uvloop", *(["--log-level", "info"] if on else ["--no-access-log", "--log-level", "warning"])],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=("http1", "chirp", "h2"), default="http1")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=64, help="HTTP/1.1 keep-alive connections")
    parser.add_argument("--access-log", action="store_true", help="every server with its access log on")
    parser.add_argument(
        "--branches", action="store_true", help="also count mispredicted branches (cachegrind)"
    )
    parser.add_argument(
        "--connection-close", action="store_true", help="every HTTP/1.1 request on a new connection"
    )
    args = parser.parse_args()
    if args.connection_close and args.suite == "h2":
        parser.error("--connection-close is for the HTTP/1.1 suites (http1, chirp), not h2")
    servers = suites(args.suite, args.access_log)
    h2 = args.suite == "h2"
    log = Path(tempfile.mkdtemp()) / "valgrind.log"
    load_text = "h2load -c 16 -m 10" if h2 else f"{args.connections} connections"
    load_text += ", a new connection for each request" if args.connection_close else ""
    print(
        f"{args.suite}: {args.requests} requests, {load_text}, access log {'on' if args.access_log else 'off'}"
    )
    per_request: dict[str, Counts] = {}
    for name, command in servers.items():
        close = args.connection_close
        counts(
            command, 0, args.connections, log, h2, args.branches, close
        )  # compiles and caches bytecode first
        base = counts(command, 0, args.connections, log, h2, args.branches, close)
        total = counts(command, args.requests, args.connections, log, h2, args.branches, close)
        cost = per_request[name] = Counts(
            round((total.instructions - base.instructions) / args.requests),
            round((total.mispredicts - base.mispredicts) / args.requests),
        )
        missed = f" {cost.mispredicts:>8,} mispredicted branches/request" if args.branches else ""
        print(f"{name:<14} {cost.instructions:>10,} instructions/request{missed}")
    shutil.rmtree(log.parent)
    first, second = per_request
    a, b = per_request[first], per_request[second]
    print(f"{first} / {second}: {a.instructions / b.instructions:.3f} of the instructions")
    if args.branches:
        print(f"{first} / {second}: {a.mispredicts / b.mispredicts:.3f} of the mispredicted branches")


if __name__ == "__main__":
    main()
