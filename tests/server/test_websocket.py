"""WebSocket over pounce with a real client (`websockets`): handshake, messages, close codes."""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from helpers.server import serve


async def echo(scope: Any, receive: Any, send: Any) -> None:
    """Echo app: /reject refuses, /boom fails after accept, /close closes with 4001, /sub picks a subprotocol."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"plain http"})
        return
    assert (await receive())["type"] == "websocket.connect"
    path = scope["path"]
    if path == "/reject":
        await send({"type": "websocket.close", "code": 1008})
        return
    if path == "/crash-before-accept":
        raise RuntimeError("refuse")
    subprotocol = scope["subprotocols"][0] if path == "/sub" and scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": subprotocol, "headers": [(b"x-accepted", b"yes")]})
    if path == "/close":
        await send({"type": "websocket.close", "code": 4001, "reason": "bye"})
        return
    if path == "/boom":
        raise RuntimeError("handler failed after accept")
    if path == "/scope":
        await send(
            {
                "type": "websocket.send",
                "text": f"{scope['scheme']} {scope['path']} {scope['query_string'].decode()}",
            }
        )
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")})


@pytest.fixture(scope="module")
def ws_url() -> str:
    with serve(echo, ws_max_message_size=1024) as srv:
        yield srv.url.replace("http://", "ws://")


async def test_text_and_binary_echo(ws_url: str) -> None:
    async with connect(ws_url + "/echo") as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.send(b"\x00\x01binary")
        assert await ws.recv() == b"\x00\x01binary"
        await ws.send(["frag", "mented"])  # a fragmented message arrives whole
        assert await ws.recv() == "fragmented"
        pong = await ws.ping(b"p")
        await asyncio.wait_for(pong, 5)


async def test_scope_and_accept_headers(ws_url: str) -> None:
    async with connect(ws_url + "/scope?x=1") as ws:
        assert await ws.recv() == "ws /scope x=1"
        assert ws.response.headers["x-accepted"] == "yes"


async def test_subprotocol_negotiation(ws_url: str) -> None:
    async with connect(ws_url + "/sub", subprotocols=["chat.v2", "chat.v1"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "chat.v2"


async def test_permessage_deflate_is_negotiated(ws_url: str) -> None:
    async with connect(ws_url + "/echo", compression="deflate") as ws:
        assert "permessage-deflate" in ws.response.headers.get("sec-websocket-extensions", "")
        await ws.send("z" * 500)
        assert await ws.recv() == "z" * 500


@pytest.mark.parametrize("path", ["/reject", "/crash-before-accept"])
async def test_rejected_handshake_is_an_http_error(ws_url: str, path: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with connect(ws_url + path):
            pass  # pragma: no cover
    assert info.value.response.status_code == (403 if path == "/reject" else 500)
    assert info.value.response.reason_phrase == (
        "Forbidden" if path == "/reject" else "Internal Server Error"
    )


async def test_app_close_code_reaches_the_client(ws_url: str) -> None:
    async with connect(ws_url + "/close") as ws:
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 4001 and info.value.rcvd.reason == "bye"


async def test_app_failure_after_accept_closes_1011(ws_url: str) -> None:
    async with connect(ws_url + "/boom") as ws:
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1011


async def test_message_over_the_limit_closes_1009(ws_url: str) -> None:
    async with connect(ws_url + "/echo", max_size=None) as ws:
        await ws.send("x" * 2000)
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


async def test_client_close_reaches_the_app_and_http_still_works(ws_url: str) -> None:
    async with connect(ws_url + "/echo") as ws:
        await ws.close(code=1000)
    assert ws.close_code == 1000
    assert httpx.get(ws_url.replace("ws://", "http://") + "/").text == "plain http"


async def test_closed_sessions_free_their_deflate_state_without_the_cycle_collector(ws_url: str) -> None:
    """A finished session's wsproto state (the zlib streams) goes by reference counting.

    Before, the frame parser's generator kept it in a reference cycle until a full garbage
    collection, and closed connections piled up by the hundred between two of those.
    """
    from wsproto.extensions import PerMessageDeflate

    def alive() -> int:
        return sum(type(o) is PerMessageDeflate for o in gc.get_objects())

    gc.collect()
    gc.disable()  # what is still alive below is held by a cycle (or by a session still open)
    try:
        before = alive()
        for _ in range(5):
            async with connect(ws_url + "/echo", compression="deflate") as ws:
                await ws.send("z" * 500)
                assert await ws.recv() == "z" * 500
        deadline = time.monotonic() + 5  # the server ends a session just after the client's close
        while alive() > before and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert alive() == before
    finally:
        gc.enable()
