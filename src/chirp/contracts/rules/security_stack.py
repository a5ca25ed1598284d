"""`security_stack.*`: apps that accept writes need sessions, CSRF protection and security headers, in order."""

from __future__ import annotations

from collections.abc import Iterator

from chirp.contracts.model import Finding, Location, Severity, everywhere, levels, rule
from chirp.contracts.snapshot import Snapshot

E, W = Severity.ERROR, Severity.WARNING
STACK = "add_middleware() for each of chirp.secure_stack(config): Session, then CSRF, then SecurityHeaders"


def _first_mutating(snap: Snapshot) -> tuple[str, Location | None]:
    route = snap.mutating_routes[0]
    methods = ",".join(sorted(route.methods))
    return f"{methods} {route.path}", Location.of(route.site)


@rule(
    "security_stack.missing",
    title="Mutating routes without session or CSRF middleware",
    severity=levels(None, W, E),
    hint=f"Wire the secure stack: {STACK}.",
)
def missing(snap: Snapshot) -> Iterator[Finding]:
    """Without CSRF protection any site a user visits can submit forms to yours as them."""
    if not snap.mutating_routes:
        return
    absent = [
        name
        for module, name in (("sessions", "SessionMiddleware"), ("csrf", "CSRFMiddleware"))
        if not snap.middleware_of(module, name)
    ]
    if absent:
        subject, where = _first_mutating(snap)
        count = len(snap.mutating_routes)
        yield Finding(
            f"{count} mutating route(s), e.g. {subject}, but no {' or '.join(absent)} is registered",
            where,
            subject,
        )


@rule(
    "security_stack.headers_missing",
    title="Mutating routes without security headers",
    severity=levels(W, W, E),
    hint="Register SecurityHeadersMiddleware (chirp.secure_stack(config) includes it).",
)
def headers_missing(snap: Snapshot) -> Iterator[Finding]:
    """Framing, MIME sniffing and a missing CSP turn small bugs into clickjacking and XSS."""
    if snap.mutating_routes and not snap.middleware_of("security_headers", "SecurityHeadersMiddleware"):
        subject, where = _first_mutating(snap)
        yield Finding(f"mutating route {subject} is served without SecurityHeadersMiddleware", where, subject)


@rule(
    "security_stack.order",
    title="Secure middleware in the wrong order",
    severity=everywhere(E),
    hint="Register SessionMiddleware before CSRFMiddleware, as chirp.secure_stack(config) does.",
)
def order(snap: Snapshot) -> Iterator[Finding]:
    """CSRF reads the session's token, so the session must wrap it: the other way round every
    unsafe request is refused. (SecurityHeadersMiddleware may sit anywhere: its headers are
    applied to every response, a refusal from an outer middleware included.)"""
    sessions = snap.middleware_of("sessions", "SessionMiddleware")
    csrfs = snap.middleware_of("csrf", "CSRFMiddleware")
    if sessions and csrfs and csrfs[0][0] < sessions[0][0]:
        entry = csrfs[0][1]
        yield Finding(
            "CSRFMiddleware is registered before SessionMiddleware", Location.of(entry.site), "CSRFMiddleware"
        )


RULES = (missing, headers_missing, order)
