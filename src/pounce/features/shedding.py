"""Load shedding: bounded concurrency with a bounded, time-limited wait queue.

At most `request_queue_max_concurrency` requests run in the app at once (per worker
process: concurrency is a local resource); up to `request_queue_max_depth` more wait, in
arrival order, for a slot. A request that finds the queue full, or waits longer than
`request_queue_timeout`, is answered `503 Service Unavailable` with `Retry-After`, so a
traffic spike turns into fast refusals a load balancer can retry elsewhere instead of a
growing pile of slow requests. Probe paths and the metrics path are never queued.
"""

from __future__ import annotations

import math

import anyio

from pounce.asgi import ASGIApp, Receive, Scope, Send
from pounce.config import ServerConfig
from pounce.features.shared import mark_refused, probe_paths, send_plain


class LoadShedding:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_concurrency: int,
        max_depth: int,
        timeout: float,
        exempt: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.max_concurrency = max_concurrency
        self.max_depth = max_depth
        self.timeout = timeout
        self.exempt = exempt
        self.retry_after = str(max(1, math.ceil(min(timeout, 5.0)))).encode()
        self.running = 0
        self.waiting = 0
        self._slots: anyio.Semaphore | None = None

    @classmethod
    def from_config(cls, app: ASGIApp, config: ServerConfig) -> LoadShedding:
        return cls(
            app,
            max_concurrency=config.request_queue_max_concurrency,
            max_depth=config.request_queue_max_depth,
            timeout=config.request_queue_timeout,
            exempt=probe_paths(config),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        if self._slots is None:
            self._slots = anyio.Semaphore(self.max_concurrency)
        slots = self._slots
        if slots.value == 0 or self.waiting:  # nothing free (or others already wait first)
            if self.waiting >= self.max_depth:
                await self._shed(scope, send, "queue_full")
                return
            self.waiting += 1
            acquired = False
            try:
                with anyio.move_on_after(self.timeout):
                    await slots.acquire()
                    acquired = True
            finally:
                self.waiting -= 1
            if not acquired:
                await self._shed(scope, send, "queue_timeout")
                return
        else:
            await slots.acquire()
        self.running += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.running -= 1
            slots.release()

    async def _shed(self, scope: Scope, send: Send, reason: str) -> None:
        mark_refused(scope, reason)
        await send_plain(send, 503, "503 Service Unavailable: server busy, retry shortly\n",
                         [(b"retry-after", self.retry_after)])  # fmt: skip
