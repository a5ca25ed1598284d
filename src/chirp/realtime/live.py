"""`/_chirp/live?topics=a,b`: the SSE endpoint every app gets, fed by `app.emit`.

It is an ordinary route (mounted at freeze unless the app claims the path itself), so the
whole middleware stack — allowed hosts, sessions, authentication — applies to it. The
response starts only once the subscription is active on the backplane: an event emitted
after a client received the headers reaches that client.
"""

from __future__ import annotations

import inspect
import types
from typing import TYPE_CHECKING, Any

from chirp.errors import HTTPError
from chirp.health import HealthCheck
from chirp.realtime.backplane import (
    TOPIC_RE,
    TOPIC_RULE,
    Backplane,
    InProcessBackplane,
    RedisBackplane,
    Subscription,
)
from chirp.realtime.sse import EventStream, SSEEvent
from chirp.request import Request
from chirp.routing import Route

if TYPE_CHECKING:
    from chirp.app import App
    from chirp.config import AppConfig
    from chirp.db import Database

LIVE_PATH = "/_chirp/live"
LIVE_ROUTE_NAME = "chirp.live"
MAX_TOPICS = 32


def parse_topics(request: Request) -> list[str]:
    """The `topics` query parameter(s), comma separated; 400 when missing or malformed."""
    raw = ",".join(request.query.getlist("topics"))
    topics = list(dict.fromkeys(t.strip() for t in raw.split(",") if t.strip()))
    if not topics:
        raise HTTPError(400, f"pass the topics to follow: {LIVE_PATH}?topics=news,prices")
    if len(topics) > MAX_TOPICS:
        raise HTTPError(400, f"at most {MAX_TOPICS} topics per connection ({len(topics)} given)")
    bad = [t for t in topics if not TOPIC_RE.fullmatch(t)]
    if bad:
        shown = ", ".join(repr(t[:40]) for t in bad[:3])
        raise HTTPError(400, f"invalid topic {shown}: use {TOPIC_RULE}")
    return topics


class _LiveEvents:
    """Backplane events as `SSEEvent`s; closing it (even unstarted) ends the subscription."""

    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription

    def __aiter__(self) -> _LiveEvents:
        return self

    async def __anext__(self) -> SSEEvent:
        topic, payload = await self.subscription.__anext__()
        return SSEEvent(payload, event=topic)

    async def aclose(self) -> None:
        self.subscription.close()


def live_route(app: App) -> Route:
    async def live(request: Request) -> EventStream:
        topics = parse_topics(request)
        backplane = app.backplane
        if not backplane.started:
            raise HTTPError(503, "live updates are not running: the app has not completed startup")
        subscription = await backplane.subscribe(topics)
        headers = {"cache-control": "no-cache, no-store"}
        return EventStream(_LiveEvents(subscription), heartbeat=app.live_heartbeat, headers=headers)

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
    from chirp.db import Database

    if database is not None:
        if not isinstance(database, Database):
            raise TypeError(f"App(database=...) takes a chirp.db.Database, not {type(database).__name__}")
        return database
    if config.database_url:
        return Database(config.database_url, field="database_url")
    return None


def mount_services(app: App) -> None:
    """At freeze: mount `/_chirp/live` unless a user route claims it, and add the
    `database` readiness check when a database is wired (unless one is named so already)."""
    if not app.router.claims(LIVE_PATH):
        app.router.add(live_route(app))
    if app.database is not None and not any(c.name == "database" for c in app.health_checks):
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
