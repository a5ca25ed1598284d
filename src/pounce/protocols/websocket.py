"""WebSocket (RFC 6455 + permessage-deflate) as a sans-IO session on top of wsproto.

The HTTP/1.1 driver hands over the already parsed upgrade request; from then on this
object turns received bytes into whole messages and ASGI sends into bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from pounce.protocols.http11 import _status_line

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Received:
    """A complete message from the peer."""

    data: str | bytes


@dataclass(frozen=True, slots=True)
class Closed:
    """The peer closed (or broke the protocol); `reply` is what to send back before closing."""

    code: int
    reason: str


class WebSocketProtocol:
    """Server side of one WebSocket connection."""

    def __init__(self, headers: Headers, target: bytes, max_message_size: int) -> None:
        self._ws = WSConnection(ConnectionType.SERVER)
        self._ws.initiate_upgrade_connection(headers, target)
        self._max = max_message_size
        self._parts: list[str] | list[bytes] = []
        self._size = 0
        self.subprotocols: list[str] = []
        self.closed = False
        for event in self._ws.events():
            if isinstance(event, Request):
                self.subprotocols = list(event.subprotocols)

    def accept(self, subprotocol: str | None, headers: Headers) -> bytes:
        return self._ws.send(
            AcceptConnection(subprotocol=subprotocol, extensions=[PerMessageDeflate()], extra_headers=headers)
        )

    def reject(self, status: int, headers: Headers, body: bytes = b"") -> bytes:
        head = self._ws.send(RejectConnection(status_code=status, headers=headers, has_body=bool(body)))
        # wsproto writes no reason phrase ("HTTP/1.1 403 "): the status line is pounce's own
        data = _status_line(status) + head.partition(b"\r\n")[2]
        if body:
            data += self._ws.send(RejectData(data=body))
        self.closed = True
        return data

    def send_message(self, data: str | bytes) -> bytes:
        if isinstance(data, str):
            return self._ws.send(TextMessage(data=data))
        return self._ws.send(BytesMessage(data=data))

    def close(self, code: int = 1000, reason: str = "") -> bytes:
        if self.closed:
            return b""
        self.closed = True
        try:
            return self._ws.send(CloseConnection(code=code, reason=reason or None))
        except LocalProtocolError:
            return b""

    def release(self) -> None:
        """Free the frame parser (and its permessage-deflate streams) as the session ends.

        wsproto's frame parser keeps a generator that refers back to the parser: a reference
        cycle that only a full run of the cyclic garbage collector frees, and it holds the
        connection's zlib streams (up to about 300 KB with a browser's window size). Without
        this, closed connections piled up by the hundred between two full collections.
        """
        connection = self._ws.connection
        parser = getattr(getattr(connection, "_proto", None), "_parse_more", None)
        if parser is not None:
            parser.close()  # the generator's frame goes, and with it the cycle

    def feed(self, data: bytes | None) -> tuple[list[Received | Closed], bytes]:
        """Process received bytes (None = the peer closed TCP); return events and bytes to send."""
        self._ws.receive_data(data)
        out: list[Received | Closed] = []
        reply = b""
        try:
            for event in self._ws.events():
                if isinstance(event, Message):
                    message = self._collect(event)
                    if isinstance(message, Closed):
                        reply += self.close(message.code, message.reason)
                        out.append(message)
                        break
                    if message is not None:
                        out.append(message)
                elif isinstance(event, Ping):
                    reply += self._ws.send(event.response())
                elif isinstance(event, CloseConnection):
                    if not self.closed:
                        self.closed = True
                        reply += self._ws.send(event.response())
                    out.append(Closed(event.code, event.reason or ""))
                    break
        except RemoteProtocolError as exc:
            code = (
                exc.event_hint.code
                if isinstance(exc.event_hint, CloseConnection)
                else CloseReason.PROTOCOL_ERROR
            )
            reply += self.close(int(code), str(exc)[:120])
            out.append(Closed(int(code), str(exc)))
        return out, reply

    def _collect(self, event: Message[Any]) -> Received | Closed | None:
        self._size += len(event.data)
        if self._size > self._max:
            return Closed(CloseReason.MESSAGE_TOO_BIG, "message exceeds the size limit")
        self._parts.append(event.data)  # type: ignore[arg-type,unused-ignore]
        if not event.message_finished:
            return None
        parts, self._parts, self._size = self._parts, [], 0
        if isinstance(event, TextMessage):
            return Received("".join(parts))  # type: ignore[arg-type]
        return Received(b"".join(parts))  # type: ignore[arg-type]
