"""Running ASGI apps over one HTTP/2 connection: a reader loop and a task per stream.

The protocol state is in `protocols.http2`; this module moves bytes, applies flow
control to response bodies and maps each stream to an ASGI `http` scope.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel

from pounce.asgi import Message, Scope
from pounce.protocols import http2
from pounce.protocols.http11 import reason_phrase

if TYPE_CHECKING:
    from pounce.connection import HTTP11Connection

logger = logging.getLogger("pounce.error")


class _Stream:
    __slots__ = ("body", "body_done", "disconnected", "received", "request", "task")

    def __init__(self, request: http2.StreamRequest) -> None:
        self.request = request
        self.body: list[tuple[bytes, int]] = []
        self.body_done = request.end_stream
        self.received: anyio.Event | None = None  # made by a receive() that waits: most never do
        self.task: asyncio.Task[None] | None = None  # the task serving it, once started
        self.disconnected = False

    def wake(self) -> None:
        """Wake a receive() waiting for body, its end, a reset or the response's end."""
        if self.received is not None:
            self.received.set()


class HTTP2Driver:
    def __init__(self, conn: HTTP11Connection) -> None:
        self.conn = conn
        self.proto = http2.HTTP2Protocol(
            conn.limits, conn.server_header, conn.config.h2_max_concurrent_streams
        )
        self.streams: dict[int, _Stream] = {}
        self.write_lock = anyio.Lock()
        self.wake_writer = anyio.Event()
        self.window_opened = anyio.Event()
        self.drain_requested = anyio.Event()
        self.idle = anyio.Event()
        self.idle.set()
        self.tasks: dict[asyncio.Task[None], _Stream] = {}  # the streams' tasks, until each ends
        self.closing = False  # the connection is ending: its streams are being cancelled

    # -- connection ------------------------------------------------------------------------
    def flush(self) -> None:
        """Have the writer task send what h2 has buffered.

        Streams only wake the writer: the frames of every stream that made progress in
        this turn of the event loop then go out in one write instead of one each.
        """
        self.wake_writer.set()

    async def flush_now(self) -> None:
        data = self.proto.data_to_send()
        if data:
            async with self.write_lock:
                await self.conn.stream.send(data)

    async def _writer(self) -> None:
        try:
            while True:
                await self.wake_writer.wait()
                self.wake_writer = anyio.Event()
                await anyio.lowlevel.checkpoint()  # let the other ready streams add their frames
                await self.flush_now()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            self.tg.cancel_scope.cancel()  # the peer is gone: stop every stream

    async def run(self, initial: bytes) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            async with anyio.create_task_group() as tg:
                self.tg = tg
                tg.start_soon(self._drain_when_asked)
                tg.start_soon(self._writer)
                await self.flush_now()  # our SETTINGS
                data = initial
                while True:
                    if data:
                        for event in self.proto.feed(data):
                            if isinstance(event, http2.Terminated):
                                logger.debug("h2 connection from %s ends: %s", self.conn.client, event.reason)
                                await self.flush_now()
                                tg.cancel_scope.cancel()
                                return
                            self._dispatch(event)
                        self.flush()
                    self._update_deadline()
                    data = await self.conn._receive_bytes()
                    if not data:
                        tg.cancel_scope.cancel()
                        return
        finally:
            await self._stop_streams()

    def _start_stream(self, stream: _Stream) -> None:
        """Run the stream's request in a task of its own: a plain asyncio task rather than one of
        the task group's (whose handle, cancel scope and event cost a tenth of an HTTP/2
        request). A client's RST_STREAM cancels the task (one reset before the task ran never
        calls the app); `_stopped` gives it the group's discipline, `_stop_streams` its end."""
        task = stream.task = self._loop.create_task(self._run_stream(stream))
        self.tasks[task] = stream
        task.add_done_callback(self._stopped)

    def _stopped(self, task: asyncio.Task[None]) -> None:
        stream = self.tasks.pop(task)
        self._forget(stream)  # already done unless the task ended early (cancelled, or failed)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # A failure of the server's own (the app's are handled in `_run_stream`): as a task
            # group would, it ends the connection.
            logger.error("HTTP/2 stream failed", exc_info=exc)
            self.tg.cancel_scope.cancel()

    async def _stop_streams(self) -> None:
        """The connection is ending: cancel every stream still running and wait for them."""
        if not self.tasks:
            return
        self.closing = True
        for task in self.tasks:
            task.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.wait(set(self.tasks))

    def _forget(self, stream: _Stream) -> None:
        stream_id = stream.request.stream_id
        if self.streams.get(stream_id) is stream:
            del self.streams[stream_id]
            if not self.streams:
                self.idle.set()

    def _update_deadline(self) -> None:
        if self.streams:
            self.conn.leave("app")
        else:
            self.conn.enter("idle", self.conn.config.keep_alive_timeout)

    def request_drain(self) -> None:
        self.drain_requested.set()

    async def _drain_when_asked(self) -> None:
        """Graceful shutdown: refuse new streams, let open ones finish, GOAWAY, close."""
        await self.drain_requested.wait()
        self.proto.stop_new_streams()
        await self.idle.wait()
        self.proto.goaway()
        await self.flush_now()
        self.tg.cancel_scope.cancel()

    def _dispatch(self, event: http2.Event) -> None:
        if isinstance(event, http2.StreamRequest):
            if self.proto.goaway_stream_id is not None and event.stream_id > self.proto.goaway_stream_id:
                self.proto.refuse(event.stream_id)
                return
            stream = _Stream(event)
            self.streams[event.stream_id] = stream
            if self.idle.is_set():  # the first open stream: draining now waits for it
                self.idle = anyio.Event()
            self.conn.requests += 1
            self._start_stream(stream)
        elif isinstance(event, http2.StreamRejected):
            self.tg.start_soon(
                self._send_error, event.stream_id, event.rejected.status, event.rejected.reason
            )
        elif isinstance(event, http2.StreamData):
            receiving = self.streams.get(event.stream_id)
            if receiving is None:
                self.proto.acknowledge(event.stream_id, event.flow_length)
                return
            receiving.body.append((event.data, event.flow_length))
            receiving.wake()
        elif isinstance(event, http2.StreamEnded):
            ended = self.streams.get(event.stream_id)
            if ended is not None:
                ended.body_done = True
                ended.wake()
        elif isinstance(event, http2.StreamReset):
            reset = self.streams.get(event.stream_id)
            if reset is not None:
                reset.disconnected = True
                reset.wake()
                if reset.task is not None:
                    reset.task.cancel()
        elif isinstance(event, http2.WindowOpened):
            self.window_opened.set()
            self.window_opened = anyio.Event()

    # -- one stream ------------------------------------------------------------------------
    async def _run_stream(self, stream: _Stream) -> None:
        conn = self.conn
        request = stream.request
        scope = conn.scope_for(request.method, request.target, request.headers, "2")
        sender = _StreamSender(self, stream, head=request.method == b"HEAD")
        start = time.perf_counter_ns()
        try:
            await self._respond(stream, scope, sender)
        except asyncio.CancelledError:
            if not (stream.disconnected or self.closing):
                raise  # not the client's reset nor the connection's end: the task ends cancelled
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
        self._forget(stream)
        self.flush()
        if conn.access is not None:
            conn.access.request(
                conn.peer,
                request.method,
                request.target,
                b"2",
                sender.status,
                time.perf_counter_ns() - start,
            )

    async def _respond(self, stream: _Stream, scope: Scope, sender: _StreamSender) -> None:
        """Run the app for the stream; its failure becomes a 500, or a reset once it started."""
        stream_id = stream.request.stream_id
        try:
            await self.conn.app(scope, sender.receive, sender.send)
        except Exception as exc:
            if not stream.disconnected:
                logger.error("exception in ASGI application", exc_info=exc)
                if sender.started:
                    self.proto.reset(stream_id)
                else:
                    await self._send_error(stream_id, 500, "internal server error")
        else:
            if not sender.complete and not stream.disconnected:
                if sender.started:
                    self.proto.reset(stream_id)
                else:
                    logger.error("ASGI application returned without sending a response")
                    await self._send_error(stream_id, 500, "internal server error")

    async def _send_error(self, stream_id: int, status: int, reason: str) -> None:
        body = f"{status} {reason_phrase(status).decode()}\n{reason}\n".encode()
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
        ]
        if not self.proto.stream_open(stream_id):
            return
        self.proto.send_headers(stream_id, status, headers)
        sender = _StreamSender(self, None, head=False, stream_id=stream_id)
        await sender.write_body(body, more=False)


class _StreamSender:
    """ASGI receive/send for one stream."""

    def __init__(self, driver: HTTP2Driver, stream: _Stream | None, head: bool, stream_id: int = 0) -> None:
        self.driver = driver
        self.stream = stream
        self.stream_id = stream.request.stream_id if stream else stream_id
        self.head = head
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] | None = None
        self.started = False
        self.complete = False
        self.received_bytes = 0
        self.request_complete_sent = False
        self.declared: int | None = None  # the response's Content-Length, which the body must meet
        self.body_sent = 0

    async def receive(self) -> Message:
        stream = self.stream
        assert stream is not None
        while True:
            if stream.disconnected:
                return {"type": "http.disconnect"}
            if stream.body:
                data, flow = stream.body.pop(0)
                self.received_bytes += len(data)
                self.driver.proto.acknowledge(self.stream_id, flow)
                self.driver.flush()
                if self.received_bytes > self.driver.conn.config.max_body_size:
                    stream.disconnected = True
                    if not self.started:
                        await self.driver._send_error(
                            self.stream_id, 413, "request body exceeds max_body_size"
                        )
                        self.complete = self.started = True
                    self.driver.proto.reset(self.stream_id)
                    return {"type": "http.disconnect"}
                return {"type": "http.request", "body": data, "more_body": True}
            if stream.body_done and not self.request_complete_sent:
                self.request_complete_sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            if self.request_complete_sent and self.complete:
                return {"type": "http.disconnect"}
            await self._wait_change(stream)

    @staticmethod
    async def _wait_change(stream: _Stream) -> None:
        stream.received = received = anyio.Event()
        await received.wait()

    async def send(self, message: Message) -> None:
        stream = self.stream
        if stream is not None and stream.disconnected:
            from pounce.connection import ClientDisconnected

            raise ClientDisconnected("stream reset by the client")
        kind = message["type"]
        if kind == "http.response.start":
            if self.headers is not None:
                raise RuntimeError("http.response.start sent twice")
            self.status = int(message["status"])
            self.headers = [(bytes(k).lower(), bytes(v)) for k, v in message.get("headers", ())]
            if self.status in (204, 304):
                self.declared = 0  # these never carry content, whatever their headers say
            else:
                self.declared = None if self.head else http2.declared_length(self.headers)
            return
        if kind != "http.response.body":
            raise RuntimeError(f"unexpected ASGI message type {kind!r}")
        if self.headers is None:
            raise RuntimeError("http.response.body sent before http.response.start")
        if self.complete:
            raise RuntimeError("http.response.body sent after the response completed")
        body = b"" if self.head else bytes(message.get("body", b""))
        more = bool(message.get("more_body", False))
        self.body_sent += len(body)
        if self.declared is not None and (
            self.body_sent > self.declared or (not more and self.body_sent < self.declared)
        ):  # before the headers go out this becomes a 500; after, a reset stream
            raise ValueError(f"{self.body_sent} body bytes for a declared Content-Length of {self.declared}")
        if not self.started:
            self.driver.proto.send_headers(  # raises for illegal headers: then a 500 can still go out
                self.stream_id, self.status, self.headers, end_stream=not more and not body
            )
            self.started = True
            if not more and not body:
                self._completed()
                self.driver.flush()
                return
        await self.write_body(body, more)
        if not more:
            self._completed()

    def _completed(self) -> None:
        self.complete = True
        if self.stream is not None:
            self.stream.wake()  # a receive() waiting for the disconnect

    async def write_body(self, data: bytes, more: bool) -> None:
        """Send `data` within the peer's flow-control windows; end the stream unless `more`."""
        driver = self.driver
        while data:
            window = driver.proto.window(self.stream_id)
            if window < 0:
                from pounce.connection import ClientDisconnected

                raise ClientDisconnected("stream closed")
            if window == 0:
                await driver.window_opened.wait()
                continue
            chunk, data = data[:window], data[window:]
            driver.proto.send_data(self.stream_id, chunk, end_stream=not more and not data)
            driver.flush()
            if not data and not more:
                return
        if not more:
            driver.proto.end_stream(self.stream_id)
        driver.flush()
