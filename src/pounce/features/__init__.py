"""Operations features as small ASGI wrappers around the app.

`apply_features(app, config)` composes the ones `config` enables, outermost first:

    info endpoint → metrics → tracing → rate limit → load shedding → compression → error capture → app

so `/_pounce/info` and `/metrics` answer before anything else, a request refused by the rate
limiter or the queue still shows up in metrics and traces, and compression sees the app's
response only. Each wrapper passes lifespan and worker scopes straight through.

Optional dependencies (prometheus-client, OpenTelemetry, sentry-sdk, redis) are imported only
by the feature that needs them, and only when it is enabled. `check_features` runs in the
launching process before anything listens or forks, so a missing extra or a DSN that does not
parse is one configuration error there; `build_features` runs in each worker after the fork,
where exporters and clients (threads, connections) must be created.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pounce.asgi import ASGIApp
from pounce.config import ServerConfig
from pounce.features.shared import OBSERVER_TICK, ServerObserver
from pounce.wrapped import asgi_entry

__all__ = [
    "OBSERVER_TICK",
    "Features",
    "ServerObserver",
    "apply_features",
    "build_features",
    "check_features",
    "enabled_features",
]


@dataclass
class Features:
    """The app wrapped in its features, the features the server must keep informed, and what
    it calls once it has stopped serving (sending the spans and events still queued)."""

    app: ASGIApp
    observers: list[ServerObserver] = field(default_factory=list)
    closers: list[Callable[[], None]] = field(default_factory=list)


def enabled_features(config: ServerConfig) -> list[str]:
    """Names of the features `config` turns on, for the startup banner."""
    names = []
    flags = (
        ("info", config.info_endpoint),
        ("metrics", config.metrics_enabled),
        ("tracing", config.otel_endpoint is not None),
        ("rate-limit", config.rate_limit_enabled),
        ("queue", config.request_queue_enabled),
        ("compression", config.compression),
        ("sentry", config.sentry_dsn is not None),
    )
    for name, on in flags:
        if on:
            names.append(name)
    return names


def check_features(config: ServerConfig) -> None:
    """Raise the ConfigurationError an enabled feature would raise when built, without building it."""
    if config.metrics_enabled:
        from pounce.features.metrics import require_client

        require_client()
    if config.otel_endpoint is not None:
        from pounce.features.tracing import exporter_class

        exporter_class(config)
    if config.sentry_dsn is not None:
        from pounce.features.errors import load_sdk

        load_sdk(config)


def apply_features(app: ASGIApp, config: ServerConfig) -> ASGIApp:
    """Wrap `app` in every operations feature `config` enables."""
    return build_features(app, config).app


def build_features(app: ASGIApp, config: ServerConfig) -> Features:
    """Wrap `app` in every operations feature `config` enables; note which observe the server."""
    observers: list[ServerObserver] = []
    closers: list[Callable[[], None]] = []
    wrapped = asgi_entry(app)
    if config.sentry_dsn is not None:
        from pounce.features.errors import SentryCapture

        wrapped = sentry = SentryCapture.from_config(wrapped, config)
        closers.append(sentry.close)
    if config.compression:
        from pounce.features.compression import Compression

        wrapped = Compression(wrapped, min_size=config.compression_min_size, level=config.compression_level)
    if config.request_queue_enabled:
        from pounce.features.shedding import LoadShedding

        wrapped = LoadShedding.from_config(wrapped, config)
    if config.rate_limit_enabled:
        from pounce.features.ratelimit import RateLimit

        wrapped = RateLimit.from_config(wrapped, config)
    if config.otel_endpoint is not None:
        from pounce.features.tracing import Tracing

        wrapped = tracing = Tracing.from_config(wrapped, config)
        closers.append(tracing.close)
    if config.metrics_enabled:
        from pounce.features.metrics import Metrics

        wrapped = metrics = Metrics.from_config(wrapped, config)
        observers.append(metrics)
    if config.info_endpoint:
        from pounce.features.info import InfoEndpoint

        wrapped = InfoEndpoint(wrapped, config)
    return Features(wrapped, observers, closers)
