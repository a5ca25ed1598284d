"""Prometheus metrics: labels, the endpoint, and totals across real worker processes."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from chirp import App, AppConfig
from helpers.asgi_apps import echo
from helpers.feature_apps import write_feature_app
from helpers.process import spawn
from helpers.server import serve


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in an exposition, 0.0 when absent."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(
            re.findall(
                r'(\w+)="([^"]*)"', line.split(" ")[0] if "{" not in line else line[: line.rindex("}") + 1]
            )
        )
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_chirp_route_templates_label_the_series() -> None:
    app = App(AppConfig(env="test"))

    @app.route("/items/{id:int}")
    def item(id: int) -> str:
        return f"item {id}"

    with serve(app, metrics_enabled=True) as srv, httpx.Client(base_url=srv.url) as client:
        for i in range(3):
            assert client.get(f"/items/{i}").status_code == 200
        assert client.get("/nowhere").status_code == 404
        text = client.get("/metrics").text
        assert sample(text, "pounce_requests_total", method="GET", route="/items/{id:int}", status="200") == 3
        assert sample(text, "pounce_requests_total", method="GET", route="<unrouted>", status="404") == 1
        assert (
            sample(text, "pounce_request_duration_seconds_count", route="/items/{id:int}", status="200") == 3
        )
        assert sample(text, "pounce_requests_in_flight") == 0
        assert sample(text, "pounce_response_bytes_total") > 0
        assert "/items/0" not in text  # raw paths never become labels


def test_metrics_endpoint_answers_get_and_head_only() -> None:
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        raise AssertionError("the metrics path must not reach the app")

    with serve(app, metrics_enabled=True, metrics_path="/_metrics", lifespan="off") as srv:
        response = httpx.get(srv.url + "/_metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=")
        assert httpx.head(srv.url + "/_metrics").content == b""
        refused = httpx.post(srv.url + "/_metrics")
        assert refused.status_code == 405
        assert refused.headers["allow"] == "GET, HEAD"


def test_an_app_exception_counts_as_500() -> None:
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http" and scope["path"] == "/boom":
            raise RuntimeError("boom")
        raise RuntimeError("no lifespan")

    with serve(app, metrics_enabled=True) as srv:
        assert httpx.get(srv.url + "/boom").status_code == 500
        text = httpx.get(srv.url + "/metrics").text
        assert sample(text, "pounce_requests_total", method="GET", status="500") == 1


def scrape(url: str) -> str:
    with httpx.Client() as client:
        return client.get(url + "/metrics").text


def settled(url: str, expected: int) -> set[float]:
    """What six scrapes in a row report, polled (for up to 5 s) until all say `expected`."""
    deadline = time.monotonic() + 5
    while True:
        seen = {
            sample(scrape(url), "pounce_requests_total", route="/items/{id}", status="200") for _ in range(6)
        }
        if seen == {float(expected)} or time.monotonic() > deadline:
            return seen
        time.sleep(0.02)


def shared_twice(root: Path, workers: int) -> None:
    """Wait until each worker has written its snapshot file twice from now on. A scrape that
    reads 60 may be answered by a worker counting in its own memory while its file, written
    every 0.1 s, is a tick behind; the second write starts after the first has ended, so it
    holds every request counted before this call."""
    for _ in range(2):
        since = time.time_ns()
        deadline = time.monotonic() + 5
        while True:
            stamps = []
            for path in root.rglob("stats-*.json"):
                try:
                    stamps.append(path.stat().st_mtime_ns)
                except FileNotFoundError:  # replaced right now
                    stamps.append(0)
            if len(stamps) == workers and min(stamps) > since:
                break
            assert time.monotonic() < deadline, f"the workers' snapshots were not written: {stamps}"
            time.sleep(0.02)


def test_histogram_buckets_are_cumulative_and_end_with_the_count() -> None:
    with serve(echo, metrics_enabled=True) as srv, httpx.Client(base_url=srv.url) as client:
        for _ in range(4):
            client.get("/fast")
        client.get("/sleep/0.3")
        text = client.get("/metrics").text
    buckets = [
        (float(le), sample(text, "pounce_request_duration_seconds_bucket", route="<unrouted>", le=le))
        for le in re.findall(r'pounce_request_duration_seconds_bucket\{[^}]*le="([^"]+)"', text)
    ]
    counts = [count for _, count in sorted(buckets)]
    assert counts == sorted(counts)  # cumulative
    assert counts[-1] == 5 == sample(text, "pounce_request_duration_seconds_count")
    assert sample(text, "pounce_request_duration_seconds_bucket", le="0.25") == 4  # the slow one is above
    # uvloop (the default where installed) keeps timers in whole milliseconds of a cached clock,
    # so a 0.3 s sleep can end a fraction of a millisecond early by perf_counter.
    assert sample(text, "pounce_request_duration_seconds_sum") >= 0.298


def test_open_connections_follow_the_clients() -> None:
    with serve(echo, metrics_enabled=True) as srv, httpx.Client(base_url=srv.url) as scraper:

        def open_connections() -> float:
            return sample(scraper.get("/metrics").text, "pounce_open_connections")

        assert open_connections() == 1  # the scraper's own
        held = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(2)]
        try:
            deadline = time.monotonic() + 5
            while open_connections() != 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert open_connections() == 3
        finally:
            for sock in held:
                sock.close()
        deadline = time.monotonic() + 5
        while open_connections() != 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert open_connections() == 1


def test_totals_are_exact_across_two_workers_and_a_restart(tmp_path: Path) -> None:
    app = write_feature_app(tmp_path)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    server = spawn(["pounce", "serve", "--app", app, "--port", "0", "--workers", "2", "--no-access-log",
                    "--metrics"], tmp_path, env={"TMPDIR": str(scratch)})  # fmt: skip
    try:

        def served_by(i: int) -> str:  # fresh connections, three at once, each holding its worker
            return httpx.get(f"{server.url}/items/{i}?hold").text.split()[1]

        with ThreadPoolExecutor(3) as pool:
            pids = set(pool.map(served_by, range(60)))
        assert len(pids) == 2
        # Each worker leaves its numbers for the other every 0.1 s: poll until both have.
        assert settled(server.url, 60) == {60.0}  # any worker answering a scrape reports the whole server
        shared_twice(scratch, 2)  # (what a worker killed now leaves is what it had shared)
        os.kill(int(next(iter(pids))), signal.SIGKILL)  # a dead worker's counts are kept
        deadline = time.monotonic() + 10
        while not any("exited with code" in line for line in server.read_log()):
            assert time.monotonic() < deadline, "the supervisor never noticed the killed worker"
            time.sleep(0.02)
        for i in range(10):
            assert httpx.get(f"{server.url}/items/{i}").status_code == 200
        assert settled(server.url, 70) == {70.0}
        assert sample(scrape(server.url), "pounce_requests_in_flight") == 0  # the dead worker's gauge is gone
        assert any(scratch.iterdir())  # the multiprocess files live in a private temp dir...
    finally:
        assert server.stop() == 0
    assert list(scratch.iterdir()) == []  # ...removed on exit
