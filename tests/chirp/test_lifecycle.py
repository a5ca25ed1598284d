"""Lifecycle hooks: their order, and what a failing or hanging one does."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import anyio
import httpx
import pytest

from chirp import App, AppConfig
from chirp.testing import TestClient, serve
from pounce.errors import StartupFailed


@pytest.fixture
def pounce_errors() -> Iterator[list[logging.LogRecord]]:
    """ERROR records from pounce's loggers (attached directly: they may not propagate)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("pounce")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def test_startup_hooks_in_order_and_a_failure_stops_the_rest() -> None:
    app = App(AppConfig())
    events: list[str] = []
    app.on_startup(lambda: events.append("sync"))

    @app.on_startup
    async def fails() -> None:
        events.append("fails")
        raise ValueError("no database")

    app.on_startup(lambda: events.append("never"))
    app.on_shutdown(lambda: events.append("shutdown"))
    with pytest.raises(StartupFailed, match="ValueError: no database"), TestClient(app):
        pass
    assert events == ["sync", "fails"]  # no later hook, and no shutdown hook


def test_every_shutdown_hook_runs_even_after_one_fails() -> None:
    app = App(AppConfig())
    events: list[str] = []

    @app.on_shutdown
    def first() -> None:
        events.append("first")
        raise RuntimeError("boom")

    app.on_shutdown(lambda: events.append("second"))
    with TestClient(app):
        pass
    assert events == ["first", "second"]


def test_worker_hooks_run_after_startup_and_a_failure_keeps_serving() -> None:
    app = App(AppConfig(worker_mode="async"))
    events: list[str] = []
    app.on_startup(lambda: events.append("startup"))
    app.on_shutdown(lambda: events.append("shutdown"))
    app.on_worker_startup(lambda: events.append("worker_startup"))

    @app.on_worker_startup
    def fails() -> None:
        raise RuntimeError("boom")

    app.on_worker_startup(lambda: events.append("worker_startup 2"))
    app.on_worker_shutdown(lambda: events.append("worker_shutdown"))

    @app.route("/")
    def index() -> str:
        return "hi"

    with serve(app) as server:
        assert httpx.get(server.url + "/").text == "hi"
    assert events == ["startup", "worker_startup", "worker_startup 2", "worker_shutdown", "shutdown"]


def test_a_worker_hook_past_startup_timeout_is_reported(pounce_errors: list[logging.LogRecord]) -> None:
    """A hook that hangs is cancelled at `startup_timeout` and the worker serves; that must be
    an error in the log, not a silent skip of it and every hook after it."""
    app = App(AppConfig(worker_mode="async"))

    @app.on_worker_startup
    async def hangs() -> None:
        await anyio.sleep_forever()

    @app.route("/")
    def index() -> str:
        return "hi"

    with serve(app, startup_timeout=0.3) as server:
        assert httpx.get(server.url + "/").text == "hi"
    assert any("startup_timeout" in r.getMessage() for r in pounce_errors), [
        r.getMessage() for r in pounce_errors
    ]
