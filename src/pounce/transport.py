"""A lean `anyio.abc.ByteStream` over an asyncio protocol, for accepted TCP/Unix sockets.

anyio's own socket stream pauses and resumes reading around every `receive()` and
checkpoints on every call; on a keep-alive HTTP connection that is most of the cost
of a small request. This stream keeps reading into a bounded buffer (pausing only
above a high-water mark) and returns buffered bytes without suspending.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Mapping
from typing import Any, cast

import anyio
from anyio.abc import ByteStream, SocketAttribute

_HIGH_WATER = 256 * 1024


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.reader: asyncio.Future[None] | None = None
        self.writer: asyncio.Future[None] | None = None
        self.paused_reading = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's does not subclass it

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if len(buffer) > _HIGH_WATER and not self.paused_reading and self.transport is not None:
            self.paused_reading = True
            self.transport.pause_reading()
        reader = self.reader  # (`_wake_reader`, inlined: this runs for every request)
        if reader is not None and not reader.done():
            reader.set_result(None)

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return True  # keep our side open until we close it

    def connection_lost(self, exc: BaseException | None) -> None:
        self.eof = True
        self.error = exc
        self._wake_reader()
        if self.writer is not None and not self.writer.done():
            self.writer.set_result(None)

    def pause_writing(self) -> None:
        if self.writer is None or self.writer.done():
            self.writer = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.writer is not None and not self.writer.done():
            self.writer.set_result(None)

    def _wake_reader(self) -> None:
        if self.reader is not None and not self.reader.done():
            self.reader.set_result(None)


class ProtocolStream(ByteStream):
    """The stream of one accepted connection."""

    def __init__(
        self,
        transport: asyncio.Transport,
        protocol: _Protocol,
        sock: socket.socket,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        # The loop, kept: on Python 3.11 `asyncio.get_running_loop()` makes a getpid() system
        # call each time, once a request on the read path.
        self._loop = loop
        self._transport = transport
        self._protocol = protocol
        self._sock = sock
        self._closed = False
        self._attributes: dict[Any, Callable[[], Any]] | None = None

    @classmethod
    async def from_socket(cls, sock: socket.socket) -> ProtocolStream:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.connect_accepted_socket(_Protocol, sock)
        return cls(transport, protocol, sock, loop)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        data = await self.read(max_bytes)
        if not data:
            if self._closed:
                raise anyio.ClosedResourceError
            raise anyio.EndOfStream
        return data

    async def read(self, max_bytes: int = 65536) -> bytes:
        """`receive()` without its exceptions: b"" once the stream has ended or is closed (what
        the connection driver waits for between requests, one call deep)."""
        protocol = self._protocol
        buffer = protocol.buffer  # (the protocol adds to it in place: the same bytearray always)
        if not buffer:
            if self._closed or protocol.eof:
                return b""
            reader = protocol.reader = self._loop.create_future()
            try:
                await reader
            finally:
                protocol.reader = None
            if not buffer:
                return b""
        if len(buffer) <= max_bytes:  # the usual case: take it all without slicing twice
            data = bytes(buffer)
            buffer.clear()
        else:
            data = bytes(buffer[:max_bytes])
            del buffer[:max_bytes]
        if protocol.paused_reading and len(buffer) < _HIGH_WATER // 2:
            protocol.paused_reading = False
            self._transport.resume_reading()
        return data

    def write_now(self, item: bytes) -> bool:
        """Write without waiting when the transport is not applying back-pressure."""
        writer = self._protocol.writer
        if self._closed or self._transport.is_closing() or (writer is not None and not writer.done()):
            return False
        self._transport.write(item)
        return True

    async def send(self, item: bytes) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        if self._transport.is_closing():
            raise anyio.BrokenResourceError
        self._transport.write(item)
        writer = self._protocol.writer
        if writer is not None and not writer.done():
            await writer
            if self._transport.is_closing():
                raise anyio.BrokenResourceError

    async def send_eof(self) -> None:
        if self._transport.can_write_eof():
            self._transport.write_eof()

    def close(self) -> bool:
        """Close without waiting (the transport still sends what it holds, then closes the
        socket): what the connection's driver calls when it is done, with nothing to shield from
        a cancellation. False if the stream was closed already."""
        if self._closed:
            return False
        self._closed = True
        self._protocol._wake_reader()
        if not self._transport.is_closing():
            self._transport.close()
        return True

    async def aclose(self) -> None:
        if self.close():
            await anyio.lowlevel.checkpoint()

    def addresses(self) -> tuple[tuple[str, int] | None, tuple[str, int] | None]:
        """The peer's and the local (host, port), as an ASGI scope gives them: None for a Unix
        socket, and for a peer that is gone already."""
        sock = self._sock
        try:
            peer = sock.getpeername()
        except OSError:
            peer = None
        local = sock.getsockname()
        if type(local) is not tuple:
            return None, None
        return (peer[0], peer[1]) if peer else None, (local[0], local[1])

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        if self._attributes is None:  # made once: the socket's family is an enum conversion
            sock = self._sock
            attributes: dict[Any, Callable[[], Any]] = {
                SocketAttribute.family: lambda: sock.family,
                SocketAttribute.local_address: lambda: sock.getsockname(),
                SocketAttribute.raw_socket: lambda: sock,
            }
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                attributes[SocketAttribute.remote_address] = lambda: sock.getpeername()
            self._attributes = attributes
        return self._attributes
