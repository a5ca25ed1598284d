"""How a frozen `App` serves: the ASGI entry, a request's walk through the middleware to its
handler, errors, WebSocket sessions, the probes and the lifespan.

Loaded on an app's first ASGI call, so that building and checking an app (`chirp check`)
never imports the request-time machinery.
"""

from __future__ import annotations

import functools
import html
import inspect
import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio

from chirp.app import ContractViolation
from chirp.errors import HTTPError
from chirp.health import is_draining, run_checks, send_probe
from chirp.middleware.security_headers import SecurityHeadersMiddleware
from chirp.negotiation import error_response, to_response
from chirp.request import ClientDisconnected, Request
from chirp.responses import HTMLResponse, Response, html_messages
from chirp.websocket import INTERNAL_ERROR, POLICY_VIOLATION, WebSocket, WebSocketDisconnect

if TYPE_CHECKING:
    from chirp.app import App, Middleware
    from chirp.routing import Route
    from pounce.asgi import Message, Receive, Scope, Send

logger = logging.getLogger("chirp.app")

CallNext = Callable[[Request], Awaitable[Response]]
_SENT_WHOLE = Response.__call__  # a response class that keeps it sends `messages()`, nothing more


class AppRuntime:
    """The request-time side of one `App`."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._static_methods = app.router.static_methods  # (filled in place as routes are added)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app's ASGI entry. An HTTP request to the admitted app, the hot path, is served
        here in this one coroutine; every other call goes to `_other`."""
        if scope["type"] != "http" or not self.app._admitted:
            await self._other(scope, receive, send)
            return
        # Route before any middleware runs, so a middleware knows the route (CSRF reads its
        # mode) and a request for no route is answered 404/405 rather than refused by one.
        # A static path first, in the router's own table: no call (and no probe, as a probe
        # never takes a path a route claims).
        path = scope["path"]
        route: Route | None
        params: dict[str, Any] | None = None  # (a dict made only for a Request)
        methods = self._static_methods.get(path)
        if methods is None or (route := methods.get(scope["method"])) is None:
            probe = self.app.probes.get(path)
            if probe is not None:
                await self._probe(probe, scope, send)
                return
            try:
                route, params = self.app.router.match(scope["method"], path)
            except HTTPError:
                route = None  # `_call_handler` raises it again, inside the middleware
        if route is not None:
            scope["chirp.route"] = route.path  # the route template, for server metrics and traces
        entry = self._entry
        request: Request | None = None
        messages: tuple[Message, Message] | None = None
        try:
            if entry is None and route is not None and route.bare:
                # No middleware and a handler that takes nothing: it never sees a Request,
                # so none is built (an error page builds one).
                result = await route.handler()
            else:
                request = Request(scope, receive, self.app.config.max_request_body_size, route, params or {})
                if entry is not None:
                    response = await entry(request)
                else:  # no middleware: the handler is awaited here, one coroutine fewer
                    result = await self._call_handler(request)
            if entry is None:
                if type(result) is str:  # nothing else sees the response: no object is built
                    messages = html_messages(result, scope)
                else:
                    response = to_response(result, scope["method"])
        except Exception as exc:
            if request is None:
                request = Request(scope, receive, self.app.config.max_request_body_size, route, params or {})
            response = self._error_response(request, exc)
        if messages is None:
            if self._header_policy is not None:
                self._header_policy.apply(response)
            if type(response).__call__ is _SENT_WHOLE:  # sent from here: one coroutine fewer
                messages = response.messages(scope)
        try:
            if messages is not None:
                start, body = messages
                await send(start)
                await send(body)
            else:
                await response(scope, receive, send)
        except ClientDisconnected:
            return
        except OSError as exc:
            logger.debug("client went away while sending the response: %s", exc)

    async def _other(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The lifespan, a WebSocket session, pounce's worker hooks, or the first request to an
        app served without lifespan (which is checked now: a failed check raises every time)."""
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if not self.app._admitted:
            self.app.freeze()
        if kind == "http":
            await self(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "pounce.worker.startup":
            await self._worker_hooks(self.app.worker_startup_hooks, scope)
        elif kind == "pounce.worker.shutdown":
            await self._worker_hooks(self.app.worker_shutdown_hooks, scope)

    @functools.cached_property
    def _header_policy(self) -> SecurityHeadersMiddleware | None:
        """The first registered SecurityHeadersMiddleware (read once the app serves, when the
        middleware list is final): `http` applies it to every response, so a refusal from an
        outer middleware or an error escaping the stack carries the same headers as a page."""
        return next(
            (
                m.middleware
                for m in self.app.middleware
                if isinstance(m.middleware, SecurityHeadersMiddleware)
            ),
            None,
        )

    @functools.cached_property
    def _entry(self) -> CallNext | None:
        """An HTTP request's way in: the middleware (the first registered outermost), then
        `_dispatch`; None without middleware. Built on the first request, when the app is
        frozen and its list final."""
        return self._chain(self._dispatch) if self.app.middleware else None

    @functools.cached_property
    def _ws_entry(self) -> CallNext:
        return self._chain(self._dispatch_websocket)

    def _chain(self, innermost: CallNext) -> CallNext:
        entry = innermost
        for item in reversed(self.app.middleware):
            entry = _wrap(item.middleware, entry)
        return entry

    async def _dispatch(self, request: Request) -> Response:
        """The innermost step: call the matched handler, negotiate the return value."""
        try:
            return to_response(await self._call_handler(request), request.scope["method"])
        except Exception as exc:
            return self._error_response(request, exc)

    def _call_handler(self, request: Request) -> Awaitable[Any]:
        """What the matched handler returns, to await; `NotFound` or `MethodNotAllowed` when
        routing found no handler before the middleware."""
        if request.route is None:
            request.route, request.path_params = self.app.router.match(request.method, request.path)
        route = request.route
        params = request.path_params
        kwargs = {k: v for k, v in params.items() if k in route.wants} if params else {}
        if "request" in route.wants:
            kwargs["request"] = request
        if route.is_async:
            return route.handler(**kwargs)  # type: ignore[no-any-return]
        return anyio.to_thread.run_sync(functools.partial(route.handler, **kwargs))

    def _error_response(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPError):
            return error_response(request, exc.status, exc.detail, exc.headers)
        if isinstance(exc, ClientDisconnected):
            return error_response(request, 400, "client disconnected")
        _unhandled(request, exc)
        if self.app.config.debug:
            tb = html.escape("".join(traceback.format_exception(exc)))
            page = f"<!doctype html><title>500 {html.escape(type(exc).__name__)}</title><h1>{html.escape(repr(exc))}</h1><pre>{tb}</pre>"
            return HTMLResponse(page, 500)
        return error_response(request, 500)

    # -- WebSocket -------------------------------------------------------------------------
    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route the handshake, run it through the middleware, then the handler.

        A middleware that answers instead of calling `call_next` refuses the handshake: the
        connection is closed before it is accepted (pounce answers 403), with the answer's
        status and text as the close reason.
        """
        websocket = WebSocket(scope, receive, send)
        if (await receive())["type"] != "websocket.connect":
            return
        try:
            websocket.route, websocket.path_params = self.app.router.match_websocket(websocket.path)
        except HTTPError as exc:
            await websocket.close(POLICY_VIOLATION, f"{exc.status} {exc.detail}")
            return
        websocket.route_name = websocket.route.name
        scope["chirp.route"] = websocket.route.path
        try:
            response = await self._ws_entry(websocket)
        except Exception as exc:
            response = self._error_response(websocket, exc)
        if not websocket.handled and not websocket.accepted:
            reason = response.body.decode("utf-8", "replace").strip() or str(response.status)
            await websocket.close(POLICY_VIOLATION, reason)

    async def _dispatch_websocket(self, request: Request) -> Response:
        """The innermost step for a handshake: run the handler for the whole connection."""
        assert isinstance(request, WebSocket) and request.route is not None
        websocket, route = request, request.route
        websocket.handled = True
        kwargs = {k: v for k, v in websocket.path_params.items() if k in route.wants}
        try:
            await route.handler(websocket=websocket, **kwargs)
        except WebSocketDisconnect:
            pass  # the client left; nothing more to send
        except Exception as exc:
            _unhandled(websocket, exc)
            await websocket.close(INTERNAL_ERROR if websocket.accepted else POLICY_VIOLATION)
        else:
            await websocket.close()
        return Response(b"", 101)

    async def _probe(self, kind: str, scope: Scope, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await send_probe(scope, send, 405, "method not allowed\n", [(b"allow", b"GET, HEAD")])
            return
        if kind == "health":
            await send_probe(scope, send, 200, "ok\n")
            return
        if is_draining(scope):
            await send_probe(scope, send, 503, "draining\n")
            return
        if not self.app.started:
            await send_probe(scope, send, 503, "starting\n")
            return
        failures = await run_checks(self.app.health_checks)
        if failures:
            await send_probe(scope, send, 503, "".join(f"{name}: {reason}\n" for name, reason in failures))
            return
        await send_probe(scope, send, 200, "ready\n")

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                state = scope.get("extensions", {}).get("pounce.server")
                try:
                    # A supervisor's worker: the launch showed the report; this logs its JSON line.
                    self.app.freeze(
                        getattr(state, "config", None), show_report=not getattr(state, "supervised", False)
                    )
                except ContractViolation as exc:
                    # The server prints the report and exits before accepting a connection.
                    await send({"type": "lifespan.startup.failed", "message": exc.full_text()})
                    return
                try:
                    await self._start_services()
                    for hook in self.app.startup_hooks:
                        await _call_hook(hook)
                except Exception as exc:
                    logger.error("startup failed", exc_info=exc)
                    await self._stop_services()
                    await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
                    return
                self.app.started = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.app.started = False
                failed: Exception | None = None
                for hook in self.app.shutdown_hooks:
                    try:
                        await _call_hook(hook)
                    except Exception as exc:
                        logger.error("shutdown hook failed", exc_info=exc)
                        failed = exc
                failed = await self._stop_services() or failed
                if failed is not None:
                    await send(
                        {"type": "lifespan.shutdown.failed", "message": f"{type(failed).__name__}: {failed}"}
                    )
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                return

    async def _start_services(self) -> None:
        """Connect the backplane, then the database (before any on_startup hook)."""
        app = self.app
        await app.backplane.start()
        if app.database is not None:
            await app.database.connect()

    async def _stop_services(self) -> Exception | None:
        """Close the database, then the backplane; returns the first failure (logged)."""
        failed: Exception | None = None
        app = self.app
        closers = [app.database.close] if app.database is not None else []
        for close in [*closers, app.backplane.close]:
            try:
                await close()
            except Exception as exc:
                logger.error("closing %s failed", getattr(close, "__self__", close), exc_info=exc)
                failed = failed or exc
        return failed

    async def _worker_hooks(self, hooks: list[Callable[[], Any]], scope: Scope) -> None:
        """Worker hooks: an exception is logged and the worker keeps serving."""
        for hook in hooks:
            try:
                await _call_hook(hook)
            except Exception:
                logger.exception(
                    "worker %s: %s hook failed", scope.get("worker_id"), getattr(hook, "__name__", hook)
                )


def _unhandled(request: Request, exc: Exception) -> None:
    """Log an error no handler or middleware dealt with (chirp.testing also collects it)."""
    kind = "WebSocket" if isinstance(request, WebSocket) else request.method
    logger.error("unhandled error in %s %s", kind, request.path, exc_info=exc)
    errors = request.scope.get("chirp.errors")
    if errors is not None:
        errors.append(exc)


def _wrap(middleware: Middleware, call_next: CallNext) -> CallNext:
    def step(request: Request) -> Awaitable[Response]:
        return middleware(request, call_next)  # the middleware's own coroutine: no frame around it

    return step


async def _call_hook(hook: Callable[[], Any]) -> None:
    if inspect.iscoroutinefunction(hook):
        await hook()
    else:
        result = await anyio.to_thread.run_sync(hook)
        if inspect.isawaitable(result):
            await result
