"""The server: listen, accept, run connections, drain gracefully on a signal."""

from __future__ import annotations

import logging
import signal
import socket
import ssl
from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSListener

from pounce.asgi import ASGIApp, Lifespan, LifespanError, ServerState
from pounce.config import ServerConfig
from pounce.connection import HTTP11Connection
from pounce.sockets import bind_socket

logger = logging.getLogger("pounce.error")

_OVERLOAD = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 20\r\nretry-after: 1\r\nconnection: close\r\nserver: pounce\r\n\r\n"
    b"server at capacity\r\n"
)


def create_ssl_context(config: ServerConfig, alpn: tuple[str, ...] = ("http/1.1",)) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    assert config.ssl_certfile and config.ssl_keyfile
    ctx.load_cert_chain(config.ssl_certfile, config.ssl_keyfile)
    ctx.set_alpn_protocols(list(alpn))
    return ctx


class Server:
    """One pounce server process serving one ASGI app."""

    def __init__(self, app: ASGIApp, config: ServerConfig, worker_id: int = 0) -> None:
        self.app = app
        self.config = config
        self.state = ServerState(worker_id)
        self.connections: set[HTTP11Connection] = set()
        self.addresses: list[Any] = []
        self._stopping = False
        self._stop: anyio.Event | None = None
        self._all_closed: anyio.Event | None = None

    def shutdown(self) -> None:
        """Begin a graceful shutdown (what SIGTERM does); calling twice forces it.

        Call it from the server's event loop (a signal handler or a task of the loop).
        """
        if self._stopping and self._all_closed is not None:
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
            await self._serve(sock, install_signals, on_ready)
        except BaseExceptionGroup as group:
            failures = group.subgroup(LifespanError)
            if failures is not None:
                raise _leaf(failures) from None
            raise
        finally:
            sock.close()

    async def _serve(
        self, sock: socket.socket, install_signals: bool, on_ready: Callable[[Server], None] | None
    ) -> None:
        config = self.config
        lifespan = Lifespan(self.app, config.lifespan, config.startup_timeout, config.shutdown_timeout)
        async with anyio.create_task_group() as root:
            if install_signals:
                root.start_soon(self._watch_signals)
            await lifespan.startup(root)
            listener: anyio.abc.Listener[Any] = await anyio.abc.SocketListener.from_socket(sock)
            scheme = "http"
            if config.ssl_certfile:
                listener = TLSListener(listener, create_ssl_context(config), standalone=False)
                scheme = "https"
            self.addresses = [sock.getsockname()]
            async with anyio.create_task_group() as conns:
                conns.start_soon(self._accept_loop, listener, conns, lifespan.state, scheme)
                logger.info("pounce serving on %s", _describe(sock, scheme))
                if on_ready:
                    on_ready(self)
                await self._stop.wait()
                await self._drain(listener, conns)
            await lifespan.shutdown()
            root.cancel_scope.cancel()

    async def _watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                logger.info("received %s, %s", signal.Signals(signum).name,
                            "forcing exit" if self._stopping else "shutting down gracefully")
                self.shutdown()

    async def _accept_loop(
        self, listener: anyio.abc.Listener[Any], tg: anyio.abc.TaskGroup, lifespan_state: dict[str, Any], scheme: str
    ) -> None:
        async def handle(stream: anyio.abc.ByteStream) -> None:
            if self.config.max_connections and len(self.connections) >= self.config.max_connections:
                with anyio.move_on_after(1):
                    await stream.send(_OVERLOAD)
                await stream.aclose()
                return
            client = _addr(stream.extra(SocketAttribute.remote_address, None))
            server = _addr(stream.extra(SocketAttribute.local_address, None))
            conn = HTTP11Connection(
                stream, self.app, self.config, self.state, lifespan_state,
                client=client, server=server, scheme=scheme,
            )  # fmt: skip
            if not self.connections:
                self._all_closed = anyio.Event()
            self.connections.add(conn)
            try:
                await conn.run()
            except Exception:
                logger.exception("unexpected error on connection from %s", client)
            finally:
                self.connections.discard(conn)
                if not self.connections and self._all_closed is not None:
                    self._all_closed.set()

        with anyio.CancelScope() as self._accept_scope:
            try:
                await listener.serve(handle, tg)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass  # the listener was closed by a drain

    async def _drain(self, listener: anyio.abc.Listener[Any], conns: anyio.abc.TaskGroup) -> None:
        """Stop accepting, mark the server draining, let in-flight requests finish."""
        self.state.draining = True
        self._accept_scope.cancel()
        await listener.aclose()
        for conn in list(self.connections):
            conn.close_if_idle()
        assert self._all_closed is not None
        with anyio.move_on_after(self.config.shutdown_timeout):
            await self._all_closed.wait()
        if self.connections:
            logger.warning("shutdown_timeout reached; closing %d connection(s)", len(self.connections))
        conns.cancel_scope.cancel()


def _leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _leaf(first) if isinstance(first, BaseExceptionGroup) else first


def _addr(value: Any) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return (str(value[0]), int(value[1]))
    return None


def _describe(sock: socket.socket, scheme: str) -> str:
    name = sock.getsockname()
    if isinstance(name, str):
        return f"unix:{name}"
    host = f"[{name[0]}]" if ":" in name[0] else name[0]
    return f"{scheme}://{host}:{name[1]}"


def run(app: ASGIApp, config: ServerConfig) -> None:
    """Serve `app` in this process until SIGTERM/SIGINT."""
    anyio.run(Server(app, config).serve)
