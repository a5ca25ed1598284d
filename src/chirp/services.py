"""The services an `App` wires at freeze: the signal bus behind `app.emit`, the database and
its readiness check, and the `/_chirp/live` route.

Nothing here imports the realtime or database modules unless the app uses them: the live
route's handler loads the endpoint (`chirp.realtime.live`) on its first request.
"""

from __future__ import annotations

import inspect
import types
from typing import TYPE_CHECKING, Any

from chirp.routing import Route

if TYPE_CHECKING:
    from chirp.app import App
    from chirp.config import AppConfig
    from chirp.db import Database
    from chirp.realtime.backplane import Backplane
    from chirp.realtime.sse import EventStream
    from chirp.request import Request

LIVE_PATH = "/_chirp/live"
LIVE_ROUTE_NAME = "chirp.live"


def live_route(app: App) -> Route:
    async def live(request: Request) -> EventStream:
        from chirp.realtime.live import serve_live

        return await serve_live(app, request)

    return Route(
        path=LIVE_PATH,
        methods=frozenset({"GET"}),
        handler=live,
        name=LIVE_ROUTE_NAME,
        wants=frozenset({"request"}),
        is_async=True,
    )


def resolve_backplane(config: AppConfig, backplane: Backplane | None) -> Backplane:
    """The explicit backplane, else Redis when `redis_url` is set, else in-process."""
    from chirp.realtime.backplane import Backplane, InProcessBackplane, RedisBackplane

    if backplane is not None:
        if not isinstance(backplane, Backplane):
            raise TypeError(
                f"App(backplane=...) takes a Backplane (InProcessBackplane, RedisBackplane), not {type(backplane).__name__}"
            )
        return backplane
    if config.redis_url:
        return RedisBackplane(config.redis_url, field="redis_url")
    return InProcessBackplane()


def resolve_database(config: AppConfig, database: Database | None) -> Database | None:
    """The explicit database, else one built from `database_url`, else None."""
    if database is None and not config.database_url:
        return None
    from chirp.db import Database

    if database is not None:
        if not isinstance(database, Database):
            raise TypeError(f"App(database=...) takes a chirp.db.Database, not {type(database).__name__}")
        return database
    return Database(config.database_url or "", field="database_url")


def mount_services(app: App) -> None:
    """At freeze: mount `/_chirp/live` unless a user route claims it, and add the
    `database` readiness check when a database is wired (unless one is named so already)."""
    if not app.router.claims(LIVE_PATH):
        app.router.add(live_route(app))
    if app.database is not None and not any(c.name == "database" for c in app.health_checks):
        from chirp.health import HealthCheck

        app.health_checks.append(HealthCheck("database", app.database.probe))


def references_emit(fn: Any) -> bool:
    """Whether `fn`'s code (or a function nested in it) calls something named `emit`."""
    code = getattr(inspect.unwrap(fn), "__code__", None)
    stack = [code] if code is not None else []
    while stack:
        current = stack.pop()
        if "emit" in current.co_names:
            return True
        stack.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    return False
