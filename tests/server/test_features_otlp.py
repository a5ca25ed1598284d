"""OTLP export over the wire: real worker processes, the OTLP/HTTP exporter, a loopback collector."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from helpers.feature_apps import write_feature_app
from helpers.process import ServerProcess, spawn
from helpers.receivers import OTLPReceiver, running
from helpers.services import wait_for

pytest.importorskip("opentelemetry.exporter.otlp.proto.http")


def start(
    tmp_path: Path, endpoint: str, workers: int = 2, env: dict[str, str] | None = None
) -> ServerProcess:
    app = write_feature_app(tmp_path)
    return spawn(["pounce", "serve", "--app", app, "--port", "0", "--workers", str(workers), "--no-access-log",
                  "--otel-endpoint", endpoint], tmp_path, env=env)  # fmt: skip


def traced_requests(url: str, first: int, count: int) -> dict[str, tuple[str, str, str]]:
    """`count` requests from three clients at once, each on a fresh connection and holding its
    worker a moment (so every worker gets some), each continuing a trace of its own:
    path -> (pid that served it, trace id, parent span id)."""

    def send(i: int) -> tuple[str, tuple[str, str, str]]:
        trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
        path = f"/items/{i}"
        response = httpx.get(f"{url}{path}?hold", headers={"traceparent": f"00-{trace_id}-{parent}-01"})
        assert response.status_code == 200
        return path, (response.text.split()[1], trace_id, parent)

    with ThreadPoolExecutor(3) as pool:
        return dict(pool.map(send, range(first, first + count)))


def check_spans(receiver: OTLPReceiver, sent: dict[str, tuple[str, str, str]]) -> None:
    """Exactly one span per request, from the worker that served it, in the trace it continued."""
    spans = receiver.server_spans()
    by_path = {span.attributes["url.path"]: span for span in spans}
    assert len(spans) == len(by_path) == len(sent)  # none lost, none twice
    assert Counter(str(s.resource["process.pid"]) for s in spans) == Counter(
        pid for pid, _, _ in sent.values()
    )
    for path, (pid, trace_id, parent) in sent.items():
        span = by_path[path]
        assert span.name == "GET /items/{id}"
        assert span.resource["service.name"] == "pounce"
        assert str(span.resource["process.pid"]) == pid
        assert (span.trace_id, span.parent_span_id) == (trace_id, parent)
        assert span.attributes["http.route"] == "/items/{id}"
        assert span.attributes["http.request.method"] == "GET"
        assert span.attributes["http.response.status_code"] == 200


def test_every_worker_exports_its_spans_and_a_graceful_stop_flushes_the_batch(tmp_path: Path) -> None:
    with running(OTLPReceiver()) as receiver:
        # A bare collector URL, as operators give it: the traces path is added.
        server = start(tmp_path, f"http://127.0.0.1:{receiver.port}")
        try:
            sent = traced_requests(server.url, 0, 40)
            assert len({pid for pid, _, _ in sent.values()}) == 2
        finally:
            assert server.stop() == 0  # well within the batch delay (5 s): only the flush sends them
        check_spans(receiver, sent)


def test_no_span_is_lost_across_a_reload(tmp_path: Path) -> None:
    with running(OTLPReceiver()) as receiver:
        server = start(tmp_path, f"http://127.0.0.1:{receiver.port}/v1/traces")
        try:
            sent = traced_requests(server.url, 0, 20)
            os.kill(server.proc.pid, signal.SIGUSR1)
            wait_for(lambda: any("reload complete" in line for line in server.read_log()), timeout=30)
            sent |= traced_requests(server.url, 20, 20)
        finally:
            assert server.stop() == 0
        assert len({pid for pid, _, _ in sent.values()}) == 4  # two generations of two workers
        check_spans(receiver, sent)


def test_an_unreachable_collector_never_slows_requests_is_logged_once_and_retried(tmp_path: Path) -> None:
    # A collector that accepts connections and never answers: every export waits out its timeout.
    blackhole = socket.create_server(("127.0.0.1", 0), backlog=64)
    port = blackhole.getsockname()[1]
    env = {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "3", "OTEL_BSP_SCHEDULE_DELAY": "100"}
    server = start(
        tmp_path, f"http://127.0.0.1:{port}", workers=1, env=env
    )  # one worker: one exporter to log
    try:
        slowest = 0.0
        sent = {}
        for i in range(30):
            began = time.monotonic()
            sent |= traced_requests(server.url, i, 1)
            slowest = max(slowest, time.monotonic() - began)
        assert slowest < 1.5  # an export waiting on the collector would take 3 s
        wait_for(lambda: any("cannot export spans" in line for line in server.read_log()), timeout=20)
        blackhole.close()
        with running(OTLPReceiver(port)) as receiver:
            sent |= traced_requests(server.url, 30, 10)  # the next batch carries the held spans
            receiver.wait_until(lambda: len(receiver.spans) >= 40, timeout=30)
            wait_for(lambda: any("spans reach" in line for line in server.read_log()), timeout=10)
            assert server.stop() == 0
            check_spans(receiver, sent)
    finally:
        blackhole.close()
        server.stop()
    log = server.read_log()
    assert sum("cannot export spans" in line for line in log) == 1, "".join(log)
    assert sum("spans reach" in line for line in log) == 1
    assert not any("Traceback" in line or "Transient error" in line for line in log)


def test_a_stop_waits_for_an_unreachable_collector_at_most_once(tmp_path: Path) -> None:
    blackhole = socket.create_server(("127.0.0.1", 0), backlog=64)
    env = {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "4", "OTEL_BSP_SCHEDULE_DELAY": "100",
           "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "2"}  # fmt: skip
    try:
        server = start(tmp_path, f"http://127.0.0.1:{blackhole.getsockname()[1]}", workers=1, env=env)
        try:
            traced_requests(server.url, 0, 10)  # five batches for a collector that never answers
            wait_for(lambda: any("cannot export spans" in line for line in server.read_log()), timeout=20)
        finally:
            began = time.monotonic()
            code = server.stop()
        assert code == 0
        assert time.monotonic() - began < 7  # the export under way may finish its 4 s; no batch after it
    finally:
        blackhole.close()
    assert any("10 spans could not be exported" in line for line in server.read_log())
