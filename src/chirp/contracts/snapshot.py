"""The read-only view of an app (and optionally a server config) that rules inspect.

Rules never touch the `App` itself: they read this snapshot, so a check cannot register
routes, mutate config or start anything. With `deploy=True` the view carries a copy of the
config with `env="production"` built without validation, so an empty production secret is
*reported* instead of raised, and the real config is left untouched.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chirp.config import production_posture
from chirp.contracts.model import ENVIRONMENTS, Location
from pounce.errors import ConfigurationError
from pounce.workers import worker_count

if TYPE_CHECKING:
    from chirp.app import MiddlewareEntry
    from chirp.config import AppConfig
    from chirp.contracts.artefacts.model import Artefacts
    from chirp.contracts.live.observe import LiveRun
    from chirp.routing import Route
    from pounce.config import ServerConfig
    from pounce.tls_settings import TLSSettings

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def _no_claims(path: str) -> list[Any]:
    return []


@dataclass(frozen=True)
class Snapshot:
    """What a rule may look at. `config` is None when the target is not a chirp app."""

    env: str
    deploy: bool = False
    config: AppConfig | None = None
    routes: tuple[Route, ...] = ()
    middleware: tuple[MiddlewareEntry, ...] = ()
    worker_hooks: tuple[Callable[..., Any], ...] = ()
    health_checks: tuple[Any, ...] = ()
    server: ServerConfig | None = None
    server_site: Location | None = None
    asgi_app: Any = None
    target: str | None = None
    app_site: Location | None = None
    features: frozenset[str] = frozenset()
    live: LiveRun | None = None
    artefacts: Artefacts | None = None
    _claims: Callable[[str], Sequence[Any]] = field(default=_no_claims, repr=False, compare=False)

    @classmethod
    def of_app(
        cls,
        app: Any,
        *,
        env: str | None = None,
        deploy: bool = False,
        server: ServerConfig | None = None,
        server_site: Location | None = None,
        server_file: Path | None = None,
        live: LiveRun | None = None,
        artefacts: Artefacts | None = None,
    ) -> Snapshot:
        """Snapshot a chirp `App`; `deploy=True` gives the production-posture view.

        `server` is what the launching command will really serve with. Without it, the settings
        are those a launch would resolve: what the config implies, under `server_file`
        (pounce.toml or `[tool.pounce]`) when there is one. `live` carries what `--live` observed,
        `artefacts` the deployment files `chirp check` read.
        """
        own_env = check_env(env or app.config.env)
        view_env = "production" if deploy else own_env
        config = app.config
        if view_env == "production" and config.env != "production":
            config = production_posture(config, validated=False)
        elif config.env != view_env:
            config = config.unchecked_replace(env=view_env)
        if server is None:
            server = _resolved_server(config, server_file)
            server_site = Location(str(server_file), 1) if server_file and server else None
        return cls(
            env=own_env,
            deploy=deploy,
            config=config,
            routes=tuple(app.router.routes),
            middleware=tuple(app.middleware),
            worker_hooks=tuple(app.worker_startup_hooks) + tuple(app.worker_shutdown_hooks),
            health_checks=tuple(app.health_checks),
            server=server,
            server_site=server_site,
            asgi_app=app,
            target=app.import_path,
            app_site=Location.of(app.site),
            features=_features(app),
            live=live,
            artefacts=artefacts,
            _claims=app.router.claims,
        )

    # -- routes and middleware ------------------------------------------------------------
    def claims(self, path: str) -> list[Route]:
        """User routes whose template matches `path`."""
        return list(self._claims(path))

    @functools.cached_property
    def mutating_routes(self) -> tuple[Route, ...]:
        return tuple(r for r in self.routes if r.mutating)

    def middleware_of(self, module: str, name: str) -> list[tuple[int, MiddlewareEntry]]:
        """(position, entry) of every registered instance of `chirp.middleware.<module>.<name>`.

        Imported lazily so a check of an app without the secure stack never loads it.
        """
        cls = middleware_class(module, name)
        if cls is None:
            return []
        return [(i, e) for i, e in enumerate(self.middleware) if isinstance(e.middleware, cls)]

    # -- config-derived facts -------------------------------------------------------------
    @property
    def config_location(self) -> Location | None:
        """Where the AppConfig was built: where most config findings point."""
        site = getattr(self.config, "source", None) if self.config is not None else None
        return Location.of(site) or self.app_site

    @property
    def view_env(self) -> str:
        """The env rules judge: production in the deploy posture, else the app's own."""
        return "production" if self.deploy else self.env

    def tls_files(self) -> tuple[str | None, str | None]:
        """The cert/key the server will use: the server config's when given, else the app's."""
        return self.tls_setting()[:2]

    def tls_setting(self) -> tuple[str | None, str | None, Location | None]:
        """(certfile, keyfile, where they were configured): the server's, which is what serves."""
        settings, where = self.tls_config()
        if settings is None:
            return None, None, None
        return settings.ssl_certfile, settings.ssl_keyfile, where

    def tls_config(self) -> tuple[TLSSettings | None, Location | None]:
        """Every TLS setting (the server config's, else the AppConfig's) and where it was set."""
        if self.server is not None:
            return self.server, self.setting_location
        if self.config is not None:
            return self.config, self.config_location
        return None, None

    @property
    def setting_location(self) -> Location | None:
        """Where server-facing settings come from: the server config file, else the AppConfig."""
        return self.server_site or self.config_location

    def worker_mode(self) -> str:
        if self.server is not None:
            return self.server.worker_mode
        return self.config.worker_mode if self.config is not None else "auto"

    def worker_count(self) -> int:
        """Workers that will actually run (0 resolves to the CPUs this process may use)."""
        if self.server is not None:
            configured = self.server.workers
        elif self.config is not None:
            configured = self.config.workers
        else:
            configured = 1
        return worker_count(configured)

    @functools.cached_property
    def source_texts(self) -> tuple[tuple[str, str], ...]:
        """(file, text) of the modules that built the config and the app, read once."""
        files: list[str] = []
        for loc in (self.config_location, self.app_site):
            if loc is not None and loc.file not in files and os.path.isfile(loc.file):
                files.append(loc.file)
        out = []
        for path in files:
            try:
                with open(path, encoding="utf-8", errors="replace") as fh:
                    out.append((path, fh.read()))
            except OSError:
                continue
        return tuple(out)


def check_env(env: str) -> str:
    if env not in ENVIRONMENTS:
        raise ConfigurationError("env", env, f"use one of {', '.join(ENVIRONMENTS)}")
    return env


def middleware_class(module: str, name: str) -> type | None:
    try:
        mod = __import__(f"chirp.middleware.{module}", fromlist=[name])
    except ImportError:
        return None
    cls = getattr(mod, name, None)
    return cls if isinstance(cls, type) else None


def _resolved_server(config: AppConfig, server_file: Path | None) -> ServerConfig | None:
    """The settings a launch of this app resolves: the config's, then the file's (None if invalid)."""
    from chirp.serving import server_settings
    from pounce.config import ServerConfig

    try:
        return ServerConfig.load(server_file, base=server_settings(config))
    except ConfigurationError:
        return None


def _features(app: Any) -> frozenset[str]:
    """Optional capabilities the app advertises (realtime, inline scripts, backplane kind)."""
    found = set(getattr(app, "contract_features", ()) or ())
    if getattr(app, "backplane_in_process", True):  # decided without building the bus
        found.add("in_process_backplane")
    # /_chirp/live is mounted on every app; only an app that uses the signal bus counts.
    if getattr(app, "uses_realtime", False):
        found.update({"realtime", "inline_scripts"})
    return frozenset(found)
