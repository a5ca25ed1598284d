"""HTTP/2 over TLS (ALPN) and cleartext prior knowledge, with real h2 clients."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import h2.connection
import h2.events
import httpx
import pytest

from helpers.asgi_apps import echo
from helpers.certs import write_loopback_pair
from helpers.server import serve


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_loopback_pair(tmp_path_factory.mktemp("tls"))


def https_url(url: str) -> str:
    return url.replace("http://", "https://")


def test_alpn_negotiates_h2_and_serves(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    with serve(echo, ssl_certfile=str(cert), ssl_keyfile=str(key)) as srv:
        with httpx.Client(http2=True, verify=ssl.create_default_context(cafile=str(cert))) as client:
            response = client.post(https_url(srv.url) + "/h2?q=1", content=b"body")
            assert response.http_version == "HTTP/2"
            assert response.text == "POST /h2 body"
            assert response.headers["server"] == "pounce" and "date" in response.headers
        with httpx.Client(
            verify=ssl.create_default_context(cafile=str(cert))
        ) as client:  # a client without h2 still gets HTTP/1.1
            response = client.get(https_url(srv.url) + "/one")
            assert response.http_version == "HTTP/1.1" and response.text == "GET /one "


def test_h2c_prior_knowledge_with_curl() -> None:
    if not shutil.which("curl"):
        pytest.skip("curl is not installed")
    with serve(echo) as srv:
        out = subprocess.run(
            ["curl", "-s", "--http2-prior-knowledge", "-w", "\n%{http_version}", srv.url + "/c", "-d", "x"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout  # fmt: skip
    assert out == "POST /c x\n2"


def test_multiplexed_streams_on_one_connection(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files

    async def main(url: str) -> list[str]:
        async with httpx.AsyncClient(
            http2=True, verify=ssl.create_default_context(cafile=str(cert))
        ) as client:
            results: list[str] = []

            async def one(i: int) -> None:
                results.append((await client.get(f"{url}/sleep/0.2?{i}")).text)

            start = anyio.current_time()
            async with anyio.create_task_group() as tg:
                for i in range(20):
                    tg.start_soon(one, i)
            assert anyio.current_time() - start < 2  # concurrent, not one after another
            return results

    with serve(echo, ssl_certfile=str(cert), ssl_keyfile=str(key)) as srv:
        results = anyio.run(main, https_url(srv.url))
    assert len(results) == 20 and all(r == "GET /sleep/0.2 " for r in results)


def test_large_bodies_respect_flow_control() -> None:
    big = b"y" * 300_000  # far beyond the 65,535-byte initial windows

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body + big})

    with serve(app, lifespan="off") as srv, httpx.Client(http2=True):
        # httpx speaks h2 to http:// URLs only with prior knowledge:
        transport = httpx.HTTPTransport(http2=True, http1=False)
        with httpx.Client(transport=transport) as h2client:
            response = h2client.post(srv.url + "/", content=big)
            assert response.http_version == "HTTP/2"
            assert response.content == big + big


def h2_session(port: int) -> tuple[socket.socket, h2.connection.H2Connection]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn = h2.connection.H2Connection()
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn


def get(path: str) -> list[tuple[str, str]]:
    """The header block of a GET of `path`."""
    return [(":method", "GET"), (":scheme", "http"), (":authority", "t"), (":path", path)]


def sleeping_app() -> tuple[Any, threading.Event, list[str]]:
    """An app whose requests sleep until cancelled: it, an event set once one runs, and the
    paths of the requests that ended."""
    finished: list[str] = []
    started = threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        started.set()
        try:
            await anyio.sleep(30)
        finally:
            finished.append(scope["path"])

    return app, started, finished


def read_events(sock: socket.socket, conn: h2.connection.H2Connection, until: type) -> list[Any]:
    events: list[Any] = []
    while not any(isinstance(e, until) for e in events):
        data = sock.recv(65536)
        if not data:
            break
        events += conn.receive_data(data)
        sock.sendall(conn.data_to_send())
    return events


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ([(":path", "/" + "a" * 9000)], 414),
        ([(f"x-{i}", "v") for i in range(150)], 431),
        ([("content-length", "999999999")], 413),
    ],
    ids=["url-length", "header-count", "declared-body"],
)
def test_limits_match_http11(headers: list[tuple[str, str]], status: int) -> None:
    with serve(echo) as srv:
        sock, conn = h2_session(srv.port)
        base = {":method": "GET", ":scheme": "http", ":authority": "t", ":path": "/"}
        for name, value in headers:
            if name in base:
                base[name] = value
        request = list(base.items()) + [(n, v) for n, v in headers if not n.startswith(":")]
        conn.send_headers(1, request, end_stream=True)
        sock.sendall(conn.data_to_send())
        events = read_events(sock, conn, h2.events.StreamEnded)
        sock.close()
    response = next(e for e in events if isinstance(e, h2.events.ResponseReceived))
    assert dict(response.headers)[b":status"] == str(status).encode()


def test_client_reset_cancels_the_handler() -> None:
    app, started, finished = sleeping_app()
    with serve(app, lifespan="off") as srv:
        sock, conn = h2_session(srv.port)
        conn.send_headers(1, get("/"), end_stream=True)
        sock.sendall(conn.data_to_send())
        assert started.wait(5)  # reset once the handler runs (a stream reset before is never started)
        conn.reset_stream(1)
        sock.sendall(conn.data_to_send())
        for _ in range(100):
            if finished:
                break
            anyio.run(anyio.sleep, 0.02)
        sock.close()
    assert finished == ["/"]


def test_graceful_shutdown_sends_goaway_and_finishes_streams() -> None:
    with serve(echo) as srv:
        sock, conn = h2_session(srv.port)
        conn.send_headers(1, get("/sleep/0.3"), end_stream=True)
        sock.sendall(conn.data_to_send())
        read_events(sock, conn, h2.events.SettingsAcknowledged)
        while not srv.server.connections or not any(c.requests for c in srv.server.connections):
            anyio.run(anyio.sleep, 0.01)
        srv.portal.start_task_soon(_shutdown, srv.server)
        events = read_events(sock, conn, h2.events.StreamEnded)
        events += read_events(sock, conn, h2.events.ConnectionTerminated)
        sock.close()
    assert any(isinstance(e, h2.events.ConnectionTerminated) for e in events)
    data = b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived))
    assert data == b"GET /sleep/0.3 "


async def _shutdown(server: Any) -> None:
    server.shutdown()


def test_tls_handshake_failure_does_not_hurt_the_server(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    with serve(echo, ssl_certfile=str(cert), ssl_keyfile=str(key)) as srv:
        with socket.create_connection(("127.0.0.1", srv.port)) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")  # plaintext to a TLS port
            raw.settimeout(5)
            with contextlib.suppress(ConnectionResetError, TimeoutError):
                raw.recv(100)
        ctx = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(verify=ctx) as client:
            assert client.get(https_url(srv.url) + "/after").text == "GET /after "


@pytest.mark.parametrize(
    "path",
    [
        "/badheader",
        "/ctlheader",
        "/badname",
        "/badstatus",
        "/boom",
        "/silent",
        "/badlength",
        "/twolengths",
        "/nocontent-body",
    ],
)
def test_app_errors_and_illegal_responses_become_500_over_http2_too(
    tls_files: tuple[Path, Path], path: str, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = tls_files
    verify = ssl.create_default_context(cafile=str(cert))
    with (
        serve(echo, ssl_certfile=str(cert), ssl_keyfile=str(key)) as srv,
        httpx.Client(http2=True, verify=verify) as client,
    ):
        response = client.get(https_url(srv.url) + path)
        assert response.http_version == "HTTP/2"
        assert response.status_code == 500
        assert "set-cookie" not in response.headers and "x-user" not in response.headers
        assert client.get(https_url(srv.url) + "/after").text == "GET /after "  # the connection lives on


def test_a_streamed_body_short_of_its_content_length_resets_the_stream(tls_files: tuple[Path, Path]) -> None:
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
        await send({"type": "http.response.body", "body": b"four", "more_body": True})
        await send({"type": "http.response.body", "body": b"more"})  # 8 of the 10 declared

    cert, key = tls_files
    verify = ssl.create_default_context(cafile=str(cert))
    with (
        serve(app, lifespan="off", ssl_certfile=str(cert), ssl_keyfile=str(key)) as srv,
        httpx.Client(http2=True, verify=verify) as client,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        client.get(https_url(srv.url) + "/")  # never taken for a complete 8-byte response


async def fields_app(scope: Any, receive: Any, send: Any) -> None:
    """200 with the response fields the path names: padded, credentials, or a `te` of its own."""
    if scope["type"] != "http":
        return
    fields = {
        "/padded": [(b"x-padded", b" \tvalue \t")],
        "/credentials": [(b"authorization", b"Bearer t0ken"), (b"cookie", b"a=1"), (b"x-plain", b"p")],
        "/te-trailers": [(b"te", b"Trailers")],
        "/te-gzip": [(b"te", b"gzip")],
    }[scope["path"]]
    await send({"type": "http.response.start", "status": 200, "headers": fields})
    await send({"type": "http.response.body", "body": b"ok"})


def h2_get(port: int, path: str) -> list[Any]:
    """The response fields of a GET of `path`, as the client's decoder produced them."""
    sock, conn = h2_session(port)
    conn.send_headers(1, get(path), end_stream=True)
    sock.sendall(conn.data_to_send())
    events = read_events(sock, conn, h2.events.StreamEnded)
    sock.close()
    return list(next(e for e in events if isinstance(e, h2.events.ResponseReceived)).headers)


def test_response_fields_are_normalised_as_http2_requires() -> None:
    """pounce checks and normalises response fields itself (h2 is told not to do it again): no
    surrounding whitespace, `te` only as `trailers`, credentials never indexed by HPACK."""
    from hpack import NeverIndexedHeaderTuple

    with serve(fields_app, lifespan="off") as srv:
        padded = dict(h2_get(srv.port, "/padded"))
        assert padded[b"x-padded"] == b"value"
        credentials = h2_get(srv.port, "/credentials")
        never = {bytes(f[0]) for f in credentials if isinstance(f, NeverIndexedHeaderTuple)}
        assert never == {b"authorization", b"cookie"}
        assert (
            dict(credentials)[b"authorization"] == b"Bearer t0ken" and dict(credentials)[b"x-plain"] == b"p"
        )
        assert dict(h2_get(srv.port, "/te-trailers"))[b"te"] == b"Trailers"
        assert dict(h2_get(srv.port, "/te-gzip"))[b":status"] == b"500"


def test_a_connection_that_goes_away_cancels_its_running_streams() -> None:
    app, started, finished = sleeping_app()
    with serve(app, lifespan="off") as srv:
        sock, conn = h2_session(srv.port)
        for stream_id in (1, 3):
            conn.send_headers(stream_id, get(f"/{stream_id}"), end_stream=True)
        sock.sendall(conn.data_to_send())
        assert started.wait(5)
        sock.close()  # no RST_STREAM, no GOAWAY: the peer is just gone
        deadline = time.monotonic() + 5
        while len(finished) < 2 and time.monotonic() < deadline:
            anyio.run(anyio.sleep, 0.02)
    assert sorted(finished) == ["/1", "/3"]


def test_a_failure_of_the_servers_own_in_a_stream_ends_the_connection(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A fault no client can cause (a bug in pounce's stream code): the connection ends, as a
    task group's would, and the error is logged."""
    from pounce.h2_driver import HTTP2Driver

    async def broken(self: HTTP2Driver, stream: Any) -> None:
        raise RuntimeError("stream machinery broke")

    monkeypatch.setattr(HTTP2Driver, "_run_stream", broken)
    with serve(echo) as srv:
        sock, conn = h2_session(srv.port)
        conn.send_headers(1, get("/"), end_stream=True)
        sock.sendall(conn.data_to_send())
        sock.settimeout(5)
        while sock.recv(65536):  # read until the server closes the connection
            pass
        sock.close()
    assert any("HTTP/2 stream failed" in r.message and r.exc_info for r in caplog.records)


def test_a_stream_reset_before_its_request_started_is_forgotten() -> None:
    """HEADERS and RST_STREAM in one packet: the stream's task is cancelled before it runs; the
    connection serves the next stream, and a graceful shutdown does not wait for the first."""
    with serve(echo) as srv:
        sock, conn = h2_session(srv.port)
        conn.send_headers(1, get("/gone"), end_stream=True)
        conn.reset_stream(1)
        sock.sendall(conn.data_to_send())
        conn.send_headers(3, get("/next"), end_stream=True)
        sock.sendall(conn.data_to_send())
        events = read_events(sock, conn, h2.events.StreamEnded)
        data = b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived) and e.stream_id == 3)
        assert data == b"GET /next "
        started = time.monotonic()
    sock.close()
    assert time.monotonic() - started < 5  # the shutdown did not wait for the reset stream
