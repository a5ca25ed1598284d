"""Certificate renewal: SIGHUP/SIGUSR1 make a running `pounce serve` take renewed files, with
no connection dropped, in a single process and under a supervisor."""

from __future__ import annotations

import http.client
import os
import signal
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.certs import Authority
from helpers.process import ServerProcess, spawn

APP = """\
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = "startup" if message["type"] == "lifespan.startup" else "shutdown"
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})
"""


class Renewal:
    """A server certificate under one CA, renewed in place as an ACME client would."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca = Authority()
        self.ca_file = self.ca.write(directory)
        self.cert = directory / "live.crt"
        self.key = directory / "live.key"
        self.renew()

    def renew(self, name: str = "server") -> bytes:
        """Write a new certificate and key (each by an atomic rename); returns the certificate (DER)."""
        cert, key = self.ca.issue(self.directory, name)
        os.replace(key, self.key)
        os.replace(cert, self.cert)
        return ssl.PEM_cert_to_DER_cert(self.cert.read_text())

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


def fetch(port: int, ctx: ssl.SSLContext, conn: http.client.HTTPSConnection | None = None) -> bytes:
    """One request (on `conn` when given, else a new connection); returns the server's certificate."""
    own = conn is None
    conn = conn or http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=ctx)
    try:
        conn.request("GET", "/")
        assert conn.sock is not None  # before the response: a draining server's `close` drops it
        der = conn.sock.getpeercert(binary_form=True)
        response = conn.getresponse()
        assert response.status == 200 and response.read() == b"ok"
        assert der is not None
        return der
    finally:
        if own:
            conn.close()


class Traffic:
    """New connections, one after another, from a thread: what each saw or why it failed."""

    def __init__(self, port: int, ctx: ssl.SSLContext) -> None:
        self.certs: list[bytes] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(port, ctx), daemon=True)
        self._thread.start()

    def _run(self, port: int, ctx: ssl.SSLContext) -> None:
        deadline = time.monotonic() + 30
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                self.certs.append(fetch(port, ctx))
            except Exception as exc:
                self.failures.append(repr(exc))

    def until_seen(self, cert: bytes, timeout: float = 15, only: bool = False) -> bool:
        """Whether the last connections got `cert` (with `only`: the last ten, all of them)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = self.certs[-10:]
            if (len(last) == 10 and set(last) == {cert}) if only else cert in last:
                return True
            time.sleep(0.02)  # polling the client thread's results
        return False

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.fixture
def renewal(tmp_path: Path) -> Renewal:
    (tmp_path / "app.py").write_text(APP)
    return Renewal(tmp_path)


def start(renewal: Renewal, *extra: str) -> ServerProcess:
    args = ["pounce", "serve", "--app", "app:app", "--port", "0", "--no-access-log"]
    args += ["--ssl-certfile", str(renewal.cert), "--ssl-keyfile", str(renewal.key), *extra]
    return spawn(args, renewal.directory)


def wait_for_log(server: ServerProcess, text: str, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in line for line in server.read_log()):
            return True
        time.sleep(0.02)  # polling the server's log
    return False


@pytest.fixture
def serving(renewal: Renewal, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    server = start(renewal, *getattr(request, "param", ()))
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGUSR1])
def test_a_lone_server_takes_a_renewed_certificate_without_dropping_a_connection(
    renewal: Renewal, serving: ServerProcess, signum: int
) -> None:
    port = int(serving.url.rsplit(":", 1)[1])
    ctx = renewal.context()
    before = ssl.PEM_cert_to_DER_cert(renewal.cert.read_text())
    kept = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=ctx)
    assert fetch(port, ctx, kept) == before
    traffic = Traffic(port, ctx)
    try:
        assert traffic.until_seen(before)
        after = renewal.renew("renewed")
        os.kill(serving.proc.pid, signum)
        assert traffic.until_seen(after), "new connections never got the renewed certificate"
        assert fetch(port, ctx, kept) == before  # the open connection keeps its handshake
    finally:
        traffic.stop()
        kept.close()
    assert traffic.failures == []
    assert serving.proc.poll() is None
    assert wait_for_log(serving, "reloaded the TLS certificate")


def test_a_renewal_that_would_not_serve_keeps_the_old_certificate(
    renewal: Renewal, serving: ServerProcess
) -> None:
    port = int(serving.url.rsplit(":", 1)[1])
    ctx = renewal.context()
    before = fetch(port, ctx)
    _, wrong_key = Authority("other").issue(renewal.directory, "other")
    os.replace(wrong_key, renewal.key)  # a renewal caught half-written: the key does not match
    os.kill(serving.proc.pid, signal.SIGHUP)
    assert wait_for_log(serving, "TLS reload failed, still serving the previous certificate")
    assert any("does not match the certificate" in line for line in serving.read_log())
    assert fetch(port, ctx) == before


@pytest.mark.parametrize("serving", [("--workers", "2")], indirect=True)
def test_a_supervisor_reload_takes_a_renewed_certificate_without_dropping_a_connection(
    renewal: Renewal, serving: ServerProcess
) -> None:
    port = int(serving.url.rsplit(":", 1)[1])
    ctx = renewal.context()
    before = fetch(port, ctx)
    traffic = Traffic(port, ctx)
    try:
        assert traffic.until_seen(before)
        after = renewal.renew("renewed")
        os.kill(serving.proc.pid, signal.SIGUSR1)
        assert traffic.until_seen(after, timeout=30), (
            "the new generation never served the renewed certificate"
        )
        assert traffic.until_seen(after, timeout=30, only=True), "the old generation kept serving"
    finally:
        traffic.stop()
    assert traffic.failures == []


@pytest.mark.parametrize("serving", [("--workers", "2")], indirect=True)
def test_a_supervisor_reload_with_a_broken_renewal_keeps_the_old_generation(
    renewal: Renewal, serving: ServerProcess
) -> None:
    port = int(serving.url.rsplit(":", 1)[1])
    ctx = renewal.context()
    before = fetch(port, ctx)
    _, wrong_key = Authority("other").issue(renewal.directory, "other")
    os.replace(wrong_key, renewal.key)
    os.kill(serving.proc.pid, signal.SIGUSR1)
    assert wait_for_log(serving, "reload aborted")
    log = "".join(serving.read_log())
    assert "does not match the certificate" in log and "Traceback" not in log
    assert fetch(port, ctx) == before
