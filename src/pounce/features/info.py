"""`/_pounce/info`: server introspection for operators (off by default).

Answered before the app and all its middleware, so the app's authentication does NOT
protect it: enable it only on a loopback or private admin bind. It returns JSON with the
pounce version, the worker id and pid that answered, the configured workers and mode,
the uptime of this worker, and the configuration with secrets redacted.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from typing import Any

from pounce.asgi import ASGIApp, Receive, Scope, Send
from pounce.config import INFO_PATH, ServerConfig
from pounce.features.shared import send_plain
from pounce.implementations import resolve
from pounce.workers import effective_worker_mode


class InfoEndpoint:
    def __init__(self, app: ASGIApp, config: ServerConfig, path: str = INFO_PATH) -> None:
        from pounce.schema import redacted

        self.app = app
        self.path = path
        self.config = config
        self.redacted_config = redacted(asdict(config))
        self.started = time.monotonic()

    def document(self, scope: Scope) -> dict[str, Any]:
        from pounce import __version__

        server_state = scope.get("extensions", {}).get("pounce.server")
        return {
            "server": "pounce",
            "version": __version__,
            "pid": os.getpid(),
            "worker_id": getattr(server_state, "worker_id", 0),
            "workers": self.config.workers,
            "worker_mode": effective_worker_mode(self.config.worker_mode),
            "loop": resolve("loop", self.config.loop),
            "http": resolve("http", self.config.http),
            "draining": bool(getattr(server_state, "draining", False)),
            "uptime_seconds": round(time.monotonic() - self.started, 3),
            "config": self.redacted_config,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            await send_plain(send, 405, "405 Method Not Allowed\n", [(b"allow", b"GET, HEAD")])
            return
        body = json.dumps(self.document(scope), indent=2, default=str).encode() + b"\n"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
