"""`@app.websocket` routes over a real pounce, driven by a real client (`websockets`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from chirp import App, AppConfig, ConfigurationError, Request, Response
from chirp.middleware import secure_stack
from chirp.testing import RunningServer, serve
from chirp.websocket import WebSocket, WebSocketDisconnect
from helpers.secure import SECRET

HOST = "127.0.0.1"  # what the client sends as Host; localhost is not allowed


def chat_app(events: list[str]) -> App:
    """Routes that exercise the WebSocket API; handlers record what they saw in `events`."""
    config = AppConfig(secret_key=SECRET, allowed_hosts=(HOST,))
    app = App(config)
    for middleware in secure_stack(config):
        app.add_middleware(middleware)

    @app.route("/login/{name}", methods=["POST"], csrf="origin")
    def login(request: Request, name: str) -> str:
        request.session["user"] = name
        return "ok"

    @app.websocket("/echo/{room}")
    async def echo(websocket: WebSocket, room: str) -> None:
        await websocket.accept(subprotocol="chat.v1" if "chat.v1" in websocket.subprotocols else None)
        await websocket.send_json({"room": room, "user": websocket.session.get("user")})
        async for message in websocket:
            await websocket.send(message)
        events.append(f"{room} left")

    @app.websocket("/typed")
    async def typed(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            data = await websocket.receive_json()
            await websocket.send_text(str(data["n"] * 2))
            await websocket.receive_text()
        except WebSocketDisconnect as exc:
            events.append(f"typed closed {exc.code}")
            raise

    @app.websocket("/bye")
    async def bye(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close(4001, "done here")

    @app.websocket("/refuse")
    async def refuse(websocket: WebSocket) -> None:
        await websocket.close()

    @app.websocket("/crash")
    async def crash(websocket: WebSocket) -> None:
        await websocket.accept()
        raise RuntimeError("handler bug")

    @app.websocket("/public", check_origin=False)
    async def public(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("tick")

    return app


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[list[str], RunningServer]]:
    events: list[str] = []
    app = chat_app(events)
    app.suppress("websocket.origin_unchecked", reason="/public sends no user data")
    with serve(app) as server:
        yield events, server


def headers(**extra: str) -> dict[str, str]:
    return dict(extra)


async def test_messages_round_trip_with_subprotocol_and_session(
    running: tuple[list[str], RunningServer],
) -> None:
    _, server = running
    with httpx.Client(base_url=server.url) as client:
        login = client.post("/login/ann", headers={"sec-fetch-site": "same-origin"})
        assert login.status_code == 200
        cookie = login.headers["set-cookie"].split(";")[0]
    async with connect(
        server.ws_url + "/echo/lobby",
        additional_headers=headers(Cookie=cookie, Origin=server.url),
        subprotocols=["chat.v1"],  # type: ignore[list-item]
    ) as ws:
        assert ws.subprotocol == "chat.v1"
        assert json.loads(await ws.recv()) == {"room": "lobby", "user": "ann"}
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.send(b"\x00\xff")
        assert await ws.recv() == b"\x00\xff"


async def test_iteration_ends_when_the_client_leaves(running: tuple[list[str], RunningServer]) -> None:
    events, server = running
    async with connect(server.ws_url + "/echo/leaving", additional_headers=headers()) as ws:
        await ws.recv()
    await wait_for(lambda: "leaving left" in events)


async def test_receive_json_and_a_disconnect_is_an_exception(
    running: tuple[list[str], RunningServer],
) -> None:
    events, server = running
    async with connect(server.ws_url + "/typed", additional_headers=headers()) as ws:
        await ws.send(json.dumps({"n": 21}))
        assert await ws.recv() == "42"
        await ws.close(4100)
    await wait_for(lambda: "typed closed 4100" in events)


@pytest.mark.parametrize(
    ("messages", "code"),
    [
        ([b"\xff not json"], 1007),  # receive_json: invalid payload data
        (['{"n": 1}', b"binary"], 1003),  # receive_text: unsupported data
    ],
)
async def test_unexpected_payloads_close_the_connection(
    running: tuple[list[str], RunningServer], messages: list[str | bytes], code: int
) -> None:
    _, server = running
    async with connect(server.ws_url + "/typed", additional_headers=headers()) as ws:
        for message in messages:
            await ws.send(message)
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == code


async def test_close_code_and_reason_reach_the_client(running: tuple[list[str], RunningServer]) -> None:
    _, server = running
    async with connect(server.ws_url + "/bye", additional_headers=headers()) as ws:
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (4001, "done here")


async def test_a_crashing_handler_closes_with_1011(running: tuple[list[str], RunningServer]) -> None:
    _, server = running
    async with connect(server.ws_url + "/crash", additional_headers=headers()) as ws:
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1011


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("/echo/x", {"Origin": "https://evil.example"}),  # cross-site WebSocket hijacking
        ("/echo/x", {"Origin": "null"}),
        ("/nowhere", {}),  # no such route
        ("/refuse", {}),  # the handler closed before accepting
    ],
)
async def test_refused_handshakes_answer_403(
    running: tuple[list[str], RunningServer], path: str, extra: dict[str, str]
) -> None:
    _, server = running
    with pytest.raises(InvalidStatus) as info:
        async with connect(server.ws_url + path, additional_headers=headers(**extra)):
            pass
    assert info.value.response.status_code == 403


async def test_a_host_outside_allowed_hosts_is_refused(running: tuple[list[str], RunningServer]) -> None:
    _, server = running
    with pytest.raises(InvalidStatus) as info:
        async with connect(f"ws://localhost:{server.port}/echo/x"):  # Host: localhost:PORT
            pass
    assert info.value.response.status_code == 403


async def test_same_site_origins_and_originless_clients_are_accepted(
    running: tuple[list[str], RunningServer],
) -> None:
    _, server = running
    for extra in ({"Origin": server.url}, {}):
        async with connect(server.ws_url + "/echo/ok", additional_headers=headers(**extra)) as ws:
            assert json.loads(await ws.recv())["room"] == "ok"


async def test_check_origin_false_accepts_any_origin(running: tuple[list[str], RunningServer]) -> None:
    _, server = running
    async with connect(
        server.ws_url + "/public", additional_headers=headers(Origin="https://elsewhere.example")
    ) as ws:
        assert await ws.recv() == "tick"


def test_plain_http_to_a_websocket_route_is_404(running: tuple[list[str], RunningServer]) -> None:
    _, server = running
    assert httpx.get(server.url + "/echo/x").status_code == 404


def test_middleware_sees_the_handshake_and_can_refuse_it() -> None:
    app = App(AppConfig())
    seen: list[tuple[str, str]] = []

    async def gate(request: Request, call_next: Any) -> Response:
        seen.append((type(request).__name__, request.method))
        if request.query.get("key") != "open-sesame":
            return Response("no key", 401)
        return await call_next(request)

    app.add_middleware(gate)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(websocket.query["key"])

    async def run(url: str) -> None:
        async with connect(url + "/ws?key=open-sesame") as client:
            assert await client.recv() == "open-sesame"
        with pytest.raises(InvalidStatus):
            async with connect(url + "/ws"):
                pass

    with serve(app) as server:
        asyncio.run(run(server.ws_url))
    assert seen == [("WebSocket", "GET"), ("WebSocket", "GET")]


def test_registration_checks_the_handler() -> None:
    app = App(AppConfig())

    def sync_handler(websocket: WebSocket) -> None:
        pass

    async def no_socket() -> None:
        pass

    async def wrong_param(websocket: WebSocket, roomid: str) -> None:
        pass

    with pytest.raises(ConfigurationError, match=r"must be `async def`"):
        app.websocket("/a")(sync_handler)
    with pytest.raises(ConfigurationError, match=r"add a `websocket` parameter"):
        app.websocket("/b")(no_socket)
    with pytest.raises(ConfigurationError, match=r"websocket\('/c/\{room\}'\).*no parameter 'room'"):
        app.websocket("/c/{room}")(wrong_param)


async def test_accepting_an_unoffered_subprotocol_is_an_error() -> None:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "websocket.disconnect"}

    websocket = WebSocket({"type": "websocket", "subprotocols": ["a"], "headers": []}, receive, send)
    with pytest.raises(ValueError, match="was not offered"):
        await websocket.accept("b")
    with pytest.raises(RuntimeError, match="accept"):
        await websocket.send_text("early")
    assert sent == []


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    """Poll until `predicate()` holds (the server runs in another thread)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)
