"""OpenTelemetry server spans with W3C `traceparent` propagation.

Each HTTP request runs inside a SERVER span named `METHOD route` (the route template when
the app reports one, else just the method), continuing the trace of an incoming
`traceparent`/`tracestate`. The span is current while the app runs, so spans the app
starts become its children. Attributes follow the HTTP semantic conventions; a 5xx or an
exception marks the span as an error.

With `otel_endpoint` set, every worker process builds its own batch exporter after the
fork (a thread and an HTTP connection cannot cross a fork) and exports over OTLP/HTTP as
`otel_service_name`, with the worker's `process.pid` in the resource; the spans still in
the batch are sent when the worker stops, whether for a shutdown, a reload or recycling.
A collector that cannot be reached costs requests nothing (export runs on the batch
thread): it is logged once, and the spans it missed are kept and sent with the next batch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pounce.asgi import ASGIApp, Message, Receive, Scope, Send
from pounce.config import ServerConfig
from pounce.errors import ConfigurationError
from pounce.features.metrics import route_of

logger = logging.getLogger("pounce.error")

TRACES_PATH = "/v1/traces"
HELD_SPANS = 2048
"""Spans kept for the next attempt while the collector is unreachable (the batch queue's size)."""


def _carrier(scope: Scope) -> dict[str, str]:
    carrier: dict[str, str] = {}
    for name, value in scope["headers"]:
        if name in (b"traceparent", b"tracestate", b"baggage"):
            carrier[name.decode()] = value.decode("latin-1")
    return carrier


def traces_url(endpoint: str) -> str:
    """Where spans are posted: a bare collector URL (`http://collector:4318`) gets the OTLP
    traces path, as `OTEL_EXPORTER_OTLP_ENDPOINT` does; a URL with a path is used as given."""
    parts = urlsplit(endpoint)
    if parts.path in ("", "/"):
        return urlunsplit(parts._replace(path=TRACES_PATH))
    return endpoint


def exporter_class(config: ServerConfig) -> Any:
    """The OTLP/HTTP span exporter, or a ConfigurationError naming the extra that provides it."""
    try:
        import opentelemetry.sdk.trace  # noqa: F401
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise ConfigurationError(
            "otel_endpoint", config.otel_endpoint, "install the otel extra: pip install 'chirp-pounce[otel]'"
        ) from None
    return OTLPSpanExporter


class _QuietExporterLog(logging.Filter):
    """Holds back the exporter's own log records (a warning per retry, an error per batch) and
    keeps the first one's text, so an outage is logged once, by `HoldingExporter`."""

    def __init__(self) -> None:
        super().__init__()
        self.first: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if self.first is None:
            self.first = record.getMessage()
        return False


class HoldingExporter:
    """Wraps the OTLP exporter: a failed batch is kept (the newest `HELD_SPANS` spans) and sent
    again with the next one; the first failure and the recovery are each logged once. Once the
    worker is `stopping`, a collector that failed is not tried again, so a stop waits for at
    most one export timeout."""

    def __init__(self, exporter: Any, url: str, held: int = HELD_SPANS) -> None:
        self.exporter = exporter
        self.url = url
        self.held = held
        self.pending: list[Any] = []
        self.failing = False
        self.stopping = False
        self.quiet = _QuietExporterLog()
        logging.getLogger(type(exporter).__module__).addFilter(self.quiet)

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        batch = [*self.pending, *spans]
        if self.failing and self.stopping:
            self.pending = batch[-self.held :]
            return SpanExportResult.FAILURE
        self.quiet.first = None
        try:
            sent = self.exporter.export(batch) == SpanExportResult.SUCCESS
            reason = self.quiet.first or "the collector refused the batch"
        except Exception as exc:  # an exporter bug must not stop the batch thread
            sent, reason = False, repr(exc)
        if sent:
            if self.failing:
                logger.info("spans reach %s again; %d held back were sent", self.url, len(self.pending))
            self.pending, self.failing = [], False
            return SpanExportResult.SUCCESS
        self.pending = batch[-self.held :]
        if not self.failing:
            logger.warning(
                "cannot export spans to %s (%s); holding up to %d spans and retrying with the next batch",
                self.url,
                reason,
                self.held,
            )
        self.failing = True
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        if self.pending:
            logger.warning("%d spans could not be exported to %s before the worker stopped",
                           len(self.pending), self.url)  # fmt: skip
        self.exporter.shutdown()
        logging.getLogger(type(self.exporter).__module__).removeFilter(self.quiet)


def otlp_provider(config: ServerConfig) -> tuple[Any, HoldingExporter]:
    """A TracerProvider of this process exporting in batches to the OTLP/HTTP collector."""
    assert config.otel_endpoint is not None
    exporter = exporter_class(config)
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    url = traces_url(config.otel_endpoint)
    resource = Resource.create({"service.name": config.otel_service_name, "process.pid": os.getpid()})
    provider = TracerProvider(resource=resource)
    holding = HoldingExporter(exporter(endpoint=url), url)
    provider.add_span_processor(BatchSpanProcessor(holding))  # type: ignore[arg-type]
    return provider, holding


class Tracing:
    def __init__(
        self, app: ASGIApp, tracer_provider: Any = None, exporter: HoldingExporter | None = None
    ) -> None:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.app = app
        self.provider = tracer_provider
        self.exporter = exporter
        self.tracer = trace.get_tracer("pounce", tracer_provider=tracer_provider)
        self.propagator = TraceContextTextMapPropagator()

    @classmethod
    def from_config(cls, app: ASGIApp, config: ServerConfig) -> Tracing:
        from opentelemetry import trace

        provider, exporter = otlp_provider(config)
        if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            trace.set_tracer_provider(provider)  # the app's own spans go to the same collector
        return cls(app, provider, exporter)

    def close(self) -> None:
        """Send the spans still batched (the server has stopped serving)."""
        if self.exporter is not None:
            self.exporter.stopping = True
        if self.provider is not None:
            self.provider.shutdown()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from opentelemetry.trace import SpanKind, Status, StatusCode

        context = self.propagator.extract(_carrier(scope))
        method = scope["method"]
        client = scope.get("client")
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http"),
            "network.protocol.version": scope.get("http_version", "1.1"),
        }
        if scope.get("query_string"):
            attributes["url.query"] = scope["query_string"].decode("latin-1")
        if client:
            attributes["client.address"] = client[0]
        for name, value in scope["headers"]:
            if name == b"user-agent":
                attributes["user_agent.original"] = value.decode("latin-1")
        status = 0

        async def traced_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        with self.tracer.start_as_current_span(
            method, context=context, kind=SpanKind.SERVER, attributes=attributes, record_exception=True
        ) as span:
            try:
                await self.app(scope, receive, traced_send)
            finally:
                route = route_of(scope)
                if not route.startswith("<"):
                    span.set_attribute("http.route", route)
                    span.update_name(f"{method} {route}")
                if status:
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
