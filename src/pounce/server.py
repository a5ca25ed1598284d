"""The server: listen, accept, run connections, drain gracefully on a signal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc
from anyio.streams.tls import TLSAttribute, TLSStream

from pounce.asgi import ASGI_VERSION, ASGIApp, Lifespan, LifespanError, ServerState
from pounce.config import ServerConfig
from pounce.connection import DRAIN_IDLE_GRACE, HTTP11Connection, _h2_available
from pounce.features import OBSERVER_TICK, build_features
from pounce.implementations import run_options
from pounce.logs import AccessLog
from pounce.sockets import bind_socket
from pounce.tls import ServerTLS, TLSFileError, check_files
from pounce.transport import ProtocolStream
from pounce.workers import effective_worker_mode
from pounce.wrapped import app_attribute

logger = logging.getLogger("pounce.error")

_OVERLOAD = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 20\r\nretry-after: 1\r\nconnection: close\r\nserver: pounce\r\n\r\n"
    b"server at capacity\r\n"
)


class Server:
    """One pounce server process serving one ASGI app."""

    def __init__(
        self, app: ASGIApp, config: ServerConfig, worker_id: int | None = None, tls: ServerTLS | None = None
    ) -> None:
        """`worker_id` is given to a supervisor's workers, a lone server has none; `tls` is the
        TLS context the supervisor built before forking (the files are read once per launch)."""
        features = build_features(app, config)
        self.app = features.app
        self.observers = features.observers
        self.closers = features.closers
        self.config = config
        self.state = ServerState(worker_id or 0, config, supervised=worker_id is not None)
        # max_requests: past this many requests the worker asks to be replaced (`retire`; a
        # supervisor starts the replacement, then drains it), or a lone server drains.
        self.request_limit = config.max_requests + random.randint(0, config.max_requests_jitter)
        self.retire: Callable[[], None] | None = None
        self._lifespan_required = bool(app_attribute(app, "lifespan_required", False))
        self.connections: set[HTTP11Connection] = set()
        self.addresses: list[Any] = []
        self._stopping = False
        self._stop: anyio.Event | None = None
        self._all_closed: anyio.Event | None = None
        self.access = AccessLog(config.access_log_format) if config.access_log else None
        self._live = 0  # accepted sockets not yet closed: set up, shaking hands or serving
        # Each accepted socket's task, and the cancel scope that a drain which runs out of time
        # cancels it with (a task group would add a handle, a scope and an event a connection).
        self._tasks: set[asyncio.Task[None]] = set()
        self._scopes: set[anyio.CancelScope] = set()
        self._tcp = True  # the listener is not a Unix socket
        self._loop: asyncio.AbstractEventLoop | None = None  # kept: a getpid() call to look up on 3.11
        # The event loop's own cancel scope class: `anyio.CancelScope()` looks the loop's up
        # (and runs its `__init__` twice) every time.
        self._scope_class: type[anyio.CancelScope] = anyio.CancelScope
        self.forced = False  # stopped without waiting for in-flight requests: not a clean exit
        self._lifespan_state: dict[str, Any] = {}
        self._tls: ServerTLS | None = tls
        self._alpn: tuple[str, ...] = ("http/1.1",)
        self._scheme = "http"

    def shutdown(self, force: bool = False) -> None:
        """Begin a graceful shutdown (what SIGTERM does); `force` (a second Ctrl-C, SIGQUIT)
        stops waiting for in-flight requests. Calling it again without `force` changes nothing.

        Call it from the server's event loop (a signal handler or a task of the loop).
        """
        if force:
            self.forced = True
            if self._all_closed is not None:
                self._all_closed.set()
        self._stopping = True
        if self._stop is not None:
            self._stop.set()

    async def serve(
        self,
        sock: socket.socket | None = None,
        *,
        install_signals: bool = True,
        on_ready: Callable[[Server], None] | None = None,
        signals: tuple[int, ...] = (
            signal.SIGTERM,
            signal.SIGINT,
            signal.SIGQUIT,
            signal.SIGUSR1,
            signal.SIGHUP,
        ),
    ) -> None:
        """Serve until a signal (or `shutdown()`), then drain and run lifespan shutdown."""
        config = self.config
        self._stop = anyio.Event()
        self._all_closed = anyio.Event()
        self._all_closed.set()
        if self._stopping:
            self._stop.set()
        sock = sock or bind_socket(config)
        try:
            await self._serve(sock, signals if install_signals else (), on_ready)
        except BaseExceptionGroup as group:
            failures = group.subgroup(LifespanError)
            if failures is not None:
                raise _leaf(failures) from None
            raise
        finally:
            sock.close()
            for task in self._tasks:  # left only when serving failed: a drain waits for them all
                task.cancel()
            if self.access is not None:
                self.access.flush()
            self._close_features(signal.SIGTERM in signals and install_signals)

    def _close_features(self, owns_sigterm: bool) -> None:
        """Send what the features still hold (spans, error events) once serving is over.

        A SIGTERM arriving meanwhile is a copy of the stop under way (sent to the process group,
        or the supervisor's own stop during a reload's drain): ignored, not left to kill the
        process mid-send once the signal watcher is gone. SIGQUIT still ends it at once.
        """
        previous = signal.signal(signal.SIGTERM, signal.SIG_IGN) if owns_sigterm and self.closers else None
        try:
            for close in self.closers:
                close()
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    async def _serve(
        self, sock: socket.socket, signals: tuple[int, ...], on_ready: Callable[[Server], None] | None
    ) -> None:
        config = self.config
        stop = self._stop
        assert stop is not None
        lifespan = Lifespan(
            self.app,
            config.lifespan,
            config.startup_timeout,
            config.shutdown_timeout,
            server_state=self.state,
            required=self._lifespan_required,
        )
        async with anyio.create_task_group() as root:
            if signals:
                root.start_soon(self._watch_signals, signals)
            await lifespan.startup(root)
            self._lifespan_state = lifespan.state
            async_workers = effective_worker_mode(config.worker_mode) == "async"
            if async_workers:
                await self._worker_scope("pounce.worker.startup")
            self._alpn = server_alpn()
            if self._tls is None and config.ssl_certfile:  # a supervisor's worker got it built
                self._tls = ServerTLS(config, self._alpn)
            self._scheme = "https" if self._tls else "http"
            self.addresses = [sock.getsockname()]
            self._tcp = sock.family != socket.AF_UNIX  # an enum conversion: once
            self._loop = asyncio.get_running_loop()
            self._scope_class = type(anyio.CancelScope())
            async with anyio.create_task_group() as conns:
                accept_scope = anyio.CancelScope()
                conns.start_soon(self._accept_loop, sock, accept_scope)
                conns.start_soon(self._watchdog)
                if self.observers:
                    conns.start_soon(self._tick_observers)
                logger.info("pounce serving on %s", _describe(sock, self._scheme))
                if on_ready:
                    on_ready(self)
                await stop.wait()
                await self._drain(sock, conns, accept_scope)
            for observer in self.observers:
                observer.tick()  # the last requests' counts, before the process goes
            if async_workers:
                await self._worker_scope("pounce.worker.shutdown")
            await lifespan.shutdown()
            root.cancel_scope.cancel()

    async def _watchdog(self) -> None:
        """Enforce every connection's current deadline (idle, head, body, write)."""
        cfg = self.config
        shortest = min(cfg.keep_alive_timeout, cfg.header_timeout, cfg.body_timeout, cfg.write_timeout)
        tick = max(0.02, min(1.0, shortest / 8))
        retiring = False
        while True:
            await anyio.sleep(tick)
            now = time.monotonic()
            for conn in list(self.connections):
                conn.expire(now)
            if self.access is not None:
                self.access.flush()  # access lines reach the log within a tick
            if cfg.max_requests and not retiring and self.state.requests >= self.request_limit:
                retiring = True
                logger.info("served %d requests (max_requests); retiring this worker", self.state.requests)
                (self.retire or self.shutdown)()

    async def _tick_observers(self) -> None:
        while True:
            await anyio.sleep(OBSERVER_TICK)
            for observer in self.observers:
                observer.tick()

    async def _worker_scope(self, kind: str) -> None:
        """Tell the app about this worker process starting or stopping (async workers only).

        An app that raises on the scope is taken not to support it, as with lifespan
        "auto"; chirp catches and logs its own hook failures and keeps serving. One that is
        still busy after `startup_timeout` is cancelled, and that is logged as an error.
        """
        scope = {"type": kind, "asgi": ASGI_VERSION, "worker_id": self.state.worker_id}

        async def receive() -> dict[str, Any]:
            raise RuntimeError(f"{kind} has no messages to receive")

        async def send(message: Any) -> None:
            raise RuntimeError(f"{kind} takes no messages")

        try:
            with anyio.move_on_after(self.config.startup_timeout) as timer:
                await self.app(scope, receive, send)
        except Exception as exc:
            logger.debug("app did not handle %s: %r", kind, exc)
            return
        if timer.cancelled_caught:
            logger.error(
                "worker %s: %s did not finish within startup_timeout=%ss and was cancelled",
                self.state.worker_id, kind, self.config.startup_timeout,
            )  # fmt: skip

    def reload_tls(self) -> bool:
        """Read the certificate files again (a renewal): new handshakes get the new certificate,
        open connections keep theirs. Files that would not serve are refused on the judgement
        of a launch, and the previous certificate stays. Returns whether it was reloaded."""
        if self._tls is None:
            return False
        try:
            check_files(self.config)
            self._tls = ServerTLS(self.config, self._alpn)
        except (TLSFileError, ssl.SSLError, OSError) as exc:
            logger.error("TLS reload failed, still serving the previous certificate: %s", exc)
            return False
        logger.info("reloaded the TLS certificate from %s", self.config.ssl_certfile)
        return True

    async def _watch_signals(self, signals: tuple[int, ...]) -> None:
        """SIGTERM or SIGINT: drain gracefully, however many copies arrive (a signal sent to the
        whole process group, and the supervisor's forwarded one, are the same request). A second
        SIGINT (a separate Ctrl-C) or SIGQUIT: exit now, without waiting for in-flight requests.
        SIGUSR1 or SIGHUP (a lone server; a supervisor starts a new generation instead): read
        the certificate files again."""
        interrupted = False
        with anyio.open_signal_receiver(*(signal.Signals(s) for s in signals)) as received:
            async for signum in received:
                name = signal.Signals(signum).name
                if signum in (signal.SIGUSR1, signal.SIGHUP):
                    if self._tls is None:
                        logger.info(
                            "received %s: no TLS certificate to reload (new code needs workers)", name
                        )
                    else:
                        self.reload_tls()
                    continue
                if signum == signal.SIGQUIT or (signum == signal.SIGINT and interrupted):
                    logger.warning("received %s, exiting without waiting for in-flight requests", name)
                    self.shutdown(force=True)
                elif self._stopping:
                    logger.info("received %s again; already draining", name)
                else:
                    logger.info("received %s, shutting down gracefully", name)
                    self.shutdown()
                interrupted = interrupted or signum == signal.SIGINT

    async def _accept_loop(self, sock: socket.socket, scope: anyio.CancelScope) -> None:
        with scope:
            while True:
                try:
                    await anyio.wait_readable(sock)
                except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                    return  # the listener was closed by a drain
                # One process takes whatever the kernel has queued now, not one per loop
                # turn, which keeps the tail latency flat under a burst of connections.
                # Workers sharing the socket take one each, so the burst spreads over them.
                try:
                    self._take_backlog(sock, limit=256 if self.config.workers <= 1 else 1)
                except OSError as exc:  # EMFILE and friends: back off instead of spinning
                    logger.error("accept failed: %s", exc)
                    await anyio.sleep(0.1)

    async def _handle(self, raw: socket.socket) -> None:
        """One accepted connection; nothing that happens on it may take the server down."""
        scope = self._scope_class()
        self._scopes.add(scope)
        try:
            with scope:
                try:
                    stream = await ProtocolStream.from_socket(raw)
                except OSError as exc:
                    logger.debug("connection lost before it was set up: %s", exc)
                    raw.close()
                    return
                try:
                    await self._serve_connection(stream, scope)
                except Exception:
                    logger.exception("unexpected error on a connection")
                    with anyio.CancelScope(shield=True):
                        await stream.aclose()
        finally:
            self._scopes.discard(scope)
            self._accepted(-1)

    def _accepted(self, delta: int) -> None:
        """Count accepted sockets from `accept()` until they close: a drain waits for all of them,
        so a connection whose task has not started, or whose TLS handshake is under way, is
        served rather than cut (`_all_closed` is set when none is left)."""
        if delta > 0 and not self._live:
            self._all_closed = anyio.Event()
        self._live += delta
        if not self._live and self._all_closed is not None:
            self._all_closed.set()

    async def _serve_connection(self, stream: ProtocolStream, scope: anyio.CancelScope) -> None:
        if self.config.max_connections and len(self.connections) >= self.config.max_connections:
            with anyio.move_on_after(1):
                await stream.send(_OVERLOAD)
            await stream.aclose()
            return
        client, server = stream.addresses()
        byte_stream: anyio.abc.ByteStream = stream
        alpn = extension = None
        if (tls := self._tls) is not None:  # the context of this handshake, even across a reload
            try:
                with anyio.fail_after(self.config.header_timeout):
                    byte_stream = await TLSStream.wrap(
                        stream, server_side=True, ssl_context=tls.context, standard_compatible=False
                    )
            except (TimeoutError, ssl.SSLError, anyio.BrokenResourceError, anyio.EndOfStream, OSError) as exc:
                logger.debug("TLS handshake with %s failed: %r", client, exc)
                await stream.aclose()
                return
            alpn = byte_stream.extra(TLSAttribute.alpn_protocol, None)
            extension = tls.extension(byte_stream.extra(TLSAttribute.ssl_object))
        conn = HTTP11Connection(
            byte_stream, self.app, self.config, self.state, self._lifespan_state,
            client=client, server=server, scheme=self._scheme, alpn_h2=alpn == "h2", tls=extension,
            access=self.access, scope=scope,
        )  # fmt: skip
        self.connections.add(conn)
        for observer in self.observers:
            observer.connections_changed(1)
        try:
            await conn.run()
        except Exception:
            logger.exception("unexpected error on connection from %s", client)
        finally:
            for observer in self.observers:
                observer.connections_changed(-1)
            self.connections.discard(conn)

    async def _drain(
        self, sock: socket.socket, conns: anyio.abc.TaskGroup, accept_scope: anyio.CancelScope
    ) -> None:
        """Stop accepting, mark the server draining, let in-flight requests finish."""
        self.state.draining = True
        accept_scope.cancel()
        with contextlib.suppress(OSError):
            self._take_backlog(sock)
        sock.close()
        for conn in list(self.connections):
            conn.close_if_idle(DRAIN_IDLE_GRACE)
        assert self._all_closed is not None
        with anyio.move_on_after(self.config.shutdown_timeout):
            await self._all_closed.wait()
        if self.connections:
            logger.warning("shutdown_timeout reached; closing %d connection(s)", len(self.connections))
        for scope in self._scopes:
            scope.cancel()  # what is shielded (a response's last write, a close) still runs
        while self._tasks:
            await asyncio.wait(self._tasks)
        conns.cancel_scope.cancel()

    def _take_backlog(self, sock: socket.socket, limit: int = 1 << 30) -> None:
        """Serve the connections the kernel already completed (on a drain: so that closing
        the listener does not reset them)."""
        tcp, tasks, loop = self._tcp, self._tasks, self._loop
        assert loop is not None
        for _ in range(limit):
            try:
                raw, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            raw.setblocking(False)
            if tcp:
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._accepted(1)
            task = loop.create_task(self._handle(raw))  # the transport is set up in the task
            tasks.add(task)
            task.add_done_callback(tasks.discard)


def server_alpn() -> tuple[str, ...]:
    """The protocols offered by ALPN: HTTP/2 when h2 is installed, and HTTP/1.1."""
    return ("h2", "http/1.1") if _h2_available() else ("http/1.1",)


def _leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _leaf(first) if isinstance(first, BaseExceptionGroup) else first


def _describe(sock: socket.socket, scheme: str) -> str:
    name = sock.getsockname()
    if isinstance(name, str):
        return f"unix:{name}"
    host = f"[{name[0]}]" if ":" in name[0] else name[0]
    return f"{scheme}://{host}:{name[1]}"


def run(app: ASGIApp, config: ServerConfig) -> None:
    """Serve `app` in this process until SIGTERM/SIGINT."""
    anyio.run(Server(app, config).serve, **run_options(config.loop))
