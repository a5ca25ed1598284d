"""What the features share: small responses, probe exemption, what they hear from the server,
and the state directory a supervisor sets up so its worker processes count and limit together.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from pounce.asgi import Scope, Send
from pounce.config import ServerConfig

logger = logging.getLogger("pounce.error")

SHARED_DIR_ENV = "POUNCE_SHARED_DIR"
PROMETHEUS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


async def send_plain(send: Send, status: int, text: str, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """A complete text/plain response."""
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def probe_paths(config: ServerConfig) -> frozenset[str]:
    """Paths that are never rate limited or shed: the orchestrator's probes and metrics."""
    paths = {config.health_path, config.ready_path}
    if config.metrics_enabled:
        paths.add(config.metrics_path)
    return frozenset(paths)


def mark_refused(scope: Scope, reason: str) -> None:
    """Record that a feature refused this request (metrics reads it after the response)."""
    scope["pounce.refused"] = reason


# -- what a feature hears from the server ----------------------------------------------------
class ServerObserver(Protocol):
    """A feature that wants to know about connections and a regular tick of the server."""

    def connections_changed(self, delta: int) -> None:
        """A connection opened (+1) or closed (-1)."""

    def tick(self) -> None:
        """Called every `OBSERVER_TICK` seconds by the serving event loop, and once at the end."""


OBSERVER_TICK = 0.1


# -- state shared by worker processes ------------------------------------------------------
def shared_dir() -> Path | None:
    """The directory the supervisor shares with its workers, or None in a single process."""
    value = os.environ.get(SHARED_DIR_ENV)
    return Path(value) if value else None


class SharedState:
    """Set up by the supervisor before it forks: a private temporary directory for the
    rate-limit table and, with metrics on, prometheus-client's multiprocess files.

    Removed (and the environment restored) by `close()`.
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._saved = {name: os.environ.get(name) for name in (SHARED_DIR_ENV, PROMETHEUS_DIR_ENV)}
        self.path = Path(tempfile.mkdtemp(prefix="pounce-"))
        os.environ[SHARED_DIR_ENV] = str(self.path)
        self.metrics_dir: Path | None = None
        if config.metrics_enabled:
            user_dir = self._saved[PROMETHEUS_DIR_ENV]
            if user_dir:
                self.metrics_dir = Path(user_dir)  # the operator's own directory: used, never removed
            else:
                self.metrics_dir = self.path / "metrics"
                self.metrics_dir.mkdir()
                os.environ[PROMETHEUS_DIR_ENV] = str(self.metrics_dir)
        if config.rate_limit_enabled and config.redis_url is None:
            from pounce.features.ratelimit import SharedTable

            SharedTable.create(self.path / "ratelimit.bin", config.rate_limit_max_clients)

    def worker_exited(self, pid: int) -> None:
        """Drop a dead worker's live gauges (in-flight requests, open connections)."""
        if self.metrics_dir is None:
            return
        from prometheus_client import multiprocess

        from pounce.features.request_stats import retire

        retire(self.path, pid)

        try:
            multiprocess.mark_process_dead(pid, str(self.metrics_dir))  # type: ignore[no-untyped-call]
        except OSError as exc:
            logger.debug("could not clean metrics files of worker %d: %s", pid, exc)

    def close(self) -> None:
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(self.path, ignore_errors=True)
