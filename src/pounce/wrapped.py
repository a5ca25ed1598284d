"""The app inside the ASGI middleware that wraps it, and the optional hooks it offers pounce.

A middleware conventionally keeps the app it wraps as `self.app` (Starlette's, Sentry's and
OpenTelemetry's ASGI middleware all do), so `ProxyHeadersMiddleware(App(...))` still gets the
server settings and the preflight its `App` implies instead of being served as a plain app.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

_MAX_DEPTH = 16  # wrappers deeper than this are not a real stack but a cycle


def wrapped_chain(app: Any) -> Iterator[Any]:
    """`app`, the app it wraps (`app.app`), and so on inwards."""
    seen: set[int] = set()
    current = app
    while current is not None and id(current) not in seen and len(seen) < _MAX_DEPTH:
        seen.add(id(current))
        yield current
        current = getattr(current, "app", None)


def app_attribute(app: Any, name: str, default: Any = None) -> Any:
    """`name` of the outermost object in the chain that has it, else `default`."""
    return next((v for v in (getattr(a, name, None) for a in wrapped_chain(app)) if v is not None), default)


def asgi_entry(app: Any) -> Any:
    """The callable to serve `app` with: what its `pounce_asgi()` returns when it offers one (a
    chirp `App`, whose requests then run one coroutine fewer), else the app itself. Only the
    outermost object is asked: a middleware around an app calls that app as it always does."""
    hook = getattr(app, "pounce_asgi", None)
    return hook() if callable(hook) else app
