"""`Request`: what a handler sees of one HTTP request."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from chirp.datastructures import Headers, MultiDict, QueryParams, UploadFile
from chirp.errors import HTTPError, PayloadTooLarge

if TYPE_CHECKING:
    from cryptography import x509

    from chirp.routing import Route
    from pounce.asgi import Receive, Scope


class ClientDisconnected(Exception):
    """The client went away while its request body was being read."""


class Request:
    """One HTTP request. Body readers are async and honour `max_request_body_size`."""

    __slots__ = (
        "_body",
        "_cookies",
        "_headers",
        "_query",
        "_receive",
        "_streamed",
        "csp_nonce",
        "max_body_size",
        "path_params",
        "route",
        "route_name",
        "scope",
        "session",
        "state",
    )

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        max_body_size: int = 16 * 1024 * 1024,
        route: Route | None = None,
        path_params: dict[str, Any] | None = None,
    ) -> None:
        self.scope = scope
        self._receive = receive
        self.max_body_size = max_body_size
        self.path_params: dict[str, Any] = path_params if path_params is not None else {}
        #: the matched route (routing runs before any middleware); None for a 404 or 405
        self.route: Route | None = route
        self.route_name: str | None = route.name if route is not None else None
        self.csp_nonce: str | None = None
        self.session: Any = None
        self.state: dict[str, Any] = {}
        self._body: bytes | None = None
        self._streamed = False  # stream() has started reading: the body cannot be read again
        self._headers: Headers | None = None
        self._query: QueryParams | None = None
        self._cookies: dict[str, str] | None = None

    @property
    def method(self) -> str:
        return str(self.scope["method"])

    @property
    def path(self) -> str:
        return str(self.scope["path"])

    @property
    def scheme(self) -> str:
        return str(self.scope.get("scheme", "http"))

    @property
    def is_secure(self) -> bool:
        return self.scheme in ("https", "wss")

    @property
    def client_cert(self) -> x509.Certificate | None:
        """The client's verified certificate under mutual TLS (`ssl_cert_reqs`), else None.

        The whole verified chain, as PEM, is `scope["extensions"]["tls"]["client_cert_chain"]`.
        """
        tls = self.scope.get("extensions", {}).get("tls") or {}
        chain = tls.get("client_cert_chain") or ()
        if not chain:
            return None
        from cryptography import x509

        return x509.load_pem_x509_certificate(chain[0].encode("ascii"))

    @property
    def headers(self) -> Headers:
        if self._headers is None:
            self._headers = Headers(self.scope["headers"])
        return self._headers

    @property
    def query(self) -> QueryParams:
        if self._query is None:
            self._query = QueryParams.parse(self.scope.get("query_string", b""))
        return self._query

    @property
    def cookies(self) -> dict[str, str]:
        """Every `name=value` pair of the Cookie headers (the last of a repeated name wins).

        Parsed pair by pair as RFC 6265 sends them: a malformed pair (another app's on the same
        domain) is skipped on its own instead of hiding the others, the session among them,
        and names such as `path` or `expires` are cookies here, not attributes.
        """
        if self._cookies is None:
            jar: dict[str, str] = {}
            for header in self.headers.getlist("cookie"):
                for pair in header.split(";"):
                    name, sep, value = pair.partition("=")
                    name, value = name.strip(), value.strip()
                    if sep and name and _COOKIE_NAME.fullmatch(name):
                        jar[name] = _unquote(value)
            self._cookies = jar
        return self._cookies

    @property
    def client(self) -> str | None:
        """The client IP: the socket peer, or the forwarded client when the peer is a trusted proxy."""
        client = self.scope.get("client")
        return str(client[0]) if client else None

    @property
    def host(self) -> str:
        return self.headers.get("host") or ""

    @property
    def url(self) -> str:
        """The URL as the client sent it: the path still percent-encoded (`/a%20b`), so it can
        be followed back; built from `path` when the server gives no `raw_path`."""
        raw = self.scope.get("raw_path")
        if raw:
            path = raw.decode("latin-1")
        else:
            from urllib.parse import quote

            path = quote(self.path, safe="/:@!$&'()*+,;=~")
        query = self.scope.get("query_string", b"")
        return f"{self.scheme}://{self.host}{path}" + (f"?{query.decode('latin-1')}" if query else "")

    async def stream(self) -> AsyncIterator[bytes]:
        """The body as it arrives, chunk by chunk; 413 once it exceeds the limit.

        The body is read once: after `stream()`, `body()` (and `text`, `json`, `form`) and a
        second `stream()` raise `RuntimeError`. After `body()`, `stream()` yields it whole.
        """
        if self._body is not None:
            yield self._body
            return
        if self._streamed:
            raise RuntimeError("the request body was already read by stream(); read it with body() instead")
        self._streamed = True
        received = 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected()
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_body_size:
                raise PayloadTooLarge(f"request body exceeds {self.max_body_size} bytes")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    async def body(self) -> bytes:
        if self._body is None:
            declared = self.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > self.max_body_size:
                raise PayloadTooLarge(f"request body exceeds {self.max_body_size} bytes")
            self._body = b"".join([chunk async for chunk in self.stream()])
        return self._body

    async def text(self) -> str:
        return (await self.body()).decode(self._charset(), errors="replace")

    async def json(self) -> Any:
        try:
            return json.loads(await self.body())
        except ValueError as exc:
            raise HTTPError(400, f"request body is not valid JSON: {exc}") from None

    async def form(self) -> FormData:
        """urlencoded or multipart form fields; a multipart file part is an `UploadFile`."""
        content_type = self.headers.get("content-type") or ""
        body = await self.body()
        if content_type.startswith("multipart/form-data"):
            from email.parser import BytesParser  # multipart forms only: costly to import
            from email.policy import HTTP

            message = BytesParser(policy=HTTP).parsebytes(
                b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
            )
            items: list[tuple[str, str | UploadFile]] = []
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if not name:
                    continue
                payload = part.get_payload(decode=True)
                data = payload if isinstance(payload, bytes) else b""
                filename = part.get_param("filename", header="content-disposition")
                if filename is not None:
                    items.append((str(name), UploadFile(str(filename), part.get_content_type(), data)))
                else:
                    items.append((str(name), data.decode(_known(part.get_content_charset()), "replace")))
            return MultiDict(items)
        return MultiDict(QueryParams.parse(body.decode(self._charset(), errors="replace")).multi_items())

    def _charset(self) -> str:
        content_type = self.headers.get("content-type") or ""
        for part in content_type.split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                return _known(value.strip('"'))
        return "utf-8"


FormData = MultiDict[str | UploadFile]
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an RFC 9110 token


def _unquote(value: str) -> str:
    """A cookie value without its optional double quotes, with the backslash escapes a
    quoting Set-Cookie writer (Python's http.cookies) puts inside them undone."""
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        return value
    return re.sub(r"\\(?:([0-3][0-7][0-7])|(.))", lambda m: chr(int(m[1], 8)) if m[1] else m[2], value[1:-1])


def _known(charset: str | None) -> str:
    """`charset` when Python knows it, else UTF-8: the client names it, and a name nobody
    knows must not turn a request into a 500."""
    if charset:
        try:
            b"?".decode(charset, "replace")  # unknown names, and codecs that are not text, raise
        except (LookupError, ValueError):
            return "utf-8"
        return charset
    return "utf-8"
