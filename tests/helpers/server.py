"""Run a real pounce server on an ephemeral loopback port for a test (`chirp.testing.serve`)."""

from __future__ import annotations

import contextlib
import socket

from chirp.testing import RunningServer, serve

__all__ = ["RunningServer", "raw_request", "serve"]


def raw_request(port: int, data: bytes, *, host: str = "127.0.0.1", timeout: float = 5.0) -> bytes:
    """Send raw bytes and read until the server closes the connection (or timeout)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)
