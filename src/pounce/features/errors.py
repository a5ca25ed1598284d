"""Sentry error capture when `sentry_dsn` is set.

pounce initialises sentry-sdk in each worker process, after the fork (with
`sentry_traces_sample_rate`), and reports every exception that escapes the app; the SDK's
logging integration also reports errors the app catches and logs itself (chirp logs
unhandled handler errors that way). Every event raised while a request runs carries the
request's method, URL path and route (tag and transaction) and the worker's pid. A worker
that stops sends what is queued before it exits.

What the SDK collects by itself is set by its `data_collection` option: pounce's default
collects no user data, cookies, headers, bodies or query strings, and leaves out local
variables whose names suggest credentials, sessions or raw requests. On top of that, the
values of the request's `Authorization` and `Proxy-Authorization` headers, and of its cookies
while cookie collection is off, are replaced wherever they appear in an event (a local
variable, a log message). `sentry_data_collection` replaces the default table, for a user
who opts in to more.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any

from pounce.asgi import ASGIApp, Receive, Scope, Send
from pounce.config import ServerConfig
from pounce.errors import ConfigurationError
from pounce.features.metrics import route_of

FILTERED = "[Filtered]"
CREDENTIAL_HEADERS = (b"authorization", b"proxy-authorization")

DATA_COLLECTION: Mapping[str, Any] = {
    "user_info": False,
    "cookies": {"mode": "off"},
    "http_headers": {"request": {"mode": "off"}},
    "http_bodies": [],
    "url_query_params": {"mode": "off"},
    # The SDK's own list of sensitive names (auth, token, session, key, ...) applies too.
    "stack_frame_variables": {"mode": "denylist", "terms": ["scope", "header", "cookie", "environ"]},
}
"""pounce's default for sentry-sdk's `data_collection` option (`sentry_data_collection` replaces it)."""


def load_sdk(config: ServerConfig) -> Any:
    """sentry-sdk, after checking the DSN parses; a ConfigurationError otherwise."""
    assert config.sentry_dsn is not None
    try:
        import sentry_sdk
        from sentry_sdk.utils import BadDsn, Dsn
    except ImportError:
        raise ConfigurationError(
            "sentry_dsn", "***", "install the sentry extra: pip install 'chirp-pounce[sentry]'"
        ) from None
    try:
        Dsn(config.sentry_dsn)
    except BadDsn as exc:
        raise ConfigurationError(
            "sentry_dsn", "***", f"use the DSN from your Sentry project, https://<key>@<host>/<id> ({exc})"
        ) from None
    return sentry_sdk


def _secrets(scope: Scope, keep_cookies: bool) -> list[str]:
    """The values of this request that no event may carry, longest first."""
    found: list[str] = []
    for name, value in scope["headers"]:
        if name in CREDENTIAL_HEADERS:
            found.append(value.decode("latin-1"))
        elif name == b"cookie" and not keep_cookies:
            text = value.decode("latin-1")
            found.append(text)
            with contextlib.suppress(CookieError):
                found.extend(morsel.value for morsel in SimpleCookie(text).values())
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def _scrub(value: Any, secrets: list[str]) -> Any:
    """`value` (an event or a part of it) with every secret replaced."""
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, FILTERED)
        return value
    if isinstance(value, dict):
        return {key: _scrub(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item, secrets) for item in value]
    return value


class SentryCapture:
    def __init__(
        self,
        app: ASGIApp,
        *,
        dsn: str,
        traces_sample_rate: float = 0.0,
        data_collection: Mapping[str, Any] | None = None,
        flush_timeout: float = 2.0,
        **options: Any,
    ) -> None:
        import sentry_sdk

        self.app = app
        self.sdk: Any = sentry_sdk  # its types describe its options; pounce passes a user's table
        self.pid = os.getpid()
        self.flush_timeout = flush_timeout
        chosen = DATA_COLLECTION if data_collection is None else data_collection
        self.keep_cookies = dict(chosen.get("cookies") or {}).get("mode", "denylist") != "off"
        try:
            self.sdk.init(
                dsn=dsn, traces_sample_rate=traces_sample_rate, data_collection=dict(chosen), **options
            )
        except (TypeError, ValueError) as exc:  # the SDK refuses the data_collection table
            raise ConfigurationError("sentry_data_collection", dict(chosen), str(exc)) from None

    @classmethod
    def from_config(cls, app: ASGIApp, config: ServerConfig) -> SentryCapture:
        assert config.sentry_dsn is not None
        load_sdk(config)
        return cls(
            app,
            dsn=config.sentry_dsn,
            traces_sample_rate=config.sentry_traces_sample_rate,
            data_collection=config.sentry_data_collection,
            flush_timeout=config.shutdown_timeout,
        )

    def close(self) -> None:
        """Send the queued events (the server has stopped serving; a slow Sentry gets up to
        `shutdown_timeout` seconds) and stop the SDK's client."""
        self.sdk.get_client().close(timeout=self.flush_timeout)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        secrets = _secrets(scope, self.keep_cookies)

        def describe(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
            """Runs when an event is sent, so the route the app matched meanwhile is known."""
            route = route_of(scope)
            request = event.setdefault("request", {})
            request.setdefault("method", scope["method"])
            request.setdefault("url", scope.get("root_path", "") + scope["path"])
            tags = event.setdefault("tags", {})
            tags["http.method"] = scope["method"]
            if not route.startswith("<"):
                tags["http.route"] = route
                event["transaction"] = f"{scope['method']} {route}"
            event.setdefault("contexts", {})["process"] = {"pid": self.pid}
            scrubbed: dict[str, Any] = _scrub(event, secrets) if secrets else event
            return scrubbed

        with self.sdk.isolation_scope() as sentry_scope:
            sentry_scope.add_event_processor(describe)
            try:
                await self.app(scope, receive, send)
            except Exception as exc:
                self.sdk.capture_exception(exc)
                raise
