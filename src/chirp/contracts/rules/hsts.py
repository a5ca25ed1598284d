"""`hsts.*`: HTTPS sites should tell browsers never to fall back to plain HTTP."""

from __future__ import annotations

from collections.abc import Iterator

from chirp.contracts.model import Finding, Severity, levels, rule
from chirp.contracts.rules._headers import header_policy, max_age
from chirp.contracts.snapshot import Snapshot

W, INFO = Severity.WARNING, Severity.INFO
ONE_YEAR = 31_536_000
MIN_MAX_AGE = 15_552_000  # 180 days


def _serves_tls(snap: Snapshot) -> bool:
    cert, _ = snap.tls_files()
    if snap.server is not None:
        return bool(cert or snap.server.trusted_hosts)
    return bool(cert or (snap.config is not None and snap.config.trusted_proxies))


@rule(
    "hsts.missing",
    title="HTTPS without Strict-Transport-Security",
    severity=levels(None, None, W),
    hint="Set AppConfig(strict_transport_security='max-age=31536000; includeSubDomains').",
)
def missing(snap: Snapshot) -> Iterator[Finding]:
    """Without HSTS the first request of a visit can be downgraded to HTTP and intercepted."""
    if snap.config is None or not _serves_tls(snap):
        return
    policy = header_policy(snap)
    if not (policy.sent and policy.hsts):
        yield Finding(
            "the app is served over TLS (own certificate or trusted proxy) but sends no Strict-Transport-Security",
            policy.location,
            "Strict-Transport-Security",
        )


@rule(
    "hsts.short_max_age",
    title="Strict-Transport-Security max-age too short",
    severity=levels(None, INFO, W),
    hint=f"Use max-age={ONE_YEAR} (one year); short values let the protection lapse between visits.",
)
def short_max_age(snap: Snapshot) -> Iterator[Finding]:
    """An HSTS max-age of minutes or days expires between visits and stops protecting them."""
    policy = header_policy(snap)
    if not (policy.sent and policy.hsts):
        return
    age = max_age(policy.hsts)
    if age is None or age < MIN_MAX_AGE:
        shown = "missing or unparsable" if age is None else f"{age} seconds"
        yield Finding(
            f"Strict-Transport-Security max-age is {shown} (< 180 days)",
            policy.location,
            "Strict-Transport-Security",
        )


RULES = (missing, short_max_age)
