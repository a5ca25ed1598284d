"""A chirp App served by a real pounce, driven by httpx."""

from __future__ import annotations

import re
import threading

import httpx
import pytest

from chirp import (
    App,
    AppConfig,
    FileResponse,
    HTMLResponse,
    HTTPError,
    JSONResponse,
    Redirect,
    Request,
    Response,
    StreamingResponse,
)
from chirp.app import CallNext
from helpers.asgi_apps import plain_asgi
from helpers.server import raw_request, serve


def build_app(**config: object) -> App:
    app = App(AppConfig(**config))  # type: ignore[arg-type]

    @app.route("/")
    def index() -> str:
        return "<p>home</p>"

    @app.route("/json")
    async def as_json() -> dict[str, int]:
        return {"a": 1}

    @app.route("/list")
    def as_list() -> list[int]:
        return [1, 2]

    @app.route("/bytes")
    def as_bytes() -> bytes:
        return b"\x00\x01"

    @app.route("/tuple")
    def as_tuple() -> tuple[str, int, dict[str, str]]:
        return "made", 201, {"x-extra": "1"}

    @app.route("/items/{item_id:int}", methods=("GET", "DELETE"), name="item")
    async def item(request: Request, item_id: int) -> dict[str, object]:
        return {"id": item_id, "method": request.method, "q": request.query.get("q")}

    @app.route("/echo", methods=("POST",))
    async def echo(request: Request) -> Response:
        return Response(await request.body(), media_type="text/plain")

    @app.route("/form", methods=("POST",))
    async def form(request: Request) -> dict[str, str]:
        fields = await request.form()
        return {k: v if isinstance(v, str) else f"{v.filename}: {v.data.decode()}" for k, v in fields.items()}

    @app.route("/data", methods=("POST",))
    async def data(request: Request) -> object:
        return await request.json()

    @app.route("/thread")
    def which_thread() -> str:
        return threading.current_thread().name

    @app.route("/teapot")
    def teapot() -> str:
        raise HTTPError(418, "short and stout")

    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("secret internals")

    @app.route("/go")
    def go() -> Redirect:
        return Redirect(app.url_for("item", item_id=7))

    @app.route("/stream")
    def stream() -> StreamingResponse:
        return StreamingResponse(iter(["a", "b", "c"]), media_type="text/plain")

    @app.route("/cookie")
    def cookie() -> JSONResponse:
        response = JSONResponse({"ok": True})
        response.set_cookie("pref", "dark", max_age=60)
        return response

    @app.route("/file")
    def file() -> FileResponse:
        return FileResponse(__file__)

    return app


@pytest.fixture(scope="module")
def client() -> httpx.Client:
    with serve(build_app()) as srv, httpx.Client(base_url=srv.url) as c:
        yield c


def test_return_type_negotiation(client: httpx.Client) -> None:
    r = client.get("/")
    assert r.headers["content-type"] == "text/html; charset=utf-8" and r.text == "<p>home</p>"
    assert client.get("/json").json() == {"a": 1}
    assert client.get("/json").headers["content-type"] == "application/json"
    assert client.get("/list").json() == [1, 2]
    r = client.get("/bytes")
    assert r.headers["content-type"] == "application/octet-stream" and r.content == b"\x00\x01"
    r = client.get("/tuple")
    assert r.status_code == 201 and r.headers["x-extra"] == "1" and r.text == "made"


def test_typed_params_query_and_methods(client: httpx.Client) -> None:
    assert client.get("/items/5?q=z").json() == {"id": 5, "method": "GET", "q": "z"}
    assert client.delete("/items/6").json()["method"] == "DELETE"


def test_404_and_405_with_allow(client: httpx.Client) -> None:
    assert client.get("/nope").status_code == 404
    assert client.get("/items/abc").status_code == 404
    r = client.post("/items/1")
    assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET, HEAD"


def test_head_is_automatic_and_bodyless(client: httpx.Client) -> None:
    r = client.head("/json")
    assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == "7"


def test_request_body_readers(client: httpx.Client) -> None:
    assert client.post("/echo", content=b"raw bytes").text == "raw bytes"
    assert client.post("/form", data={"a": "1", "b": "x y"}).json() == {"a": "1", "b": "x y"}
    assert client.post("/form", files={"f": ("f.txt", b"file text")}, data={"n": "v"}).json() == {
        "f": "f.txt: file text",
        "n": "v",
    }
    assert client.post("/data", json={"k": [1]}).json() == {"k": [1]}
    r = client.post("/data", content=b"{not json")
    assert r.status_code == 400 and "not valid JSON" in r.text


def test_sync_handlers_run_off_the_event_loop(client: httpx.Client) -> None:
    assert client.get("/thread").text != threading.main_thread().name


def test_http_error_and_production_error_page(client: httpx.Client) -> None:
    r = client.get("/teapot")
    assert r.status_code == 418 and "short and stout" in r.text
    r = client.get("/boom")
    assert r.status_code == 500 and "secret internals" not in r.text and "Traceback" not in r.text


def test_debug_error_page_shows_traceback() -> None:
    with serve(build_app(debug=True)) as srv:
        r = httpx.get(srv.url + "/boom")
    assert r.status_code == 500 and "Traceback" in r.text and "secret internals" in r.text
    assert "<pre>" in r.text


def test_redirect_url_for_streaming_cookies_files(client: httpx.Client) -> None:
    r = client.get("/go")
    assert r.status_code == 303 and r.headers["location"] == "/items/7"
    assert client.get("/stream").text == "abc"
    r = client.get("/cookie")
    assert "pref=dark" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]
    assert "Max-Age=60" in r.headers["set-cookie"]
    r = client.get("/file")
    assert r.headers["content-type"] == "text/x-python" and "def build_app" in r.text


def test_body_limit_is_413() -> None:
    app = App(AppConfig(max_request_body_size=10))

    @app.route("/up", methods=("POST",))
    async def up(request: Request) -> str:
        return str(len(await request.body()))

    with serve(app) as srv:
        assert httpx.post(srv.url + "/up", content=b"x" * 5).text == "5"
        assert httpx.post(srv.url + "/up", content=b"x" * 11).status_code == 413

        def gen():  # type: ignore[no-untyped-def]
            yield b"x" * 8
            yield b"x" * 8

        assert httpx.post(srv.url + "/up", content=gen()).status_code == 413


def test_middleware_order_outermost_first() -> None:
    app = App()
    seen: list[str] = []

    async def outer(request: Request, call_next):  # type: ignore[no-untyped-def]
        seen.append("outer-in")
        response = await call_next(request)
        response.headers["x-outer"] = "1"
        seen.append("outer-out")
        return response

    class Inner:
        async def __call__(self, request: Request, call_next):  # type: ignore[no-untyped-def]
            seen.append("inner-in")
            response = await call_next(request)
            seen.append("inner-out")
            return response

    app.add_middleware(outer)
    app.add_middleware(Inner())
    assert app.middleware[0].site is not None and app.middleware[0].site.file == __file__

    @app.route("/")
    def index() -> str:
        seen.append("handler")
        return "x"

    with serve(app) as srv:
        assert httpx.get(srv.url + "/").headers["x-outer"] == "1"
    assert seen == ["outer-in", "inner-in", "handler", "inner-out", "outer-out"]


def test_registration_after_freeze_raises() -> None:
    app = App()
    app.freeze()
    with pytest.raises(RuntimeError, match="frozen"):
        app.route("/late")(lambda: "x")
    with pytest.raises(RuntimeError, match="frozen"):
        app.add_middleware(lambda r, n: n(r))  # type: ignore[arg-type,return-value]
    with pytest.raises(RuntimeError, match="frozen"):
        app.on_startup(lambda: None)


def test_header_injection_from_user_data_is_refused() -> None:
    app = App()

    @app.route("/hdr")
    def hdr(request: Request) -> Response:
        response = Response("x")
        response.headers["x-name"] = request.query.get("v", "")
        return response

    with serve(app) as srv:
        r = httpx.get(srv.url + "/hdr", params={"v": "a\r\nset-cookie: evil=1"})
    assert r.status_code == 500 and "evil" not in r.headers.get("set-cookie", "")


def test_lifecycle_hooks_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = App()
    events: list[str] = []

    @app.on_startup
    async def start() -> None:
        events.append("startup")

    @app.on_shutdown
    def stop() -> None:
        events.append("shutdown")

    with serve(app, lifespan="on") as srv:
        assert httpx.get(srv.url + "/ready").status_code == 200
    assert events == ["startup", "shutdown"]


def test_response_headers_frame_the_body_they_carry() -> None:
    app = App(AppConfig())

    @app.route("/stale-length")
    def stale_length() -> Response:
        return Response("four", headers={"Content-Length": "99", "X-Kept": "yes"}, media_type="text/plain")

    @app.route("/own-type")
    def own_type() -> Response:
        return Response("{}", headers={"content-type": "application/vnd.x+json"})

    with serve(app) as srv, httpx.Client(base_url=srv.url) as client:
        r = client.get("/stale-length")
        assert r.text == "four" and r.headers["content-length"] == "4" and r.headers["x-kept"] == "yes"
        assert r.headers.get_list("content-length") == ["4"]  # replaced, not repeated
        r = client.get("/own-type")
        assert r.headers.get_list("content-type") == ["application/vnd.x+json"]


def test_a_media_type_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match="forbidden character"):
        Response("x", media_type="text/plain\r\nset-cookie: a=b")._finalize_headers()


def test_a_page_is_sent_byte_for_byte_the_same_with_or_without_middleware() -> None:
    """Without middleware a handler's str is sent without building its response object."""
    plain, wrapped = App(AppConfig()), App(AppConfig())

    async def passthrough(request: Request, call_next: CallNext) -> Response:
        return await call_next(request)

    wrapped.add_middleware(passthrough)
    for app in (plain, wrapped):

        @app.route("/")
        def page() -> str:
            return "<p>héllo</p>"

        @app.route("/object")
        def as_object() -> Response:
            return HTMLResponse("<p>héllo</p>")

    def head_and_body(port: int, method: str, path: str) -> bytes:
        request = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        answer = raw_request(port, request)
        return re.sub(rb"(?im)^date: .*\r\n", b"", answer)  # the only header that changes

    with serve(plain) as one, serve(wrapped) as other:
        for method in ("GET", "HEAD"):
            sent = head_and_body(one.port, method, "/")
            assert (
                sent == head_and_body(one.port, method, "/object") == head_and_body(other.port, method, "/")
            )
            assert b"content-type: text/html; charset=utf-8\r\ncontent-length: 13\r\n" in sent.lower()
        assert sent.endswith(b"\r\n\r\n")  # HEAD: the length of the page, not the page
        assert head_and_body(one.port, "GET", "/").endswith(b"\r\n\r\n<p>h\xc3\xa9llo</p>")


def test_pounce_serves_an_app_through_its_entry_as_any_server_through_call() -> None:
    """pounce calls the App's `pounce_asgi()` entry (a request runs one coroutine fewer); any
    other server calls `__call__`. Both answer every kind of request byte for byte alike."""
    from pounce.wrapped import asgi_entry

    direct, plain = build_app(), build_app()
    wrapper = plain_asgi(plain)  # any other server's view: an ASGI callable with no pounce hook
    assert asgi_entry(direct) == direct._load_runtime().__call__ and asgi_entry(wrapper) is wrapper

    def answer(port: int, method: str, path: str, body: bytes = b"") -> bytes:
        request = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body  # fmt: skip
        return re.sub(rb"(?im)^date: .*\r\n", b"", raw_request(port, request))

    requests = [("GET", "/"), ("HEAD", "/"), ("GET", "/json"), ("GET", "/items/3?q=x"), ("DELETE", "/items/3"),
                ("GET", "/nowhere"), ("PUT", "/items/3"), ("GET", "/teapot"), ("GET", "/boom"), ("GET", "/go"),
                ("GET", "/stream"), ("GET", "/cookie")]  # fmt: skip
    with serve(direct) as one, serve(wrapper) as other:
        for method, path in requests:
            assert answer(one.port, method, path) == answer(other.port, method, path), (method, path)
        assert answer(one.port, "POST", "/echo", b"hi") == answer(other.port, "POST", "/echo", b"hi")


def test_content_length_is_right_for_every_size_and_its_kept_fields_stay_bounded() -> None:
    """The `content-length` fields of short bodies are kept and reused; a page or a `Response`
    of any size still carries its own length, and the kept fields never pass their bound."""
    from chirp import responses

    sizes = (0, 1, 13, responses._LENGTH_FIELDS_CACHED, responses._LENGTH_FIELDS_CACHED + 1, 70_000)
    app = App(AppConfig())

    @app.route("/page/{size:int}")
    def page(size: int) -> str:
        return "x" * size

    @app.route("/object/{size:int}")
    def as_object(size: int) -> Response:
        return Response(b"y" * size, media_type="text/plain")

    identity = {"accept-encoding": "identity"}  # the length the app sent, not a compressed one
    with serve(app) as srv, httpx.Client(base_url=srv.url, headers=identity) as client:
        for _ in range(2):  # the second round is served from the kept fields
            for kind in ("page", "object"):
                for size in sizes:
                    response = client.get(f"/{kind}/{size}")
                    assert response.headers["content-length"] == str(size) == str(len(response.content))
    for size in range(20_000):
        responses._length_field(size)
    assert len(responses._LENGTH_FIELDS) == responses._LENGTH_FIELDS_CACHED + 1  # 0 to the bound
    assert all(field == (b"content-length", b"%d" % n) for n, field in responses._LENGTH_FIELDS.items())
