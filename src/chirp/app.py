"""`App`: registration, freeze, and the ASGI entry point that walks a request to a handler."""

from __future__ import annotations

import functools
import html
import inspect
import logging
import os
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from chirp.config import AppConfig, SourceSite, caller_site
from chirp.errors import ConfigurationError, HTTPError
from chirp.health import HealthCheck, is_draining, run_checks, send_probe
from chirp.middleware.security_headers import SecurityHeadersMiddleware
from chirp.negotiation import error_response, to_response
from chirp.request import ClientDisconnected, Request
from chirp.responses import HTMLResponse, Response
from chirp.routing import CSRF_MODES, Route, Router, check_handler
from chirp.websocket import INTERNAL_ERROR, POLICY_VIOLATION, WebSocket, WebSocketDisconnect
from pounce.asgi import Receive, Scope, Send
from pounce.errors import StartupFailed

if TYPE_CHECKING:
    from chirp.contracts.model import Report, Rule, Severity
    from chirp.contracts.suppress import Suppression
    from chirp.db import Database
    from chirp.realtime.backplane import Backplane
    from pounce.config import ServerConfig

logger = logging.getLogger("chirp.app")

F = TypeVar("F", bound=Callable[..., Any])
CallNext = Callable[[Request], Awaitable[Response]]
Middleware = Callable[[Request, CallNext], Awaitable[Response]]


@dataclass(frozen=True)
class MiddlewareEntry:
    middleware: Middleware
    site: SourceSite | None


class ContractViolation(StartupFailed):
    """Freeze found ERROR findings in the app's own env.

    `detail` is the rendered report; `hint` names `command`, the `chirp check` invocation
    that reproduces the verdict.
    """

    def __init__(self, report: Report, rendered: str, command: str) -> None:
        self.report = report
        self.command = command
        errors = report.counts.get("error", 0)
        super().__init__(
            f"the app failed its contract check ({errors} error(s) in {report.env})",
            detail=rendered,
            hint=f"run `{command}` for details",
        )

    def full_text(self) -> str:
        """Everything in one string, for channels that carry only one (the ASGI lifespan)."""
        return f"{self.detail.rstrip()}\n{self}; {self.hint}"


class App:
    """A chirp application: one ASGI callable served by pounce."""

    # Startup hooks, services and the freeze-time contract check run in the ASGI lifespan,
    # so pounce refuses to serve an App with `lifespan="off"`.
    lifespan_required = True

    def __init__(
        self,
        config: AppConfig | None = None,
        *,
        import_path: str | None = None,
        backplane: Backplane | None = None,
        database: Database | None = None,
    ) -> None:
        self.config = config if config is not None else AppConfig()
        from chirp.realtime.live import resolve_backplane, resolve_database

        # The signal bus behind app.emit and /_chirp/live, and the optional database;
        # both connect in lifespan startup and close in shutdown.
        self.backplane: Backplane = resolve_backplane(self.config, backplane)
        self.database: Database | None = resolve_database(self.config, database)
        self.backplane_explicit = backplane is not None
        self.live_heartbeat = 15.0
        self.emitted = False
        self.import_path = import_path
        self.router = Router()
        self.middleware: list[MiddlewareEntry] = []
        self.startup_hooks: list[Callable[[], Any]] = []
        self.shutdown_hooks: list[Callable[[], Any]] = []
        self.worker_startup_hooks: list[Callable[[], Any]] = []
        self.worker_shutdown_hooks: list[Callable[[], Any]] = []
        self.health_checks: list[HealthCheck] = []
        self.contract_rules: list[Rule] = []
        self.suppressions: list[Suppression] = []
        self.severity_overrides: dict[str, Severity] = {}
        self.site = caller_site(2)
        self.frozen = False
        self.started = False
        self.freeze_report: Report | None = None
        self._admitted = False  # the freeze-time contract check passed: requests may be served
        self._entry: Callable[[Request], Awaitable[Response]] | None = None
        self._ws_entry: Callable[[Request], Awaitable[Response]] | None = None
        self._probes: dict[str, str] = {}

    # -- registration ----------------------------------------------------------------------
    def _ensure_open(self, what: str) -> None:
        if self.frozen:
            raise RuntimeError(f"cannot {what} after the app is frozen; register everything before it serves")

    def route(
        self,
        path: str,
        methods: tuple[str, ...] | list[str] = ("GET",),
        name: str | None = None,
        *,
        csrf: str | None = None,
    ) -> Callable[[F], F]:
        """Register a handler for `path` (`{x}`, `{x:int}`, `{x:float}`, `{x:uuid}`, `{x:path}`).

        The handler takes the path parameters (and `request`) by name; a template that does not
        fit the signature is refused here, not at request time. `csrf` overrides
        CSRFMiddleware's mode for this route: `"token"`, `"origin"` (no token: the browser's
        Sec-Fetch-Site/Origin must say same-origin) or `"exempt"` (reported by `csrf.exempt`).
        """
        site = caller_site(2)
        if csrf is not None and csrf not in CSRF_MODES:
            raise ConfigurationError(
                f"route({path!r}, csrf=...)", csrf, f"use one of {', '.join(CSRF_MODES)}"
            )

        def decorator(handler: F) -> F:
            self._ensure_open("add a route")
            route = Route(
                path=path,
                methods=frozenset(m.upper() for m in methods),
                handler=handler,
                name=name or handler.__name__,
                site=site,
                wants=check_handler(path, handler, ("request",), "route"),
                is_async=inspect.iscoroutinefunction(handler),
                csrf=csrf,
            )
            self.router.add(route)
            return handler

        return decorator

    def websocket(self, path: str, name: str | None = None, *, check_origin: bool = True) -> Callable[[F], F]:
        """Register an async WebSocket handler for `path`; it takes `websocket` and the path parameters.

        The handshake passes through the middleware like a GET (sessions are readable);
        CSRFMiddleware refuses one whose `Origin` names another site. `check_origin=False`
        skips that check for this route (reported by `websocket.origin_unchecked`).
        """
        site = caller_site(2)

        def decorator(handler: F) -> F:
            self._ensure_open("add a WebSocket route")
            if not inspect.iscoroutinefunction(handler):
                raise ConfigurationError(
                    f"websocket({path!r})",
                    getattr(handler, "__qualname__", handler),
                    "a WebSocket handler must be `async def` (it awaits messages)",
                )
            wants = check_handler(path, handler, ("websocket",), "websocket")
            if "websocket" not in wants:
                raise ConfigurationError(
                    f"websocket({path!r})",
                    getattr(handler, "__qualname__", handler),
                    "add a `websocket` parameter: the handler talks to the client through it",
                )
            route = Route(
                path=path,
                methods=frozenset(),
                handler=handler,
                name=name or handler.__name__,
                site=site,
                wants=wants,
                is_async=True,
                websocket=True,
                check_origin=check_origin,
            )
            self.router.add(route)
            return handler

        return decorator

    def add_middleware(self, middleware: Middleware) -> None:
        """Add `async (request, call_next) -> Response`; the first added is the outermost."""
        self._ensure_open("add middleware")
        self.middleware.append(MiddlewareEntry(middleware, caller_site(2)))

    def _hook(self, hooks: list[Callable[[], Any]], fn: F) -> F:
        self._ensure_open("register a lifecycle hook")
        hooks.append(fn)
        return fn

    def on_startup(self, fn: F) -> F:
        return self._hook(self.startup_hooks, fn)

    def on_shutdown(self, fn: F) -> F:
        return self._hook(self.shutdown_hooks, fn)

    def on_worker_startup(self, fn: F) -> F:
        return self._hook(self.worker_startup_hooks, fn)

    def on_worker_shutdown(self, fn: F) -> F:
        return self._hook(self.worker_shutdown_hooks, fn)

    def add_health_check(self, check: HealthCheck) -> None:
        self._ensure_open("add a health check")
        if not isinstance(check, HealthCheck):
            raise TypeError("add_health_check() takes a HealthCheck(name, check, timeout=...)")
        self.health_checks.append(check)

    def url_for(self, name: str, /, **params: Any) -> str:
        return self.router.url_for(name, **params)

    # -- realtime --------------------------------------------------------------------------
    def emit(self, topic: str, data: Any = None) -> None:
        """Publish JSON-serialisable `data` on `topic` to every `/_chirp/live` client, on every
        worker the backplane reaches. Works from sync and async code and from any thread."""
        self.emitted = True
        self.backplane.emit(topic, data)

    @property
    def uses_realtime(self) -> bool:
        """Whether the app relies on the signal bus (read by `workers.single_with_state`):
        a backplane was configured, `emit` was called, or a handler or hook calls `.emit(`."""
        from chirp.realtime.live import references_emit

        hooks = [
            *self.startup_hooks,
            *self.shutdown_hooks,
            *self.worker_startup_hooks,
            *self.worker_shutdown_hooks,
        ]
        return (
            self.emitted
            or self.backplane_explicit
            or bool(self.config.redis_url)
            or any(references_emit(fn) for fn in [*(r.handler for r in self.router.routes), *hooks])
        )

    # -- contracts -------------------------------------------------------------------------
    def add_contract_rule(self, rule: Rule) -> None:
        self._ensure_open("add a contract rule")
        self.contract_rules.append(rule)

    def suppress(self, rule_id: str, *, reason: str, until: Any = None, env: str | None = None) -> None:
        """Silence one rule, with a mandatory reason, an optional expiry date and env."""
        from chirp.contracts.suppress import Suppression

        self._ensure_open("add a suppression")
        self.suppressions.append(
            Suppression.create(rule_id, reason=reason, until=until, env=env, site=caller_site(2))
        )

    def override_severity(self, rule_id: str, severity: Severity) -> None:
        """Make a rule stricter; loosening is a suppression with a reason."""
        self._ensure_open("override a severity")
        self.severity_overrides[rule_id] = severity

    def check(
        self,
        env: str | None = None,
        deploy: bool = False,
        warnings_as_errors: bool = False,
        *,
        server: ServerConfig | None = None,
    ) -> Report:
        """Run the contract rules against this app; never prints. Freezes the app.

        `server` is the pounce configuration the app will be served with, for the worker,
        bind and TLS rules; without it, pounce.toml / `[tool.pounce]` beside the app, else
        what the AppConfig implies (as `chirp run` and `app.run()` derive it).
        """
        from chirp.contracts.runner import check_app

        if not self.frozen:
            self._freeze_structure()
        return check_app(self, env=env, deploy=deploy, warnings_as_errors=warnings_as_errors, server=server)

    # -- freeze ----------------------------------------------------------------------------
    def _freeze_structure(self) -> None:
        self.frozen = True
        user_paths = {self.config.health_path: "health", self.config.ready_path: "ready"}
        self._probes = {p: kind for p, kind in user_paths.items() if not self.router.claims(p)}
        from chirp.realtime.live import mount_services

        mount_services(self)  # /_chirp/live (unless claimed) and the database readiness check
        if tuple(self.config.allowed_hosts) != ("*",):
            from chirp.middleware.allowed_hosts import AllowedHostsMiddleware

            if not any(isinstance(m.middleware, AllowedHostsMiddleware) for m in self.middleware):
                hosts = AllowedHostsMiddleware(self.config.allowed_hosts)
                self.middleware.insert(0, MiddlewareEntry(hosts, None))
        self._entry = self._chain(self._dispatch)
        self._ws_entry = self._chain(self._dispatch_websocket)

    def _chain(self, innermost: CallNext) -> CallNext:
        """`innermost` wrapped in the middleware, the first registered outermost."""
        entry = innermost
        for item in reversed(self.middleware):
            entry = _wrap(item.middleware, entry)
        return entry

    def pounce_defaults(self) -> dict[str, Any]:
        """The server settings this app's config implies; pounce layers its file and flags above."""
        from chirp.serving import server_settings

        return server_settings(self.config)

    def pounce_preflight(self, config: ServerConfig) -> None:
        """pounce calls this once after the import, before it listens or forks: the freeze-time
        contract check against the settings it will serve with (a failure refuses the launch)."""
        if self.import_path is None and config.app:
            self.import_path = config.app
        self.freeze(config)

    def freeze(self, server: ServerConfig | None = None, *, show_report: bool = True) -> None:
        """Lock registration and run the contract check in the app's own env, once.

        `server` is the configuration the app is about to be served with (see `check`).
        An ERROR finding raises `ContractViolation`, whose message is the report, now and on
        every later call: an app that failed its check never serves a request. The check
        always logs one JSON line at INFO; a passing report with warnings is also logged as
        text at WARNING, unless `show_report` is off (a worker of a launch that showed it).
        """
        if self.freeze_report is None:
            report = self.check(server=server)
            self.freeze_report = report
            from chirp.contracts.telemetry import publish

            publish(self, report)  # posture as telemetry: gauges for /metrics and one JSON log line
            if show_report and report.ok and report.counts.get("warning", 0):
                from chirp.contracts.render.text import render_text

                logger.warning("%s", render_text(report, color=False))
        if not self.freeze_report.ok:
            from chirp.contracts.render.text import render_text

            target = self.import_path or (server.app if server is not None else "") or _guess_target(self)
            raise ContractViolation(
                self.freeze_report,
                render_text(self.freeze_report, color=False),
                check_command(target, self.config.env),
            )
        self._admitted = True

    # -- serving ---------------------------------------------------------------------------
    def run(self, host: str | None = None, port: int | None = None) -> None:
        """Serve with pounce: development → one auto-reloading worker; otherwise the configured workers."""
        from chirp.serving import run_app

        run_app(self, host=host, port=port)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if not self._admitted:
            self.freeze()  # served without lifespan: check now; a failed check raises every time
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "pounce.worker.startup":
            await self._worker_hooks(self.worker_startup_hooks, scope)
        elif kind == "pounce.worker.shutdown":
            await self._worker_hooks(self.worker_shutdown_hooks, scope)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        probe = self._probes.get(scope["path"])
        if probe is not None:
            await self._probe(probe, scope, send)
            return
        request = Request(scope, receive, self.config.max_request_body_size)
        # Route before any middleware runs, so a middleware knows the route (CSRF reads its
        # mode) and a request for no route is answered 404/405 rather than refused by one.
        try:
            request.route, request.path_params = self.router.match(request.method, request.path)
        except HTTPError:
            pass  # `_dispatch` raises it again, inside the middleware
        else:
            request.route_name = request.route.name
            scope["chirp.route"] = request.route.path  # the route template, for server metrics and traces
        assert self._entry is not None
        try:
            response = await self._entry(request)
        except Exception as exc:
            response = self._error_response(request, exc)
        if self._header_policy is not None:
            self._header_policy.apply(response)
        try:
            await response(scope, receive, send)
        except ClientDisconnected:
            return
        except OSError as exc:
            logger.debug("client went away while sending the response: %s", exc)

    @functools.cached_property
    def _header_policy(self) -> SecurityHeadersMiddleware | None:
        """The first registered SecurityHeadersMiddleware (read once the app serves, when the
        middleware list is final): `_http` applies it to every response, so a refusal from an
        outer middleware or an error escaping the stack carries the same headers as a page."""
        return next(
            (m.middleware for m in self.middleware if isinstance(m.middleware, SecurityHeadersMiddleware)),
            None,
        )

    async def _dispatch(self, request: Request) -> Response:
        """The innermost step: call the matched handler, negotiate the return value."""
        try:
            if request.route is None:  # no route matched before the middleware: answer 404 or 405
                request.route, request.path_params = self.router.match(request.method, request.path)
            route = request.route
            kwargs = {k: v for k, v in request.path_params.items() if k in route.wants}
            if "request" in route.wants:
                kwargs["request"] = request
            if route.is_async:
                result = await route.handler(**kwargs)
            else:
                result = await anyio.to_thread.run_sync(functools.partial(route.handler, **kwargs))
            return to_response(result, request.method)
        except Exception as exc:
            return self._error_response(request, exc)

    def _error_response(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPError):
            return error_response(request, exc.status, exc.detail, exc.headers)
        if isinstance(exc, ClientDisconnected):
            return error_response(request, 400, "client disconnected")
        _unhandled(request, exc)
        if self.config.debug:
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
            websocket.route, websocket.path_params = self.router.match_websocket(websocket.path)
        except HTTPError as exc:
            await websocket.close(POLICY_VIOLATION, f"{exc.status} {exc.detail}")
            return
        websocket.route_name = websocket.route.name
        scope["chirp.route"] = websocket.route.path
        assert self._ws_entry is not None
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
        if not self.started:
            await send_probe(scope, send, 503, "starting\n")
            return
        failures = await run_checks(self.health_checks)
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
                    self.freeze(
                        getattr(state, "config", None), show_report=not getattr(state, "supervised", False)
                    )
                except ContractViolation as exc:
                    # The server prints the report and exits before accepting a connection.
                    await send({"type": "lifespan.startup.failed", "message": exc.full_text()})
                    return
                try:
                    await self._start_services()
                    for hook in self.startup_hooks:
                        await _call_hook(hook)
                except Exception as exc:
                    logger.error("startup failed", exc_info=exc)
                    await self._stop_services()
                    await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
                    return
                self.started = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.started = False
                failed: Exception | None = None
                for hook in self.shutdown_hooks:
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
        await self.backplane.start()
        if self.database is not None:
            await self.database.connect()

    async def _stop_services(self) -> Exception | None:
        """Close the database, then the backplane; returns the first failure (logged)."""
        failed: Exception | None = None
        closers = [self.database.close] if self.database is not None else []
        for close in [*closers, self.backplane.close]:
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


def check_command(target: str, env: str) -> str:
    """The `chirp check` invocation that judges `target` as a launch in `env` does."""
    if env == "production":
        return f"chirp check {target} --deploy"
    return f"chirp check {target}" + ("" if env == "development" else f" --env {env}")


def _guess_target(app: App) -> str:
    """`module:attr` for an app started by `app.run()` in a script: where it was built."""
    import sys

    module = sys.modules.get("__main__")
    name = next((k for k, v in vars(module).items() if v is app), "app") if module else "app"
    stem = os.path.splitext(os.path.basename(app.site.file))[0] if app.site else "app"
    return f"{stem}:{name}"


def _unhandled(request: Request, exc: Exception) -> None:
    """Log an error no handler or middleware dealt with (chirp.testing also collects it)."""
    kind = "WebSocket" if isinstance(request, WebSocket) else request.method
    logger.error("unhandled error in %s %s", kind, request.path, exc_info=exc)
    errors = request.scope.get("chirp.errors")
    if errors is not None:
        errors.append(exc)


def _wrap(middleware: Middleware, call_next: CallNext) -> CallNext:
    async def step(request: Request) -> Response:
        return await middleware(request, call_next)

    return step


async def _call_hook(hook: Callable[[], Any]) -> None:
    if inspect.iscoroutinefunction(hook):
        await hook()
    else:
        result = await anyio.to_thread.run_sync(hook)
        if inspect.isawaitable(result):
            await result
