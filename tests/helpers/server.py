"""Run a real pounce server on an ephemeral loopback port for a test."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

from anyio.from_thread import start_blocking_portal

from pounce.config import ServerConfig
from pounce.server import Server
from pounce.sockets import bind_socket


class RunningServer:
    def __init__(self, server: Server, url: str, port: int, portal: Any) -> None:
        self.server = server
        self.url = url
        self.port = port
        self.portal = portal

    def shutdown(self) -> None:
        self.portal.call(self.server.shutdown)


@contextlib.contextmanager
def serve(app: Any, **settings: Any) -> Iterator[RunningServer]:
    """Serve `app` with pounce on 127.0.0.1:<free port> in a background thread.

    Yields once the server accepts connections (its lifespan startup is done);
    on exit it shuts down gracefully and waits for the server to finish.
    """
    settings.setdefault("access_log", False)
    config = ServerConfig(host=settings.pop("host", "127.0.0.1"), port=0, **settings)
    sock = bind_socket(config)
    host, port = sock.getsockname()[:2]
    ready = threading.Event()
    server = Server(app, config)
    with start_blocking_portal() as portal:
        future = portal.start_task_soon(
            lambda: server.serve(sock, install_signals=False, on_ready=lambda _: ready.set())
        )
        while not ready.wait(0.05):
            if future.done():
                future.result()  # startup failed: raise it here
        shown = f"[{host}]" if ":" in host else host
        try:
            yield RunningServer(server, f"http://{shown}:{port}", port, portal)
        finally:
            if not future.done():
                portal.call(server.shutdown)
            future.result(timeout=30)


def raw_request(port: int, data: bytes, *, host: str = "127.0.0.1", timeout: float = 5.0) -> bytes:
    """Send raw bytes and read until the server closes the connection (or timeout)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)
