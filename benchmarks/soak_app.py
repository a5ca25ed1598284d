"""The raw ASGI app the soak benchmark serves: a plain-text hello, a WebSocket echo and an SSE stream.

Raw ASGI rather than a chirp App, so that what the soak measures is the server's own memory
and file descriptors (chirp has no WebSocket routes in any case). Routes:

- `/sse`: a Server-Sent Events stream: one `data: hello` event at once, then a comment line
  every `TICK` seconds until the client goes away, which the app learns from `receive()`;
- any WebSocket path: echo (`ws_echo.py`);
- `/_soak/tracemalloc`: with `SOAK_TRACEMALLOC_DIR` set and tracing on (`PYTHONTRACEMALLOC`),
  writes a snapshot into that directory and answers with its path, so that a leak can be
  located by diffing snapshots taken in the server;
- anything else: the 13-byte hello (`hello_raw.py`).
"""

from __future__ import annotations

import itertools
import os
import tracemalloc
from pathlib import Path

import anyio
import hello_raw
import ws_echo

SNAPSHOT_PATH = "/_soak/tracemalloc"
SNAPSHOT_DIR_ENV = "SOAK_TRACEMALLOC_DIR"
TICK = 0.5
_numbers = itertools.count()


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "websocket":
        await ws_echo.app(scope, receive, send)
    elif scope["type"] == "http" and scope["path"] == "/sse":
        await sse(receive, send)
    elif scope["type"] == "http" and scope["path"] == SNAPSHOT_PATH:
        body = snapshot().encode()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": body})
    else:  # lifespan and the hello
        await hello_raw.app(scope, receive, send)


async def sse(receive, send):  # type: ignore[no-untyped-def]
    """Stream until the client disconnects; a tick that finds the client gone just stops."""
    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"data: hello\n\n", "more_body": True})

    async def tick() -> None:
        try:
            while True:
                await anyio.sleep(TICK)
                await send({"type": "http.response.body", "body": b": tick\n\n", "more_body": True})
        except OSError:  # the server's ClientDisconnected: the disconnect is on its way to receive()
            return

    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        while (await receive())["type"] != "http.disconnect":
            pass
        tg.cancel_scope.cancel()


def snapshot() -> str:
    """Dump a tracemalloc snapshot of this process; return its path (or why there is none)."""
    directory = os.environ.get(SNAPSHOT_DIR_ENV)
    if not directory or not tracemalloc.is_tracing():
        return f"no snapshot: set {SNAPSHOT_DIR_ENV} and PYTHONTRACEMALLOC"
    path = Path(directory) / f"{next(_numbers):03d}.tracemalloc"
    tracemalloc.take_snapshot().dump(str(path))
    return str(path)
