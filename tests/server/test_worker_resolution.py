"""How many workers run and in which mode, including on free-threaded Python.

No free-threaded CPython is installable on the CI machines, so these tests fake the GIL
probe (`sys._is_gil_enabled`) that the server and the contract rules both read.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import pytest

from chirp import App, AppConfig
from chirp.contracts.model import Severity
from helpers.server import serve
from pounce.config import ServerConfig
from pounce.runner import startup_banner
from pounce.workers import available_cpus, effective_worker_mode, free_threaded, worker_count

KEY = "k" * 24 + "0123456789abcdef"


@pytest.fixture(params=["gil", "free-threaded", "no-probe"])
def interpreter(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Pretend to run on a GIL build, a free-threaded build, or a Python without the probe (3.11, 3.12)."""
    if request.param == "no-probe":
        monkeypatch.delattr(sys, "_is_gil_enabled", raising=False)
    else:
        monkeypatch.setattr(sys, "_is_gil_enabled", lambda: request.param == "gil", raising=False)
    return str(request.param)


def test_auto_resolves_by_interpreter(interpreter: str) -> None:
    expected = "sync" if interpreter == "free-threaded" else "async"
    assert free_threaded() is (interpreter == "free-threaded")
    assert effective_worker_mode("auto") == expected
    assert effective_worker_mode("sync") == "sync" and effective_worker_mode("async") == "async"
    banner = startup_banner(ServerConfig(app="m:app", worker_mode="auto"), 1)
    assert f"({expected} mode)" in banner


def _hooked_app(calls: list[str], worker_mode: str = "auto", env: str = "development") -> App:
    app = App(AppConfig(env=env, secret_key=KEY, allowed_hosts=("127.0.0.1",), worker_mode=worker_mode))

    @app.on_worker_startup
    async def open_pool() -> None:
        calls.append("startup")

    @app.route("/")
    def index() -> str:
        return "hi"

    return app


def test_worker_hooks_run_only_in_async_mode(interpreter: str) -> None:
    """The server sends worker scopes exactly when the mode it resolved is async."""
    calls: list[str] = []
    with serve(_hooked_app(calls), worker_mode="auto") as running:
        assert httpx.get(running.url + "/").text == "hi"
    assert calls == ([] if interpreter == "free-threaded" else ["startup"])


def test_contract_and_server_resolve_auto_alike(interpreter: str) -> None:
    """`worker_hooks.sync_mode` fires exactly when the server would skip the hooks."""
    app = _hooked_app([], env="production")
    findings = [f for f in app.check().findings if f.rule_id == "worker_hooks.sync_mode"]
    if effective_worker_mode("auto") == "sync":
        assert [f.severity for f in findings] == [Severity.ERROR]
        assert "resolves to sync on free-threaded Python" in findings[0].message
    else:
        assert findings == []


def _cgroup(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        ({"cpu.max": "50000 100000\n"}, 1),  # half a CPU still runs one worker
        ({"cpu.max": "150000 100000\n"}, 2),  # a fraction rounds up
        ({"cpu.max": "max 100000\n"}, None),  # no quota
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),  # cgroup v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
    ],
)
def test_available_cpus_honours_affinity_and_quota(
    tmp_path: Path, files: dict[str, str], quota: int | None
) -> None:
    affinity = len(os.sched_getaffinity(0))
    expected = affinity if quota is None else min(affinity, quota)
    assert available_cpus(_cgroup(tmp_path, files)) == expected


def test_worker_count_zero_means_available_cpus() -> None:
    assert worker_count(0) == available_cpus()
    assert worker_count(3) == 3
