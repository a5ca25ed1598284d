"""Prometheus metrics at `metrics_path` (default `/metrics`).

Series (all prefixed `pounce_`):

- `requests_total{method,route,status}` and `request_duration_seconds{method,route,status}`
  (histogram): `route` is the route template the app matched (chirp sets
  `scope["chirp.route"]`; any app may set `scope["route"]`), `<unrouted>` otherwise, so
  raw paths never become label values;
- `requests_in_flight` and `open_connections` (gauges);
- `response_bytes_total` (response body bytes, after compression);
- `rate_limited_total` and `shed_total{reason}` (`queue_full`, `queue_timeout`).

With several workers the supervisor points `PROMETHEUS_MULTIPROC_DIR` at a private
temporary directory before forking; every worker writes its values there and a scrape of
any worker aggregates all of them (prometheus-client's multiprocess mode), so totals are
those of the whole server. Gauges count live processes only: a dead worker's files are
marked by the supervisor. The endpoint is answered before rate limiting and queueing and
is not itself counted.
"""

from __future__ import annotations

import os
import time
from typing import Any

import anyio.to_thread

from pounce.asgi import ASGIApp, Message, Receive, Scope, Send
from pounce.config import ServerConfig
from pounce.features.shared import PROMETHEUS_DIR_ENV, add_connection_listener, send_plain

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


def route_of(scope: Scope) -> str:
    route = scope.get("chirp.route") or scope.get("route")
    return route if isinstance(route, str) else UNROUTED


class Metrics:
    def __init__(self, app: ASGIApp, *, path: str = "/metrics", multiprocess_dir: str | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.app = app
        self.path = path
        self.multiprocess_dir = multiprocess_dir
        # multiprocess: values live in files, a fresh registry collects them per scrape
        self.registry: Any = None if multiprocess_dir else CollectorRegistry()
        reg = self.registry
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        labels = ("method", "route", "status")
        self.requests = Counter("pounce_requests", "HTTP requests answered.", labels, registry=reg)
        self.duration = Histogram(
            "pounce_request_duration_seconds", "Time to answer an HTTP request.", labels, registry=reg
        )
        self.in_flight = Gauge(
            "pounce_requests_in_flight", "Requests being answered.", registry=reg, multiprocess_mode="livesum"
        )
        self.connections = Gauge(
            "pounce_open_connections", "Open client connections.", registry=reg, multiprocess_mode="livesum"
        )
        self.bytes_sent = Counter("pounce_response_bytes", "Response body bytes sent.", registry=reg)
        self.rate_limited = Counter(
            "pounce_rate_limited", "Requests refused by the rate limiter.", registry=reg
        )
        self.shed = Counter("pounce_shed", "Requests refused by load shedding.", ("reason",), registry=reg)
        add_connection_listener(self._on_connection)

    @classmethod
    def from_config(cls, app: ASGIApp, config: ServerConfig) -> Metrics:
        return cls(app, path=config.metrics_path, multiprocess_dir=os.environ.get(PROMETHEUS_DIR_ENV) or None)

    def _on_connection(self, delta: int) -> None:
        self.connections.inc(delta)

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        registry = self.registry
        if registry is None:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
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

        async def counting_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        self.in_flight.inc()
        try:
            await self.app(scope, receive, counting_send)
        finally:
            self.in_flight.dec()
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            labels = (method, route_of(scope), status)
            series = self._series.get(labels)
            if series is None:  # `labels()` validates and locks: do it once per label set
                values = (labels[0], labels[1], str(status))
                series = self._series[labels] = (self.requests.labels(*values), self.duration.labels(*values))
            series[0].inc()
            series[1].observe(time.perf_counter() - start)
            if sent:
                self.bytes_sent.inc(sent)
            refused = scope.get("pounce.refused")
            if refused == "rate_limit":
                self.rate_limited.inc()
            elif refused:
                self.shed.labels(refused).inc()

    async def _serve(self, scope: Scope, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await send_plain(send, 405, "405 Method Not Allowed\n", [(b"allow", b"GET, HEAD")])
            return
        body, content_type = await anyio.to_thread.run_sync(self.exposition)
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
