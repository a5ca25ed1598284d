"""A real Prometheus server for a test: loopback, an ephemeral port, everything in a temp dir.

The binaries are Debian's (`.ci/run` unpacks them into /opt/prometheus/bin when missing, or
`PROMETHEUS_BIN` names their directory); `PATH` is searched too. With CHIRP_CI=1 a
missing Prometheus fails the test, otherwise it is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers.process import terminate
from helpers.services import free_port

BIN = os.environ.get("PROMETHEUS_BIN", "/opt/prometheus/bin")


def tool(name: str) -> str:
    """The path of `prometheus` or `promtool`, or the test is skipped (failed under CI)."""
    found = shutil.which(name, path=os.pathsep.join([BIN, os.environ.get("PATH", "")]))
    if found:
        return found
    message = f"{name} is not in {BIN} or on PATH (`.ci/run` unpacks Debian's prometheus package there)"
    if os.environ.get("CHIRP_CI") == "1":
        pytest.fail(f"{message}; CHIRP_CI=1 requires it")
    pytest.skip(message)


class Prometheus:
    def __init__(self, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.url = url
        self.proc = proc
        self.log = log

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar, as one sample) `expr` evaluates to now."""
        response = httpx.get(self.url + "/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        assert body["status"] == "success", (expr, body)
        data = body["data"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def value(self, expr: str) -> float | None:
        """The single number `expr` gives now (None while it gives no sample)."""
        result = self.query(expr)
        assert len(result) <= 1, (expr, result)
        return float(result[0]["value"][1]) if result else None

    def wait_for(
        self, expr: str, condition: Callable[[float | None], bool], timeout: float = 20
    ) -> float | None:
        """Poll `expr` until its value satisfies `condition` (scrapes come every second)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.value(expr)
            if condition(value):
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{expr} = {value} after {timeout}s")
            time.sleep(0.2)

    def label_values(self, label: str, match: str) -> list[str]:
        response = httpx.get(f"{self.url}/api/v1/label/{label}/values", params={"match[]": match}, timeout=10)
        return list(response.json()["data"])


@contextmanager
def prometheus(workdir: Path, job: str, target: str, interval: str = "1s") -> Iterator[Prometheus]:
    """Prometheus scraping `target` (host:port) as `job`; its data and log stay in `workdir`."""
    binary = tool("prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(
        f"global:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}\n"
        f"scrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
    )
    port = free_port()
    log = workdir / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = Prometheus(f"http://127.0.0.1:{port}", proc, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(server.url + "/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "Prometheus did not become ready:\n" + log.read_text()
            time.sleep(0.1)
        yield server
    finally:
        terminate(proc)


def promtool_check_metrics(exposition: str) -> subprocess.CompletedProcess[str]:
    """`promtool check metrics` on an exposition (its lint findings come on stdout or stderr)."""
    return subprocess.run(
        [tool("promtool"), "check", "metrics"], input=exposition, capture_output=True, text=True, timeout=30
    )
