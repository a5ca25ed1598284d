"""`chirp.testing`: the in-process clients run the lifespan, keep cookies, speak CSRF, SSE and
WebSocket; `serve()` runs the real pounce."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from chirp import App, AppConfig, ContractViolation, EventStream, Request, secure_stack
from chirp.db import Database
from chirp.middleware import csrf_token
from chirp.testing import AsyncTestClient, TestClient, WebSocketDisconnect, serve
from chirp.websocket import WebSocket
from pounce.errors import StartupFailed

SECRET = secrets.token_urlsafe(48)
HOST = "shop.example.com"


def shop(tmp_path: Path, *, env: str = "production", events: list[str] | None = None) -> App:
    """A production app with the secure stack, a database, a form, an API, SSE and a WebSocket."""
    log = events if events is not None else []
    config = AppConfig(
        env=env,
        secret_key=SECRET,
        allowed_hosts=(HOST, "127.0.0.1"),
        metrics_enabled=True,
        strict_transport_security="max-age=63072000",
    )
    app = App(config, database=Database(f"sqlite:///{tmp_path / 'shop.db'}"))
    for middleware in secure_stack(config):
        app.add_middleware(middleware)

    @app.on_startup
    async def schema() -> None:
        assert app.database is not None
        await app.database.execute("CREATE TABLE IF NOT EXISTS notes (body TEXT)")
        log.append("startup")

    @app.on_shutdown
    def bye() -> None:
        log.append("shutdown")

    @app.route("/")
    def index(request: Request) -> str:
        return f'<form method="post"><input name="csrf_token" value="{csrf_token(request)}"></form>'

    @app.route("/notes", methods=("GET", "POST"))
    async def notes(request: Request) -> Any:
        assert app.database is not None
        if request.method == "POST":
            form = await request.form()
            await app.database.execute("INSERT INTO notes (body) VALUES (?)", (form["body"],))
            request.session["count"] = request.session.get("count", 0) + 1
            return {"saved": form["body"], "count": request.session["count"]}
        return await app.database.fetch("SELECT body FROM notes")

    @app.route("/api/echo", methods=("POST",), csrf="origin")
    async def echo(request: Request) -> Any:
        return await request.json()

    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("the handler's own bug")

    @app.route("/count")
    async def count() -> EventStream:
        async def numbers() -> AsyncIterator[int]:
            for n in range(3):
                yield n

        return EventStream(numbers())

    @app.websocket("/ws/{room}")
    async def chat(websocket: WebSocket, room: str) -> None:
        offered = websocket.subprotocols
        await websocket.accept(offered[0] if offered else None, headers={"x-room": room})
        await websocket.send_json({"room": room, "count": websocket.session.get("count")})
        async for message in websocket:
            if message == "close":
                await websocket.close(4000, "asked to")
                return
            await websocket.send(message)

    return app


def test_the_lifespan_runs_around_the_client(tmp_path: Path) -> None:
    events: list[str] = []
    app = shop(tmp_path, events=events)
    with TestClient(app) as client:
        assert events == ["startup"]
        ready = client.get("/ready")
        assert (ready.status_code, ready.text) == (200, "ready\n")  # the database check passes
        assert client.base_url == httpx.URL(f"https://{HOST}")
    assert events == ["startup", "shutdown"]
    assert app.started is False and app.database is not None and not app.database.connected


def test_without_with_the_first_request_starts_the_app_and_close_stops_it(tmp_path: Path) -> None:
    events: list[str] = []
    client = TestClient(shop(tmp_path, events=events))
    assert client.get("/ready").status_code == 200
    client.close()
    assert events == ["startup", "shutdown"]


def test_session_cookies_and_csrf_tokens(tmp_path: Path) -> None:
    with TestClient(shop(tmp_path)) as client:
        refused = client.post("/notes", data={"body": "no token"})
        assert refused.status_code == 403
        token = client.csrf_token()
        first = client.post("/notes", data={"body": "one", "csrf_token": token})
        second = client.post("/notes", data={"body": "two"}, headers={"x-csrf-token": client.csrf_token()})
        assert (first.json(), second.json()) == ({"saved": "one", "count": 1}, {"saved": "two", "count": 2})
        assert client.get("/notes").json() == [{"body": "one"}, {"body": "two"}]


def test_a_token_from_the_page_works_as_in_a_browser(tmp_path: Path) -> None:
    with TestClient(shop(tmp_path)) as client:
        page = client.get("/")
        token = page.text.split('value="')[1].split('"')[0]
        assert client.post("/notes", data={"body": "x", "csrf_token": token}).status_code == 200


def test_the_client_sends_the_origin_a_browser_would(tmp_path: Path) -> None:
    with TestClient(shop(tmp_path)) as client:
        assert client.post("/api/echo", json={"a": 1}).json() == {"a": 1}
        cross = client.post("/api/echo", json={}, headers={"origin": "https://evil.example"})
        assert cross.status_code == 403
    with TestClient(shop(tmp_path), origin=None) as bare:
        token = bare.csrf_token()
        response = bare.post("/notes", data={"body": "x", "csrf_token": token})
        assert response.status_code == 403 and "neither an Origin nor a Referer" in response.text


def test_handler_errors_are_raised_in_the_test_unless_told_otherwise(tmp_path: Path) -> None:
    with TestClient(shop(tmp_path)) as client, pytest.raises(RuntimeError, match="the handler's own bug"):
        client.get("/boom")
    with TestClient(shop(tmp_path), raise_server_exceptions=False) as client:
        response = client.get("/boom")
        assert (response.status_code, response.text) == (500, "500 Internal Server Error\n")


def test_a_failing_contract_check_fails_startup_with_the_report(tmp_path: Path) -> None:
    app = App(AppConfig(env="production", secret_key=SECRET))  # allowed_hosts still "*"
    with pytest.raises(ContractViolation) as info, TestClient(app):
        pass
    assert "allowed_hosts.wildcard" in info.value.detail


def test_a_failing_startup_hook_fails_the_client(tmp_path: Path) -> None:
    app = App(AppConfig())

    @app.on_startup
    def broken() -> None:
        raise OSError("the cache is unreachable")

    with pytest.raises(StartupFailed, match="OSError: the cache is unreachable"), TestClient(app):
        pass


def test_event_streams_fed_by_emit(tmp_path: Path) -> None:
    app = shop(tmp_path)
    with TestClient(app) as client:
        with client.stream("GET", "/count") as finite:
            assert [line for line in finite.iter_lines() if line] == ["data: 0", "data: 1", "data: 2"]
        with client.stream("GET", "/_chirp/live?topics=news") as live:
            assert live.headers["content-type"] == "text/event-stream; charset=utf-8"
            app.emit("news", {"headline": "chirp ships"})  # the subscription is active once headers arrive
            lines = live.iter_lines()
            assert next(line for line in lines if line.startswith("event:")) == "event: news"
            assert next(lines) == 'data: {"headline":"chirp ships"}'
        assert client.get("/ready").status_code == 200  # leaving the stream left the app serving


def test_websockets_through_the_test_client(tmp_path: Path) -> None:
    with TestClient(shop(tmp_path)) as client:
        client.post("/notes", data={"body": "x", "csrf_token": client.csrf_token()})
        with client.websocket_connect("/ws/lobby", ["chat.v2"]) as ws:
            assert (ws.subprotocol, ws.headers["x-room"]) == ("chat.v2", "lobby")
            assert ws.receive_json() == {"room": "lobby", "count": 1}  # the session is readable
            ws.send_text("hello")
            assert ws.receive_text() == "hello"
            ws.send_bytes(b"\x00\x01")
            assert ws.receive_bytes() == b"\x00\x01"
            ws.send_json({"k": [1]})
            assert json.loads(ws.receive_text()) == {"k": [1]}
            ws.send_text("close")
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive()
            assert (closed.value.code, closed.value.reason) == (4000, "asked to")


@pytest.mark.parametrize(
    ("path", "headers", "reason"),
    [
        ("/ws/x", {"origin": "https://evil.example"}, "cross-site WebSocket handshake"),
        ("/nowhere", {}, "404 Not Found"),
    ],
)
def test_a_refused_handshake_raises_websocket_disconnect(
    tmp_path: Path, path: str, headers: dict[str, str], reason: str
) -> None:
    client = TestClient(shop(tmp_path))
    with client, pytest.raises(WebSocketDisconnect) as info, client.websocket_connect(path, headers=headers):
        pass
    assert info.value.code == 1008 and reason in info.value.reason


def test_an_exception_escaping_a_plain_asgi_app() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise LookupError("no handler")

    with TestClient(app) as client, pytest.raises(LookupError, match="no handler"):
        client.get("/")
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/")
        assert (response.status_code, response.content) == (500, b"")


def test_a_plain_asgi_app_works_too() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"  # no lifespan support: the client goes on without it
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    with TestClient(app) as client:
        assert client.base_url == httpx.URL("https://testserver")
        assert client.get("/hi%20there").text == "/hi there"


# -- async tests --------------------------------------------------------------------------


@pytest.fixture
async def async_client(tmp_path: Path) -> AsyncIterator[AsyncTestClient]:
    # pytest runs this fixture's setup and teardown in different tasks: the app must not care.
    async with AsyncTestClient(shop(tmp_path)) as client:
        yield client


async def test_the_async_client_shares_the_tests_event_loop(async_client: AsyncTestClient) -> None:
    app = async_client.app
    assert isinstance(app, App) and app.database is not None
    await app.database.execute("INSERT INTO notes (body) VALUES ('from the test')")
    assert (await async_client.get("/notes")).json() == [{"body": "from the test"}]
    token = async_client.csrf_token()
    saved = await async_client.post("/notes", data={"body": "posted", "csrf_token": token})
    assert saved.json() == {"saved": "posted", "count": 1}
    assert (await async_client.get("/ready")).status_code == 200


async def test_async_streams_and_websockets(async_client: AsyncTestClient) -> None:
    async with async_client.stream("GET", "/count") as response:
        lines = [line async for line in response.aiter_lines() if line]
    assert lines == ["data: 0", "data: 1", "data: 2"]
    async with async_client.websocket_connect("/ws/async") as ws:
        assert (await ws.receive_json())["room"] == "async"
        await ws.send_text("ping")
        assert await ws.receive_text() == "ping"


# -- a real server ------------------------------------------------------------------------


def test_serve_runs_the_real_server_with_websockets(tmp_path: Path) -> None:
    app = shop(tmp_path, env="development")
    with serve(app) as server:
        assert server.url.startswith("http://127.0.0.1:") and server.ws_url.startswith("ws://127.0.0.1:")
        assert httpx.get(server.url + "/ready").status_code == 200

        async def talk() -> Any:
            async with connect(server.ws_url + "/ws/real") as ws:
                return json.loads(await ws.recv())

        assert asyncio.run(talk()) == {"room": "real", "count": None}


def test_serve_refuses_an_app_that_fails_its_check_before_listening() -> None:
    app = App(AppConfig(env="production", secret_key=SECRET))
    with pytest.raises(ContractViolation), serve(app):
        pass


def test_serve_gives_settings_the_last_word() -> None:
    app = App(AppConfig(allowed_hosts=(HOST,), workers=4))
    with serve(app, health_path="/livez") as server:
        assert server.server.config.health_path == "/livez" and server.server.config.workers == 1
