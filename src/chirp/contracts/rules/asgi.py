"""`asgi.*`: the imported object is something pounce can call."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

from chirp.contracts.model import Finding, Location, Severity, everywhere, rule
from chirp.contracts.snapshot import Snapshot

E = Severity.ERROR


def _where(obj: object) -> Location | None:
    target = obj if inspect.isfunction(obj) or inspect.isclass(obj) else type(obj)
    try:
        return Location(inspect.getsourcefile(target) or "", inspect.getsourcelines(target)[1])
    except (OSError, TypeError):
        return None


@rule(
    "asgi.signature",
    title="Not an ASGI 3 application",
    severity=everywhere(E),
    hint="Point --app at an object called as app(scope, receive, send), e.g. the chirp App instance.",
    tags=("server",),
)
def signature(snap: Snapshot) -> Iterator[Finding]:
    """ASGI 2 classes and WSGI callables import fine and then fail on the first request."""
    app = snap.asgi_app
    if app is None or snap.config is not None:
        return
    try:
        sig = inspect.signature(app)
    except (TypeError, ValueError):
        return
    try:
        sig.bind(object(), object(), object())
    except TypeError:
        params = ", ".join(sig.parameters)
        yield Finding(
            f"{snap.target or 'the app'} takes ({params}), not (scope, receive, send)",
            _where(app),
            snap.target or "app",
        )
        return
    call = app if inspect.isfunction(app) or inspect.ismethod(app) else getattr(app, "__call__", None)  # noqa: B004
    if inspect.isfunction(app) and not inspect.iscoroutinefunction(call):
        yield Finding(
            f"{snap.target or 'the app'} is a plain function; an ASGI app must be async (a WSGI app?)",
            _where(app),
            snap.target or "app",
        )


RULES = (signature,)
