"""Small raw ASGI apps the server tests drive."""

from __future__ import annotations

from typing import Any

import anyio


async def lifespan_ok(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


async def read_body(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return body
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def echo(scope: Any, receive: Any, send: Any) -> None:
    """Echo the method, path and body; `/slow` waits for a release event first."""
    if scope["type"] == "lifespan":
        await lifespan_ok(receive, send)
        return
    body = await read_body(receive)
    if scope["path"] == "/boom":
        raise RuntimeError("boom")
    if scope["path"] == "/silent":
        return
    if scope["path"] == "/badheader":
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"x-user", b"a\r\nset-cookie: x=1")]}
        )
        await send({"type": "http.response.body", "body": b"never"})
        return
    if scope["path"] == "/ctlheader":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-user", b"a\x01b")]})
        await send({"type": "http.response.body", "body": b"never"})
        return
    if scope["path"] == "/badname":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x bad", b"v")]})
        await send({"type": "http.response.body", "body": b"never"})
        return
    if scope["path"] == "/badstatus":
        await send({"type": "http.response.start", "status": 42, "headers": []})
        await send({"type": "http.response.body", "body": b"never"})
        return
    if scope["path"] in ("/badlength", "/twolengths"):
        lengths = [b"99"] if scope["path"] == "/badlength" else [b"5", b"6"]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", n) for n in lengths],
            }
        )
        await send({"type": "http.response.body", "body": b"short"})
        return
    if scope["path"] == "/nocontent-body":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b"not for a 204"})
        return
    if scope["path"] == "/nolength":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"whole body"})
        return
    if scope["path"].startswith("/sleep/"):
        await anyio.sleep(float(scope["path"].split("/")[2]))
    payload = b"%s %s %s" % (scope["method"].encode(), scope["raw_path"], body)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def failing_startup(message: str = "database unreachable") -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.failed", "message": message})

    return app
