"""OpenTelemetry server spans with W3C `traceparent` propagation.

Each HTTP request runs inside a SERVER span named `METHOD route` (the route template when
the app reports one, else just the method), continuing the trace of an incoming
`traceparent`/`tracestate`. The span is current while the app runs, so spans the app
starts become its children. Attributes follow the HTTP semantic conventions; a 5xx or an
exception marks the span as an error.

With `otel_endpoint` set, pounce exports spans over OTLP/HTTP to that URL as
`otel_service_name` (the `opentelemetry-exporter-otlp-proto-http` package is needed).
"""

from __future__ import annotations

from typing import Any

from pounce.asgi import ASGIApp, Message, Receive, Scope, Send
from pounce.config import ServerConfig
from pounce.errors import ConfigurationError
from pounce.features.metrics import route_of


def _carrier(scope: Scope) -> dict[str, str]:
    carrier: dict[str, str] = {}
    for name, value in scope["headers"]:
        if name in (b"traceparent", b"tracestate", b"baggage"):
            carrier[name.decode()] = value.decode("latin-1")
    return carrier


def otlp_provider(endpoint: str, service_name: str) -> Any:
    """A TracerProvider exporting in batches to an OTLP/HTTP collector."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise ConfigurationError(
            "otel_endpoint",
            endpoint,
            "install the OTLP exporter: pip install opentelemetry-exporter-otlp-proto-http",
        ) from None
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


class Tracing:
    def __init__(self, app: ASGIApp, tracer_provider: Any = None) -> None:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.app = app
        self.tracer = trace.get_tracer("pounce", tracer_provider=tracer_provider)
        self.propagator = TraceContextTextMapPropagator()

    @classmethod
    def from_config(cls, app: ASGIApp, config: ServerConfig) -> Tracing:
        assert config.otel_endpoint is not None
        return cls(app, otlp_provider(config.otel_endpoint, config.otel_service_name))

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
