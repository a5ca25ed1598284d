"""Server-Sent Events: `SSEEvent` framing and the `EventStream` a handler returns.

An `EventStream` wraps an async iterable of events. While it streams, three things run
beside it: a watcher on `receive()` that stops the source as soon as the client goes away
(so the source's `finally` runs), a ticker that writes a comment line when nothing was
sent for `heartbeat` seconds (proxies and load balancers drop silent connections), and a
check that ends the stream cleanly when the server starts draining, so a graceful
shutdown is not held up by long-lived connections and browsers reconnect elsewhere.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel

from chirp.health import is_draining
from chirp.json_values import dumps
from chirp.responses import Response
from pounce.asgi import Receive, Scope, Send

logger = logging.getLogger("chirp.realtime")

SSE_MEDIA_TYPE = "text/event-stream; charset=utf-8"
DEFAULT_HEARTBEAT = 15.0
_FORBIDDEN = ("\r", "\n", "\0")
_DRAIN_POLL = 1.0


def _check_field(name: str, value: str | None) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise TypeError(f"SSEEvent.{name} must be a str, not {type(value).__name__}")
    for char in _FORBIDDEN:
        if char in value:
            shown = {"\r": "CR", "\n": "LF", "\0": "NUL"}[char]
            raise ValueError(
                f"SSEEvent.{name}={value!r} contains {shown}; an SSE {name} must be a single line "
                "without CR, LF or NUL (it would end the field and let the value inject other fields)"
            )


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One SSE event. `data` is a str (sent as is, one `data:` line per line) or any
    JSON-serialisable value (sent as JSON). `event` and `id` must be single lines."""

    data: Any = ""
    event: str | None = None
    id: str | None = None
    retry: int | None = None

    def __post_init__(self) -> None:
        _check_field("event", self.event)
        _check_field("id", self.id)
        if self.retry is not None and (
            isinstance(self.retry, bool) or not isinstance(self.retry, int) or self.retry < 0
        ):
            raise ValueError(f"SSEEvent.retry={self.retry!r} must be a non-negative int (milliseconds)")

    def encode(self) -> bytes:
        """The wire form: `event:`, `id:`, `retry:`, one `data:` per line, blank line."""
        lines: list[str] = []
        if self.event is not None:
            lines.append(f"event: {self.event}")
        if self.id is not None:
            lines.append(f"id: {self.id}")
        if self.retry is not None:
            lines.append(f"retry: {self.retry}")
        text = self.data if isinstance(self.data, str) else _to_json(self.data)
        lines.extend(f"data: {line}" for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
        return ("\n".join(lines) + "\n\n").encode()


def _to_json(value: Any) -> str:
    try:
        return dumps(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"SSE data must be a str or JSON-serialisable: {exc}") from None


def encode_item(item: Any) -> bytes:
    """A str, a JSON-able value or an `SSEEvent` as SSE bytes."""
    if isinstance(item, SSEEvent):
        return item.encode()
    return SSEEvent(item).encode()


def comment(text: str = "") -> bytes:
    """A comment line (ignored by clients): used for heartbeats."""
    _check_field("comment", text)
    return f": {text}\n\n".encode() if text else b":\n\n"


class EventStream:
    """Return this from a handler to stream Server-Sent Events.

    `source` is an async iterable (usually an async generator) yielding str, dict/list
    (sent as JSON) or `SSEEvent`. `heartbeat` is the idle interval, in seconds, after
    which a comment line keeps the connection alive (None turns heartbeats off); `retry`
    tells browsers how long to wait before reconnecting (milliseconds).
    """

    def __init__(
        self,
        source: AsyncIterable[Any],
        *,
        heartbeat: float | None = DEFAULT_HEARTBEAT,
        retry: int | None = None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(source, AsyncIterable):
            raise TypeError(
                f"EventStream needs an async iterable (an async generator), not {type(source).__name__}; "
                "write `async def events(): yield ...` and pass events()"
            )
        if heartbeat is not None and (not isinstance(heartbeat, (int, float)) or not heartbeat > 0
                                      or not math.isfinite(heartbeat)):  # fmt: skip
            raise ValueError(
                f"EventStream heartbeat={heartbeat!r} must be a positive number of seconds or None"
            )
        if retry is not None:
            SSEEvent(retry=retry)  # validates
        self.source = source
        self.heartbeat = float(heartbeat) if heartbeat is not None else None
        self.retry = retry
        self.status = status
        self.headers = dict(headers or {})

    def __chirp_response__(self) -> SSEResponse:
        return SSEResponse(self)


class SSEResponse(Response):
    """The streaming response behind an `EventStream`; never buffered or compressed."""

    media_type = SSE_MEDIA_TYPE

    def __init__(self, stream: EventStream) -> None:
        super().__init__(b"", stream.status, stream.headers)
        self.stream = stream
        self.headers.setdefault("cache-control", "no-cache")
        self.headers.setdefault("x-accel-buffering", "no")

    def _finalize_headers(self) -> list[tuple[bytes, bytes]]:
        self.headers["content-type"] = SSE_MEDIA_TYPE
        if "content-encoding" in self.headers:
            del self.headers["content-encoding"]
        return self.headers.raw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        source = self.stream.source
        try:
            await send(
                {"type": "http.response.start", "status": self.status, "headers": self._finalize_headers()}
            )
            if scope.get("method") == "HEAD":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            # Flush the head now: the client knows it is connected (and, for /_chirp/live,
            # subscribed) before the first event exists.
            await send({"type": "http.response.body", "body": b"", "more_body": True})
            if await self._run(scope, receive, send):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await _close(source)

    async def _run(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Stream until the source ends (True), the server drains (True) or the client leaves (False)."""
        lock = anyio.Lock()
        last_write = time.monotonic()
        client_gone = False
        heartbeat = self.stream.heartbeat

        async with anyio.create_task_group() as tg:

            async def write(data: bytes) -> None:
                nonlocal last_write, client_gone
                async with lock:
                    try:
                        await send({"type": "http.response.body", "body": data, "more_body": True})
                    except OSError:  # the client went away mid-write
                        client_gone = True
                        tg.cancel_scope.cancel()
                        await anyio.lowlevel.checkpoint()
                    last_write = time.monotonic()

            async def watch_disconnect() -> None:
                nonlocal client_gone
                while (await receive())["type"] != "http.disconnect":
                    pass
                client_gone = True
                tg.cancel_scope.cancel()

            async def tick() -> None:
                period = min(_DRAIN_POLL, heartbeat) if heartbeat is not None else _DRAIN_POLL
                while True:
                    await anyio.sleep(period)
                    if is_draining(scope):
                        tg.cancel_scope.cancel()
                        return
                    if heartbeat is not None and time.monotonic() - last_write >= heartbeat:
                        await write(comment())

            async def pump() -> None:
                if self.stream.retry is not None:
                    await write(f"retry: {self.stream.retry}\n\n".encode())
                try:
                    async for item in self.stream.source:
                        await write(encode_item(item))
                except Exception:
                    logger.exception("an event stream's source failed; ending the stream")
                tg.cancel_scope.cancel()

            tg.start_soon(watch_disconnect)
            tg.start_soon(tick)
            await pump()
        return not client_gone


async def _close(source: AsyncIterable[Any]) -> None:
    """Finish the source so its `finally` blocks run, whatever stopped the stream."""
    aclose = getattr(source, "aclose", None)
    if aclose is None:
        return
    with anyio.CancelScope(shield=True):
        try:
            await aclose()
        except Exception:
            logger.exception("an event stream's source raised while closing")
