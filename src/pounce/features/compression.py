"""Response compression negotiated by `Accept-Encoding`.

gzip always; brotli (`br`) when the `brotli` package is importable and zstd when
`zstandard` is. The client's q-values pick the coding; on a tie the server prefers
br, then zstd, then gzip.

Never compressed: `text/event-stream` (SSE events must not wait behind a compression
window), responses that already carry a `Content-Encoding`, bodies smaller than
`compression_min_size`, 1xx/204/304 responses, HEAD requests, `Cache-Control:
no-transform`, and content types that do not shrink (images, video, archives…).
Compressible responses get `Vary: Accept-Encoding` whether or not this client accepted a
coding, so caches keep the variants apart.

A streamed body is compressed chunk by chunk, each chunk flushed (a sync flush) and sent
at once, so a client sees every chunk as soon as the app sends it.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable

from pounce.asgi import ASGIApp, Message, Receive, Scope, Send

_COMPRESSIBLE_PREFIXES = ("text/",)
_COMPRESSIBLE_TYPES = frozenset(
    {
        "application/json", "application/javascript", "application/xml", "application/xhtml+xml",
        "application/rss+xml", "application/atom+xml", "application/ld+json", "application/manifest+json",
        "application/problem+json", "application/graphql-response+json", "application/wasm",
        "application/x-javascript", "application/x-ndjson", "application/geo+json", "image/svg+xml",
        "font/ttf", "font/otf", "application/vnd.api+json",
    }
)  # fmt: skip
_NEVER = frozenset({"text/event-stream"})


class Encoder:
    """One response's compressor: `chunk(data)` returns bytes ready to send now."""

    def __init__(
        self, compress: Callable[[bytes], bytes], flush: Callable[[], bytes], finish: Callable[[], bytes]
    ):
        self.compress = compress
        self.flush = flush
        self.finish = finish

    def chunk(self, data: bytes, last: bool) -> bytes:
        out = self.compress(data) if data else b""
        return out + (self.finish() if last else self.flush())


def _gzip(level: int) -> Encoder:
    obj = zlib.compressobj(level, zlib.DEFLATED, 31)
    return Encoder(obj.compress, lambda: obj.flush(zlib.Z_SYNC_FLUSH), obj.flush)


def _available() -> dict[str, Callable[[int], Encoder]]:
    codings: dict[str, Callable[[int], Encoder]] = {"gzip": _gzip}
    try:
        import brotli

        def _br(level: int) -> Encoder:
            obj = brotli.Compressor(quality=min(11, max(0, level - 2)))
            return Encoder(obj.process, obj.flush, obj.finish)

        codings["br"] = _br
    except ImportError:
        pass
    try:
        import zstandard

        def _zstd(level: int) -> Encoder:
            obj = zstandard.ZstdCompressor(level=level).compressobj()
            return Encoder(
                obj.compress,
                lambda: obj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK),
                lambda: obj.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH),
            )

        codings["zstd"] = _zstd
    except ImportError:
        pass
    return codings


_PREFERENCE = ("br", "zstd", "gzip")


def choose_coding(accept_encoding: str, available: tuple[str, ...]) -> str | None:
    """The coding to use for an `Accept-Encoding` value, or None for identity."""
    weights: dict[str, float] = {}
    for part in accept_encoding.split(","):
        name, _, params = part.strip().partition(";")
        name = name.strip().lower()
        if not name:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        weights[name] = q
    best: str | None = None
    best_q = 0.0
    for coding in _PREFERENCE:
        if coding not in available:
            continue
        q = weights.get(coding, weights.get("*", 0.0))
        if q > best_q:
            best, best_q = coding, q
    return best


def compressible(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    if media in _NEVER:
        return False
    return (
        media.startswith(_COMPRESSIBLE_PREFIXES)
        or media in _COMPRESSIBLE_TYPES
        or media.endswith(("+json", "+xml"))
    )


class Compression:
    def __init__(self, app: ASGIApp, *, min_size: int = 500, level: int = 6) -> None:
        self.app = app
        self.min_size = min_size
        self.level = level
        self.codings = _available()
        self.available = tuple(self.codings)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """The app's own awaitable, with `send` wrapped when there is a coding to negotiate.

        Not a coroutine itself, so a request passing through adds no frame of its own."""
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        accept = ""
        for name, value in scope["headers"]:
            if name == b"accept-encoding":
                accept = (accept + "," if accept else "") + value.decode("latin-1")
        if not accept:
            # Nothing to negotiate: the identity body suits every cache and client, and
            # only compressed variants need `Vary` to keep caches from mixing them up.
            return self.app(scope, receive, send)
        coding = choose_coding(accept, self.available)
        responder = _Responder(self, send, coding, head=scope["method"] == "HEAD")
        return self.app(scope, receive, responder.send)


class _Responder:
    """Decides on `http.response.start` (holding it for the first body chunk if needed)."""

    def __init__(self, owner: Compression, send: Send, coding: str | None, head: bool) -> None:
        self.owner = owner
        self.inner = send
        self.coding = coding
        self.head = head
        self.start: Message | None = None
        self.encoder: Encoder | None = None
        self.passthrough = False

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self._decide(message)
            return
        if kind != "http.response.body" or self.passthrough:
            await self._flush_start()
            await self.inner(message)
            return
        body = bytes(message.get("body", b""))
        more = bool(message.get("more_body", False))
        if self.start is not None and self.encoder is None:
            # the size was unknown: the first chunk tells us whether a small body is coming
            if not more and len(body) < self.owner.min_size:
                self.passthrough = True
                await self._flush_start()
                await self.inner(message)
                return
            self._begin()
        assert self.encoder is not None
        data = self.encoder.chunk(body, last=not more)
        if self.start is not None:
            if not more:  # the whole body in one message: give it an exact length
                self.start["headers"].append((b"content-length", str(len(data)).encode()))
            await self._flush_start()
        await self.inner({"type": "http.response.body", "body": data, "more_body": more})

    def _decide(self, message: Message) -> None:
        status = int(message["status"])
        headers = [(bytes(k).lower(), bytes(v)) for k, v in message.get("headers", ())]
        content_type = ""
        length: int | None = None
        eligible = not (status < 200 or status in (204, 304) or self.head)
        for name, value in headers:
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"content-encoding":
                eligible = False
            elif name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    eligible = False
            elif name == b"cache-control" and b"no-transform" in value.lower():
                eligible = False
        eligible = eligible and compressible(content_type)
        new = dict(message)
        new["headers"] = headers
        if eligible:
            _add_vary(headers)
        if not eligible or self.coding is None or (length is not None and length < self.owner.min_size):
            self.passthrough = True
        self.start = new

    def _begin(self) -> None:
        assert self.start is not None and self.coding is not None
        headers: list[tuple[bytes, bytes]] = []
        for name, value in self.start["headers"]:
            if name == b"content-length":
                continue
            if name == b"etag" and not value.startswith(b"W/"):
                value = b"W/" + value  # the compressed bytes differ from the identity ones
            headers.append((name, value))
        headers.append((b"content-encoding", self.coding.encode()))
        self.start["headers"] = headers
        self.encoder = self.owner.codings[self.coding](self.owner.level)

    async def _flush_start(self) -> None:
        if self.start is not None:
            start, self.start = self.start, None
            await self.inner(start)


def _add_vary(headers: list[tuple[bytes, bytes]]) -> None:
    for i, (name, value) in enumerate(headers):
        if name == b"vary":
            tokens = [t.strip().lower() for t in value.split(b",")]
            if b"accept-encoding" not in tokens and b"*" not in tokens:
                headers[i] = (name, value + b", Accept-Encoding")
            return
    headers.append((b"vary", b"Accept-Encoding"))
