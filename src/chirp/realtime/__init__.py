"""Realtime: Server-Sent Events, the signal bus behind `app.emit`, and its backplanes."""

from __future__ import annotations

from chirp.realtime.backplane import (
    Backplane,
    InProcessBackplane,
    RedisBackplane,
    Subscription,
    validate_topic,
)
from chirp.realtime.sse import EventStream, SSEEvent, SSEResponse

__all__ = [
    "Backplane",
    "EventStream",
    "InProcessBackplane",
    "RedisBackplane",
    "SSEEvent",
    "SSEResponse",
    "Subscription",
    "validate_topic",
]
