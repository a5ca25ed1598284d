"""Load shedding: bounded concurrency and queue, 503 + Retry-After under a burst."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from helpers.asgi_apps import echo
from helpers.feature_apps import write_feature_app
from helpers.process import spawn
from helpers.server import serve


def burst(url: str, count: int) -> list[httpx.Response]:
    responses: list[httpx.Response] = []
    lock = threading.Lock()

    def one() -> None:
        response = httpx.get(url, timeout=20)
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return responses


def test_a_burst_larger_than_the_queue_is_shed_with_503(tmp_path: Path) -> None:
    app = write_feature_app(tmp_path)
    server = spawn(["pounce", "serve", "--app", app, "--port", "0", "--workers", "1", "--no-access-log",
                    "--queue", "--queue-concurrency", "2", "--queue-depth", "3", "--queue-timeout", "10",
                    "--metrics"], tmp_path)  # fmt: skip
    try:
        responses = burst(server.url + "/sleep/1", 12)
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] * 5 + [503] * 7  # two running + three queued, the rest refused
        for refused in (r for r in responses if r.status_code == 503):
            assert refused.headers["retry-after"] == "5"
        text = httpx.get(server.url + "/metrics").text
        assert 'pounce_shed_total{reason="queue_full"} 7.0' in text
    finally:
        assert server.stop() == 0


def test_waiting_longer_than_the_timeout_is_shed_and_probes_are_exempt() -> None:
    with serve(echo, request_queue_enabled=True, request_queue_max_concurrency=1, request_queue_max_depth=5,
               request_queue_timeout=0.3) as srv:  # fmt: skip
        results: list[httpx.Response] = []
        first = threading.Thread(target=lambda: results.append(httpx.get(srv.url + "/sleep/1.5", timeout=10)))
        first.start()
        threading.Event().wait(0.2)
        # the only slot is busy: the probes still answer, a queued request gives up after 0.3 s
        assert httpx.get(srv.url + "/health").status_code == 200
        assert httpx.get(srv.url + "/ready").status_code == 200
        waited = httpx.get(srv.url + "/sleep/0")
        assert waited.status_code == 503
        assert waited.headers["retry-after"] == "1"
        first.join(10)
        assert results[0].status_code == 200
        assert httpx.get(srv.url + "/after").status_code == 200  # the slot was released


def test_zero_depth_sheds_as_soon_as_every_slot_is_busy() -> None:
    with serve(
        echo, request_queue_enabled=True, request_queue_max_concurrency=2, request_queue_max_depth=0
    ) as srv:
        statuses = sorted(r.status_code for r in burst(srv.url + "/sleep/0.8", 5))
        assert statuses == [200, 200, 503, 503, 503]
