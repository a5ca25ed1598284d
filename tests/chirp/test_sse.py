"""Server-Sent Events over a real pounce server: framing, heartbeats, disconnects, no buffering."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from chirp import App, Request, Response
from chirp.realtime import EventStream, SSEEvent
from chirp.realtime.sse import comment
from helpers.server import serve
from helpers.sse import events, frames

# -- framing ----------------------------------------------------------------------------------


def test_event_fields_in_order_and_multiline_data_split() -> None:
    event = SSEEvent("one\ntwo\r\nthree\rfour", event="update", id="7", retry=2500)
    assert event.encode() == (
        b"event: update\nid: 7\nretry: 2500\ndata: one\ndata: two\ndata: three\ndata: four\n\n"
    )


def test_data_forms() -> None:
    assert SSEEvent("plain").encode() == b"data: plain\n\n"
    assert SSEEvent("").encode() == b"data: \n\n"
    assert SSEEvent({"a": [1, "é"]}).encode() == 'data: {"a":[1,"é"]}\n\n'.encode()
    assert SSEEvent([1, 2]).encode() == b"data: [1,2]\n\n"
    assert comment() == b":\n\n" and comment("hi") == b": hi\n\n"


@pytest.mark.parametrize("field", ["event", "id"])
@pytest.mark.parametrize(("bad", "name"), [("a\nb", "LF"), ("a\rb", "CR"), ("a\0b", "NUL"), ("x\r\n", "CR")])
def test_line_breaks_and_nul_refused_in_event_and_id(field: str, bad: str, name: str) -> None:
    with pytest.raises(ValueError, match=rf"SSEEvent\.{field}=.* contains {name}"):
        SSEEvent("data", **{field: bad})


def test_invalid_fields_are_refused() -> None:
    with pytest.raises(TypeError, match=r"SSEEvent.event must be a str"):
        SSEEvent("x", event=5)  # type: ignore[arg-type]
    for retry in (-1, True, 1.5):
        with pytest.raises(ValueError, match=r"retry"):
            SSEEvent("x", retry=retry)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"JSON-serialisable"):
        SSEEvent(object()).encode()
    with pytest.raises(ValueError, match=r"comment"):
        comment("two\nlines")


def test_event_stream_arguments_are_checked() -> None:
    async def gen() -> AsyncIterator[str]:
        yield "x"

    with pytest.raises(TypeError, match=r"async iterable"):
        EventStream(["not", "async"])  # type: ignore[arg-type]
    for heartbeat in (0, -1, math.nan, math.inf, "5"):
        with pytest.raises(ValueError, match=r"heartbeat"):
            EventStream(gen(), heartbeat=heartbeat)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"retry"):
        EventStream(gen(), retry=-5)
    assert EventStream(gen(), heartbeat=None).heartbeat is None


# -- over a real server -----------------------------------------------------------------------


def test_stream_headers_and_exact_bytes() -> None:
    app = App()

    @app.route("/events")
    async def stream() -> EventStream:
        async def gen() -> AsyncIterator[object]:
            yield "hello"
            yield {"n": 1}
            yield SSEEvent("a\nb", event="multi", id="42")

        return EventStream(gen(), retry=1000)

    with serve(app) as srv, httpx.Client(base_url=srv.url) as c:
        with c.stream("GET", "/events", headers={"accept-encoding": "gzip, br, zstd"}) as r:
            body = r.read()
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers["x-accel-buffering"] == "no"
        assert "content-encoding" not in r.headers and "content-length" not in r.headers
        assert r.headers["transfer-encoding"] == "chunked"
        assert body == (
            b'retry: 1000\n\ndata: hello\n\ndata: {"n":1}\n\nevent: multi\nid: 42\ndata: a\ndata: b\n\n'
        )
        head = c.head("/events")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-type"] == "text/event-stream; charset=utf-8"


def test_events_are_not_buffered() -> None:
    """Each event must reach the client before the next one is even produced."""
    received = [threading.Event() for _ in range(5)]
    app = App()

    @app.route("/gated")
    async def gated() -> EventStream:
        async def gen() -> AsyncIterator[str]:
            for i in range(5):
                yield f"event {i}"
                deadline = time.monotonic() + 5
                while not received[i].is_set():  # wait for the client to have it
                    if time.monotonic() > deadline:
                        yield "TIMEOUT: the previous event was buffered"
                        return
                    await anyio.sleep(0.005)

        return EventStream(gen())

    with (
        serve(app) as srv,
        httpx.Client(base_url=srv.url, timeout=10) as c,
        c.stream("GET", "/gated", headers={"accept-encoding": "gzip"}) as r,
    ):
        seen = []
        for frame in events(r):
            assert frame.data is not None and not frame.data.startswith("TIMEOUT"), frame.data
            seen.append(frame.data)
            received[len(seen) - 1].set()
    assert seen == [f"event {i}" for i in range(5)]


def test_heartbeat_comments_keep_an_idle_stream_alive() -> None:
    app = App()
    heard = threading.Event()  # the client has read three heartbeats: the source may go on

    @app.route("/slow")
    async def slow() -> EventStream:
        async def gen() -> AsyncIterator[str]:
            yield "first"
            while not heard.is_set():  # idle, however long a loaded machine takes to beat
                await anyio.sleep(0.02)
            yield "second"

        return EventStream(gen(), heartbeat=0.2)

    got = []
    with (
        serve(app) as srv,
        httpx.Client(base_url=srv.url, timeout=10) as c,
        c.stream("GET", "/slow") as r,
    ):
        for frame in frames(r):
            got.append(frame)
            if sum(f.is_comment for f in got) >= 3:
                heard.set()
    kinds = ["comment" if f.is_comment else f.data for f in got]
    assert kinds[0] == "first" and kinds[-1] == "second"
    heartbeats = [f for f in got if f.is_comment]
    assert len(heartbeats) >= 3, kinds
    assert all(f.raw == ":" for f in heartbeats)


@pytest.mark.parametrize("busy", [False, True], ids=["idle-source", "busy-source"])
def test_client_disconnect_stops_the_source_and_runs_its_finally(busy: bool) -> None:
    """An idle source (blocked in an await) is stopped by the receive() watcher; a busy one
    also by the failing write. Either way its `finally` runs promptly."""
    cleaned = threading.Event()
    produced = []
    app = App()

    @app.route("/forever")
    async def forever() -> EventStream:
        async def gen() -> AsyncIterator[str]:
            try:
                yield "start"
                while True:
                    await anyio.sleep(0.001 if busy else 3600)
                    produced.append(1)
                    yield "tick"
            finally:
                cleaned.set()

        return EventStream(gen(), heartbeat=None)

    with serve(app) as srv:
        with httpx.Client(base_url=srv.url, timeout=10) as c, c.stream("GET", "/forever") as r:
            first = next(events(r))
            assert first.data == "start"
        assert cleaned.wait(5), "the generator's finally did not run after the client left"
        count = len(produced)
        time.sleep(0.2)
        assert len(produced) == count  # nothing is produced for nobody


def test_source_error_ends_the_stream_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    app = App()

    @app.route("/broken")
    async def broken() -> EventStream:
        async def gen() -> AsyncIterator[str]:
            yield "ok"
            raise RuntimeError("source blew up")

        return EventStream(gen())

    with caplog.at_level(logging.ERROR, "chirp.realtime"), serve(app) as srv:
        with httpx.Client(base_url=srv.url, timeout=10) as c, c.stream("GET", "/broken") as r:
            body = r.read()  # a complete chunked body, not a cut connection
        assert body == b"data: ok\n\n"
        assert httpx.get(srv.url + "/broken").status_code == 200  # the server keeps serving
    assert any("source failed" in rec.getMessage() and rec.exc_info for rec in caplog.records)


def test_unserialisable_item_ends_the_stream_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    app = App()

    @app.route("/bad")
    async def bad() -> EventStream:
        async def gen() -> AsyncIterator[object]:
            yield {"fine": True}
            yield {"account": object()}

        return EventStream(gen())

    with (
        caplog.at_level(logging.ERROR, "chirp.realtime"),
        serve(app) as srv,
        httpx.Client(base_url=srv.url, timeout=10) as c,
        c.stream("GET", "/bad") as r,
    ):
        assert r.read() == b'data: {"fine":true}\n\n'
    assert any("JSON-serialisable" in str(rec.exc_info[1]) for rec in caplog.records if rec.exc_info)


def test_draining_server_ends_open_streams() -> None:
    cleaned = threading.Event()
    app = App()

    @app.route("/long")
    async def long() -> EventStream:
        async def gen() -> AsyncIterator[str]:
            try:
                yield "open"
                await anyio.sleep(3600)
            finally:
                cleaned.set()

        return EventStream(gen(), heartbeat=None)

    with serve(app, shutdown_timeout=20) as srv, httpx.Client(base_url=srv.url, timeout=10) as c:
        with c.stream("GET", "/long") as r:
            it = events(r)
            assert next(it).data == "open"
            start = time.monotonic()
            srv.portal.start_task_soon(_shutdown, srv.server)
            assert list(it) == []  # the stream ends instead of holding the shutdown
        assert time.monotonic() - start < 5
        assert cleaned.wait(5)


async def _shutdown(server) -> None:  # type: ignore[no-untyped-def]
    server.shutdown()


def test_middleware_and_cookies_apply_to_event_streams() -> None:
    app = App()

    async def tag(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        response.headers["x-tag"] = "seen"
        response.set_cookie("k", "v")
        return response

    app.add_middleware(tag)

    @app.route("/events")
    async def stream() -> EventStream:
        async def gen() -> AsyncIterator[str]:
            yield "x"

        return EventStream(gen(), status=201, headers={"x-custom": "1"})

    with serve(app) as srv:
        r = httpx.get(srv.url + "/events")
    assert (r.status_code, r.text) == (201, "data: x\n\n")
    assert r.headers["x-tag"] == "seen" and r.headers["x-custom"] == "1"
    assert r.headers["set-cookie"].startswith("k=v")
