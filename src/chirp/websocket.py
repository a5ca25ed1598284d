"""`WebSocket`: what a `@app.websocket(...)` handler talks to.

A `WebSocket` is also the handshake's `Request` (headers, cookies, `session`, `path_params`,
`client`), so the app's middleware sees a WebSocket connection the way it sees a GET. Messages
are text (`str`) or binary (`bytes`); `receive_*` raises `WebSocketDisconnect` once the client
has gone, and `async for message in websocket` simply ends then.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from chirp.json_values import dumps
from chirp.request import Request

if TYPE_CHECKING:
    from pounce.asgi import Receive, Scope, Send

# RFC 6455 close codes chirp itself uses.
NORMAL_CLOSURE = 1000
UNSUPPORTED_DATA = 1003
INVALID_PAYLOAD = 1007
POLICY_VIOLATION = 1008
INTERNAL_ERROR = 1011
_MAX_REASON_BYTES = 123  # a close frame's payload is at most 125 bytes, 2 of them the code


class WebSocketDisconnect(Exception):
    """The connection is over: the client closed it (with `code`), or it broke (1006)."""

    def __init__(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"websocket closed with code {code}" + (f": {reason}" if reason else ""))


class WebSocket(Request):
    """One WebSocket connection; `accept()` it, then send and receive messages."""

    __slots__ = ("_send", "accepted", "closed", "handled", "subprotocol")

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        super().__init__(scope, receive, 0)
        self._send = send
        self.accepted = False
        self.closed = False
        self.handled = False  # the route's handler ran (the middleware let the handshake through)
        self.subprotocol: str | None = None

    @property
    def method(self) -> str:
        return "GET"  # the handshake is a GET: middleware treats it as a safe request

    @property
    def subprotocols(self) -> list[str]:
        """The subprotocols the client offered, in its order of preference."""
        return [str(p) for p in self.scope.get("subprotocols", ())]

    async def body(self) -> bytes:
        raise RuntimeError("a WebSocket handshake has no body; use websocket.receive() after accept()")

    async def accept(self, subprotocol: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        """Complete the handshake, choosing one of `subprotocols` (or none)."""
        if self.accepted or self.closed:
            raise RuntimeError("accept() was already called, or the connection is closed")
        if subprotocol is not None and subprotocol not in self.subprotocols:
            raise ValueError(
                f"subprotocol {subprotocol!r} was not offered by the client (it offered {self.subprotocols}); "
                "pick one of websocket.subprotocols or None"
            )
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
        await self._send({"type": "websocket.accept", "subprotocol": subprotocol, "headers": raw})
        self.accepted = True
        self.subprotocol = subprotocol

    async def receive(self) -> str | bytes:
        """The next message, text or binary; `WebSocketDisconnect` when the client has gone."""
        if not self.accepted:
            raise RuntimeError("call accept() before receive()")
        if self.closed:
            raise WebSocketDisconnect(NORMAL_CLOSURE, "the connection is closed")
        message = await self._receive()
        if message["type"] == "websocket.disconnect":
            self.closed = True
            raise WebSocketDisconnect(int(message.get("code", 1005)), str(message.get("reason") or ""))
        text = message.get("text")
        if text is not None:
            return str(text)
        return bytes(message.get("bytes") or b"")

    async def receive_text(self) -> str:
        """The next message, which must be text (binary closes the connection with 1003)."""
        message = await self.receive()
        if isinstance(message, str):
            return message
        return await self._refuse_payload(UNSUPPORTED_DATA, "expected a text message")

    async def receive_bytes(self) -> bytes:
        """The next message, which must be binary (text closes the connection with 1003)."""
        message = await self.receive()
        if isinstance(message, bytes):
            return message
        return await self._refuse_payload(UNSUPPORTED_DATA, "expected a binary message")

    async def receive_json(self) -> Any:
        """The next message parsed as JSON (invalid JSON closes the connection with 1007)."""
        message = await self.receive()
        try:
            return json.loads(message)
        except ValueError:
            return await self._refuse_payload(INVALID_PAYLOAD, "expected a JSON message")

    async def _refuse_payload(self, code: int, reason: str) -> NoReturn:
        await self.close(code, reason)
        raise WebSocketDisconnect(code, reason)

    async def send_text(self, data: str) -> None:
        await self._message({"type": "websocket.send", "text": data})

    async def send_bytes(self, data: bytes) -> None:
        await self._message({"type": "websocket.send", "bytes": bytes(data)})

    async def send_json(self, data: Any) -> None:
        """`data` as a JSON text message."""
        await self.send_text(dumps(data))

    async def send(self, data: str | bytes) -> None:
        """A text message for a `str`, a binary one for `bytes`."""
        if isinstance(data, str):
            await self.send_text(data)
        else:
            await self.send_bytes(data)

    async def _message(self, message: dict[str, Any]) -> None:
        if not self.accepted:
            raise RuntimeError("call accept() before sending")
        if self.closed:
            raise WebSocketDisconnect(NORMAL_CLOSURE, "the connection is closed")
        try:
            await self._send(message)
        except OSError:  # the server reports a client that went away as an OSError
            self.closed = True
            raise WebSocketDisconnect(1006, "the client went away") from None

    async def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the connection (before `accept()`: refuse the handshake). Idempotent."""
        if self.closed:
            return
        self.closed = True
        encoded = reason.encode("utf-8")[:_MAX_REASON_BYTES].decode("utf-8", "ignore")
        with contextlib.suppress(OSError):  # already gone: nothing left to close
            await self._send({"type": "websocket.close", "code": code, "reason": encoded})

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[str | bytes]:
        """Every message until the client disconnects (the loop then just ends)."""
        while True:
            try:
                message = await self.receive()
            except WebSocketDisconnect:
                return
            yield message
