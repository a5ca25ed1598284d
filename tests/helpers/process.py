"""Start `pounce`/`chirp` as real subprocesses and find the port they bound."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

_BOUND = re.compile(r"serving on (http|https)://(\S+)")


class ServerProcess:
    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc = proc
        self.url = url
        self.log: list[str] = []
        self.lines: queue.Queue[str | None] = queue.Queue()

    def read_log(self) -> list[str]:
        """Every stderr line so far (lines arrive from a reader thread)."""
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return self.log
            if line is not None:
                self.log.append(line)

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, wait for the exit code, then collect the rest of the log (which a server that
        did not stop in time is killed and reported with)."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            self._read_to_end()
            raise AssertionError(
                f"the server did not stop within {timeout} s:\n" + "".join(self.log[-60:])
            ) from None
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._read_to_end()

    def _read_to_end(self, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return
            if line is None:
                return
            self.log.append(line)


def spawn(
    args: list[str],
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 20,
    own_group: bool = False,
) -> ServerProcess:
    """Run `python -m <args>` in `cwd` and wait until its log says where it listens.

    A thread reads stderr line by line (selecting on a buffered text pipe misses lines
    already buffered); `ServerProcess.log` keeps every line read so far. With `own_group`
    the server leads a process group of its own, to be signalled as a terminal or an init
    system signals one (`os.killpg(server.proc.pid, ...)`).
    """
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    proc = subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=cwd,
        env=full_env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        process_group=0 if own_group else None,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    seen: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        match = _BOUND.search(line)
        if match:
            server = ServerProcess(proc, f"{match.group(1)}://{match.group(2)}")
            server.log = seen
            server.lines = lines
            return server
    proc.kill()
    raise RuntimeError("server did not start:\n" + "".join(seen))


def terminate(proc: subprocess.Popen[Any], timeout: float = 15) -> None:
    """SIGTERM and wait; SIGKILL if it outlives `timeout`."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_cli(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )
