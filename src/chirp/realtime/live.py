"""`/_chirp/live?topics=a,b`: the SSE endpoint every app gets, fed by `app.emit`.

It is an ordinary route (mounted at freeze unless the app claims the path itself), so the
whole middleware stack — allowed hosts, sessions, authentication — applies to it. The
response starts only once the subscription is active on the backplane: an event emitted
after a client received the headers reaches that client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chirp.errors import HTTPError
from chirp.realtime.backplane import TOPIC_RE, TOPIC_RULE, Subscription
from chirp.realtime.sse import EventStream, SSEEvent
from chirp.services import LIVE_PATH

if TYPE_CHECKING:
    from chirp.app import App
    from chirp.request import Request

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


async def serve_live(app: App, request: Request) -> EventStream:
    """The endpoint's body: subscribe to the requested topics, stream what is emitted."""
    topics = parse_topics(request)
    backplane = app.backplane
    if not backplane.started:
        raise HTTPError(503, "live updates are not running: the app has not completed startup")
    subscription = await backplane.subscribe(topics)
    headers = {"cache-control": "no-cache, no-store"}
    return EventStream(_LiveEvents(subscription), heartbeat=app.live_heartbeat, headers=headers)
