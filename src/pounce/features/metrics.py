"""Prometheus metrics at `metrics_path` (default `/metrics`).

Series (all prefixed `pounce_`):

- `requests_total{method,route,status}` and `request_duration_seconds{method,route,status}`
  (histogram): `route` is the route template the app matched (chirp sets
  `scope["chirp.route"]`; any app may set `scope["route"]`), `<unrouted>` otherwise, so
  raw paths never become label values;
- `requests_in_flight` and `open_connections` (gauges);
- `response_bytes_total` (response body bytes, after compression);
- `rate_limited_total` and `shed_total{reason}` (`queue_full`, `queue_timeout`).

With several workers a scrape of any worker reports the whole server: each worker counts
in its own memory and leaves a snapshot in the directory its supervisor shares with it
every 0.1 s (`request_stats`); the scrape sums them, so another worker's numbers are at
most 0.1 s old. Gauges count live workers only. The supervisor also points
`PROMETHEUS_MULTIPROC_DIR` at a private directory, so the app's own prometheus-client
metrics are summed over the workers too and served on the same endpoint. The endpoint is
answered before rate limiting and queueing and is not itself counted.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import anyio.to_thread

from pounce.asgi import ASGIApp, Message, Receive, Scope, Send
from pounce.config import ServerConfig
from pounce.errors import ConfigurationError
from pounce.features.request_stats import (
    RequestStats,
    Series,
    Snapshot,
    SnapshotCollector,
    merge,
    read_snapshots,
    write_snapshot,
)
from pounce.features.shared import PROMETHEUS_DIR_ENV, send_plain, shared_dir

logger = logging.getLogger("pounce.error")

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"})
UNROUTED = "<unrouted>"


_collectors: list[Any] = []


def add_collector(collector: Any) -> None:
    """Serve another prometheus-client collector's series on the metrics endpoint too.

    The framework uses this for its own gauges (chirp's contract posture); the collector is
    asked for its values on every scrape, in whichever process answers it.
    """
    if collector not in _collectors:
        _collectors.append(collector)


def require_client() -> None:
    """A missing extra fails at startup, not at the first scrape."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            "metrics_enabled", True, "install the metrics extra: pip install 'chirp-pounce[metrics]'"
        ) from None


def route_of(scope: Scope) -> str:
    route = scope.get("chirp.route") or scope.get("route")
    return route if isinstance(route, str) else UNROUTED


class Metrics:
    def __init__(
        self,
        app: ASGIApp,
        *,
        path: str = "/metrics",
        multiprocess_dir: str | None = None,
        shared: Path | None = None,
    ) -> None:
        self.app = app
        self.path = path
        self.multiprocess_dir = multiprocess_dir  # the app's own prometheus-client metrics
        self.shared = shared  # where the workers leave their snapshots (None: one process)
        self.stats = RequestStats()
        self.pid = os.getpid()
        self._snapshot_failing = False

    @classmethod
    def from_config(cls, app: ASGIApp, config: ServerConfig) -> Metrics:
        require_client()
        return cls(
            app,
            path=config.metrics_path,
            multiprocess_dir=os.environ.get(PROMETHEUS_DIR_ENV) or None,
            shared=shared_dir(),
        )

    def connections_changed(self, delta: int) -> None:
        self.stats.open_connections += delta

    def tick(self) -> None:
        """Leave this worker's snapshot for the others' scrapes (nothing to do in one process).

        A snapshot that cannot be written (the shared directory removed from under a running
        server, a full disk) costs the other workers' view of this one, never this worker:
        the failure is logged once and the next tick tries again.
        """
        if self.shared is None:
            return
        try:
            write_snapshot(self.shared, self.pid, self.stats.snapshot())
        except OSError as exc:
            if not self._snapshot_failing:
                logger.warning("cannot share this worker's metrics in %s: %s", self.shared, exc)
            self._snapshot_failing = True
        else:
            self._snapshot_failing = False

    def server_snapshot(self) -> Snapshot:
        """The whole server's numbers, with this process's own exact to this moment."""
        own = self.stats.snapshot()
        if self.shared is None:
            return own
        return merge([own, *read_snapshots(self.shared, skip_pid=self.pid)])

    def exposition(self, snapshot: Snapshot) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        registry = CollectorRegistry()
        registry.register(SnapshotCollector(snapshot))
        if self.multiprocess_dir:
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
        if _collectors:
            extra = CollectorRegistry()
            for collector in _collectors:
                extra.register(collector)
            body += generate_latest(extra)
        return body, CONTENT_TYPE_LATEST

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == self.path:
            await self._serve(scope, send)
            return
        start = time.perf_counter()
        status = 500
        sent = 0

        def counting_send(message: Message) -> Awaitable[None]:
            """Counts, then hands on the server's own awaitable (no coroutine of its own)."""
            nonlocal status, sent
            kind = message["type"]
            if kind == "http.response.start":
                status = int(message["status"])
            elif kind == "http.response.body":
                sent += len(message.get("body", b""))
            return send(message)

        stats = self.stats
        stats.in_flight += 1
        try:
            await self.app(scope, receive, counting_send)
        finally:
            stats.in_flight -= 1
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            labels = (method, route_of(scope), str(status))
            series = stats.series.get(labels)
            if series is None:
                series = stats.series[labels] = Series()
            series.observe(time.perf_counter() - start)
            stats.bytes_sent += sent
            refused = scope.get("pounce.refused")
            if refused == "rate_limit":
                stats.rate_limited += 1
            elif refused:
                stats.shed[refused] = stats.shed.get(refused, 0) + 1

    async def _serve(self, scope: Scope, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await send_plain(send, 405, "405 Method Not Allowed\n", [(b"allow", b"GET, HEAD")])
            return
        snapshot = self.server_snapshot()
        body, content_type = await anyio.to_thread.run_sync(self.exposition, snapshot)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", content_type.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
