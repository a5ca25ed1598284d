"""A raw ASGI app for the operations-feature tests, also written to disk for real workers."""

from __future__ import annotations

from pathlib import Path

SOURCE = """
import asyncio, os, time

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path.startswith("/items/"):
        scope["route"] = "/items/{id}"
    if scope["query_string"] == b"hold":  # blocks this worker: a concurrent connection goes to another
        time.sleep(0.03)
    if path.startswith("/sleep/"):
        await asyncio.sleep(float(path.split("/")[2]))
    body = f"{path} {os.getpid()}".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
"""


def write_feature_app(directory: Path, name: str = "featureapp") -> str:
    (directory / f"{name}.py").write_text(SOURCE)
    return f"{name}:app"
