"""Sentry error capture when `sentry_dsn` is set.

pounce initialises sentry-sdk once per worker process (with
`sentry_traces_sample_rate`) and reports every exception that escapes the app, tagged
with the request method, path and route; the SDK's logging integration also reports
errors the app catches and logs itself (chirp logs unhandled handler errors that way).
Request headers, cookies and bodies are not sent.
"""

from __future__ import annotations

from typing import Any

from pounce.asgi import ASGIApp, Receive, Scope, Send
from pounce.config import ServerConfig
from pounce.features.metrics import route_of


class SentryCapture:
    def __init__(self, app: ASGIApp, *, dsn: str, traces_sample_rate: float = 0.0, **options: Any) -> None:
        import sentry_sdk

        self.app = app
        self.sdk = sentry_sdk
        sentry_sdk.init(dsn=dsn, traces_sample_rate=traces_sample_rate, send_default_pii=False, **options)

    @classmethod
    def from_config(cls, app: ASGIApp, config: ServerConfig) -> SentryCapture:
        assert config.sentry_dsn is not None
        return cls(app, dsn=config.sentry_dsn, traces_sample_rate=config.sentry_traces_sample_rate)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with self.sdk.isolation_scope() as sentry_scope:
            sentry_scope.set_tag("http.method", scope["method"])
            sentry_scope.set_context("request", {"method": scope["method"], "url": scope["path"]})
            try:
                await self.app(scope, receive, send)
            except Exception as exc:
                route = route_of(scope)
                if not route.startswith("<"):
                    sentry_scope.set_tag("http.route", route)
                self.sdk.capture_exception(exc)
                raise
