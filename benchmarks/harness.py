"""What every server benchmark here shares: ports, the peers' environment, wrk and CPU pinning."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
# The peers (uvicorn, hypercorn, Django) live in their own environment, `.bench/` at the
# repository root (git-ignored), so they never mix with what chirp and pounce install.
BENCH_ENV = HERE.parent / ".bench"


def peer_python(*requirements: str) -> Path:
    """The interpreter of `.bench/`, with `requirements` installed into it when missing."""
    python = BENCH_ENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_ENV)], check=True)
    missing = [
        requirement
        for requirement in requirements
        if subprocess.run(
            [str(python), "-c", f"import {module_of(requirement)}"], capture_output=True
        ).returncode
    ]
    if missing:
        subprocess.run([str(python), "-m", "pip", "install", "-q", *missing], check=True)
    return python


def module_of(requirement: str) -> str:
    return re.split(r"[<>=\[ ]", requirement, maxsplit=1)[0].replace("-", "_")


def require_tool(command: str, debian_package: str) -> str:
    """The path of `command`, installed with apt-get when it is missing (as root)."""
    found = shutil.which(command)
    if found is None:
        print(f"{command} not found: installing the Debian package {debian_package}", file=sys.stderr)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", debian_package], check=True, stdout=subprocess.DEVNULL
        )
        found = shutil.which(command)
    if found is None:
        raise SystemExit(f"error: {command} is still missing; install {debian_package} and run again")
    return found


# With two or more CPUs a one-worker server and the load generator each get their own
# CPU, so they do not take turns on one and the run-to-run noise shrinks.
SERVER_CPU, CLIENT_CPU = 0, 1


def pin(cpu: int) -> list[str]:
    if shutil.which("taskset") and len(os.sched_getaffinity(0)) >= 2:
        return ["taskset", "-c", str(cpu)]
    return []


def pin_self(cpu: int) -> None:
    """Pin this process (a load generator written in Python) to `cpu`, where `pin` would."""
    if pin(cpu):
        os.sched_setaffinity(0, {cpu})


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


def cpu_seconds(pid: int) -> float:
    """User and system CPU time so far of a process and its children (hypercorn serves from a
    child process), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        total += sum(cpu_seconds(int(child)) for child in children.read_text().split())
    return total


@dataclass(frozen=True)
class WrkRun:
    """What one wrk run reports: its request count, rate, p99 latency and any errors."""

    requests: int
    rps: float
    p99_ms: float
    errors: str | None


def wrk_run(
    port: int, duration: int, connections: int = 64, pinned: bool = True, path: str = "/", close: bool = False
) -> WrkRun:
    """A plain GET of `path` for `duration` seconds over `connections` keep-alive connections
    (with `close`, each request asks for `Connection: close`: a new connection every request).

    One wrk thread: it drives well over 25k req/s on this machine's loopback with about a
    third of a CPU, and a second thread only takes CPU away from the servers under test.
    """
    out = subprocess.run(
        [*(pin(CLIENT_CPU) if pinned else []), require_tool("wrk", "wrk"), "-t", "1", "-c", str(connections),
         "-d", f"{duration}s", "--latency", *(["-H", "Connection: close"] if close else []),
         f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99_text = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99_text, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99_text.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    if errors:
        print(f"  warning: {errors.group(0)}", file=sys.stderr)
    return WrkRun(requests, rps, float(p99_text.group(1)) * scale, errors.group(0) if errors else None)


def wrk(port: int, duration: int, connections: int = 64, pinned: bool = True) -> tuple[float, float]:
    """Requests/s and p99 latency (ms) of a plain GET / for `duration` seconds."""
    run = wrk_run(port, duration, connections, pinned)
    return run.rps, run.p99_ms


def pounce_command(app: str, port: int, *extra: str, log_level: str = "warning") -> list[str]:
    """pounce serving `app` on `port` with the access log off, as every benchmark here runs it."""
    return [sys.executable, "-m", "pounce", "serve", "--app", app, "--port", str(port),
            "--no-access-log", "--log-level", log_level, *extra]  # fmt: skip
