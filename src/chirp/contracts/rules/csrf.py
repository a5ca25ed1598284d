"""`csrf.*`: every way out of CSRF protection is a decision someone wrote down."""

from __future__ import annotations

from collections.abc import Iterator

from chirp.contracts.model import Finding, Location, Severity, levels, rule
from chirp.contracts.snapshot import Snapshot

INFO, W = Severity.INFO, Severity.WARNING


@rule(
    "csrf.exempt",
    title="A mutating route is exempt from CSRF protection",
    severity=levels(INFO, W, W),
    hint=(
        'Drop the exemption (csrf="origin" serves fetch() clients without a token), or authenticate '
        'the route another way (a signed webhook) and say so: app.suppress("csrf.exempt", reason=...).'
    ),
)
def exempt(snap: Snapshot) -> Iterator[Finding]:
    """An exempt route accepts a form any other site submits with the user's cookies."""
    for route in snap.mutating_routes:
        if route.csrf == "exempt":
            methods = ",".join(sorted(route.methods))
            yield Finding(
                f'{methods} {route.path} is registered with csrf="exempt"',
                Location.of(route.site),
                route.path,
            )
    for _, entry in snap.middleware_of("csrf", "CSRFMiddleware"):
        for path in sorted(getattr(entry.middleware, "exempt_paths", ())):
            yield Finding(f"CSRFMiddleware(exempt_paths=...) exempts {path}", Location.of(entry.site), path)


RULES = (exempt,)
