"""`Request` on its own: cookies, charsets and reading the body once."""

from __future__ import annotations

import anyio
import pytest

from chirp import App, AppConfig, Request
from chirp.datastructures import UploadFile
from chirp.request import ClientDisconnected
from chirp.testing import TestClient


def request(headers: list[tuple[bytes, bytes]]) -> Request:
    scope = {"type": "http", "method": "GET", "path": "/", "headers": headers, "query_string": b""}

    async def receive() -> dict[str, object]:
        raise AssertionError("not read")

    return Request(scope, receive)


@pytest.mark.parametrize(
    "header",
    [b"chirp_session=abc; flag", b"chirp_session=abc; [bad]=1", b'broken"=1; chirp_session=abc'],
)
def test_a_malformed_cookie_does_not_hide_the_others(header: bytes) -> None:
    """A stray cookie another app on the domain set must not cost the user their session."""
    assert request([(b"cookie", header)]).cookies["chirp_session"] == "abc"


def test_cookies_from_every_header_and_quoted_values() -> None:
    headers = [(b"cookie", b'a=1; b="x\\054y"'), (b"cookie", b"c=3; a=4")]
    assert request(headers).cookies == {"a": "4", "b": "x,y", "c": "3"}


def test_cookies_named_like_attributes_are_cookies() -> None:
    """`path`, `expires`, `max-age` or `secure` are attributes of Set-Cookie, not of a request's
    Cookie header: a cookie of that name must reach the app like any other."""
    header = b"path=/shop; expires=soon; Max-Age=3; secure=yes; session=s1; empty="
    assert request([(b"cookie", header)]).cookies == {
        "path": "/shop", "expires": "soon", "Max-Age": "3", "secure": "yes", "session": "s1", "empty": "",
    }  # fmt: skip


def test_a_binary_upload_arrives_byte_for_byte_with_its_name_and_type() -> None:
    # every byte value, CRLFs, NULs and a near-boundary: not UTF-8, not text
    payload = bytes(range(256)) * 4 + b"\r\n--X\r\n\x00\xff\r\n\r\n"
    app = App(AppConfig())

    @app.route("/upload", methods=["POST"])
    async def upload(request: Request) -> dict[str, object]:
        form = await request.form()
        photo, note = form["photo"], form["note"]
        assert isinstance(photo, UploadFile) and isinstance(note, str)
        return {
            "ok": photo.data == payload, "size": photo.size, "name": photo.filename,
            "type": photo.content_type, "note": note, "empty": repr(form["nothing"]),
        }  # fmt: skip

    # as a browser sends a form with a chosen file, a text field and a file input left empty
    body = b"".join([
        b'--XX\r\nContent-Disposition: form-data; name="photo"; filename="a b.png"\r\n',
        b"Content-Type: image/png\r\n\r\n" + payload + b"\r\n",
        b'--XX\r\nContent-Disposition: form-data; name="note"\r\n\r\n' + "héllo".encode() + b"\r\n",
        b'--XX\r\nContent-Disposition: form-data; name="nothing"; filename=""\r\n',
        b"Content-Type: application/octet-stream\r\n\r\n\r\n--XX--\r\n",
    ])  # fmt: skip
    with TestClient(app) as client:
        response = client.post(
            "/upload", content=body, headers={"content-type": "multipart/form-data; boundary=XX"}
        )
    assert response.json() == {
        "ok": True, "size": len(payload), "name": "a b.png", "type": "image/png", "note": "héllo",
        "empty": "UploadFile(filename='', content_type='application/octet-stream', size=0)",
    }  # fmt: skip


def test_url_keeps_the_path_percent_encoded() -> None:
    app = App(AppConfig())

    @app.route("/files/{name}")
    def file(request: Request, name: str) -> dict[str, str]:
        return {"name": name, "url": request.url}

    with TestClient(app) as client:
        response = client.get("/files/a%20b%C3%A9?x=1")
    assert response.json() == {"name": "a bé", "url": "https://testserver/files/a%20b%C3%A9?x=1"}
    bare = request([(b"host", b"example.com")])
    bare.scope["path"] = "/a b/é"  # a server that gives no raw_path
    assert bare.url == "http://example.com/a%20b/%C3%A9"


def text_app() -> App:
    app = App(AppConfig())

    @app.route("/text", methods=["POST"])
    async def text(request: Request) -> str:
        return await request.text()

    @app.route("/form", methods=["POST"])
    async def form(request: Request) -> dict[str, str]:
        return dict(await request.form())

    return app


def test_an_unknown_charset_is_read_as_utf8_not_a_500() -> None:
    """The client names the charset; one Python does not know must not make a 500."""
    multipart = (
        b'--XX\r\nContent-Disposition: form-data; name="a"\r\n'
        b"Content-Type: text/plain; charset=nonsense\r\n\r\n\xc3\xa9\r\n--XX--\r\n"
    )
    with TestClient(text_app()) as client:
        sent = "é".encode()
        text = client.post("/text", content=sent, headers={"content-type": "text/plain; charset=nonsense"})
        assert (text.status_code, text.text) == (200, "é")
        form = client.post(
            "/form",
            content=b"a=%C3%A9",
            headers={"content-type": "application/x-www-form-urlencoded; charset=x"},
        )
        assert (form.status_code, form.json()) == (200, {"a": "é"})
        parts = client.post(
            "/form", content=multipart, headers={"content-type": "multipart/form-data; boundary=XX"}
        )
        assert (parts.status_code, parts.json()) == (200, {"a": "é"})


def test_reading_the_body_after_streaming_it_raises_instead_of_hanging() -> None:
    """After `stream()`, the body is gone: a second read says so rather than waiting for a
    disconnect that a keep-alive client never sends."""
    messages = [
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"c"},
    ]

    async def receive() -> dict[str, object]:
        if messages:
            return messages.pop(0)
        await anyio.sleep_forever()
        raise AssertionError

    async def main() -> None:
        req = Request({"type": "http", "method": "POST", "path": "/", "headers": []}, receive)
        assert [chunk async for chunk in req.stream()] == [b"ab", b"c"]
        with anyio.fail_after(2):
            for read in (req.body, req.text, req.json, req.form):
                with pytest.raises(RuntimeError, match="stream"):
                    await read()
            with pytest.raises(RuntimeError, match="stream"):
                [chunk async for chunk in req.stream()]

    anyio.run(main)


def test_body_is_cached_and_stream_replays_it() -> None:
    messages = [{"type": "http.request", "body": b"abc"}]

    async def receive() -> dict[str, object]:
        if messages:
            return messages.pop(0)
        return {"type": "http.disconnect"}

    async def main() -> None:
        req = Request({"type": "http", "method": "POST", "path": "/", "headers": []}, receive)
        assert await req.body() == b"abc"
        assert await req.body() == b"abc"
        assert [chunk async for chunk in req.stream()] == [b"abc"]

    anyio.run(main)


def test_a_disconnect_while_reading_is_client_disconnected() -> None:
    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    async def main() -> None:
        req = Request({"type": "http", "method": "POST", "path": "/", "headers": []}, receive)
        with pytest.raises(ClientDisconnected):
            await req.body()

    anyio.run(main)
