"""The `loop` and `http` settings: validation, resolution, where the choice is reported, and the
httptools parser handing every request it does not take to h11."""

from __future__ import annotations

import asyncio
import socket
import textwrap
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner

from chirp.cli import main as chirp_main
from helpers.asgi_apps import echo, lifespan_ok
from helpers.process import spawn
from helpers.server import serve
from pounce import implementations
from pounce.cli import main
from pounce.config import ServerConfig
from pounce.errors import ConfigurationError
from pounce.protocols.http11 import NEED_DATA, HandOver, Limits, RequestHead
from pounce.protocols.httptools11 import FastHTTP11Protocol
from pounce.runner import startup_banner


@pytest.fixture
def nothing_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a machine without the `fast` extra."""
    monkeypatch.setattr(implementations, "installed", lambda module: False)


@pytest.mark.parametrize(
    ("field", "value", "fix"),
    [
        ("loop", "tokio", "use one of auto, asyncio, uvloop"),
        ("http", "h2", "use one of auto, h11, httptools"),
        ("loop", "Auto", "use one of auto, asyncio, uvloop"),
    ],
)
def test_an_unknown_value_names_the_field_the_value_and_the_choices(field: str, value: str, fix: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ServerConfig(**{field: value})
    assert (caught.value.field, caught.value.value, caught.value.fix) == (field, value, fix)


@pytest.mark.parametrize(("field", "value"), [("loop", "uvloop"), ("http", "httptools")])
@pytest.mark.usefixtures("nothing_fast")
def test_naming_what_is_not_installed_says_how_to_install_it(field: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ServerConfig(**{field: value})
    assert caught.value.field == field and caught.value.value == value
    assert f"{value} is not installed; pip install 'chirp-pounce[fast]'" in str(caught.value)


@pytest.mark.usefixtures("nothing_fast")
def test_auto_falls_back_to_asyncio_and_h11() -> None:
    config = ServerConfig()
    assert (config.loop, config.http) == ("auto", "auto")
    assert implementations.resolve("loop", "auto") == "asyncio"
    assert implementations.resolve("http", "auto") == "h11"
    assert "loop asyncio, http h11" in startup_banner(config, 1)


def test_auto_takes_uvloop_and_httptools_when_installed() -> None:
    assert "loop uvloop, http httptools" in startup_banner(ServerConfig(), 1)
    assert "loop asyncio, http h11" in startup_banner(ServerConfig(loop="asyncio", http="h11"), 1)


def test_pounce_toml_keys_are_validated(tmp_path: Path) -> None:
    path = tmp_path / "pounce.toml"
    path.write_text('loop = "uvloop"\nhttp = "h11"\n')
    config = ServerConfig.load(path)
    assert (config.loop, config.http) == ("uvloop", "h11")
    path.write_text('http = "llhttp"\n')
    with pytest.raises(ConfigurationError, match="http='llhttp' is invalid: use one of auto, h11, httptools"):
        ServerConfig.load(path)


@pytest.mark.parametrize(
    ("cli", "args"),
    [
        (main, ["serve", "--app", "m:app"]),
        (main, ["check", "--app", "m:app"]),
        (chirp_main, ["run", "m:app"]),
    ],
    ids=["pounce-serve", "pounce-check", "chirp-run"],
)
@pytest.mark.usefixtures("nothing_fast")
def test_serve_check_and_run_refuse_a_parser_that_is_not_installed(cli: click.Group, args: list[str]) -> None:
    result = CliRunner().invoke(cli, [*args, "--http", "httptools"])  # before the app is imported
    assert result.exit_code == 2
    assert (
        "error: http='httptools' is invalid: httptools is not installed; pip install 'chirp-pounce[fast]'"
        in (result.output)
    )


@pytest.mark.parametrize("flag", ["--loop", "--http"])
def test_an_unknown_flag_value_is_a_usage_error(flag: str) -> None:
    result = CliRunner().invoke(main, ["serve", "--app", "m:app", flag, "fastest"])
    assert result.exit_code == 2 and "Invalid value for" in result.output


async def loop_app(scope, receive, send):  # type: ignore[no-untyped-def]
    """Answers with the module of the event loop it runs on."""
    if scope["type"] == "lifespan":
        await lifespan_ok(receive, send)
        return
    body = type(asyncio.get_running_loop()).__module__.encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@pytest.mark.parametrize(
    ("settings", "loop", "http"),
    [({}, "uvloop", "httptools"), ({"loop": "asyncio", "http": "h11"}, "asyncio", "h11")],
    ids=["auto", "portable"],
)
def test_info_endpoint_reports_the_resolved_loop_and_parser_and_the_loop_runs(
    settings: dict[str, str], loop: str, http: str
) -> None:
    with serve(loop_app, info_endpoint=True, **settings) as srv:
        info = httpx.get(srv.url + "/_pounce/info").json()
        assert (info["loop"], info["http"]) == (loop, http)
        assert (info["config"]["loop"], info["config"]["http"]) == (
            settings.get("loop", "auto"),
            settings.get("http", "auto"),
        )
        assert httpx.get(srv.url + "/").text.startswith(loop)


def test_chirp_run_with_http_h11(tmp_path: Path) -> None:
    (tmp_path / "hello.py").write_text(
        textwrap.dedent(
            """
            from chirp import App

            app = App()

            @app.route("/")
            def index() -> str:
                return "hello"
            """
        )
    )
    server = spawn(["chirp", "run", "hello:app", "--port", "0", "--no-reload", "--http", "h11"], tmp_path)
    try:
        assert httpx.get(server.url + "/").text == "hello"
        assert any("loop uvloop, http h11" in line for line in server.read_log())
    finally:
        assert server.stop() == 0


# -- the httptools parser: what it takes, and what it hands to h11 untouched ------------------------
def test_a_plain_request_is_parsed_by_httptools() -> None:
    proto = FastHTTP11Protocol(Limits())
    proto.feed(b"POST /a?b HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nX-Y: z\r\n\r\nabcGET")
    head = proto.next_event()
    assert isinstance(head, RequestHead)
    assert (head.method, head.target, head.http_version, head.content_length) == (b"POST", b"/a?b", b"1.1", 3)
    assert head.headers == [(b"host", b"t"), (b"content-length", b"3"), (b"x-y", b"z")]
    assert proto.trailing_data == b"abcGET"


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
        b"GET / HTTP/1.1\nHost: a\r\n\r\n",
        b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: \xe9\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a \r\n\r\n",
        b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"BREW / HTTP/1.1\r\nHost: a\r\n\r\n",
    ],
    ids=["chunked", "expect", "upgrade", "no-host", "two-hosts", "absolute-form", "obs-fold", "bare-lf",
         "version", "two-spaces", "length-list", "obs-text", "trailing-space", "crlf-first", "unknown-method"],
)  # fmt: skip
def test_anything_else_is_handed_to_h11_with_every_byte(request_bytes: bytes) -> None:
    proto = FastHTTP11Protocol(Limits())
    proto.feed(request_bytes + b"next")
    event = proto.next_event()
    assert isinstance(event, HandOver)
    assert event.protocol.trailing_data == request_bytes + b"next"
    assert not proto.has_buffered_data


def test_a_head_over_max_header_size_is_handed_to_h11() -> None:
    proto = FastHTTP11Protocol(Limits(max_header_size=100))
    proto.feed(b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 120)
    assert isinstance(proto.next_event(), HandOver)


def test_a_head_sent_a_byte_at_a_time_is_parsed() -> None:
    proto = FastHTTP11Protocol(Limits())
    request = b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"
    for byte in request[:-1]:
        proto.feed(bytes([byte]))
        assert proto.next_event() is NEED_DATA
    proto.feed(request[-1:])
    head = proto.next_event()
    assert isinstance(head, RequestHead) and head.target == b"/slow"


def test_a_connection_stays_on_httptools_until_a_request_needs_h11() -> None:
    with (
        serve(echo, http="httptools") as srv,
        socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s,
    ):

        def exchange(request: bytes, ending: bytes) -> str:
            """Send `request`, read its response, and name the protocol serving the connection."""
            s.sendall(request)
            raw = b""
            while not raw.endswith(ending):
                chunk = s.recv(65536)
                assert chunk, raw
                raw += chunk
            (conn,) = srv.server.connections
            return type(conn.proto).__name__

        plain = b"POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi"
        assert exchange(plain, b"POST /a hi") == "FastHTTP11Protocol"
        assert exchange(plain, b"POST /a hi") == "FastHTTP11Protocol"  # kept alive, still llhttp
        chunked = b"POST /b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nho\r\n0\r\n\r\n"
        assert exchange(chunked, b"POST /b ho") == "HTTP11Protocol"  # handed over, and answered
        assert exchange(plain, b"POST /a hi") == "HTTP11Protocol"  # the rest of the connection is h11's
