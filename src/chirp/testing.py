"""`chirp.testing`: test an app in-process (`TestClient`, `AsyncTestClient`) or over a real
pounce on a loopback port (`serve`).

The clients run the app's lifespan as pounce does: the freeze-time contract check (a failing
one raises `ContractViolation` with the report, like a launch), the backplane and the
database, every `on_startup` hook; so `/ready` answers 200 while the client is open. They
speak httpx's API (`client.get(...)`, `client.stream(...)`, cookies kept between requests)
and add `websocket_connect()` and `csrf_token()`. Like a browser on the app's own pages they
send an `Origin` header with unsafe requests and WebSocket handshakes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import anyio
import anyio.abc
from anyio.from_thread import BlockingPortal, start_blocking_portal

try:
    import httpx
except ImportError as exc:  # pragma: no cover - httpx ships with the dev and testing extras
    raise ImportError("chirp.testing needs httpx: pip install 'chirp-pounce[testing]'") from exc

from chirp.app import App
from chirp.middleware.allowed_hosts import served_host
from chirp.middleware.csrf import SAFE_METHODS, session_token
from chirp.middleware.sessions import Session, SessionMiddleware
from chirp.responses import Response
from chirp.websocket import WebSocketDisconnect
from pounce.asgi import ASGIApp, Lifespan, Message, Scope, ServerState, http_scope
from pounce.wrapped import app_attribute, wrapped_chain

__all__ = [
    "AsyncTestClient",
    "AsyncWebSocketSession",
    "RunningServer",
    "TestClient",
    "WebSocketDisconnect",
    "WebSocketSession",
    "serve",
]

CLIENT_ADDRESS = ("127.0.0.1", 50000)
CLOSE_TIMEOUT = 5.0  # how long closing a response or a WebSocket waits for the app to finish
T = TypeVar("T")


class _AppHost:
    """The app's lifespan in a task that lasts until `stop()`, and every exchange beside it.

    Built and run on the event loop the app lives on (a portal's for `TestClient`, the test's
    own for `AsyncTestClient`).
    """

    def __init__(self, app: ASGIApp, startup_timeout: float) -> None:
        self.app = app
        self.startup_timeout = startup_timeout
        self.state = ServerState()
        self.lifespan_state: dict[str, Any] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._started = anyio.Event()
        self._stop = anyio.Event()
        self._failure: Exception | None = None

    async def run(self) -> None:
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                lifespan = Lifespan(
                    self.app,
                    "auto",
                    self.startup_timeout,
                    self.startup_timeout,
                    server_state=self.state,
                    required=bool(app_attribute(self.app, "lifespan_required", False)),
                )
                try:
                    await lifespan.startup(tg)
                except Exception as exc:
                    self._failure = exc
                    tg.cancel_scope.cancel()
                    return
                self.lifespan_state = lifespan.state
                self._started.set()
                await self._stop.wait()
                await lifespan.shutdown()
                tg.cancel_scope.cancel()  # streams and WebSockets the test left open
        finally:
            self._tg = None
            self._started.set()

    async def wait_started(self) -> None:
        await self._started.wait()
        if self._failure is not None:
            raise self._failure

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        if self._tg is None:
            raise RuntimeError("the app is not running: the client was closed")
        self._tg.start_soon(fn)

    def stop(self) -> None:
        self._stop.set()


class _Exchange:
    """One ASGI call driven in-process: the app's messages, its errors and its end."""

    def __init__(self, app: ASGIApp, scope: Scope, raise_errors: bool) -> None:
        self.app = app
        self.scope = scope
        self.raise_errors = raise_errors
        self._to_client, self._from_app = anyio.create_memory_object_stream[Message](math.inf)
        self._done = anyio.Event()
        self.client_gone = False
        self.error: Exception | None = None

    async def run(self) -> None:
        try:
            await self.app(self.scope, self._receive, self._send)
        except Exception as exc:
            self.error = exc
        finally:
            self._to_client.close()
            self._done.set()

    async def _receive(self) -> Message:
        raise NotImplementedError

    async def _send(self, message: Message) -> None:
        if self.client_gone:
            raise OSError("the test client has closed the connection")  # what pounce raises
        await self._to_client.send(message)

    async def next_message(self) -> Message | None:
        """The app's next message; None once it returned (after raising what it raised)."""
        try:
            return await self._from_app.receive()
        except anyio.EndOfStream:
            self.check()
            return None

    def check(self) -> None:
        """Raise (unless told not to) what escaped the app, or what chirp caught and logged."""
        if not self.raise_errors:
            return
        if self.error is not None:
            raise self.error
        errors = self.scope.get("chirp.errors")
        if errors:
            raise errors[0]

    async def finish(self) -> None:
        with anyio.move_on_after(CLOSE_TIMEOUT):
            await self._done.wait()
        if self.error is not None and self.raise_errors:
            raise self.error


class _HTTPExchange(_Exchange):
    def __init__(self, app: ASGIApp, scope: Scope, body: bytes, raise_errors: bool) -> None:
        super().__init__(app, scope, raise_errors)
        self.body = body
        self._body_sent = False
        self._more = True
        self._disconnect = anyio.Event()

    async def _receive(self) -> Message:
        if not self._body_sent:
            self._body_sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self._disconnect.wait()
        return {"type": "http.disconnect"}

    async def start(self) -> tuple[int, list[tuple[bytes, bytes]]]:
        message = await self.next_message()
        if message is None:
            if self.error is not None:  # not raised: answer as pounce does, with a bare 500
                self._more = False
                return 500, [(b"content-length", b"0")]
            raise RuntimeError(
                f"the app returned without answering {self.scope['method']} {self.scope['path']}"
            )
        if message["type"] != "http.response.start":
            raise RuntimeError(f"the app sent {message['type']!r} before http.response.start")
        self.check()
        return int(message["status"]), list(message.get("headers", ()))

    async def chunk(self) -> bytes | None:
        """The next piece of the body; None at its end."""
        while self._more:
            message = await self.next_message()
            if message is None:
                break
            if message["type"] == "http.response.body":
                self._more = bool(message.get("more_body", False))
                return bytes(message.get("body", b""))
        return None

    async def close(self) -> None:
        """The client is done with the response: the app sees `http.disconnect`."""
        self.client_gone = True
        self._disconnect.set()
        await self.finish()


async def _open_http(
    host: _AppHost, scope: Scope, body: bytes, raise_errors: bool
) -> tuple[_HTTPExchange, int, list[tuple[bytes, bytes]]]:
    exchange = _HTTPExchange(host.app, scope, body, raise_errors)
    host.spawn(exchange.run)
    status, headers = await exchange.start()
    return exchange, status, headers


class _WebSocketExchange(_Exchange):
    def __init__(self, app: ASGIApp, scope: Scope, raise_errors: bool) -> None:
        super().__init__(app, scope, raise_errors)
        self._to_app, self._from_client = anyio.create_memory_object_stream[Message](math.inf)
        self.accepted = False
        self.subprotocol: str | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.close_code = 1000

    async def _receive(self) -> Message:
        try:
            return await self._from_client.receive()
        except anyio.EndOfStream:
            return {"type": "websocket.disconnect", "code": self.close_code, "reason": ""}

    async def connect(self) -> None:
        await self._to_app.send({"type": "websocket.connect"})
        message = await self._expect()
        if message["type"] != "websocket.accept":
            raise RuntimeError(f"the app sent {message['type']!r} before accepting the WebSocket")
        self.accepted = True
        self.subprotocol = message.get("subprotocol")
        self.headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", ())]

    async def _expect(self) -> Message:
        """The app's next message; its close (or its end) raises `WebSocketDisconnect`."""
        message = await self.next_message()
        if message is None:
            if not self.accepted:
                raise WebSocketDisconnect(1006, "the app ended without accepting the connection")
            raise WebSocketDisconnect(1000, "the app ended the connection")
        if message["type"] == "websocket.close":
            self.check()
            raise WebSocketDisconnect(int(message.get("code", 1000)), str(message.get("reason") or ""))
        return message

    async def receive(self) -> str | bytes:
        message = await self._expect()
        if message["type"] != "websocket.send":
            raise RuntimeError(f"unexpected message {message['type']!r} from the app")
        text = message.get("text")
        return str(text) if text is not None else bytes(message.get("bytes") or b"")

    async def send(self, data: str | bytes) -> None:
        if self.client_gone:
            raise RuntimeError("the WebSocket is closed")
        key = "text" if isinstance(data, str) else "bytes"
        await self._to_app.send({"type": "websocket.receive", key: data})

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if not self.client_gone:
            self.client_gone = True
            self.close_code = code
            await self._to_app.send({"type": "websocket.disconnect", "code": code, "reason": reason})
            self._to_app.close()
        await self.finish()


async def _open_websocket(host: _AppHost, scope: Scope, raise_errors: bool) -> _WebSocketExchange:
    exchange = _WebSocketExchange(host.app, scope, raise_errors)
    host.spawn(exchange.run)
    await exchange.connect()
    return exchange


def _expect_text(message: str | bytes) -> str:
    if not isinstance(message, str):
        raise TypeError(f"expected a text message, the app sent {len(message)} bytes")
    return message


def _expect_bytes(message: str | bytes) -> bytes:
    if not isinstance(message, bytes):
        raise TypeError(f"expected a binary message, the app sent text: {message[:80]!r}")
    return message


class _AppClient:
    """What both clients share: the app, its host, scopes, cookies and CSRF tokens."""

    app: ASGIApp
    cookies: httpx.Cookies
    base_url: httpx.URL
    _host: _AppHost | None

    def _setup(
        self,
        app: ASGIApp,
        base_url: str | None,
        origin: str | bool | None,
        raise_server_exceptions: bool,
        startup_timeout: float,
        headers: Mapping[str, str] | None,
    ) -> dict[str, Any]:
        """Remember the settings; returns the httpx client's (the base URL: a host the app
        serves, over https)."""
        self.app = app
        self.raise_server_exceptions = raise_server_exceptions
        self.startup_timeout = startup_timeout
        self._host = None
        if base_url is None:
            config = getattr(app, "config", None)
            base_url = f"https://{served_host(getattr(config, 'allowed_hosts', ())) or 'testserver'}"
        if origin is True:
            parts = httpx.URL(base_url)
            origin = f"{parts.scheme}://{parts.netloc.decode('ascii')}"
        self.origin = origin or None
        return {"base_url": base_url, "headers": {"user-agent": "chirp-testclient", **(headers or {})}}

    def _running_host(self) -> _AppHost:
        if self._host is None:
            raise RuntimeError("the client is closed")
        return self._host

    def _scope(self, request: httpx.Request, subprotocols: Sequence[str] | None = None) -> Scope:
        """The ASGI scope pounce would build for `request` (a WebSocket one with `subprotocols`)."""
        host = self._running_host()
        url = request.url
        headers = [(k.lower(), v) for k, v in request.headers.raw]
        unsafe = subprotocols is not None or request.method not in SAFE_METHODS
        if self.origin and unsafe and not any(k == b"origin" for k, _ in headers):
            headers.append((b"origin", self.origin.encode("latin-1")))
        secure = url.scheme in ("https", "wss")
        scope = http_scope(
            method=request.method.encode("ascii"),
            target=url.raw_path,
            headers=headers,
            http_version="1.1",
            scheme="https" if secure else "http",
            client=CLIENT_ADDRESS,
            server=(url.host, url.port or (443 if secure else 80)),
            root_path="",
            state=host.lifespan_state,
            server_state=host.state,
        )
        scope["chirp.errors"] = []
        if subprotocols is not None:
            scope.pop("method")
            scope.update(type="websocket", scheme="wss" if secure else "ws", subprotocols=list(subprotocols))
        return scope

    def _handshake_headers(
        self, subprotocols: Sequence[str], headers: Mapping[str, str] | None
    ) -> dict[str, str]:
        sent = {
            "connection": "Upgrade",
            "upgrade": "websocket",
            "sec-websocket-version": "13",
            "sec-websocket-key": base64.b64encode(os.urandom(16)).decode("ascii"),
        }
        if subprotocols:
            sent["sec-websocket-protocol"] = ", ".join(subprotocols)
        sent.update(headers or {})
        return sent

    def csrf_token(self) -> str:
        """A CSRF token for the client's session, as `csrf_token(request)` gives a page.

        Send it as the `csrf_token` form field or the `X-CSRF-Token` header. Without a session
        cookie yet, the client starts a session (as the app would) and keeps its cookie.
        """
        middleware = next(
            (
                m.middleware
                for m in getattr(self.app, "middleware", ())
                if isinstance(m.middleware, SessionMiddleware)
            ),
            None,
        )
        if middleware is None:
            raise RuntimeError(
                "csrf_token() needs a chirp App with SessionMiddleware (chirp.secure_stack(config))"
            )
        session, _ = middleware.decode(self.cookies.get(middleware.cookie_name))
        if session is None:
            session = Session()
        fresh = session.csrf_secret is None
        token = session_token(session)
        if fresh:
            response = Response()
            middleware.store(session, response)
            set_cookie = [("set-cookie", v) for k, v in response.headers.items() if k == "set-cookie"]
            request = httpx.Request("GET", self.base_url)
            self.cookies.extract_cookies(httpx.Response(200, headers=set_cookie, request=request))
        return token


def _chirp_app(app: ASGIApp) -> App | None:
    """The chirp App served, itself or inside the ASGI middleware that wraps it."""
    return next((a for a in wrapped_chain(app) if isinstance(a, App)), None)


def _freeze(app: ASGIApp) -> None:
    """A chirp App runs its contract check first: a failing one raises `ContractViolation`."""
    inner = _chirp_app(app)
    if inner is not None:
        inner.freeze()


class TestClient(_AppClient, httpx.Client):
    """Drive an app in-process from synchronous tests.

    `with TestClient(app) as client:` runs the app's lifespan startup on entry and its
    shutdown on exit; a client used without `with` starts the app on its first request and
    stops it on `close()`. `base_url` defaults to `https://<the first allowed host>` (or
    `https://testserver`); `origin` is the `Origin` sent with unsafe requests and WebSocket
    handshakes (`True`: the base URL's; `None`: none). An exception a handler raised is
    raised in the test (`raise_server_exceptions=False` returns the 500 instead).
    """

    __test__ = False  # a class named Test*: not a pytest test class

    def __init__(
        self,
        app: ASGIApp,
        base_url: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        cookies: Any = None,
        origin: str | bool | None = True,
        raise_server_exceptions: bool = True,
        follow_redirects: bool = False,
        startup_timeout: float = 30.0,
    ) -> None:
        options = self._setup(app, base_url, origin, raise_server_exceptions, startup_timeout, headers)
        self._portal: BlockingPortal | None = None
        self._portal_cm: contextlib.AbstractContextManager[BlockingPortal] | None = None
        self._served: Any = None
        super().__init__(
            **options, cookies=cookies, transport=_Transport(self), follow_redirects=follow_redirects
        )

    def __enter__(self) -> TestClient:
        super().__enter__()
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        try:
            self.stop()
        finally:
            super().__exit__(exc_type, exc, tb)

    def start(self) -> None:
        """Run the app's lifespan startup (once); raises what made it fail."""
        if self._portal is not None:
            return
        _freeze(self.app)
        manager = start_blocking_portal("asyncio")
        portal = manager.__enter__()
        try:
            host = portal.call(_AppHost, self.app, self.startup_timeout)
            self._served = portal.start_task_soon(host.run)
            portal.call(host.wait_started)
        except BaseException as exc:
            manager.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._portal, self._portal_cm, self._host = portal, manager, host

    def stop(self) -> None:
        """Run the app's lifespan shutdown; requests after this start it again."""
        portal, manager, host = self._portal, self._portal_cm, self._host
        if portal is None or manager is None or host is None:
            return
        self._portal = self._portal_cm = self._host = None
        try:
            portal.call(host.stop)
            self._served.result()
        finally:
            manager.__exit__(None, None, None)

    def close(self) -> None:
        self.stop()
        super().close()

    def _call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        if self._portal is None:
            raise RuntimeError("the client is closed")
        return self._portal.call(fn, *args)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        if self._portal is None:
            self.start()
        body = request.read()
        exchange, status, headers = self._call(
            _open_http, self._running_host(), self._scope(request), body, self.raise_server_exceptions
        )
        return httpx.Response(status, headers=headers, stream=_SyncBody(self, exchange), request=request)

    def websocket_connect(
        self,
        url: str,
        subprotocols: Sequence[str] = (),
        *,
        headers: Mapping[str, str] | None = None,
        params: Any = None,
    ) -> WebSocketSession:
        """`with client.websocket_connect("/ws") as ws:` — the handshake happens on entry;
        a refused one raises `WebSocketDisconnect`."""
        return WebSocketSession(self, url, subprotocols, headers, params)


class _Transport(httpx.BaseTransport):
    def __init__(self, client: TestClient) -> None:
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.client._handle(request)


class _SyncBody(httpx.SyncByteStream):
    def __init__(self, client: TestClient, exchange: _HTTPExchange) -> None:
        self.client = client
        self.exchange = exchange

    def __iter__(self) -> Iterator[bytes]:
        while (chunk := self.client._call(self.exchange.chunk)) is not None:
            yield chunk

    def close(self) -> None:
        if self.client._portal is not None:  # else the app stopped, and the exchange with it
            self.client._call(self.exchange.close)


class _Session:
    """What both WebSocket sessions share: the handshake to make, and the connection once made."""

    def __init__(
        self, url: str, subprotocols: Sequence[str], headers: Mapping[str, str] | None, params: Any
    ) -> None:
        self._request = (url, list(subprotocols), headers, params)
        self._exchange: _WebSocketExchange | None = None

    def _handshake(self, client: _AppClient, build: Callable[..., httpx.Request]) -> Scope:
        url, subprotocols, headers, params = self._request
        request = build("GET", url, headers=client._handshake_headers(subprotocols, headers), params=params)
        return client._scope(request, subprotocols)

    def _live(self) -> _WebSocketExchange:
        if self._exchange is None:
            raise RuntimeError(
                "use the session as a context manager: `with client.websocket_connect(...) as ws:`"
            )
        return self._exchange

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the app accepted."""
        return self._live().subprotocol

    @property
    def headers(self) -> httpx.Headers:
        """The headers the app sent with its acceptance."""
        return httpx.Headers(self._live().headers)


class WebSocketSession(_Session):
    """A WebSocket from a `TestClient`; every call blocks until the app answered."""

    def __init__(
        self,
        client: TestClient,
        url: str,
        subprotocols: Sequence[str],
        headers: Mapping[str, str] | None,
        params: Any,
    ) -> None:
        super().__init__(url, subprotocols, headers, params)
        self._client = client

    def __enter__(self) -> WebSocketSession:
        client = self._client
        client.start()
        scope = self._handshake(client, client.build_request)
        self._exchange = client._call(
            _open_websocket, client._running_host(), scope, client.raise_server_exceptions
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_text(self, data: str) -> None:
        self._client._call(self._live().send, data)

    def send_bytes(self, data: bytes) -> None:
        self._client._call(self._live().send, bytes(data))

    def send_json(self, data: Any) -> None:
        self.send_text(json.dumps(data))

    def receive(self) -> str | bytes:
        """The next message; `WebSocketDisconnect` when the app closed the connection."""
        return self._client._call(self._live().receive)

    def receive_text(self) -> str:
        return _expect_text(self.receive())

    def receive_bytes(self) -> bytes:
        return _expect_bytes(self.receive())

    def receive_json(self) -> Any:
        return json.loads(self.receive())

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close from the client side and wait for the handler to finish (idempotent)."""
        if self._exchange is not None and self._client._portal is not None:
            self._client._call(self._exchange.close, code, reason)


class AsyncTestClient(_AppClient, httpx.AsyncClient):
    """Drive an app in-process from async tests, on the test's own event loop (asyncio).

    `async with AsyncTestClient(app) as client:` runs the lifespan on entry and exit; the
    app shares the test's loop, so the test can await `app.database` or anything else the
    app started. Options as for `TestClient`.
    """

    __test__ = False

    def __init__(
        self,
        app: ASGIApp,
        base_url: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        cookies: Any = None,
        origin: str | bool | None = True,
        raise_server_exceptions: bool = True,
        follow_redirects: bool = False,
        startup_timeout: float = 30.0,
    ) -> None:
        options = self._setup(app, base_url, origin, raise_server_exceptions, startup_timeout, headers)
        self._served: asyncio.Future[None] | None = None
        super().__init__(
            **options, cookies=cookies, transport=_AsyncTransport(self), follow_redirects=follow_redirects
        )

    async def __aenter__(self) -> AsyncTestClient:
        await super().__aenter__()
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        try:
            await self.stop()
        finally:
            await super().__aexit__(exc_type, exc, tb)

    async def start(self) -> None:
        """Run the app's lifespan startup (once); raises what made it fail."""
        if self._served is not None:
            return
        _freeze(self.app)
        host = _AppHost(self.app, self.startup_timeout)
        # A task of its own, not a task group of the caller's: pytest runs an async fixture's
        # setup and teardown in different tasks, and the app must outlive both.
        served = asyncio.ensure_future(host.run())
        try:
            await host.wait_started()
        except BaseException:
            await served
            raise
        self._served, self._host = served, host

    async def stop(self) -> None:
        """Run the app's lifespan shutdown."""
        served, host = self._served, self._host
        if served is None or host is None:
            return
        self._served = self._host = None
        host.stop()
        await served

    async def aclose(self) -> None:
        await self.stop()
        await super().aclose()

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        await self.start()
        body = await request.aread()
        exchange, status, headers = await _open_http(
            self._running_host(), self._scope(request), body, self.raise_server_exceptions
        )
        return httpx.Response(status, headers=headers, stream=_AsyncBody(exchange), request=request)

    def websocket_connect(
        self,
        url: str,
        subprotocols: Sequence[str] = (),
        *,
        headers: Mapping[str, str] | None = None,
        params: Any = None,
    ) -> AsyncWebSocketSession:
        """`async with client.websocket_connect("/ws") as ws:`; see `TestClient.websocket_connect`."""
        return AsyncWebSocketSession(self, url, subprotocols, headers, params)


class _AsyncTransport(httpx.AsyncBaseTransport):
    def __init__(self, client: AsyncTestClient) -> None:
        self.client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.client._handle(request)


class _AsyncBody(httpx.AsyncByteStream):
    def __init__(self, exchange: _HTTPExchange) -> None:
        self.exchange = exchange

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (chunk := await self.exchange.chunk()) is not None:
            yield chunk

    async def aclose(self) -> None:
        await self.exchange.close()


class AsyncWebSocketSession(_Session):
    """A WebSocket from an `AsyncTestClient`; the same methods as `WebSocketSession`, awaited."""

    def __init__(
        self,
        client: AsyncTestClient,
        url: str,
        subprotocols: Sequence[str],
        headers: Mapping[str, str] | None,
        params: Any,
    ) -> None:
        super().__init__(url, subprotocols, headers, params)
        self._client = client

    async def __aenter__(self) -> AsyncWebSocketSession:
        client = self._client
        await client.start()
        scope = self._handshake(client, client.build_request)
        self._exchange = await _open_websocket(client._running_host(), scope, client.raise_server_exceptions)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def send_text(self, data: str) -> None:
        await self._live().send(data)

    async def send_bytes(self, data: bytes) -> None:
        await self._live().send(bytes(data))

    async def send_json(self, data: Any) -> None:
        await self.send_text(json.dumps(data))

    async def receive(self) -> str | bytes:
        return await self._live().receive()

    async def receive_text(self) -> str:
        return _expect_text(await self.receive())

    async def receive_bytes(self) -> bytes:
        return _expect_bytes(await self.receive())

    async def receive_json(self) -> Any:
        return json.loads(await self.receive())

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._exchange is not None and self._client._host is not None:
            await self._exchange.close(code, reason)


# -- a real server --------------------------------------------------------------------------


class RunningServer:
    """A pounce server `serve()` started: where it listens, and the server and portal behind it."""

    def __init__(self, server: Any, url: str, port: int, portal: BlockingPortal) -> None:
        self.server = server
        self.url = url
        self.port = port
        self.portal = portal

    @property
    def ws_url(self) -> str:
        """`url` with the WebSocket scheme (`ws://` or `wss://`)."""
        return "ws" + self.url[len("http") :]

    def shutdown(self) -> None:
        """Begin a graceful shutdown, as SIGTERM does."""
        self.portal.call(self.server.shutdown)


@contextlib.contextmanager
def serve(app: ASGIApp, *, host: str = "127.0.0.1", **settings: Any) -> Iterator[RunningServer]:
    """Serve `app` with pounce on `host`:<a free port>, in a background thread.

    A chirp App is served as `chirp run` would serve it (the settings its config implies, its
    contract check before listening); `settings` are `ServerConfig` fields that win. Yields
    once the server accepts connections (lifespan startup done); on exit it shuts down
    gracefully and waits for it, so shutdown hooks have run.
    """
    from pounce.config import ServerConfig
    from pounce.implementations import run_options
    from pounce.server import Server
    from pounce.sockets import bind_socket

    inner = _chirp_app(app)
    values: dict[str, Any] = inner.pounce_defaults() if inner is not None else {}
    values.update(host=host, port=0, workers=1, reload=False, access_log=False)
    values.update(settings)
    config = ServerConfig(**values)
    if inner is not None:
        inner.pounce_preflight(config)
    sock = bind_socket(config)
    bound_host, port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    scheme = "https" if config.ssl_certfile else "http"
    server = Server(app, config)
    with start_blocking_portal("asyncio", run_options(config.loop)["backend_options"]) as portal:
        ready = portal.call(anyio.Event)
        future = portal.start_task_soon(
            lambda: server.serve(sock, install_signals=False, on_ready=lambda _: ready.set())
        )
        portal.call(_wait_ready, ready, future)
        try:
            yield RunningServer(server, f"{scheme}://{shown}:{port}", port, portal)
        finally:
            if not future.done():
                portal.call(server.shutdown)
            future.result(timeout=60)


async def _wait_ready(ready: anyio.Event, future: Any) -> None:
    """Until the server listens; a startup failure is raised here instead."""
    while not ready.is_set():
        if future.done():
            future.result()
        with anyio.move_on_after(0.05):
            await ready.wait()
