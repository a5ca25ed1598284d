"""Tracing in process, startup errors of the telemetry features, access log, startup banner and the
info endpoint."""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import connect as ws_connect

from helpers.asgi_apps import lifespan_ok
from helpers.feature_apps import write_feature_app
from helpers.process import spawn
from helpers.server import serve
from pounce.logs import AccessLog, _milliseconds


async def traced_app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "lifespan":
        await lifespan_ok(receive, send)
        return
    if scope["type"] != "http":
        return
    from opentelemetry import trace

    scope["route"] = "/orders/{id}"
    with trace.get_tracer("app").start_as_current_span("load order"):
        pass
    status = 502 if scope["path"] == "/orders/bad" else 200
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


def test_server_spans_continue_the_incoming_trace() -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, StatusCode

    from pounce.features.tracing import Tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with serve(Tracing(traced_app, provider)) as srv:
        assert httpx.get(srv.url + "/orders/7?x=1", headers={"traceparent": parent}).status_code == 200
        assert httpx.get(srv.url + "/orders/bad").status_code == 502
    children = [s for s in exporter.get_finished_spans() if s.name == "load order"]
    server = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert len(server) == 2
    first = server[0]
    assert first.name == "GET /orders/{id}"
    assert format(first.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert format(first.parent.span_id, "016x") == "b7ad6b7169203331"
    assert first.attributes["http.route"] == "/orders/{id}"
    assert first.attributes["http.response.status_code"] == 200
    assert first.attributes["url.query"] == "x=1"
    assert [c.parent.span_id if c.parent else None for c in children] == [
        first.context.span_id,
        server[1].context.span_id,
    ]  # the app's spans are children of the server spans
    assert server[1].parent is None  # no traceparent: a new trace
    assert server[1].status.status_code == StatusCode.ERROR


SECURE_APP = """
from chirp import App, AppConfig, secure_stack
config = AppConfig.from_env()
app = App(config)
for middleware in secure_stack(config):
    app.add_middleware(middleware)
"""
STARTUP_ERRORS = [
    # (hidden module, launcher arguments, what the error line says)
    ("opentelemetry.exporter.otlp.proto.http.trace_exporter",
     ["pounce", "serve", "--app", "featureapp:app", "--otel-endpoint", "http://127.0.0.1:4318"],
     "otel_endpoint='http://127.0.0.1:4318' is invalid: install the otel extra: pip install 'chirp-pounce[otel]'"),
    ("sentry_sdk", ["chirp", "run", "shop:app", "--production"],
     "sentry_dsn='***' is invalid: install the sentry extra: pip install 'chirp-pounce[sentry]'"),
    ("prometheus_client", ["chirp", "run", "shop:app", "--production", "--metrics"],
     "metrics_enabled=True is invalid: install the metrics extra: pip install 'chirp-pounce[metrics]'"),
    (None, ["pounce", "serve", "--app", "featureapp:app", "--sentry-dsn", "http://127.0.0.1:9/1"],
     "sentry_dsn='***' is invalid: use the DSN from your Sentry project, https://<key>@<host>/<id> (Missing public key)"),
]  # fmt: skip


@pytest.mark.parametrize("hidden,command,message", STARTUP_ERRORS)
def test_a_feature_that_cannot_start_is_one_error_line(
    tmp_path: Path, hidden: str | None, command: list[str], message: str
) -> None:
    write_feature_app(tmp_path)
    (tmp_path / "shop.py").write_text(SECURE_APP)
    hide = f"sys.modules[{hidden!r}] = None  # as if its extra were not installed\n" if hidden else ""
    code = f"import sys\n{hide}from {command[0]}.cli import main\nmain()\n"
    env = dict(os.environ, CHIRP_SECRET_KEY="Vb3-q9LmZt8Rw2Xc7Np4Kd6Hf1Gj5Sy0Ua", CHIRP_ALLOWED_HOSTS="127.0.0.1",
               CHIRP_SENTRY_DSN="http://secretkey@127.0.0.1:9/1")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code, *command[1:], "--workers", "2", "--port", "0"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {message}"], result.stderr
    assert "Traceback" not in result.stderr and "secretkey" not in result.stderr
    assert "starting" not in result.stderr  # refused before the banner, before any worker forks


def test_access_log_fields_are_the_same_in_text_and_json(tmp_path: Path) -> None:
    lines = {}
    for fmt in ("json", "text"):
        with open(tmp_path / fmt, "wb") as out:
            log = AccessLog(fmt, fd=out.fileno())
            log.request("10.0.0.9", "GET", '/a?b="1"', "1.1", 201, 1_234_560)
            log.flush()
        lines[fmt] = (tmp_path / fmt).read_text()
    line = json.loads(lines["json"])
    assert {k: v for k, v in line.items() if k != "ts"} == {
        "peer": "10.0.0.9", "method": "GET", "path": '/a?b="1"', "http_version": "1.1", "status": 201,
        "duration_ms": 1.235,
    }  # fmt: skip
    assert lines["text"].endswith('10.0.0.9 - "GET /a?b="1" HTTP/1.1" 201 1.235ms\n')
    assert lines["text"][:20] == line["ts"][:20] and line["ts"].endswith("Z")
    logged = datetime.datetime.strptime(line["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.UTC)
    assert abs(datetime.datetime.now(datetime.UTC) - logged) < datetime.timedelta(seconds=30)


@pytest.mark.parametrize("target", ["/a?b=1&c=%20", "/caf\xe9?q=1"])
@pytest.mark.parametrize(
    ("duration", "shown"),
    [(250_000, "0.25"), (12_000_000, "12.0"), (12_345, "0.012"), (1_500_500_000, "1500.5")],
)
def test_access_lines_from_the_parsers_bytes_read_as_from_text(
    tmp_path: Path, target: str, duration: int, shown: str
) -> None:
    """The connection hands over the parser's bytes undecoded; the line is the one the decoded
    text gives (a target byte outside ASCII read as Latin-1, as always)."""
    written = {}
    for kind, fields in {
        "bytes": (b"GET", target.encode("latin-1"), b"1.1"),
        "text": ("GET", target, "1.1"),
    }.items():
        for fmt in ("text", "json"):
            with open(tmp_path / f"{kind}.{fmt}", "wb") as out:
                log = AccessLog(fmt, fd=out.fileno())
                log.request("::1", *fields, 404, duration)
                log.flush()
            line = (tmp_path / f"{kind}.{fmt}").read_text()
            if fmt == "text":
                assert line[23] == "Z" and " " not in line[:24]  # the timestamp, then the line
            written[kind, fmt] = line[24:] if fmt == "text" else {**json.loads(line), "ts": None}
    expected = f' ::1 - "GET {target} HTTP/1.1" 404 {shown}ms\n'
    assert written["bytes", "text"] == written["text", "text"] == expected
    assert written["bytes", "json"] == written["text", "json"]
    assert written["bytes", "json"]["path"] == target


@pytest.mark.parametrize("status", [200, 999, 0, -1, 1000, 12345])
def test_an_access_line_gives_any_status_the_app_left_as_it_is(tmp_path: Path, status: int) -> None:
    """A status outside 100-999 (an app that sent one, then lost its client) is written as it
    is, not looked up in the table of the common ones."""
    with open(tmp_path / "log", "wb") as out:
        log = AccessLog("text", fd=out.fileno())
        log.request("::1", b"GET", b"/", b"1.1", status, 2_000_000)
        log.flush()
    assert (tmp_path / "log").read_text().endswith(f' ::1 - "GET / HTTP/1.1" {status} 2.0ms\n')


def test_a_batch_of_access_lines_is_each_line_as_written_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines are built a batch at a time, the common ones from bytes in one join: a batch that
    mixes them with lines that take the slow path (a Latin-1 target, a request of a second or
    more, an odd status, fields given as text) holds exactly the lines each would give alone.
    (The wall clock is fixed so that both runs give the same timestamps.)"""
    from pounce import logs

    monkeypatch.setattr(logs.time, "time_ns", lambda: 1_800_000_000_123_456_789)
    requests = [
        ("127.0.0.1", b"GET", b"/a", b"1.1", 200, 1_000),
        ("127.0.0.1", b"POST", b"/b", b"1.0", 201, 1_500_000_000),
        ("::1", b"GET", b"/c", b"1.1", 1000, 3_000),
        ("127.0.0.1", b"HEAD", b"/e", b"1.1", 304, 999_999),
        ("10.0.0.2", b"GET", "/caf\xe9".encode("latin-1"), b"1.1", 200, 2_000),
        ("::1", "GET", "/d", "2", 404, 4_000),
    ]

    def written(batches: list[list[tuple[Any, ...]]]) -> bytes:
        with open(tmp_path / "log", "wb") as out:
            log = AccessLog("text", fd=out.fileno())
            for batch in batches:
                for request in batch:
                    log.request(*request)
                log.flush()
        return (tmp_path / "log").read_bytes()

    for size in range(1, len(requests) + 1):  # every batch that starts with the first line
        assert written([requests[:size]]) == written([[request] for request in requests[:size]])
    lines = written([requests]).decode().splitlines()
    assert lines[1].endswith(' 127.0.0.1 - "POST /b HTTP/1.0" 201 1500.0ms')
    assert lines[4].endswith(' 10.0.0.2 - "GET /caf\xe9 HTTP/1.1" 200 0.002ms')


@settings(max_examples=2000, deadline=None)
@given(duration=st.integers(0, 10**15) | st.integers(0, 10**6).map(lambda us: us * 1000 + 500))
def test_an_access_line_gives_the_duration_as_the_rounded_float_prints(duration: int) -> None:
    """The duration in nanoseconds reads as `round(ms, 3)` prints it, rounded half up to the
    microsecond, from integer arithmetic only."""
    micros = math.floor(Fraction(duration, 1000) + Fraction(1, 2))
    expected = repr(round(micros / 1000, 3))
    assert _milliseconds(duration).decode() == expected


def test_access_lines_are_written_whole_in_pipe_sized_batches(tmp_path: Path) -> None:
    """Workers share stderr: a batch goes out in writes of whole lines no larger than a pipe
    writes atomically, so lines from two processes never interleave inside a line."""
    writes: list[bytes] = []

    class Recorded(AccessLog):
        def _write(self, data: bytes) -> None:
            writes.append(data)
            super()._write(data)

    read, write = os.pipe()
    log = Recorded("text", fd=write, max_lines=1000)
    for i in range(300):
        log.request("10.0.0.9", "GET", "/" + "x" * 40 + str(i), "1.1", 200, 500_000)
    assert writes == [] and len(log.lines) == 300  # batched until a flush
    log.flush()
    os.close(write)
    chunks = []
    while data := os.read(read, 65536):
        chunks.append(data)
    os.close(read)
    assert len(writes) > 1 and all(len(w) <= 4096 and w.endswith(b"\n") for w in writes)
    text = b"".join(chunks).decode()
    assert text.count("\n") == 300 and all(line.endswith("0.5ms") for line in text.splitlines())


def test_an_access_line_longer_than_a_pipe_write_goes_out_alone_and_whole(tmp_path: Path) -> None:
    writes: list[bytes] = []

    class Recorded(AccessLog):
        def _write(self, data: bytes) -> None:
            writes.append(data)
            super()._write(data)

    with open(tmp_path / "log", "wb") as out:
        log = Recorded("text", fd=out.fileno())
        for target in (b"/a", b"/" + b"x" * 5000, b"/b", b"/c"):
            log.request("10.0.0.9", b"GET", target, b"1.1", 200, 1000)
        log.flush()
    assert [w.count(b"\n") for w in writes] == [1, 1, 2] and all(w.endswith(b"\n") for w in writes)
    assert len(writes[1]) > 5000 and b'"GET /b HTTP/1.1"' in writes[2]
    assert (tmp_path / "log").read_bytes() == b"".join(writes)


async def plain_or_websocket(scope: Any, receive: Any, send: Any) -> None:
    """200 `ok` over HTTP; a websocket is accepted and closed."""
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
    elif scope["type"] == "lifespan":
        await lifespan_ok(receive, send)
    else:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


def test_access_lines_for_http11_h2_and_websocket_from_a_real_server(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Every path a request takes writes the same line: HTTP/1.1, HTTP/2 (prior knowledge) and a
    websocket upgrade (with the status its handshake got)."""
    with serve(plain_or_websocket, access_log=True) as srv:
        assert httpx.get(srv.url + "/one?x=1").text == "ok"
        with httpx.Client(http1=False, http2=True) as client:
            response = client.get(srv.url + "/two")
            assert response.http_version == "HTTP/2" and response.text == "ok"
        with (
            ws_connect(srv.url.replace("http://", "ws://") + "/three") as ws,
            pytest.raises(ConnectionClosedOK),
        ):
            ws.recv(timeout=5)
    lines = capfd.readouterr().err.splitlines()
    pattern = r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z 127\.0\.0\.1 - "GET %s HTTP/%s" %d \d+\.\d{1,3}ms'
    for target, version, status in (("/one?x=1", "1.1", 200), ("/two", "2", 200), ("/three", "1.1", 101)):
        found = [line for line in lines if re.fullmatch(pattern % (re.escape(target), version, status), line)]
        assert len(found) == 1, (target, lines)


def test_banner_and_json_access_log_from_a_real_server(tmp_path: Path) -> None:
    app = write_feature_app(tmp_path)
    server = spawn(["pounce", "serve", "--app", app, "--port", "0", "--workers", "2", "--access-log-format", "json",
                    "--metrics", "--rate-limit", "--queue"], tmp_path)  # fmt: skip
    try:
        banner = next(line for line in server.log if "starting:" in line)
        assert "bind http://127.0.0.1:0, 2 workers (async mode)" in banner
        assert "features: metrics, rate-limit, queue, compression" in banner
        assert httpx.get(server.url + "/items/1").status_code == 200
    finally:
        assert server.stop() == 0
    lines = [json.loads(line) for line in server.log if line.startswith("{")]
    access = [line for line in lines if line.get("path") == "/items/1"]
    assert len(access) == 1
    assert access[0]["status"] == 200 and access[0]["method"] == "GET" and access[0]["peer"] == "127.0.0.1"


def test_info_endpoint_answers_before_the_app_with_a_redacted_config() -> None:
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            await lifespan_ok(receive, send)
            return
        await send({"type": "http.response.start", "status": 401, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    with serve(app, info_endpoint=True, redis_url="redis://:hunter2@127.0.0.1:6379/0") as srv:
        response = httpx.get(srv.url + "/_pounce/info")
        assert response.status_code == 200  # the app (which says 401 to everything) never saw it
        info = response.json()
        assert info["server"] == "pounce" and info["workers"] == 1 and info["uptime_seconds"] >= 0
        assert info["config"]["redis_url"] == "***"
        assert "hunter2" not in response.text
        assert httpx.post(srv.url + "/_pounce/info").status_code == 405
        assert httpx.get(srv.url + "/other").status_code == 401
    with serve(app) as srv:  # off by default
        assert httpx.get(srv.url + "/_pounce/info").status_code == 401


def test_metrics_without_prometheus_client_is_a_configuration_error() -> None:
    code = (
        "import sys\n"
        "sys.modules['prometheus_client'] = None  # as if the metrics extra were not installed\n"
        "from pounce.config import ServerConfig\n"
        "from pounce.server import Server\n"
        "Server(lambda *a: None, ServerConfig(metrics_enabled=True))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "ConfigurationError: metrics_enabled=True is invalid" in result.stderr
    assert "pip install 'chirp-pounce[metrics]'" in result.stderr


def test_disabled_features_import_no_optional_dependency() -> None:
    code = (
        "import sys\n"
        "from pounce.config import ServerConfig\n"
        "from pounce.server import Server\n"
        "Server(lambda *a: None, ServerConfig())\n"
        "heavy = [m for m in ('prometheus_client', 'opentelemetry', 'sentry_sdk', 'redis') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "Server(lambda *a: None, ServerConfig(metrics_enabled=True))\n"
        "assert 'prometheus_client' in sys.modules and 'sentry_sdk' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
