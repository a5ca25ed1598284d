"""Loopback HTTP endpoints standing in for an OpenTelemetry collector and a Sentry server.

Each decodes what the real client library sent over the wire (OTLP/HTTP protobuf, Sentry
envelopes) and keeps it for the test to count. They run in a thread of the test process on
127.0.0.1 and an ephemeral port.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar


def _decoded(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "br":
        import brotli

        return bytes(brotli.decompress(body))
    return body


class Receiver:
    """An HTTP server on loopback that hands each POST body (decompressed) to `accept`."""

    def __init__(self, port: int = 0, delay: float = 0.0) -> None:
        """`delay`: seconds each answer takes, as a busy server's would."""
        self.lock = threading.Lock()
        self.requests = 0
        self.delay = delay
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = _decoded(self.rfile.read(length), self.headers.get("content-encoding", ""))
                with receiver.lock:
                    receiver.requests += 1
                    status, content_type, answer = receiver.accept(self.path, body)
                time.sleep(receiver.delay)
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def accept(self, path: str, body: bytes) -> tuple[int, str, bytes]:
        raise NotImplementedError

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_until(self, condition: Callable[[], bool], timeout: float = 20) -> None:
        """Poll `condition` (under the lock) until it holds; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if condition():
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"not received within {timeout}s")
            time.sleep(0.05)


@dataclass
class ReceivedSpan:
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]


def _values(attributes: Any) -> dict[str, Any]:
    """OTLP `KeyValue`s as a plain dict."""
    out: dict[str, Any] = {}
    for item in attributes:
        kind = item.value.WhichOneof("value")
        out[item.key] = getattr(item.value, kind) if kind else None
    return out


class OTLPReceiver(Receiver):
    """`POST /v1/traces`: decodes `ExportTraceServiceRequest` with opentelemetry-proto."""

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self.spans: list[ReceivedSpan] = []

    def accept(self, path: str, body: bytes) -> tuple[int, str, bytes]:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        if path != "/v1/traces":
            return 404, "text/plain", b"not found\n"
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            resource = _values(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        ReceivedSpan(
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            attributes=_values(span.attributes),
                            resource=resource,
                        )
                    )
        return 200, "application/x-protobuf", ExportTraceServiceResponse().SerializeToString()

    def server_spans(self) -> list[ReceivedSpan]:
        from opentelemetry.proto.trace.v1.trace_pb2 import Span

        with self.lock:
            return [s for s in self.spans if s.kind == Span.SPAN_KIND_SERVER]


@dataclass
class Envelope:
    """One Sentry envelope: its header, its items (header, payload bytes) and the raw body."""

    header: dict[str, Any]
    items: list[tuple[dict[str, Any], bytes]] = field(default_factory=list)
    raw: bytes = b""

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(payload) for header, payload in self.items if header.get("type") == "event"]


def parse_envelope(body: bytes) -> Envelope:
    """Newline-separated: the envelope header, then per item a header line and its payload
    (`length` bytes when the item header says so, else up to the next newline)."""
    first, _, rest = body.partition(b"\n")
    envelope = Envelope(json.loads(first), raw=body)
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        header = json.loads(line)
        if "length" in header:
            payload, rest = rest[: header["length"]], rest[header["length"] :]
            rest = rest.removeprefix(b"\n")
        else:
            payload, _, rest = rest.partition(b"\n")
        envelope.items.append((header, payload))
    return envelope


class SentryReceiver(Receiver):
    """`POST /api/<project>/envelope/`, as sentry-sdk's own HTTP transport sends them."""

    def __init__(self, port: int = 0, delay: float = 0.0) -> None:
        super().__init__(port, delay)
        self.envelopes: list[Envelope] = []

    def dsn(self, project: int = 1) -> str:
        return f"http://publickey@127.0.0.1:{self.port}/{project}"

    def accept(self, path: str, body: bytes) -> tuple[int, str, bytes]:
        if not (path.startswith("/api/") and path.endswith("/envelope/")):
            return 404, "text/plain", b"not found\n"
        self.envelopes.append(parse_envelope(body))
        return 200, "application/json", b"{}"

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [event for envelope in self.envelopes for event in envelope.events()]

    def raw(self) -> bytes:
        with self.lock:
            return b"\n".join(envelope.raw for envelope in self.envelopes)


R = TypeVar("R", bound=Receiver)


@contextmanager
def running(receiver: R) -> Iterator[R]:
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
