"""Sentry over the wire: sentry-sdk's own transport posting envelopes to a loopback endpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.cookies import SimpleCookie
from pathlib import Path

import httpx
import pytest

from helpers.asgi_apps import lifespan_ok
from helpers.process import ServerProcess, spawn
from helpers.receivers import SentryReceiver, running
from helpers.server import serve
from helpers.services import wait_for

pytest.importorskip("sentry_sdk")

TOKEN = "Bearer tok-4c1f9e2ab7d3"
THEME = "theme-cookie-51d0a9"
ACCOUNT = "session-data-7f3ae1"

SHOP = textwrap.dedent(
    f"""
    import os, time
    from chirp import App, AppConfig, secure_stack

    config = AppConfig.from_env()
    app = App(config)
    for middleware in secure_stack(config):
        app.add_middleware(middleware)

    @app.route("/login")
    def login(request) -> str:
        request.session["account"] = "{ACCOUNT}"
        return str(os.getpid())

    @app.route("/pay/{{order:int}}")
    async def pay(request, order: int) -> str:
        time.sleep(0.05)  # holds this worker's loop: a concurrent request goes to the other one
        session = request.session
        presented = request.headers.get("authorization"), request.cookies
        raise RuntimeError(f"card declined for order {{order}}")
    """
)
ENV = {
    "CHIRP_SECRET_KEY": "Vb3-q9LmZt8Rw2Xc7Np4Kd6Hf1Gj5Sy0Ua",
    "CHIRP_ALLOWED_HOSTS": "127.0.0.1",
    "PYTHONWARNINGS": "default::DeprecationWarning",  # printed if the SDK deprecates what pounce passes
}


def start(tmp_path: Path, dsn: str, *command: str) -> ServerProcess:
    (tmp_path / "shop.py").write_text(SHOP)
    args = list(command) or ["chirp", "run", "shop:app", "--production"]
    return spawn([*args, "--workers", "2", "--port", "0"], tmp_path, {**ENV, "CHIRP_SENTRY_DSN": dsn})


def credentials(url: str) -> dict[str, str]:
    """An `Authorization` header and the cookies of a logged-in client (its session holds
    ACCOUNT); built by hand because the session cookie is `Secure` and this is plain HTTP."""
    response = httpx.get(url + "/login")
    assert response.status_code == 200
    session = SimpleCookie(response.headers["set-cookie"])
    cookies = {name: morsel.value for name, morsel in session.items()} | {"theme": THEME}
    return {"authorization": TOKEN, "cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}


def fail_orders(url: str, orders: range, headers: dict[str, str]) -> None:
    """Three clients at once, each request on a fresh connection: while one worker is busy with
    a request, the next connection is accepted by another, so every worker gets some."""

    def fail(order: int) -> int:
        with httpx.Client() as client:
            return client.get(f"{url}/pay/{order}", headers=headers).status_code

    with ThreadPoolExecutor(3) as pool:
        assert set(pool.map(fail, orders)) == {500}


def check_events(receiver: SentryReceiver, orders: range, workers: int | None = None) -> None:
    """One event per failed order, each saying where it happened (from `workers` processes)."""
    events = receiver.events()
    messages = Counter(e["exception"]["values"][-1]["value"] for e in events)
    assert messages == Counter(
        f"card declined for order {order}" for order in orders
    )  # none lost, none twice
    for event in events:
        assert event["tags"]["http.route"] == "/pay/{order:int}"
        assert event["tags"]["http.method"] == "GET"
        assert event["transaction"] == "GET /pay/{order:int}"
        assert event["request"]["method"] == "GET" and event["request"]["url"].startswith("/pay/")
    if workers is not None:
        assert len({e["contexts"]["process"]["pid"] for e in events}) == workers


def test_handler_errors_of_every_worker_arrive_without_credentials_and_are_flushed_at_stop(
    tmp_path: Path,
) -> None:
    with running(SentryReceiver(delay=0.1)) as receiver:  # a slow Sentry: events queue up in the workers
        server = start(tmp_path, receiver.dsn())
        try:
            headers = credentials(server.url)
            fail_orders(server.url, range(30), headers)
        finally:
            assert server.stop() == 0  # at once: the events still queued go out before the workers exit
        check_events(receiver, range(30), workers=2)
        raw = receiver.raw()
    session_cookie = headers["cookie"].split(";")[0].split("=", 1)[1]
    for secret in (TOKEN, THEME, ACCOUNT, session_cookie):
        assert secret.encode() not in raw, secret
    assert b"card declined for order 7" in raw and b"[Filtered]" in raw  # the frames are there, scrubbed
    log = "".join(server.log)
    assert "DeprecationWarning" not in log


def test_no_event_is_lost_across_a_reload(tmp_path: Path) -> None:
    with running(SentryReceiver(delay=0.5)) as receiver:  # the old workers still send when the stop comes
        server = start(tmp_path, receiver.dsn())
        try:
            headers = credentials(server.url)
            fail_orders(server.url, range(15), headers)
            os.kill(server.proc.pid, signal.SIGUSR1)
            wait_for(lambda: any("reload complete" in line for line in server.read_log()), timeout=30)
            fail_orders(server.url, range(15, 30), headers)
        finally:
            assert server.stop() == 0
        check_events(receiver, range(30), workers=4)


def test_cookies_and_locals_are_sent_when_the_user_opts_in(tmp_path: Path) -> None:
    (tmp_path / "pounce.toml").write_text(
        "[sentry_data_collection]\nstack_frame_variables = true\ncookies = {mode = 'denylist'}\n"
    )
    with running(SentryReceiver()) as receiver:
        server = start(
            tmp_path, receiver.dsn(), "pounce", "serve", "--app", "shop:app", "--config", "pounce.toml"
        )
        try:
            fail_orders(server.url, range(4), credentials(server.url))
        finally:
            assert server.stop() == 0
        check_events(receiver, range(4))
        raw = receiver.raw()
    assert THEME.encode() in raw  # opted in: the cookie is in the request's local variables
    assert TOKEN.encode() not in raw  # credentials never are


def test_an_exception_escaping_a_plain_asgi_app_is_reported_with_its_request() -> None:
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            await lifespan_ok(receive, send)
            return
        scope["route"] = "/pay/{id}"
        presented = dict(scope["headers"])[b"authorization"].decode()
        raise ValueError(f"card declined, {presented} refused")

    from pounce.features.errors import SentryCapture

    with running(SentryReceiver()) as receiver:
        # the SDK's default integrations patch subprocess and http.client for the whole process,
        # which would outlive this test; pounce's own capture does not need them
        wrapped = SentryCapture(app, dsn=receiver.dsn(), default_integrations=False)
        with serve(wrapped) as srv:
            response = httpx.get(
                srv.url + "/pay/3?x=1", headers={"authorization": TOKEN, "cookie": f"t={THEME}"}
            )
            assert response.status_code == 500
        wrapped.close()
        [event] = receiver.events()
        raw = receiver.raw()
    exception = event["exception"]["values"][-1]
    assert exception["type"] == "ValueError" and exception["value"] == "card declined, [Filtered] refused"
    assert event["tags"] == {"http.method": "GET", "http.route": "/pay/{id}"}
    assert event["request"] == {"method": "GET", "url": "/pay/3"}  # no query string, headers or cookies
    assert TOKEN.encode() not in raw and THEME.encode() not in raw
    assert not hasattr(subprocess.Popen.__init__, "__wrapped__")  # the SDK patched nothing
