"""Boot the app under pounce in a subprocess, find its port, and stop it again.

The server is started exactly as an operator would (`python -m chirp run APP --production`),
bound to an ephemeral loopback port; the address is read from the log line
`pounce serving on http://127.0.0.1:PORT`. Both output streams are drained by threads for
the whole run (a full pipe would stall the server) and the last lines are kept for findings.
"""

from __future__ import annotations

import collections
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO

TARGET_ENV = "CHIRP_LIVE_TARGET"
ERROR_PATH_ENV = "CHIRP_LIVE_ERROR_PATH"
TARGET_MODULE = "chirp.contracts.live.target:app"
_SERVING = re.compile(r"serving on (https?)://(\S+)")


class LiveServer:
    """One server process under test."""

    def __init__(
        self,
        app_path: str,
        *,
        production: bool,
        error_path: str | None,
        extra_env: dict[str, str] | None = None,
        log_lines: int = 200,
    ) -> None:
        self.app_path = app_path
        self.production = production
        self.error_path = error_path
        self.extra_env = extra_env or {}
        self.log: collections.deque[str] = collections.deque(maxlen=log_lines)
        self.url: str | None = None
        self.generated_secret = False
        self.proc: subprocess.Popen[str] | None = None
        self._bound = threading.Event()
        self._threads: list[threading.Thread] = []

    def command(self) -> list[str]:
        argv = [sys.executable, "-m", "chirp", "run", TARGET_MODULE]
        argv += ["--host", "127.0.0.1", "--port", "0", "--no-reload", "--workers", "1"]
        if self.production:
            argv.append("--production")
        return argv

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.extra_env)
        env[TARGET_ENV] = self.app_path
        env["PYTHONUNBUFFERED"] = "1"
        env["NO_COLOR"] = "1"
        env.pop("POUNCE_RELOAD_CHILD", None)
        if self.error_path:
            env[ERROR_PATH_ENV] = self.error_path
        if self.production and not env.get("CHIRP_SECRET_KEY"):
            # `--production` needs a secret. The static rules already report a missing one;
            # a throwaway key lets the live probes still run.
            env["CHIRP_SECRET_KEY"] = secrets.token_urlsafe(48)
            self.generated_secret = True
        return env

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.command(),
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,  # a forced kill can take any child processes with it
        )
        for stream in (self.proc.stdout, self.proc.stderr):
            assert stream is not None
            thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _drain(self, stream: IO[str]) -> None:
        for line in stream:
            self.log.append(line)
            if self.url is None:
                match = _SERVING.search(line)
                if match:
                    self.url = f"{match.group(1)}://{match.group(2)}"
                    self._bound.set()

    def wait_bound(self, deadline: float) -> str | None:
        """Wait (until `deadline`, a `time.monotonic()` value) for the listening address.

        Returns None when it is known; otherwise why not.
        """
        assert self.proc is not None
        while True:
            if self.url is not None:
                return None
            code = self.proc.poll()
            if code is not None:
                self._join_readers()
                if self.url is not None:
                    return None
                return f"the server exited with code {code} before it listened"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "the server did not start listening in time"
            self._bound.wait(min(remaining, 0.05))

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 10.0) -> tuple[int | None, float, bool]:
        """SIGTERM, wait up to `grace` seconds, then kill. Returns (returncode, seconds, killed)."""
        proc = self.proc
        if proc is None:
            return None, 0.0, False
        started = time.monotonic()
        killed = False
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                killed = True
                self._kill(proc)
        self._join_readers()
        return proc.returncode, time.monotonic() - started, killed

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self._kill(self.proc)
        self._join_readers()

    def _kill(self, proc: subprocess.Popen[str]) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (OSError, AttributeError):
            proc.kill()
        proc.wait(5)

    def _join_readers(self) -> None:
        for thread in self._threads:
            thread.join(1.0)

    def tail(self, lines: int = 15) -> list[str]:
        return list(self.log)[-lines:]


def describe_exit(code: int | None, log: Sequence[str]) -> str:
    """A one-line reason for a server that stopped before it was ready, from its log."""
    text = "".join(log)
    if "failed its contract check" in text:
        return "the app refused to start: its own contract check found errors at freeze"
    if "needs a secret key" in text:
        return "the server refused to start without a secret key"
    for marker in ("application startup failed", "startup failed", "Traceback", "error:"):
        for line in reversed(log):
            if marker in line:
                return f"the server exited with code {code}: {line.strip()}"
    return f"the server exited with code {code}"
