"""Running an ASGI websocket app over an upgraded HTTP/1.1 connection."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from pounce.asgi import ASGI_VERSION, Message

if TYPE_CHECKING:
    from pounce.connection import HTTP11Connection
    from pounce.protocols.http11 import RequestHead

logger = logging.getLogger("pounce.error")
CLOSE_TIMEOUT = 5.0


class WebSocketSession:
    """One websocket: `websocket.connect` → accept/close → messages → disconnect."""

    def __init__(self, conn: HTTP11Connection, head: RequestHead, scope: dict[str, Any]) -> None:
        from pounce.protocols.websocket import WebSocketProtocol

        self.conn = conn
        self.scope = scope
        self.proto = WebSocketProtocol(head.headers, head.target, conn.config.ws_max_message_size)
        scope["type"] = "websocket"
        scope["scheme"] = "wss" if scope["scheme"] == "https" else "ws"
        scope["subprotocols"] = self.proto.subprotocols
        scope["asgi"] = ASGI_VERSION
        scope.pop("method", None)
        self.accepted = False
        self.closed = False
        self.close_code = 1006
        self.connect_sent = False
        self._inbox_send, self._inbox = anyio.create_memory_object_stream[Message](64)
        self._write_lock = anyio.Lock()
        self.status = 101
        self._reader_done = anyio.Event()

    async def _write(self, data: bytes) -> None:
        if data:
            async with self._write_lock:
                await self.conn.stream.send(data)

    async def run(self, leftover: bytes) -> None:
        try:
            await self._run(leftover)
        finally:
            self.proto.release()

    async def _run(self, leftover: bytes) -> None:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            self._leftover = leftover
            try:
                await self.conn.app(self.scope, self.receive, self.send)
            except Exception as exc:
                if not self.accepted:
                    logger.error("exception in websocket application before accept", exc_info=exc)
                    await self._reject(500)
                elif not self.closed:
                    logger.error("exception in websocket application", exc_info=exc)
                    await self._close(1011)
            else:
                if not self.accepted and not self.closed:
                    await self._reject(403)
                elif not self.closed:
                    await self._close(1000)
            if self.accepted:
                # Let the peer answer our close frame before the TCP connection goes.
                with anyio.move_on_after(CLOSE_TIMEOUT):
                    await self._reader_done.wait()
            tg.cancel_scope.cancel()

    async def _reader(self) -> None:
        try:
            await self._read_frames()
        finally:
            self._reader_done.set()

    async def _read_frames(self) -> None:
        from pounce.protocols.websocket import Closed

        data: bytes | None = self._leftover or None
        while True:
            if data is not None:
                events, reply = self.proto.feed(data)
                if self.proto.closed:
                    self.closed = True  # before the write yields: no app send may follow a close
                await self._write(reply)
                for event in events:
                    if isinstance(event, Closed):
                        self.closed = True
                        self.close_code = event.code
                        await self._inbox_send.send({"type": "websocket.disconnect", "code": event.code,
                                                     "reason": event.reason})  # fmt: skip
                        return
                    key = "text" if isinstance(event.data, str) else "bytes"
                    await self._inbox_send.send({"type": "websocket.receive", key: event.data})
            chunk = await self.conn._receive_bytes()
            if not chunk:
                self.proto.feed(None)
                self.closed = True
                await self._inbox_send.send({"type": "websocket.disconnect", "code": 1006, "reason": ""})
                return
            data = chunk

    async def receive(self) -> Message:
        if not self.connect_sent:
            self.connect_sent = True
            return {"type": "websocket.connect"}
        if not self.accepted:
            raise RuntimeError("receive() before websocket.accept")
        try:
            return await self._inbox.receive()
        except anyio.EndOfStream:
            return {"type": "websocket.disconnect", "code": self.close_code, "reason": ""}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "websocket.accept":
            if self.accepted or self.closed:
                raise RuntimeError("websocket.accept sent twice or after close")
            headers = [(bytes(k).lower(), bytes(v)) for k, v in message.get("headers", ())]
            await self._write(self.proto.accept(message.get("subprotocol"), headers))
            self.accepted = True
            self._tg.start_soon(self._reader)
        elif kind == "websocket.send":
            if not self.accepted or self.closed:
                from pounce.connection import ClientDisconnected

                raise ClientDisconnected("websocket is closed")
            data = message.get("bytes")
            await self._write(self.proto.send_message(data if data is not None else message.get("text", "")))
        elif kind == "websocket.close":
            if not self.accepted:
                await self._reject(403)
            else:
                await self._close(int(message.get("code", 1000)), message.get("reason") or "")
        else:
            raise RuntimeError(f"unexpected ASGI message type {kind!r} on a websocket")

    async def _reject(self, status: int) -> None:
        self.status = status
        self.closed = True
        body = b"websocket connection refused\n"
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
        ]
        await self._write(self.proto.reject(status, headers, body))

    async def _close(self, code: int, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        await self._write(self.proto.close(code, reason))
