"""Small raw ASGI apps the server tests drive."""

from __future__ import annotations

import json
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


# Responses `echo` answers on these paths as given: most must not be sent as they are.
CANNED: dict[str, tuple[int, list[tuple[bytes, bytes]], bytes]] = {
    "/badheader": (200, [(b"x-user", b"a\r\nset-cookie: x=1")], b"never"),
    "/ctlheader": (200, [(b"x-user", b"a\x01b")], b"never"),
    "/badname": (200, [(b"x bad", b"v")], b"never"),
    "/badstatus": (42, [], b"never"),
    "/badlength": (200, [(b"content-length", b"99")], b"short"),
    "/twolengths": (200, [(b"content-length", b"5"), (b"content-length", b"6")], b"short"),
    "/nocontent-body": (204, [], b"not for a 204"),
    "/nolength": (200, [], b"whole body"),  # fine: framed by the server
}


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
    canned = CANNED.get(scope["path"])
    if canned is not None:
        status, headers, canned_body = canned
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": canned_body})
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


async def scope_echo(scope: Any, receive: Any, send: Any) -> None:
    """Answer with JSON of what the app was handed: the request line's parts, headers and body."""
    if scope["type"] == "lifespan":
        await lifespan_ok(receive, send)
        return
    body = await read_body(receive)
    seen = {key: scope[key] for key in ("http_version", "method", "path")}
    seen["raw_path"] = scope["raw_path"].decode("latin-1")
    seen["query_string"] = scope["query_string"].decode("latin-1")
    seen["headers"] = [[name.decode("latin-1"), value.decode("latin-1")] for name, value in scope["headers"]]
    seen["body"] = body.decode("latin-1")
    payload = json.dumps(seen).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def failing_startup(message: str = "database unreachable") -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.failed", "message": message})

    return app


def plain_asgi(app: Any) -> Any:
    """`app` as a bare ASGI callable, as any other server sees it: none of its optional pounce
    hooks (`pounce_preflight`, `lifespan_required`, ...) are visible, every scope is passed on.

    Served with `lifespan="off"` it shows what the app does before (or without) startup.
    """

    async def plain(scope: Any, receive: Any, send: Any) -> None:
        await app(scope, receive, send)

    return plain
