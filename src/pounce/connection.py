"""The HTTP/1.1 connection driver: socket I/O, timeouts and ASGI request cycles.

The protocol state lives in `protocols.http11`; this module only moves bytes between
the socket and that state machine and runs the app once per request.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import h11

from pounce.asgi import ASGIApp, Message, Scope, ServerState, http_scope
from pounce.config import ServerConfig
from pounce.implementations import resolve
from pounce.logs import AccessLog
from pounce.protocols import http11
from pounce.protocols.http11 import (
    NEED_DATA,
    PAUSED,
    PEER_CLOSED,
    HandOver,
    HTTP11Protocol,
    Rejected,
    RequestHead,
)
from pounce.proxy import proxy_trust
from pounce.transport import ProtocolStream

if TYPE_CHECKING:
    from pounce.h2_driver import HTTP2Driver

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

logger = logging.getLogger("pounce.error")

_READ_SIZE = 65536
_NEVER = float("inf")
DRAIN_IDLE_GRACE = 0.25
_DRAIN_LIMIT = 1024 * 1024  # unread request body we are willing to discard to keep a connection


class ClientDisconnected(OSError):
    """Raised from `send()` once the client has gone away (ASGI spec 2.4)."""


class _Closed(Exception):
    pass


class HTTP11Connection:
    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        app: ASGIApp,
        config: ServerConfig,
        server_state: ServerState,
        lifespan_state: dict[str, Any],
        *,
        client: tuple[str, int] | None,
        server: tuple[str, int | None] | None,
        scheme: str,
        alpn_h2: bool = False,
        tls: dict[str, Any] | None = None,
        access: AccessLog | None = None,
        scope: anyio.CancelScope,
    ) -> None:
        """`tls` is the ASGI `tls` extension of a TLS connection, shared by its requests;
        `access` the server's access log (None: off); `scope` the cancel scope the connection's
        task runs in, which ends the connection when a deadline passes."""
        self.stream = stream
        self.access = access
        self.peer = client[0] if client else "-"  # access lines show the raw peer, by design
        self.tls = tls
        self.fast_stream = stream if isinstance(stream, ProtocolStream) else None
        self.alpn_h2 = alpn_h2
        self.h2: HTTP2Driver | None = None
        self.app = app
        self.config = config
        self.server_state = server_state
        self.lifespan_state = lifespan_state
        self.client = client
        self.server = server
        self.scheme = scheme
        settings = _settings_of(config)
        self.proxy = settings.proxy
        self.limits = settings.limits
        self.server_header = settings.server_header
        self.root_path = config.root_path
        self.proto = settings.protocol(settings.limits, server_header=settings.server_header)
        self.requests = 0
        # Timeouts: the server's watchdog cancels `scope` once `deadline` has passed; each
        # phase sets its own deadline, so no per-operation cancel scope is needed.
        self.scope = scope
        self.phase = "head"
        self.deadline = time.monotonic() + config.header_timeout
        self.expired_phase: str | None = None
        self.response_started = False

    # -- lifecycle -------------------------------------------------------------------------
    async def run(self) -> None:
        """Serve the connection until it ends; a cancellation of `scope` goes on to the caller's
        `with` block, after a 408 for a request that ran out of time."""
        try:
            try:
                await self._serve()
            except anyio.get_cancelled_exc_class():
                timed_out = self.expired_phase == "body" or (
                    self.expired_phase == "head" and self.proto.has_buffered_data
                )  # a connection that never sent a byte is just closed
                if timed_out and not self.response_started:
                    reason = f"request {self.expired_phase} not received in time"
                    with anyio.move_on_after(1, shield=True):
                        await self.stream.send(self.proto.error_response(408, reason))
                raise
        except (_Closed, anyio.BrokenResourceError, anyio.ClosedResourceError, ConnectionError):
            pass
        finally:
            if self.fast_stream is not None:
                self.fast_stream.close()  # no await, so no shielded scope a connection
            else:
                with anyio.CancelScope(shield=True):
                    await self.stream.aclose()

    async def _serve(self) -> None:
        if self.alpn_h2:
            await self._http2(b"")
            return
        if self.config.h2c and _h2_available():
            first = await self._receive_bytes()
            while first and len(first) < len(PREFACE) and PREFACE.startswith(first):
                more = await self._receive_bytes()
                if not more:
                    break
                first += more
            if first.startswith(PREFACE):
                await self._http2(first)
                return
            self.proto.feed(first)
        # One loop a request: its head read, its app run and its end seen to here, not in
        # coroutines of their own (no coroutine made a request on the busiest path).
        proto = self.proto
        server_state = self.server_state
        config = self.config
        access = self.access
        while not server_state.draining or proto.has_buffered_data:
            # The head: the keep-alive idle wait, then the header (slowloris) deadline.
            event = proto.next_event()
            while event.__class__ is not RequestHead:
                if event is not NEED_DATA:  # (tested first: every request waits for its head)
                    if isinstance(event, Rejected):
                        await self._reject(event)
                    if isinstance(event, HandOver):  # a request the fast parser leaves to h11
                        proto = self.proto = event.protocol
                        event = proto.next_event()
                        continue
                    if event is PEER_CLOSED or event is PAUSED:
                        return
                # Between requests the idle timeout runs; once bytes of a head have arrived
                # (or for a new connection) the header timeout does.
                if self.phase != "head":
                    if proto.has_buffered_data:
                        self.enter("head", config.header_timeout)
                    else:
                        self.enter("idle", config.keep_alive_timeout)
                        if server_state.draining:
                            self.close_if_idle(DRAIN_IDLE_GRACE)
                stream = self.fast_stream  # (its read() spares a call level on the busiest wait)
                data = await (stream.read(_READ_SIZE) if stream is not None else self._receive_bytes())
                proto.feed(data)  # an incomplete head switches to the header deadline above
                if not data:
                    return
                event = proto.next_event()
            self.phase, self.deadline = "app", _NEVER  # (`leave("app")`, without the call)
            head: RequestHead = event
            self.requests += 1
            if head.websocket_upgrade and _wsproto_available():
                await self._websocket(head)
                return
            cycle = _Cycle(self, head)
            self.response_started = False
            start = time.perf_counter_ns() if access is not None else 0
            scope = self.scope_for(head.method, head.target, head.headers, head.http_version.decode("ascii"))
            try:
                await self.app(scope, cycle.receive, cycle.send)
            except BaseException as exc:
                if isinstance(exc, anyio.get_cancelled_exc_class()):
                    raise
                await cycle.failed(exc)
            else:
                if not cycle.response_complete and not cycle.disconnected:
                    await cycle.unfinished()
            if access is not None:
                access.request(
                    self.peer,
                    head.method,
                    head.target,
                    head.http_version,
                    cycle.status,
                    time.perf_counter_ns() - start,
                )
            if not cycle.response_complete or cycle.disconnected or cycle.must_close:
                return
            if not proto.request_complete and not await cycle.drain_body():
                return
            if not proto.keep_alive or server_state.draining:
                return
            proto.start_next_cycle()

    def expire(self, now: float) -> None:
        """Called by the watchdog: the current phase ran past its deadline."""
        if now >= self.deadline:
            self.expired_phase = self.phase
            self.scope.cancel()

    async def _http2(self, initial: bytes) -> None:
        from pounce.h2_driver import HTTP2Driver

        self.response_started = True  # the watchdog never answers 408 on an h2 connection
        self.h2 = HTTP2Driver(self)
        await self.h2.run(initial)

    def scope_for(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], http_version: str
    ) -> Scope:
        """The ASGI scope of a request on this connection, with the proxy-resolved client."""
        client, scheme = self.client, self.scheme
        if self.proxy is not None:
            client, scheme = self.proxy.resolve(client, headers, scheme)
        scope = http_scope(  # positional: this is once per request
            method, target, headers, http_version, scheme, client, self.server, self.root_path,
            self.lifespan_state, self.server_state,
        )  # fmt: skip
        if self.tls is not None:
            scope["extensions"]["tls"] = self.tls
        return scope

    def close_if_idle(self, grace: float) -> None:
        """Called when draining: a connection waiting between requests gets `grace` seconds
        for a request already on its way (answered with `Connection: close`), then closes.

        Closing it at once would race a client that is sending on it right now."""
        if self.h2 is not None:
            self.h2.request_drain()
        elif self.phase == "idle":
            self.deadline = min(self.deadline, time.monotonic() + grace)

    def enter(self, phase: str, timeout: float) -> str:
        """Start a phase with its own deadline; returns the previous phase."""
        previous, self.phase = self.phase, phase
        self.deadline = time.monotonic() + timeout
        return previous

    def leave(self, phase: str) -> None:
        """Back to a phase without a deadline of its own (the app is running)."""
        self.phase = phase
        self.deadline = _NEVER

    async def _write(self, data: bytes) -> None:
        if not data:
            return
        if self.fast_stream is not None and self.fast_stream.write_now(data):
            return  # handed to the kernel (or the transport buffer) without waiting
        previous = self.enter("write", self.config.write_timeout)
        try:
            await self.stream.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            raise _Closed() from exc
        self.leave(previous)

    async def _receive_bytes(self) -> bytes:
        """The next bytes the peer sent; b"" once it is gone."""
        if self.fast_stream is not None:
            return await self.fast_stream.read(_READ_SIZE)
        try:
            return await self.stream.receive(_READ_SIZE)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            return b""

    async def _reject(self, rejected: http11.Rejected) -> None:
        logger.debug("rejecting request from %s: %s %s", self.client, rejected.status, rejected.reason)
        await self._write(self.proto.error_response(rejected.status, rejected.reason))
        raise _Closed()

    async def _websocket(self, head: http11.RequestHead) -> None:
        """Hand the connection over to a websocket session (HTTP/1.1 upgrade)."""
        from pounce.ws_session import WebSocketSession

        scope = self.scope_for(head.method, head.target, head.headers, head.http_version.decode("ascii"))
        self.response_started = True  # from here on, the watchdog must not answer 408
        session = WebSocketSession(self, head, dict(scope))
        start = time.perf_counter_ns()
        await session.run(self.proto.trailing_data)
        if self.access is not None:  # the upgrade request, with the status the handshake got
            self.access.request(
                self.peer,
                head.method,
                head.target,
                head.http_version,
                session.status,
                time.perf_counter_ns() - start,
            )


class _Settings:
    """What every connection derives from the server's config: derived once, not per accept."""

    __slots__ = ("config", "limits", "protocol", "proxy", "server_header")

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.limits = http11.Limits(
            max_header_size=config.max_header_size,
            max_header_count=config.max_header_count,
            max_url_length=config.max_url_length,
            max_body_size=config.max_body_size,
        )
        self.protocol = protocol_class(config.http)
        self.server_header = config.server_header.encode("latin-1")
        proxy = proxy_trust(config.trusted_hosts, config.forwarded_for_trusted_hops)
        self.proxy = proxy if proxy.enabled else None  # None: the peer is the client


_settings: _Settings | None = None


def _settings_of(config: ServerConfig) -> _Settings:
    """The settings of `config`, kept for the config last asked about (one a server)."""
    global _settings
    settings = _settings  # (read once: servers in other threads may replace it meanwhile)
    if settings is None or settings.config is not config:
        settings = _settings = _Settings(config)
    return settings


def protocol_class(http: str) -> type[HTTP11Protocol]:
    """The sans-IO protocol of the configured HTTP/1.1 parser."""
    if resolve("http", http) == "httptools":
        from pounce.protocols.httptools11 import FastHTTP11Protocol

        return FastHTTP11Protocol
    return HTTP11Protocol


def _h2_available() -> bool:
    try:
        import h2  # noqa: F401
    except ImportError:
        return False
    return True


def _wsproto_available() -> bool:
    try:
        import wsproto  # noqa: F401
    except ImportError:
        return False
    return True


class _Cycle:
    """ASGI receive/send for one request on an HTTP/1.1 connection."""

    __slots__ = (
        "_response_done",
        "body_done",
        "body_received",
        "body_waited",
        "conn",
        "continue_sent",
        "disconnected",
        "head",
        "head_written",
        "must_close",
        "response_complete",
        "response_headers",
        "status",
    )

    def __init__(self, conn: HTTP11Connection, head: http11.RequestHead) -> None:
        self.conn = conn
        self.head = head
        self.status = 0
        self.response_headers: list[tuple[bytes, bytes]] | None = None
        self.response_complete = False
        self.disconnected = False
        self.must_close = False
        self.continue_sent = not head.expects_continue
        self.body_done = False
        self.body_received = 0  # body bytes read from the socket, and the seconds spent waiting
        self.body_waited = 0.0  # for them (not the app's time): for `min_body_rate`
        self.head_written = False  # a status line went out: too late for an error response
        self._response_done: anyio.Event | None = None  # made when a receive() must wait for it

    async def failed(self, exc: BaseException) -> None:
        """The app raised `exc` (not a cancellation): a 500 unless the client is gone."""
        if isinstance(exc, _Closed):
            self.disconnected = True
        elif not isinstance(exc, ClientDisconnected):
            logger.error("exception in ASGI application", exc_info=exc)
            await self._fail_app()

    async def unfinished(self) -> None:
        """The app returned without completing its response."""
        if self.response_headers is None and not self.head_written:
            logger.error("ASGI application returned without sending a response")
        await self._fail_app()

    async def _fail_app(self) -> None:
        """The app failed: a 500 if nothing was sent yet, otherwise cut the connection."""
        self.must_close = True
        if self.disconnected or self.response_complete:
            return
        if not self.head_written:
            self.status = 500
            with contextlib.suppress(_Closed):
                await self.conn._write(self.conn.proto.error_response(500, "internal server error"))
            self.response_complete = True

    # -- receive ---------------------------------------------------------------------------
    async def receive(self) -> Message:
        if self.disconnected or (self.response_complete and self.body_done):
            if not self.disconnected:
                await self._wait_disconnect()
            return {"type": "http.disconnect"}
        if not self.body_done:
            return await self._receive_body()
        await self._wait_disconnect()
        return {"type": "http.disconnect"}

    async def _receive_body(self) -> Message:
        conn = self.conn
        if not self.continue_sent:
            self.continue_sent = True
            await conn._write(conn.proto.continue_100())
        while True:
            event = conn.proto.next_event()
            if isinstance(event, http11.Body):
                return {"type": "http.request", "body": event.data, "more_body": True}
            if event is http11.END_OF_BODY:
                self.body_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            if isinstance(event, http11.Rejected):
                await self._abort(event.status, event.reason)
                return {"type": "http.disconnect"}
            if event is http11.PEER_CLOSED:
                self.disconnected = True
                return {"type": "http.disconnect"}
            data = await self._body_bytes()
            if data is None:
                await self._abort(408, "request body arrived too slowly")
                return {"type": "http.disconnect"}
            if not data:
                self.disconnected = True
                return {"type": "http.disconnect"}
            conn.proto.feed(data)

    async def _body_bytes(self) -> bytes | None:
        """The next bytes of the body (b"" when the client is gone), or None when the body is
        arriving slower than `min_body_rate` once `min_body_rate_grace` seconds were spent
        waiting for it: a client that trickles a byte at a time never meets `body_timeout`."""
        conn = self.conn
        started = time.monotonic()
        previous = conn.enter("body", conn.config.body_timeout)
        data = await conn._receive_bytes()
        conn.leave(previous)
        self.body_waited += time.monotonic() - started
        self.body_received += len(data)
        rate = conn.config.min_body_rate
        if (
            rate
            and self.body_waited > conn.config.min_body_rate_grace
            and self.body_received < rate * self.body_waited
        ):
            return None
        return data

    async def _abort(self, status: int, reason: str) -> None:
        """Answer a request whose body broke a limit, then treat the client as gone."""
        self.must_close = True
        if not self.head_written:
            self.status = status
            with contextlib.suppress(_Closed):
                await self.conn._write(self.conn.proto.error_response(status, reason))
            self.response_complete = True
        self.disconnected = True

    def _set_response_done(self) -> None:
        if self._response_done is not None:
            self._response_done.set()

    async def _wait_disconnect(self) -> None:
        """Block until the client goes away or the response is complete."""
        conn = self.conn
        buffered = 0
        if self.response_complete:
            return
        done = self._response_done = self._response_done or anyio.Event()
        async with anyio.create_task_group() as tg:

            async def on_done() -> None:
                await done.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(on_done)
            while True:
                data = await conn._receive_bytes()
                if not data:
                    self.disconnected = True
                    tg.cancel_scope.cancel()
                    return
                conn.proto.feed(data)  # a pipelined next request: kept for the next cycle
                buffered += len(data)
                if buffered > conn.config.max_header_size:
                    await done.wait()
                    tg.cancel_scope.cancel()
                    return

    # -- send ------------------------------------------------------------------------------
    async def send(self, message: Message) -> None:
        if self.disconnected:
            raise ClientDisconnected("client disconnected")
        kind = message["type"]
        if kind == "http.response.start":
            if self.response_headers is not None or self.response_complete:
                raise RuntimeError("http.response.start sent twice")
            self.status = int(message["status"])
            self.response_headers = list(message.get("headers", ()))  # h11 normalises and validates
            return
        if kind == "http.response.body":
            if self.response_headers is None:
                raise RuntimeError("http.response.body sent before http.response.start")
            if self.response_complete:
                raise RuntimeError("http.response.body sent after the response completed")
            body = bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))
            conn = self.conn
            proto = conn.proto
            if proto.response_started:
                data = self._framed(body, more)
            else:
                head = self.head  # an unread body too big to discard closes the connection
                close = conn.server_state.draining or (
                    not self.body_done and (head.chunked or (head.content_length or 0) > _DRAIN_LIMIT)
                )
                if close:
                    self.must_close = True
                conn.response_started = True
                try:
                    if not more:  # the common case: the whole response in one message
                        data = proto.response(self.status, self.response_headers, body, close=close)
                    else:
                        data = proto.response_head(self.status, self.response_headers, close=close)
                except h11.LocalProtocolError as exc:
                    self.must_close = True
                    raise ValueError(f"invalid response: {exc}") from None
                if more:
                    data += self._framed(body, more)
            self.head_written = True
            stream = conn.fast_stream
            try:
                if stream is None or not stream.write_now(data):  # the usual write needs no await
                    await conn._write(data)
            except _Closed:
                self.disconnected = True
                self._set_response_done()
                raise ClientDisconnected("client disconnected") from None
            if not more:
                self.response_complete = True
                if self._response_done is not None:  # a receive() waits for it
                    self._response_done.set()
            else:
                # A streamed chunk the kernel took at once returns without waiting; yield anyway,
                # or an endless stream to a fast socket would hold the loop from every other client.
                await anyio.lowlevel.checkpoint()
            return
        raise RuntimeError(f"unexpected ASGI message type {kind!r}")

    def _framed(self, body: bytes, more: bool) -> bytes:
        """A chunk of a streamed body (and the body's end after the last), framed by h11."""
        proto = self.conn.proto
        try:
            data = proto.response_body(body)
            return data if more else data + proto.response_end()
        except h11.LocalProtocolError as exc:
            self.must_close = True
            raise ValueError(f"invalid response body: {exc}") from None

    async def drain_body(self) -> bool:
        """Discard the unread rest of the request body so the connection can be reused."""
        if self.must_close or not self.continue_sent:
            return False
        conn = self.conn
        discarded = 0
        while True:
            event = conn.proto.next_event()
            if event is http11.END_OF_BODY:
                return True
            if isinstance(event, http11.Body):
                discarded += len(event.data)
                if discarded > _DRAIN_LIMIT:
                    return False
                continue
            if event is not http11.NEED_DATA:
                return False
            data = await self._body_bytes()
            if not data:  # gone, or too slow to be worth waiting for
                return False
            conn.proto.feed(data)
