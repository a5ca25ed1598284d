"""Compression: negotiation, the never-compress list, and streaming chunks flushed at once."""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from typing import Any

import anyio
import httpx
import pytest

from helpers.asgi_apps import lifespan_ok
from helpers.server import raw_request, serve
from pounce.features.compression import choose_coding, compressible

TEXT = ("chirp and pounce " * 100).encode()


def make_app(released: threading.Event | None = None) -> Any:
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            await lifespan_ok(receive, send)
            return
        path = scope["path"]
        headers = [(b"content-type", b"text/plain; charset=utf-8")]
        status, body = 200, TEXT
        if path == "/tiny":
            body = b"tiny"
        elif path == "/png":
            headers = [(b"content-type", b"image/png")]
        elif path == "/encoded":
            headers.append((b"content-encoding", b"gzip"))
            body = gzip.compress(TEXT)
        elif path == "/nocontent":
            status, body = 204, b""
        elif path == "/notmodified":
            status, body = 304, b""
        elif path == "/etag":
            headers += [(b"etag", b'"v1"'), (b"vary", b"Cookie")]
        elif path in ("/sse", "/stream"):
            if path == "/sse":
                headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            first = b"data: first event\n\n" if path == "/sse" else TEXT
            await send({"type": "http.response.body", "body": first, "more_body": True})
            assert released is not None
            deadline = anyio.current_time() + 5
            while not released.is_set() and anyio.current_time() < deadline:
                await anyio.sleep(0.01)
            last = b"data: released\n\n" if released.is_set() else b"data: timed out\n\n"
            await send({"type": "http.response.body", "body": last, "more_body": False})
            return
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def get(url: str, encoding: str = "gzip", method: str = "GET") -> httpx.Response:
    return httpx.request(method, url, headers={"accept-encoding": encoding})


def test_gzip_when_accepted_with_vary_and_exact_length() -> None:
    with serve(make_app()) as srv:
        response = get(srv.url + "/")
        assert response.headers["content-encoding"] == "gzip"
        assert response.headers["vary"] == "Accept-Encoding"
        assert int(response.headers["content-length"]) < len(TEXT) / 5
        assert response.content == TEXT  # httpx decodes it
        plain = get(srv.url + "/", encoding="identity")
        assert "content-encoding" not in plain.headers
        assert plain.headers["vary"] == "Accept-Encoding"  # the representation depends on the header
        assert plain.content == TEXT


@pytest.mark.parametrize("coding, module", [("br", "brotli"), ("zstd", "zstandard")])
def test_optional_codings_when_installed(coding: str, module: str) -> None:
    lib = pytest.importorskip(module)
    with serve(make_app()) as srv:
        raw = raw_request(
            srv.port,
            f"GET / HTTP/1.1\r\nhost: x\r\naccept-encoding: gzip;q=0.5, {coding}\r\nconnection: close\r\n\r\n".encode(),
        )
        head, _, body = raw.partition(b"\r\n\r\n")
        assert f"content-encoding: {coding}".encode() in head
        if module == "brotli":
            assert lib.decompress(body) == TEXT
        else:
            assert lib.ZstdDecompressor().decompressobj().decompress(body) == TEXT


@pytest.mark.parametrize("path", ["/tiny", "/png", "/encoded", "/nocontent", "/notmodified", "/sse-head"])
def test_never_compressed(path: str) -> None:
    with serve(make_app()) as srv:
        response = get(srv.url + "/", method="HEAD") if path == "/sse-head" else get(srv.url + path)
        assert response.headers.get("content-encoding") == ("gzip" if path == "/encoded" else None)
        if path == "/encoded":
            assert response.content == TEXT  # passed through untouched (httpx decoded the app's gzip once)
        if path == "/png":
            assert "vary" not in response.headers


def test_etag_weakened_and_vary_merged() -> None:
    with serve(make_app()) as srv:
        response = get(srv.url + "/etag")
        assert response.headers["content-encoding"] == "gzip"
        assert response.headers["etag"] == 'W/"v1"'
        assert response.headers["vary"] == "Cookie, Accept-Encoding"


def stream_first_chunk(url: str, released: threading.Event) -> tuple[bytes, httpx.Response, bytes]:
    """Read until the first chunk arrives (the app holds the second until `released`)."""
    with (
        httpx.Client(timeout=10) as client,
        client.stream("GET", url, headers={"accept-encoding": "gzip"}) as response,
    ):
        chunks = response.iter_raw()
        first = next(chunks)
        released.set()
        rest = b"".join(chunks)
    return first, response, rest


def test_event_stream_is_never_compressed_and_each_event_arrives_at_once() -> None:
    released = threading.Event()
    with serve(make_app(released)) as srv:
        start = time.monotonic()
        first, response, rest = stream_first_chunk(srv.url + "/sse", released)
        assert time.monotonic() - start < 4
        assert "content-encoding" not in response.headers
        assert first == b"data: first event\n\n"
        assert rest == b"data: released\n\n"


def test_streamed_gzip_flushes_every_chunk() -> None:
    released = threading.Event()
    with serve(make_app(released)) as srv:
        first, response, rest = stream_first_chunk(srv.url + "/stream", released)
        assert response.headers["content-encoding"] == "gzip"
        assert "content-length" not in response.headers
        decoder = zlib.decompressobj(31)
        assert decoder.decompress(first) == TEXT  # the whole first chunk, before the second was sent
        assert decoder.decompress(rest) == b"data: released\n\n"
        assert decoder.eof


def test_accept_encoding_negotiation() -> None:
    available = ("gzip", "br")
    assert choose_coding("gzip, deflate", available) == "gzip"
    assert choose_coding("gzip;q=1.0, br;q=0.5", available) == "gzip"
    assert choose_coding("br, gzip", available) == "br"
    assert choose_coding("*", available) == "br"
    assert choose_coding("gzip;q=0", available) is None
    assert choose_coding("identity", available) is None
    assert choose_coding("br;q=bogus, gzip", available) == "gzip"
    assert compressible("application/vnd.github+json")
    assert not compressible("text/event-stream; charset=utf-8")
    assert not compressible("video/mp4")


def test_compression_can_be_switched_off() -> None:
    with serve(make_app(), compression=False) as srv:
        response = get(srv.url + "/")
        assert "content-encoding" not in response.headers
        assert "vary" not in response.headers
