"""pounce HTTP/1.1 over real sockets: framing, limits, timeouts and errors."""

from __future__ import annotations

import contextlib
import functools
import json
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from helpers.asgi_apps import echo, failing_startup, lifespan_ok, scope_echo
from helpers.server import RunningServer, raw_request, serve
from pounce.asgi import LifespanError

LOOP_OF = {"h11": "asyncio", "httptools": "uvloop"}  # a server without the fast extra, and one with it


@pytest.fixture(scope="module", autouse=True, params=["h11", "httptools"])
def http(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test here runs against both HTTP/1.1 parsers: for one pass of the module, `serve`
    serves with the parser of that pass (and the event loop that comes with it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(
            globals(), "serve", functools.partial(serve, http=request.param, loop=LOOP_OF[request.param])
        )
        yield request.param


def status_of(raw: bytes) -> int:
    match = re.match(rb"HTTP/1\.[01] (\d{3})", raw)
    assert match, raw[:200]
    return int(match.group(1))


def test_get_has_date_server_and_reason_phrase() -> None:
    with serve(echo) as srv:
        raw = raw_request(srv.port, b"GET /hi?x=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    head = raw.split(b"\r\n\r\n")[0].lower()
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nserver: pounce" in head
    assert re.search(rb"\r\ndate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d gmt", head)
    assert raw.endswith(b"GET /hi ")


def test_keep_alive_reuses_one_connection() -> None:
    with serve(echo) as srv, httpx.Client(base_url=srv.url) as client:
        ports = set()
        for i in range(5):
            response = client.post("/n", content=str(i))
            assert response.text == f"POST /n {i}"
            ports.add(response.extensions["network_stream"].get_extra_info("client_addr")[1])
    assert len(ports) == 1


def test_pipelined_requests_are_answered_in_order() -> None:
    with serve(echo) as srv:
        raw = raw_request(
            srv.port,
            b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
            b"POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz"
            b"GET /c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
    bodies = re.findall(rb"\r\n\r\n((?:GET|POST) /\w [a-z]*)", raw)
    assert bodies == [b"GET /a ", b"POST /b xyz", b"GET /c "]


def test_chunked_request_body() -> None:
    with serve(echo) as srv:
        raw = raw_request(
            srv.port,
            b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
        )
    assert raw.endswith(b"POST /c abcdefg")


def test_chunked_response_when_no_length() -> None:
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one", b"two"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    with serve(app, lifespan="off") as srv:
        raw = raw_request(srv.port, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert b"transfer-encoding: chunked" in raw.lower()
    assert raw.endswith(b"3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n")


def test_expect_100_continue() -> None:
    with serve(echo) as srv, socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n")
        s.sendall(b"hello")
        rest = s.recv(1000)
    assert status_of(rest) == 200
    assert rest.endswith(b"POST /up hello")


def test_head_has_headers_but_no_body() -> None:
    with serve(echo) as srv:
        raw = raw_request(srv.port, b"HEAD /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert status_of(raw) == 200
    assert b"content-length: 8" in raw.lower()
    assert raw.endswith(b"\r\n\r\n")


def test_http10_closes_after_response() -> None:
    with serve(echo) as srv:
        raw = raw_request(srv.port, b"GET /old HTTP/1.0\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200")
    assert raw.endswith(b"GET /old ")


def test_whole_response_without_length_gets_one_and_keeps_the_connection() -> None:
    with serve(echo) as srv, socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(b"GET /nolength HTTP/1.1\r\nHost: t\r\n\r\nGET /nolength HTTP/1.1\r\nHost: t\r\n\r\n")
        raw = b""
        while raw.count(b"whole body") < 2:
            chunk = s.recv(65536)
            assert chunk, raw
            raw += chunk
    first = raw.split(b"whole body")[0].lower()
    assert b"content-length: 10\r\n" in first
    assert b"transfer-encoding" not in first and b"connection: close" not in first


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        b"GET /a HTTP/1.1\r\nHost: t\r\nConnection: keep-alive, Close\r\n\r\n",
        b"GET /a HTTP/1.0\r\n\r\n",
    ],
    ids=["close", "close-token", "http10"],
)
def test_a_client_that_asks_to_close_gets_connection_close(request_bytes: bytes) -> None:
    with serve(echo) as srv:
        raw = raw_request(srv.port, request_bytes + b"GET /never HTTP/1.1\r\nHost: t\r\n\r\n")
    assert status_of(raw) == 200
    assert b"\r\nconnection: close\r\n" in raw.lower()
    assert raw.endswith(b"GET /a ")  # the request after it was not answered


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: t\r\nbad header\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n", 400),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 without Host
        (b"GET / HTTP/1.1\r\nHost: t\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
        (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 999999999\r\n\r\n", 413),
    ],
    ids=[
        "request-line",
        "header-line",
        "bad-length",
        "two-lengths",
        "bad-chunk",
        "chunk-without-crlf",
        "length-and-chunked",
        "no-host",
        "header-size",
        "url-length",
        "declared-body",
    ],
)
def test_malformed_requests_get_4xx_and_close(request_bytes: bytes, status: int) -> None:
    with serve(echo) as srv:
        raw = raw_request(srv.port, request_bytes)
        assert status_of(raw) == status
        assert b"connection: close" in raw.lower()
        # the worker survived: a good request still works
        assert httpx.get(srv.url + "/ok").text == "GET /ok "


def test_too_many_headers_is_431() -> None:
    headers = b"".join(b"X-%d: v\r\n" % i for i in range(20))
    with serve(echo, max_header_count=10) as srv:
        raw = raw_request(srv.port, b"GET / HTTP/1.1\r\nHost: t\r\n" + headers + b"\r\n")
    assert status_of(raw) == 431


def test_servers_with_different_limits_in_one_process_each_keep_their_own() -> None:
    """What a connection derives from its server's config is derived once and kept: a second
    server with other limits, taking turns with the first, must not get the first one's."""
    headers = b"".join(b"X-%d: v\r\n" % i for i in range(20))
    request = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" + headers + b"\r\n"
    with serve(echo, max_header_count=10) as strict, serve(echo, max_header_count=100) as lenient:
        for _ in range(3):
            assert status_of(raw_request(strict.port, request)) == 431
            assert status_of(raw_request(lenient.port, request)) == 200


def test_chunked_body_over_limit_is_413() -> None:
    chunk = b"%x\r\n%s\r\n" % (600, b"x" * 600)
    with serve(echo, max_body_size=1000) as srv:
        raw = raw_request(
            srv.port,
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunk
            + chunk
            + b"0\r\n\r\n",
        )
    assert status_of(raw) == 413


def test_slow_header_gets_408_and_close() -> None:
    with (
        serve(echo, header_timeout=0.3) as srv,
        socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s,
    ):
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")  # never finishes the head
        start = time.monotonic()
        raw = s.recv(1000)
        assert status_of(raw) == 408
        assert s.recv(100) == b""
        assert time.monotonic() - start < 3


def test_slowloris_does_not_starve_other_clients() -> None:
    with serve(echo, header_timeout=2) as srv:
        lingering = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(20)]
        for s in lingering:
            s.sendall(b"GET / HTTP/1.1\r\n")
        try:
            start = time.monotonic()
            assert httpx.get(srv.url + "/fast").status_code == 200
            assert time.monotonic() - start < 1
        finally:
            for s in lingering:
                s.close()


def test_slow_body_gets_408() -> None:
    with (
        serve(echo, body_timeout=0.3) as srv,
        socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s,
    ):
        s.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        raw = s.recv(1000)
    assert status_of(raw) == 408


def test_idle_keep_alive_connection_is_closed() -> None:
    with (
        serve(echo, keep_alive_timeout=0.3) as srv,
        socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s,
    ):
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert status_of(s.recv(1000)) == 200
        start = time.monotonic()
        assert s.recv(100) == b""
        assert time.monotonic() - start < 3


def read_until_closed(s: socket.socket) -> bytes:
    """Every byte the server sends until it closes the connection (a timeout fails the test)."""
    raw = b""
    while chunk := s.recv(65536):
        raw += chunk
    return raw


def test_a_drain_finishes_the_request_in_flight_and_closes_idle_connections() -> None:
    with (
        serve(echo) as srv,
        socket.create_connection(("127.0.0.1", srv.port), timeout=5) as idle,
        socket.create_connection(("127.0.0.1", srv.port), timeout=5) as busy,
    ):
        idle.sendall(b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n")
        assert idle.recv(65536).endswith(b"GET /first ")
        busy.sendall(b"GET /sleep/0.5 HTTP/1.1\r\nHost: t\r\n\r\n")
        deadline = time.monotonic() + 5
        while srv.server.state.requests < 2:  # poll until the slow request is in the app
            assert time.monotonic() < deadline
            time.sleep(0.01)
        srv.portal.call(srv.server.shutdown)
        raw = read_until_closed(busy)
        assert status_of(raw) == 200 and raw.endswith(b"GET /sleep/0.5 ")
        assert b"\r\nconnection: close\r\n" in raw.lower()
        assert read_until_closed(idle) == b""  # closed without a response


def test_a_drain_that_runs_out_of_time_cuts_the_requests_left(caplog: pytest.LogCaptureFixture) -> None:
    with (
        serve(echo, shutdown_timeout=0.3) as srv,
        socket.create_connection(("127.0.0.1", srv.port), timeout=10) as first,
        socket.create_connection(("127.0.0.1", srv.port), timeout=10) as second,
    ):
        for conn in (first, second):
            conn.sendall(b"GET /sleep/60 HTTP/1.1\r\nHost: t\r\n\r\n")
        deadline = time.monotonic() + 5
        while srv.server.state.requests < 2:  # poll until both requests are in the app
            assert time.monotonic() < deadline
            time.sleep(0.01)
        started = time.monotonic()
        srv.portal.call(srv.server.shutdown)
        assert read_until_closed(first) == b"" and read_until_closed(second) == b""
        assert time.monotonic() - started < 5  # not the requests' 60 s
    assert "shutdown_timeout reached; closing 2 connection(s)" in caplog.text
    assert not srv.server.connections


class _BreakingObserver:
    """An observer that fails once armed: a fault inside the server that no request can cause."""

    armed = False

    def connections_changed(self, delta: int) -> None:
        pass

    def tick(self) -> None:
        if self.armed:
            raise RuntimeError("an observer broke")


def test_a_server_that_fails_cuts_its_connections_too() -> None:
    breaking = _BreakingObserver()
    cut = False
    with (
        pytest.raises(ExceptionGroup) as failure,
        serve(echo, metrics_enabled=True) as srv,
        socket.create_connection(("127.0.0.1", srv.port), timeout=5) as busy,
    ):
        srv.server.observers.append(breaking)
        busy.sendall(b"GET /sleep/60 HTTP/1.1\r\nHost: t\r\n\r\n")
        deadline = time.monotonic() + 5
        while srv.server.state.requests < 1:  # poll until the request is in the app
            assert time.monotonic() < deadline
            time.sleep(0.01)
        breaking.armed = True
        with contextlib.suppress(TimeoutError):  # (the server's failure is raised as the block ends)
            cut = read_until_closed(busy) == b""
    assert cut, "the connection was left running after the server failed"
    assert failure.group_contains(RuntimeError, match="an observer broke", depth=None)


async def addresses(scope: Any, receive: Any, send: Any) -> None:
    """Answer `/addresses` with the client and server addresses the app was handed; echo the rest."""
    if scope["type"] == "lifespan":
        await lifespan_ok(receive, send)
    elif scope["path"] != "/addresses":
        await echo(scope, receive, send)
    else:
        payload = json.dumps([scope["client"], scope["server"]]).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"%d" % len(payload))],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def test_a_request_has_the_peer_and_local_address() -> None:
    with serve(addresses) as srv, socket.create_connection(("127.0.0.1", srv.port), timeout=5) as conn:
        conn.sendall(b"GET /addresses HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        body = read_until_closed(conn).partition(b"\r\n\r\n")[2]
        assert json.loads(body) == [list(conn.getsockname()), ["127.0.0.1", srv.port]]


def test_silent_connection_is_closed_without_a_response() -> None:
    with serve(echo, header_timeout=0.3) as srv:
        assert raw_request(srv.port, b"") == b""


@pytest.mark.parametrize(
    "path",
    [
        "/boom",
        "/silent",
        "/badheader",
        "/ctlheader",
        "/badname",
        "/badstatus",
        "/badlength",
        "/twolengths",
        "/nocontent-body",
    ],
)
def test_app_failures_become_500(path: str, caplog: pytest.LogCaptureFixture) -> None:
    with serve(echo) as srv:
        response = httpx.get(srv.url + path)
        assert response.status_code == 500
        assert "set-cookie" not in response.headers
        assert httpx.get(srv.url + "/after").status_code == 200


def test_max_connections_answers_503() -> None:
    with serve(echo, max_connections=1) as srv, socket.create_connection(("127.0.0.1", srv.port)) as held:
        held.sendall(b"GET /sleep/0 HTTP/1.1\r\nHost: t\r\n\r\n")
        assert status_of(held.recv(1000)) == 200  # the connection is open and counted
        raw = raw_request(srv.port, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert status_of(raw) == 503
        assert b"retry-after: 1" in raw.lower()


def test_lifespan_startup_failure_stops_the_server() -> None:
    with pytest.raises(LifespanError, match="database unreachable"), serve(failing_startup()):
        pass  # pragma: no cover


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        with serve(addresses, host="::1") as srv:
            assert httpx.get(srv.url + "/six").text == "GET /six "
            with socket.create_connection(("::1", srv.port), timeout=5) as conn:
                conn.sendall(b"GET /addresses HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                body = read_until_closed(conn).partition(b"\r\n\r\n")[2]
                assert json.loads(body) == [list(conn.getsockname()[:2]), ["::1", srv.port]]
    except OSError as exc:  # pragma: no cover - kernels without ::1
        pytest.skip(f"::1 not available: {exc}")


def test_unix_socket(tmp_path, http: str) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "pounce.sock")
    import threading

    from anyio.from_thread import start_blocking_portal

    from pounce.config import ServerConfig
    from pounce.implementations import run_options
    from pounce.server import Server

    config = ServerConfig(uds=path, access_log=False, http=http, loop=LOOP_OF[http])
    server = Server(addresses, config)
    ready = threading.Event()
    with start_blocking_portal("asyncio", run_options(config.loop)["backend_options"]) as portal:
        future = portal.start_task_soon(
            lambda: server.serve(install_signals=False, on_ready=lambda _: ready.set())
        )
        assert ready.wait(10)
        transport = httpx.HTTPTransport(uds=path)
        with httpx.Client(transport=transport) as client:
            assert client.get("http://local/unix").text == "GET /unix "
            assert client.get("http://local/addresses").json() == [None, None]  # no address on a Unix socket
        portal.call(server.shutdown)
        future.result(timeout=10)


# -- strict HTTP/1.1: what pounce refuses, and what it tolerates and hands to the app ------------
AFTER = b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n"


@pytest.fixture(scope="module")
def strict(http: str) -> Iterator[RunningServer]:
    with serve(scope_echo) as srv:
        yield srv


def refused(port: int, request: bytes) -> int:
    """The status `request` is refused with. The server must close right after it, so the
    request sent behind it on the same connection is never answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request + AFTER)
        raw = read_until_closed(s)
    assert b"/after" not in raw, raw
    assert b"\r\nconnection: close\r\n" in raw.lower()
    return status_of(raw)


def seen(port: int, request: bytes) -> dict[str, Any]:
    """What the app was handed for `request` (which must ask to close the connection)."""
    raw = raw_request(port, request)
    assert status_of(raw) == 200, raw
    result: dict[str, Any] = json.loads(raw.partition(b"\r\n\r\n")[2])
    return result


@pytest.mark.parametrize("version", [b"0.9", b"1.2", b"2.0", b"9.9"])
def test_a_version_other_than_1_0_and_1_1_is_505(strict: RunningServer, version: bytes) -> None:
    assert refused(strict.port, b"GET / HTTP/%s\r\nHost: t\r\n\r\n" % version) == 505


@pytest.mark.parametrize("version", [b"1.0", b"1.1"])
def test_http_1_0_and_1_1_are_served(strict: RunningServer, version: bytes) -> None:
    request = b"GET / HTTP/%s\r\nHost: t\r\nConnection: close\r\n\r\n" % version
    assert seen(strict.port, request)["http_version"] == version.decode()


def test_an_http2_preface_without_h2c_is_505() -> None:
    with serve(echo, h2c=False) as srv:
        assert refused(srv.port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") == 505


@pytest.mark.parametrize("host", [b"a b", b"a/b", b"user@a", b"a?b", b"a#b", b"a\\b"])
def test_a_host_that_is_no_host_and_port_is_400(strict: RunningServer, host: bytes) -> None:
    assert refused(strict.port, b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % host) == 400


@pytest.mark.parametrize("host", [b"example.com", b"example.com:8080", b"127.0.0.1:80", b"[::1]:80", b""])
def test_a_valid_host_reaches_the_app(strict: RunningServer, host: bytes) -> None:
    app = seen(strict.port, b"GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host)
    assert app["headers"][0] == ["host", host.decode()]


def test_absolute_form_gives_path_query_and_its_authority_as_host(strict: RunningServer) -> None:
    app = seen(
        strict.port,
        b"GET http://example.com:8080/a%20b/c?x=1&y=%20 HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n",
    )
    assert (app["path"], app["raw_path"], app["query_string"]) == ("/a b/c", "/a%20b/c", "x=1&y=%20")
    assert [value for name, value in app["headers"] if name == "host"] == ["example.com:8080"]


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [(b"HTTPS://h", "/", ""), (b"http://h?q=1", "/", "q=1"), (b"http://[::1]:80/x", "/x", "")],
)
def test_absolute_form_without_a_path_is_slash(
    strict: RunningServer, target: bytes, path: str, query: str
) -> None:
    app = seen(strict.port, b"GET %s HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n" % target)
    assert (app["path"], app["raw_path"], app["query_string"]) == (path, path, query)


def test_absolute_form_on_http_1_0_brings_its_host(strict: RunningServer) -> None:
    app = seen(strict.port, b"GET http://example.com/p HTTP/1.0\r\n\r\n")
    assert app["path"] == "/p" and app["headers"] == [["host", "example.com"]]


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        (b"GET ftp://example.com/p HTTP/1.1", 400),  # a scheme other than http and https
        (b"GET http:/p HTTP/1.1", 400),
        (b"GET http:///p HTTP/1.1", 400),  # an empty host
        (b"GET http://:80/p HTTP/1.1", 400),
        (b"GET http://user@example.com/p HTTP/1.1", 400),  # userinfo
        (b"GET http://a{b}/p HTTP/1.1", 400),  # no host holds braces
        (b"GET example.com:80 HTTP/1.1", 400),  # authority-form is for CONNECT only
        (b"GET * HTTP/1.1", 400),  # asterisk-form is for OPTIONS only
        (b"CONNECT example.com:443 HTTP/1.1", 501),  # pounce tunnels nothing
        (b"CONNECT /p HTTP/1.1", 501),
    ],
    ids=["ftp", "no-slashes", "empty-host", "port-only", "userinfo", "braces", "authority-form", "asterisk",
         "connect", "connect-path"],
)  # fmt: skip
def test_other_target_forms_are_refused(strict: RunningServer, request_line: bytes, status: int) -> None:
    assert refused(strict.port, request_line + b"\r\nHost: example.com:443\r\n\r\n") == status


@pytest.mark.parametrize(
    "request_line",
    [b"GET  / HTTP/1.1", b"GET /  HTTP/1.1", b"GET\t/ HTTP/1.1", b"GET / HTTP/1.1 ", b" GET / HTTP/1.1",
     b"GET / http/1.1", b"GET /a b HTTP/1.1", b"GET / HTTP/1.1\t"],
    ids=["two-spaces", "two-spaces-after-target", "tab", "trailing-space", "leading-space", "lower-case",
         "space-in-target", "trailing-tab"],
)  # fmt: skip
def test_a_request_line_not_split_by_single_spaces_is_400(strict: RunningServer, request_line: bytes) -> None:
    assert refused(strict.port, request_line + b"\r\nHost: t\r\n\r\n") == 400


def test_options_asterisk_reaches_the_app(strict: RunningServer) -> None:
    app = seen(strict.port, b"OPTIONS * HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert (app["method"], app["path"], app["raw_path"], app["query_string"]) == ("OPTIONS", "*", "*", "")


CHUNKED = b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET / HTTP/1.1\nHost: t\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\nX: y\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\n\n",
        b"GET / HTTP/1.1\r\nHost: t\r\n\n",
        CHUNKED + b"0\r\n\n",
        CHUNKED + b"0\r\nX: y\n\r\n",
        CHUNKED + b"0\r\nX: y\nZ: w\r\n\r\n",
    ],
    ids=["request-line", "field-line", "end-of-head", "empty-line", "no-trailers", "end-of-trailers",
         "trailer-line"],
)  # fmt: skip
def test_a_bare_lf_ending_a_line_is_400(strict: RunningServer, request_bytes: bytes) -> None:
    assert refused(strict.port, request_bytes) == 400


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n\tb\r\n\r\n",
        b"GET / HTTP/1.1\r\n Host: t\r\n\r\n",  # whitespace between the request line and a field
        CHUNKED + b"0\r\nX: a\r\n b\r\n\r\n",
    ],
    ids=["space", "tab", "first-line", "trailer"],
)
def test_an_obs_fold_is_400(strict: RunningServer, request_bytes: bytes) -> None:
    assert refused(strict.port, request_bytes) == 400


def test_one_empty_line_before_a_request_line_is_ignored(strict: RunningServer) -> None:
    app = seen(strict.port, b"\r\nGET /p HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert app["path"] == "/p"


def test_the_crlf_some_clients_send_after_a_body_is_ignored(strict: RunningServer) -> None:
    pipelined = (
        b"POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc\r\n"
        b"GET /b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    assert re.findall(rb'"path": "(/\w)"', raw_request(strict.port, pipelined)) == [b"/a", b"/b"]


@pytest.mark.parametrize("before", [b"\r\n\r\n", b"\n", b"\r\r\n"], ids=["two", "bare-lf", "bare-cr"])
def test_more_than_one_empty_line_or_a_bare_one_before_a_request_line_is_400(
    strict: RunningServer, before: bytes
) -> None:
    assert refused(strict.port, before + b"GET / HTTP/1.1\r\nHost: t\r\n\r\n") == 400


@pytest.mark.parametrize(
    "chunk_line",
    [
        b"0" * 21 + b"3",  # h11 takes at most 20 hex digits
        b"3;" + b"x" * 4096,  # longer than CHUNK_LINE_LIMIT
        b"3;a=\x00",
        b"3;a\rb",
        b"3;a=\x01",
        b"3;a\nb",
        b"3 ;a",  # h11 reads no whitespace ahead of an extension
    ],
    ids=["size-digits", "too-long", "nul", "bare-cr", "control", "bare-lf", "space-before-semicolon"],
)
def test_a_bad_chunk_line_is_400(strict: RunningServer, chunk_line: bytes) -> None:
    request = (
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n%s\r\nabc\r\n0\r\n\r\n" % chunk_line
    )
    assert refused(strict.port, request) == 400


CHUNKED_LAST = b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"


def test_chunk_extensions_are_ignored(strict: RunningServer) -> None:
    chunks = b'3;sig=abc123;name="quoted; value"\r\nabc\r\n2;flag\r\nde\r\n0;last\r\n\r\n'
    assert seen(strict.port, CHUNKED_LAST + chunks)["body"] == "abcde"


@pytest.mark.parametrize(
    ("transfer_encoding", "status"),
    [
        (b"Transfer-Encoding: gzip", 400),  # chunked is not the last coding: no length known
        (b"Transfer-Encoding: chunked, gzip", 400),
        (b"Transfer-Encoding: chunked, chunked", 400),
        (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", 400),
        (b"Transfer-Encoding: gzip, chunked", 501),  # a coding pounce cannot decode
        (b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked", 501),
        (b"Transfer-Encoding: , chunked", 400),  # h11 takes the exact value chunked alone
    ],
    ids=[
        "gzip",
        "chunked-gzip",
        "chunked-twice",
        "two-fields",
        "gzip-chunked",
        "gzip-then-chunked-field",
        "empty-member",
    ],
)
def test_a_transfer_encoding_other_than_chunked(
    strict: RunningServer, transfer_encoding: bytes, status: int
) -> None:
    request = b"POST / HTTP/1.1\r\nHost: t\r\n%s\r\n\r\n3\r\nabc\r\n0\r\n\r\n" % transfer_encoding
    assert refused(strict.port, request) == status


def test_transfer_encoding_names_chunked_in_any_case(strict: RunningServer) -> None:
    request = b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: ChUnKeD\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    assert seen(strict.port, request)["body"] == "abc"


def test_transfer_encoding_on_http_1_0_is_400(strict: RunningServer) -> None:
    request = b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    assert refused(strict.port, request) == 400


def test_expect_100_continue_from_http_1_0_is_ignored() -> None:
    with (
        serve(echo) as srv,
        socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s,
    ):
        s.sendall(b"POST /e HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
        s.sendall(b"abc")  # sent without waiting: the answer below must be the final one
        raw = read_until_closed(s)
    assert raw.startswith(b"HTTP/1.1 200 ") and raw.endswith(b"POST /e abc")


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET / HTTP/1.1\r\nHost: t\r\nX-A : v\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n",
        b"GET / HTTP/1.1\rHost: t\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\n: v\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3, 4\r\n\r\nabcd",
        b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /a\x01b HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /\xc3\xa9 HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET / http/1.1\r\nHost: t\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nX{Y}: v\r\n\r\n",
    ],
    ids=["space-before-colon", "bare-cr-in-value", "bare-cr-ending-a-line", "nul-in-value", "empty-name",
         "two-lengths-in-one-field", "space-in-target", "control-in-target", "non-ascii-target",
         "lowercase-version", "no-version", "two-spaces", "two-hosts", "name-not-a-token"],
)  # fmt: skip
def test_what_h11_refuses_is_400(strict: RunningServer, request_bytes: bytes) -> None:
    assert refused(strict.port, request_bytes) == 400


def test_whitespace_around_a_value_is_not_part_of_it(strict: RunningServer) -> None:
    app = seen(strict.port, b"GET / HTTP/1.1\r\nHost: t\r\nX-A: \t a \t b \t\r\nConnection: close\r\n\r\n")
    assert ["x-a", "a \t b"] in app["headers"]


def test_control_characters_other_than_nul_cr_lf_in_a_value_reach_the_app(strict: RunningServer) -> None:
    app = seen(
        strict.port, b"GET / HTTP/1.1\r\nHost: t\r\nCookie: a=\x01\x1f\x7f\r\nConnection: close\r\n\r\n"
    )
    assert ["cookie", "a=\x01\x1f\x7f"] in app["headers"]


@pytest.mark.parametrize(
    "lengths",
    [b"Content-Length: 3\r\nContent-Length: 3", b"Content-Length: 3, 3"],
    ids=["two-fields", "list"],
)
def test_a_repeated_content_length_of_one_value_counts_once(strict: RunningServer, lengths: bytes) -> None:
    app = seen(strict.port, b"POST / HTTP/1.1\r\nHost: t\r\n%s\r\nConnection: close\r\n\r\nabc" % lengths)
    assert app["body"] == "abc"
    assert [value for name, value in app["headers"] if name == "content-length"] == ["3"]


def test_trailers_are_read_and_dropped(strict: RunningServer) -> None:
    app = seen(strict.port, CHUNKED_LAST + b"3\r\nabc\r\n0\r\nX-Checksum: 1\r\nContent-Length: 99\r\n\r\n")
    assert app["body"] == "abc"
    assert [name for name, _ in app["headers"]] == ["host", "transfer-encoding", "connection"]


def test_visible_characters_outside_the_uri_grammar_reach_the_app_as_sent(strict: RunningServer) -> None:
    app = seen(strict.port, b'GET /a|b{c}^"<>`#f?q=|x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n')
    assert (app["raw_path"], app["query_string"]) == ('/a|b{c}^"<>`#f', "q=|x")
