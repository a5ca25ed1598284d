"""Response types. Each one is an ASGI-sendable object with status, headers and body."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from chirp.datastructures import MutableHeaders, check_header
from chirp.json_values import dumps

if TYPE_CHECKING:
    from pounce.asgi import Message, Receive, Scope, Send


def http_date(timestamp: float) -> str:
    """An IMF-fixdate (RFC 9110), e.g. `Wed, 25 Nov 2026 21:41:29 GMT`."""
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(timestamp))


@functools.lru_cache(maxsize=64)
def _content_type(media_type: str) -> tuple[bytes, bytes]:
    """The `content-type` header of a media type, checked and encoded once: most responses
    share a handful of them."""
    check_header("content-type", media_type)
    return (b"content-type", media_type.encode("latin-1"))


BODYLESS_STATUSES = frozenset({204, 304})

_LENGTH_FIELDS: dict[int, tuple[bytes, bytes]] = {}  # body length -> its `content-length` field
_LENGTH_FIELDS_CACHED = 4096  # pages up to 4 KiB: most of them, in at most ~0.5 MB


def _length_field(length: int) -> tuple[bytes, bytes]:
    """The `content-length` field of a body of `length` bytes. Formatting the number is a good
    part of a small page's own cost, so the fields of the common short lengths are kept; use as
    `_LENGTH_FIELDS.get(n) or _length_field(n)`."""
    field = (b"content-length", b"%d" % length)
    if length <= _LENGTH_FIELDS_CACHED:
        _LENGTH_FIELDS[length] = field
    return field


class Response:
    """A complete response body held in memory."""

    media_type: str | None = "text/html; charset=utf-8"
    _headers: MutableHeaders | None = None

    def __init__(
        self,
        body: str | bytes = b"",
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
    ) -> None:
        self.status = status
        self.body = body.encode() if isinstance(body, str) else bytes(body)
        if media_type is not None:
            self.media_type = media_type
        if headers:
            for key, value in headers.items():
                self.headers[key] = value

    @property
    def headers(self) -> MutableHeaders:
        """The headers set on this response; built on first use, as most responses set none."""
        headers = self._headers
        if headers is None:
            headers = self._headers = MutableHeaders([])
        return headers

    def set_cookie(
        self,
        key: str,
        value: str = "",
        *,
        max_age: int | None = None,
        path: str = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = True,
        samesite: Literal["lax", "strict", "none"] | None = "lax",
    ) -> None:
        from http.cookies import SimpleCookie  # loaded by the first cookie, not by importing the app

        cookie: SimpleCookie = SimpleCookie()
        cookie[key] = value
        morsel = cookie[key]
        if max_age is not None:
            morsel["max-age"] = max_age
            morsel["expires"] = http_date(time.time() + max_age)
        morsel["path"] = path
        if domain:
            morsel["domain"] = domain
        if secure:
            morsel["secure"] = True
        if httponly:
            morsel["httponly"] = True
        if samesite:
            morsel["samesite"] = samesite.capitalize()
        self.headers.append("set-cookie", morsel.OutputString())

    def delete_cookie(self, key: str, path: str = "/", domain: str | None = None) -> None:
        self.set_cookie(key, "", max_age=0, path=path, domain=domain)

    def _set_content_type(self) -> list[tuple[bytes, bytes]]:
        """The raw headers, with `content-type` from `media_type` unless one was set."""
        raw = self.headers.raw
        if self.media_type and not (raw and any(name == b"content-type" for name, _ in raw)):
            raw.append(_content_type(self.media_type))
        return raw

    def _finalize_headers(self) -> list[tuple[bytes, bytes]]:
        if self._headers is None or not self._headers.raw:  # the common case: nothing to search
            raw = [_content_type(self.media_type)] if self.media_type else []
        else:
            raw = self._set_content_type()
            raw[:] = [item for item in raw if item[0] != b"content-length"]  # replaced by the body's
        if self.status not in BODYLESS_STATUSES:  # 204 and 304 carry neither a body nor its length
            length = len(self.body)
            raw.append(_LENGTH_FIELDS.get(length) or _length_field(length))
        return raw

    def messages(self, scope: Scope) -> tuple[Message, Message]:
        """The two ASGI messages of a body held in memory: the start and the whole body."""
        status = self.status
        start = {"type": "http.response.start", "status": status, "headers": self._finalize_headers()}
        bodyless = status in BODYLESS_STATUSES or scope.get("method") == "HEAD"
        return start, {"type": "http.response.body", "body": b"" if bodyless else self.body}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        for message in self.messages(scope):
            await send(message)


class PlainTextResponse(Response):
    media_type = "text/plain; charset=utf-8"


class HTMLResponse(Response):
    media_type = "text/html; charset=utf-8"


_HTML_CONTENT_TYPE = _content_type(HTMLResponse.media_type)


def html_messages(text: str, scope: Scope) -> tuple[Message, Message]:
    """`HTMLResponse(text).messages(scope)`, built without the response: what a handler's str
    sends when no middleware would see the response (the object and its negotiation were about
    a quarter of chirp's own time for a request)."""
    body = text.encode()
    length = len(body)
    headers = [_HTML_CONTENT_TYPE, _LENGTH_FIELDS.get(length) or _length_field(length)]
    start = {"type": "http.response.start", "status": 200, "headers": headers}
    return start, {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}


class JSONResponse(Response):
    media_type = "application/json"

    def __init__(self, content: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        body = dumps(content).encode()
        super().__init__(body, status, headers)


class Redirect(Response):
    media_type = None

    def __init__(self, url: str, status: int = 303, headers: Mapping[str, str] | None = None) -> None:
        check_header("location", url)
        super().__init__(b"", status, headers)
        self.headers["location"] = url


class StreamingResponse(Response):
    """A body produced piece by piece from a (sync or async) iterable of str/bytes."""

    def __init__(
        self,
        content: AsyncIterable[str | bytes] | Iterable[str | bytes],
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = "application/octet-stream",
    ) -> None:
        super().__init__(b"", status, headers, media_type)
        self.content = content

    def _finalize_headers(self) -> list[tuple[bytes, bytes]]:
        return self._set_content_type()

    async def _chunks(self) -> AsyncIterator[bytes]:
        import anyio  # file and stream bodies only

        if isinstance(self.content, AsyncIterable):
            async for chunk in self.content:
                yield chunk.encode() if isinstance(chunk, str) else chunk
        else:
            iterator = iter(self.content)
            done = object()

            def step() -> object:
                return next(iterator, done)

            while (item := await anyio.to_thread.run_sync(step)) is not done:
                yield item.encode() if isinstance(item, str) else bytes(item)  # type: ignore[call-overload]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        import anyio  # file and stream bodies only

        await send(
            {"type": "http.response.start", "status": self.status, "headers": self._finalize_headers()}
        )
        if scope.get("method") != "HEAD":
            async with anyio.create_task_group() as tg:

                async def watch_disconnect() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    tg.cancel_scope.cancel()

                tg.start_soon(watch_disconnect)
                async for chunk in self._chunks():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                tg.cancel_scope.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class FileResponse(Response):
    """Send a file from disk in chunks, with its content type and length."""

    chunk_size = 64 * 1024
    # What describes the file (and how long to cache it); a 404 for a missing file keeps
    # every other header the app gave the response: security headers, cookies, Vary.
    file_headers = frozenset(
        {
            b"cache-control",
            b"content-disposition",
            b"content-length",
            b"content-type",
            b"etag",
            b"last-modified",
        }
    )

    def __init__(
        self,
        path: str | os.PathLike[str],
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        filename: str | None = None,
    ) -> None:
        import mimetypes  # file responses only

        self.path = os.fspath(path)
        guessed = media_type or mimetypes.guess_type(filename or self.path)[0] or "application/octet-stream"
        super().__init__(b"", status, headers, guessed)
        if filename:
            self.headers["content-disposition"] = f'attachment; filename="{filename}"'

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        import anyio  # file and stream bodies only

        try:
            stat = await anyio.to_thread.run_sync(os.stat, self.path)
        except FileNotFoundError:
            missing = PlainTextResponse("404 Not Found\n", 404)
            missing.headers.raw.extend(item for item in self.headers.raw if item[0] not in self.file_headers)
            await missing(scope, receive, send)
            return
        self._set_content_type()
        self.headers["content-length"] = str(stat.st_size)
        self.headers["last-modified"] = http_date(stat.st_mtime)
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers.raw})
        if scope.get("method") == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        async with await anyio.open_file(self.path, "rb") as f:
            while chunk := await f.read(self.chunk_size):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
