"""Instructions per request under callgrind: pounce's fast path against uvicorn[standard].

Run: python benchmarks/instructions.py [--requests 3000] [--connections 64] [--access-log]

A count of the instructions a server executes for a request does not move when other jobs
share the machine, unlike requests/s or even CPU time, so it is the figure to compare two
versions of pounce with on a busy machine. Each server runs under `valgrind --tool=callgrind`
(about 50 times slower, so a few thousand requests are enough) and is sent the hello request
by a small asyncio client over keep-alive connections, after a warm-up. Started twice, once
with no requests after the warm-up and once with `--requests`, the difference of the two
totals divided by the request count is the cost of a request, without start-up and shutdown.
Only user-space instructions count: the system calls (one receive and one send a request on
both servers) are the kernel's. uvicorn runs from the peers' environment in `.bench/`.
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

from harness import HERE, free_port, peer_python, require_tool, wait_for

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def load(port: int, total: int, connections: int) -> None:
    """`total` hello requests over `connections` keep-alive connections, one at a time on each."""
    left = total

    async def client() -> None:
        nonlocal left
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while left > 0:
            left -= 1
            writer.write(REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)\r\ncontent-length: (\d+)", head)
            assert length, head
            await reader.readexactly(int(length.group(1)))
        writer.close()

    await asyncio.gather(*(client() for _ in range(connections)))


def instructions(command: list[str], requests: int, connections: int, log: Path) -> int:
    """The instructions the server executed in all, serving a warm-up and then `requests`."""
    port = free_port()
    argv = [arg.replace("{port}", str(port)) for arg in command]
    valgrind = require_tool("valgrind", "valgrind")
    server = subprocess.Popen(
        [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", f"--log-file={log}", *argv],
        cwd=HERE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(port, timeout=120)
        asyncio.run(load(port, 200, connections))
        if requests:
            asyncio.run(load(port, requests, connections))
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(120)
    collected = re.search(r"Collected : (\d+)", log.read_text())
    assert collected, log.read_text()[-2000:]
    return int(collected.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--access-log", action="store_true", help="every server with its access log on")
    args = parser.parse_args()
    peer = str(peer_python("uvicorn", "uvloop", "httptools", "hypercorn", "granian"))
    on = args.access_log
    servers = {
        "pounce fast": [sys.executable, "-m", "pounce", "serve", "--app", "hello_raw:app", "--port", "{port}",
                        "--http", "httptools", "--loop", "uvloop", "--log-level", "warning",
                        "--access-log" if on else "--no-access-log"],
        "uvicorn[std]": [peer, "-m", "uvicorn", "hello_raw:app", "--port", "{port}", "--http", "httptools",
                         "--loop", "uvloop", *(["--log-level", "info"] if on else ["--no-access-log", "--log-level", "warning"])],
    }  # fmt: skip
    log = Path(tempfile.mkdtemp()) / "callgrind.log"
    print(f"{args.requests} requests over {args.connections} connections, access log {'on' if on else 'off'}")
    counts = {}
    for name, command in servers.items():
        instructions(command, 0, args.connections, log)  # compiles and caches bytecode first
        base = instructions(command, 0, args.connections, log)
        total = instructions(command, args.requests, args.connections, log)
        counts[name] = (total - base) / args.requests
        print(f"{name:<14} {counts[name]:>9,.0f} instructions/request")
    shutil.rmtree(log.parent)
    print(
        f"pounce fast / uvicorn[std]: {counts['pounce fast'] / counts['uvicorn[std]']:.3f} of the instructions"
    )


if __name__ == "__main__":
    main()
