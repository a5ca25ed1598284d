"""`App`: registration, freeze and the contract check; what a request meets is `chirp.runtime`.

Nothing here imports the request-time machinery (anyio, request and response types, the
realtime bus): `chirp check` builds, freezes and judges an app without loading it.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from chirp.config import AppConfig, SourceSite, caller_site
from chirp.errors import ConfigurationError
from chirp.routing import CSRF_MODES, Route, Router, check_handler
from pounce.errors import StartupFailed

if TYPE_CHECKING:
    from chirp.contracts.model import Report, Rule, Severity
    from chirp.contracts.suppress import Suppression
    from chirp.db import Database
    from chirp.health import HealthCheck
    from chirp.realtime.backplane import Backplane
    from chirp.request import Request
    from chirp.responses import Response
    from chirp.runtime import AppRuntime
    from pounce.asgi import Receive, Scope, Send
    from pounce.config import ServerConfig

F = TypeVar("F", bound=Callable[..., Any])
# Forward references: the request and response types load with the runtime, not with the app.
CallNext = Callable[["Request"], Awaitable["Response"]]
Middleware = Callable[["Request", CallNext], Awaitable["Response"]]


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
        from chirp.services import resolve_backplane, resolve_database

        # The signal bus behind app.emit and /_chirp/live, and the optional database; both
        # connect in lifespan startup and close in shutdown. The default in-process bus is
        # only built when something uses it; a given one, or Redis, is checked now.
        eager = backplane is not None or bool(self.config.redis_url)
        self._backplane: Backplane | None = resolve_backplane(self.config, backplane) if eager else None
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
        self._runtime: AppRuntime | None = None
        self.probes: dict[str, str] = {}  # probe path -> "health" | "ready", fixed at freeze

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
        from chirp.health import HealthCheck  # loaded by an app that has health checks

        if not isinstance(check, HealthCheck):
            raise TypeError("add_health_check() takes a HealthCheck(name, check, timeout=...)")
        self.health_checks.append(check)

    def url_for(self, name: str, /, **params: Any) -> str:
        return self.router.url_for(name, **params)

    # -- realtime --------------------------------------------------------------------------
    @property
    def backplane(self) -> Backplane:
        """The signal bus: the one given, Redis with `redis_url`, else in-process."""
        if self._backplane is None:
            from chirp.services import resolve_backplane

            self._backplane = resolve_backplane(self.config, None)
        return self._backplane

    @property
    def backplane_in_process(self) -> bool:
        """Whether the signal bus stays inside this process (decided without building it)."""
        if self._backplane is not None:
            return bool(getattr(self._backplane, "in_process", False))
        return not self.config.redis_url

    def emit(self, topic: str, data: Any = None) -> None:
        """Publish JSON-serialisable `data` on `topic` to every `/_chirp/live` client, on every
        worker the backplane reaches. Works from sync and async code and from any thread."""
        self.emitted = True
        self.backplane.emit(topic, data)

    @property
    def uses_realtime(self) -> bool:
        """Whether the app relies on the signal bus (read by `workers.single_with_state`):
        a backplane was configured, `emit` was called, or a handler or hook calls `.emit(`."""
        from chirp.services import references_emit

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
        self.probes = {p: kind for p, kind in user_paths.items() if not self.router.claims(p)}
        from chirp.services import mount_services

        mount_services(self)  # /_chirp/live (unless claimed) and the database readiness check
        if tuple(self.config.allowed_hosts) != ("*",):
            from chirp.middleware.allowed_hosts import AllowedHostsMiddleware

            if not any(isinstance(m.middleware, AllowedHostsMiddleware) for m in self.middleware):
                hosts = AllowedHostsMiddleware(self.config.allowed_hosts)
                self.middleware.insert(0, MiddlewareEntry(hosts, None))

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
                import logging

                from chirp.contracts.render.text import render_text

                logging.getLogger("chirp.app").warning("%s", render_text(report, color=False))
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
        """The ASGI entry: the runtime's, awaited."""
        await (self._runtime or self._load_runtime())(scope, receive, send)

    def pounce_asgi(self) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        """What pounce serves this app with: the runtime's entry itself, so a request runs in
        one coroutine fewer than through `__call__`, which any other server calls."""
        return self._load_runtime().__call__

    def _load_runtime(self) -> AppRuntime:
        """The request-time side of the app (`chirp.runtime`), loaded on first use so that an
        app that is only checked (`chirp check`) never imports it."""
        if self._runtime is None:
            from chirp.runtime import AppRuntime

            self._runtime = AppRuntime(self)
        return self._runtime


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
