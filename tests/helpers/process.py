"""Start `pounce`/`chirp` as real subprocesses and find the port they bound."""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import sys
import time
from pathlib import Path

_BOUND = re.compile(r"serving on (http|https)://(\S+)")


class ServerProcess:
    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc = proc
        self.url = url
        self.log: list[str] = []

    def stop(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def spawn(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 20) -> ServerProcess:
    """Run `python -m <args>` in `cwd` and wait until its log says where it listens."""
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    proc = subprocess.Popen(
        [sys.executable, "-m", *args], cwd=cwd, env=full_env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stderr, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
            continue
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        match = _BOUND.search(line)
        if match:
            server = ServerProcess(proc, f"{match.group(1)}://{match.group(2)}")
            server.log = seen
            return server
    proc.kill()
    rest = proc.stderr.read() if proc.stderr else ""
    raise RuntimeError("server did not start:\n" + "".join(seen) + rest)


def run_cli(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )
