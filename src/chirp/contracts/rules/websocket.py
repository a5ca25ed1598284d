"""`websocket.*`: WebSocket handshakes from other sites are refused."""

from __future__ import annotations

from collections.abc import Iterator

from chirp.contracts.model import Finding, Location, Severity, levels, rule
from chirp.contracts.snapshot import Snapshot

E, W = Severity.ERROR, Severity.WARNING


@rule(
    "websocket.origin_unchecked",
    title="A WebSocket route accepts handshakes from any site",
    severity=levels(None, W, E),
    hint=(
        "Register CSRFMiddleware (chirp.secure_stack(config)), which refuses a handshake whose Origin "
        "names another site, and keep check_origin=True on @app.websocket routes."
    ),
)
def origin_unchecked(snap: Snapshot) -> Iterator[Finding]:
    """Any site's page can open the socket with the user's cookies and read the replies (cross-site WebSocket hijacking)."""
    routes = [r for r in snap.routes if r.websocket]
    if not routes:
        return
    guarded = bool(snap.middleware_of("csrf", "CSRFMiddleware"))
    for route in routes:
        if not guarded:
            reason = "no CSRFMiddleware checks the Origin of its handshakes"
        elif not route.check_origin:
            reason = "it is registered with check_origin=False"
        else:
            continue
        yield Finding(f"WebSocket route {route.path}: {reason}", Location.of(route.site), route.path)


RULES = (origin_unchecked,)
