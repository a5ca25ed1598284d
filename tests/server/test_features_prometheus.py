"""pounce's metrics as a real Prometheus reads them: a 2-worker server scraped every second,
checked through PromQL against what the test did, across a reload; promtool lints the
exposition, and every query of the example Grafana dashboard runs against the result."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers.process import ServerProcess, spawn
from helpers.prometheus import Prometheus, prometheus, promtool_check_metrics, tool
from helpers.services import wait_for

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-chirp-contract.json"
JOB = "shop"
SHOP = textwrap.dedent(
    """
    import asyncio
    from pathlib import Path

    from chirp import App, AppConfig, secure_stack

    config = AppConfig.from_env(secret_key="Qm7-hZ2vR9xK4pW8nB3cT6yF1jL5sD0aE")  # in source: a warning
    app = App(config)
    for middleware in secure_stack(config):
        app.add_middleware(middleware)

    @app.route("/")
    def index() -> str:
        return "ok"

    @app.route("/items/{item_id:int}")
    def item(item_id: int) -> str:
        return f"item {item_id}"

    @app.route("/hold/{n:int}")
    async def hold(n: int) -> str:
        await asyncio.sleep(0.3)  # every held request lasts longer than the 0.25 s bucket
        while not Path("release").exists():
            await asyncio.sleep(0.02)
        return f"held {n}"
    """
)
SETTINGS = """
app = "shop:app"
workers = 2
metrics_enabled = true
rate_limit_enabled = true
rate_limit_burst = 20
rate_limit_requests_per_second = 0.01
request_queue_enabled = true
request_queue_max_concurrency = 4
request_queue_max_depth = 0
trusted_hosts = ["127.0.0.1"]
access_log = false
"""
UNROUTED = "<unrouted>"


class Client:
    """Sends requests as distinct clients (X-Forwarded-For from the trusted loopback proxy), each
    on a connection of its own (so they spread over the workers), and counts what came back the
    way pounce labels it."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, headers={"connection": "close"}, timeout=30)
        self.counts: Counter[tuple[str, str]] = Counter()  # (route label, status)
        self.bytes = 0
        self.lock = threading.Lock()

    def get(self, path: str, route: str, client: str) -> int:
        response = self.http.get(path, headers={"x-forwarded-for": client})
        label = route if response.status_code not in (429, 503) else UNROUTED  # refused before the app
        with self.lock:
            self.counts[(label, str(response.status_code))] += 1
            self.bytes += len(response.content)
        return response.status_code

    def total(self, route: str) -> int:
        return sum(n for (label, _), n in self.counts.items() if label == route)


def start_server(tmp_path: Path) -> ServerProcess:
    (tmp_path / "shop.py").write_text(SHOP)
    (tmp_path / "pounce.toml").write_text(SETTINGS)
    env = {"CHIRP_ENV": "production", "CHIRP_ALLOWED_HOSTS": "127.0.0.1"}
    return spawn(["pounce", "serve", "--config", "pounce.toml", "--port", "0"], tmp_path, env)


def traffic(client: Client, first_client: int, count: int) -> None:
    """`count` GET / and a tenth as many GET /items/N, ten requests per client (under its burst)."""
    for i in range(count):
        assert client.get("/", "/", f"10.1.{first_client + i // 10}.1") == 200
    for i in range(count // 10):
        assert client.get(f"/items/{i}", "/items/{item_id:int}", f"10.2.{first_client + i}.1") == 200


def hold_and_shed(client: Client, prom: Prometheus, tmp_path: Path) -> None:
    """12 requests at once against 4 slots per worker and no queue: the extras are shed, the
    rest are in flight until released; Prometheus sees exactly those in flight."""
    threads = [
        threading.Thread(target=client.get, args=(f"/hold/{n}", "/hold/{n:int}", f"10.3.{n}.1"))
        for n in range(12)
    ]
    for thread in threads:
        thread.start()

    def shed() -> int:
        with client.lock:
            return client.counts[(UNROUTED, "503")]

    # All 12 have reached a worker once those in flight and those shed add up to 12.
    in_flight = prom.wait_for(
        "pounce_requests_in_flight", lambda v: v is not None and v > 0 and v + shed() == 12
    )
    assert in_flight is not None and 8 >= in_flight >= 4 and shed() == 12 - in_flight
    (tmp_path / "release").touch()
    for thread in threads:
        thread.join(30)
    assert client.counts[("/hold/{n:int}", "200")] == in_flight


def idle_connections(server_url: str, prom: Prometheus) -> None:
    """Five idle connections show in the open-connection gauge, and leave it when closed
    (within the 10 s a connection may stay silent); the scraper's own connection is the one left."""
    prom.wait_for("pounce_open_connections", lambda v: v == 1)
    host, port = server_url.removeprefix("http://").rsplit(":", 1)
    held = [socket.create_connection((host, int(port))) for _ in range(5)]
    try:
        prom.wait_for("pounce_open_connections", lambda v: v == 6, timeout=8)
    finally:
        for sock in held:
            sock.close()
    prom.wait_for("pounce_open_connections", lambda v: v == 1)


def settled(client: Client, prom: Prometheus) -> None:
    """Wait until a scrape has seen every request sent so far (workers share their numbers every
    0.1 s, Prometheus scrapes every second)."""
    prom.wait_for("sum(pounce_requests_total)", lambda v: v == sum(client.counts.values()))


def check_totals(client: Client, prom: Prometheus) -> None:
    """Every request series equals what the client counted."""
    seen = {
        (r["metric"]["route"], r["metric"]["status"]): float(r["value"][1])
        for r in prom.query("sum by (route, status) (pounce_requests_total)")
    }
    assert seen == {key: float(n) for key, n in client.counts.items()}
    routes = {route for route, _ in client.counts}
    for route in routes:
        selector = f'{{route="{route}"}}'
        assert prom.value(f"sum(pounce_request_duration_seconds_count{selector})") == client.total(route)
        inf = f'sum(pounce_request_duration_seconds_bucket{{route="{route}", le="+Inf"}})'
        assert prom.value(inf) == client.total(route)
    assert prom.value("pounce_response_bytes_total") == client.bytes
    assert prom.value("sum(pounce_rate_limited_total)") == client.counts[(UNROUTED, "429")]
    assert prom.value('sum(pounce_shed_total{reason="queue_full"})') == client.counts[(UNROUTED, "503")]
    assert prom.value("pounce_requests_in_flight") == 0


def check_contract_gauges(server: ServerProcess, prom: Prometheus) -> None:
    """The posture gauges say what the app's contract check logged: its findings, and when."""
    logged = [
        json.loads(line.split(": ", 1)[1]) for line in server.read_log() if '"chirp.contract_check"' in line
    ]
    assert logged
    findings = {(f["rule"], f["severity"]): 1.0 for f in logged[-1]["findings"] if not f["suppressed"]}
    assert ("secret_key.hardcoded", "warning") in findings
    gauges = prom.query("chirp_contract_findings")
    assert {(g["metric"]["rule"], g["metric"]["severity"]): float(g["value"][1]) for g in gauges} == findings
    checked = prom.value("chirp_contract_check_timestamp_seconds")
    assert checked is not None and min(entry["timestamp"] for entry in logged) - 1 <= checked <= time.time()


def dashboard_queries() -> tuple[list[str], list[tuple[str, str]], dict[str, str]]:
    """From the example dashboard: every panel expression, every `label_values(metric, label)`
    variable query, and the variables to substitute (each query variable -> this test's job)."""
    board = json.loads(DASHBOARD.read_text())
    exprs: list[str] = []

    def panels(items: list[dict[str, Any]]) -> None:
        for panel in items:
            exprs.extend(target["expr"] for target in panel.get("targets", []) if target.get("expr"))
            panels(panel.get("panels", []))

    panels(board["panels"])
    variables, label_queries = {}, []
    for var in board.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
        assert match, query
        label_queries.append((match.group(1).strip(), match.group(2)))
        variables[var["name"]] = JOB
    return exprs, label_queries, variables


def substitute(expr: str, variables: dict[str, str]) -> str:
    for name, value in variables.items():
        expr = expr.replace("${" + name + "}", value).replace("$" + name, value)
    assert "$" not in expr, expr
    return expr


def check_dashboard(prom: Prometheus) -> None:
    exprs, label_queries, variables = dashboard_queries()
    assert exprs and label_queries
    for metric, label in label_queries:
        assert JOB in prom.label_values(label, metric)
    for expr in exprs:
        assert prom.query(substitute(expr, variables)), f"no data for {expr}"


@pytest.mark.timeout(180)
def test_prometheus_reads_what_the_server_did_across_a_reload(tmp_path: Path) -> None:
    tool("promtool")
    server = start_server(tmp_path)
    try:
        client = Client(server.url)
        with prometheus(tmp_path / "prometheus", JOB, server.url.removeprefix("http://")) as prom:
            prom.wait_for(f'up{{job="{JOB}"}}', lambda v: v == 1)
            traffic(client, 0, 300)
            for _ in range(25):  # one client past its burst of 20
                client.get("/", "/", "10.9.9.9")
            assert client.counts[(UNROUTED, "429")] == 5
            hold_and_shed(client, prom, tmp_path)
            idle_connections(server.url, prom)
            settled(client, prom)
            check_totals(client, prom)

            os.kill(server.proc.pid, signal.SIGUSR1)
            wait_for(lambda: any("reload complete" in line for line in server.read_log()), timeout=30)
            traffic(client, 100, 100)
            settled(client, prom)
            assert client.total("/") == 420  # 300 + 20 within the burst + 100 after the reload
            check_totals(client, prom)
            assert prom.value("sum(resets(pounce_requests_total[10m]))") == 0  # never went backwards
            assert prom.value("sum(resets(pounce_request_duration_seconds_count[10m]))") == 0

            hold = 'sum by (le) (pounce_request_duration_seconds_bucket{route="/hold/{n:int}"})'
            assert prom.value(f"histogram_quantile(0.5, {hold})") > 0.25  # type: ignore[operator]
            fast = 'sum by (le) (rate(pounce_request_duration_seconds_bucket{route="/"}[5m]))'
            assert prom.value(f"histogram_quantile(0.5, {fast})") < 0.25  # type: ignore[operator]
            check_contract_gauges(server, prom)
            check_dashboard(prom)

            exposition = httpx.get(server.url + "/metrics").text
            lint = promtool_check_metrics(exposition)
            assert lint.returncode == 0 and not (lint.stdout + lint.stderr).strip(), lint
    finally:
        assert server.stop() == 0
