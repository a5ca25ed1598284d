"""A small HTTP/1.1 client on the standard library, for talking to the server under test.

`http.client` keeps the check free of extra dependencies (httpx is only a development
dependency). Every request uses its own connection with `Connection: close`, so one odd
response cannot confuse the next. HEAD is also sent over a raw socket, because checking that
no body follows the headers needs the bytes `http.client` would hide; so is a WebSocket
handshake, whose connection is dropped once the answer's head has arrived.
"""

from __future__ import annotations

import base64
import http.client
import os
import socket
import ssl
from urllib.parse import urlsplit

from chirp.contracts.live.observe import Exchange, Handshake

MAX_BODY = 1024 * 1024
STREAM_TYPES = ("text/event-stream",)


class Target:
    """Where the server listens (`http://127.0.0.1:PORT`) and the Host header to send."""

    def __init__(self, url: str, host: str, timeout: float = 5.0) -> None:
        parts = urlsplit(url)
        self.url = url
        self.scheme = parts.scheme or "http"
        self.address = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.scheme == "https" else 80)
        self.host = host
        self.timeout = timeout

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the server under test may use a self-signed cert
        return context

    def handshake(self, maximum: ssl.TLSVersion | None = None, ciphers: str | None = None) -> Handshake:
        """A TLS handshake offering h2 and http/1.1 (up to `maximum`, with only `ciphers` for
        TLS 1.2 when given): what the server chose, or why it refused."""
        context = self._context()
        context.set_alpn_protocols(["h2", "http/1.1"])
        if maximum is not None:
            context.maximum_version = maximum
        if ciphers is not None:
            context.set_ciphers(ciphers)
        try:
            with (
                socket.create_connection((self.address, self.port), timeout=self.timeout) as raw,
                context.wrap_socket(raw, server_hostname=self.address) as tls,
            ):
                cipher = tls.cipher()
                return Handshake(tls.version(), cipher[0] if cipher else None, tls.selected_alpn_protocol())
        except (OSError, ssl.SSLError) as exc:
            return Handshake(error=f"{type(exc).__name__}: {exc}")

    def _connection(self) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(
                self.address, self.port, timeout=self.timeout, context=self._context()
            )
        return http.client.HTTPConnection(self.address, self.port, timeout=self.timeout)

    def request(
        self,
        method: str,
        path: str,
        *,
        host: str | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> Exchange:
        """Send one request; a streaming response (SSE) is closed after its headers."""
        host = host or self.host
        exchange = Exchange(method, path, host)
        sent = {
            "Host": host,
            "Connection": "close",
            "Accept-Encoding": "identity",
            "User-Agent": "chirp-live-check",
        }
        sent.update(headers or {})
        conn = self._connection()
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in sent.items():
                conn.putheader(name, value)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            exchange.status = response.status
            exchange.reason = response.reason
            exchange.headers = list(response.getheaders())
            if exchange.content_type not in STREAM_TYPES and method != "HEAD":
                exchange.body = response.read(MAX_BODY)
        except (OSError, http.client.HTTPException) as exc:
            exchange.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        finally:
            conn.close()
        return exchange

    def head(self, path: str) -> Exchange:
        """HEAD over a raw socket: the status, headers and any bytes after them (there should be none)."""
        return self._raw("HEAD", path, {"Connection": "close"}, until_head=False)

    def websocket_handshake(self, path: str, origin: str) -> Exchange:
        """A WebSocket upgrade request from `origin`; the connection is dropped after the answer's head."""
        headers = {
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode("ascii"),
            "Origin": origin,
        }
        return self._raw("GET", path, headers, until_head=True)

    def _raw(self, method: str, path: str, headers: dict[str, str], *, until_head: bool) -> Exchange:
        """One request over a raw socket; reads until the end of the answer's head (`until_head`)
        or until the server closes the connection."""
        exchange = Exchange(method, path, self.host)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}", "User-Agent: chirp-live-check"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            raw = socket.create_connection((self.address, self.port), timeout=self.timeout)
            sock: socket.socket = (
                self._context().wrap_socket(raw, server_hostname=self.address)
                if self.scheme == "https"
                else raw
            )
            with sock:
                sock.sendall(request)
                data = b""
                while len(data) <= MAX_BODY and not (until_head and b"\r\n\r\n" in data):
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        except OSError as exc:
            exchange.error = f"{type(exc).__name__}: {exc}"
            return exchange
        head, sep, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2) if lines and lines[0] else []
        if not sep or len(parts) < 2 or not parts[1].isdigit():
            exchange.error = f"malformed response: {data[:80]!r}"
            return exchange
        exchange.status = int(parts[1])
        exchange.reason = parts[2] if len(parts) > 2 else ""
        for line in lines[1:]:
            name, _, value = line.partition(":")
            exchange.headers.append((name.strip(), value.strip()))
        exchange.head_extra = rest
        return exchange
