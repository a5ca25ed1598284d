"""`csp_nonce.*`: a Content-Security-Policy that actually stops injected scripts, without breaking your own."""

from __future__ import annotations

from collections.abc import Iterator

from chirp.contracts.model import Finding, Severity, levels, rule
from chirp.contracts.rules._headers import has_nonce_or_hash, header_policy, script_sources
from chirp.contracts.snapshot import Snapshot

E, W = Severity.ERROR, Severity.WARNING


@rule(
    "csp_nonce.missing",
    title="No CSP, or inline scripts blocked without a nonce",
    severity=levels(None, W, E),
    hint="Register SecurityHeadersMiddleware and set AppConfig(csp_nonce_enabled=True) when pages use inline scripts.",
)
def missing(snap: Snapshot) -> Iterator[Finding]:
    """Production pages need a CSP; a CSP that blocks the app's own inline scripts needs a nonce."""
    policy = header_policy(snap)
    if not policy.sent or not policy.csp:
        if snap.view_env == "production":
            yield Finding(
                "no Content-Security-Policy is sent in production", policy.location, "Content-Security-Policy"
            )
        return
    sources = script_sources(policy.csp)
    blocks_inline = sources is not None and "'unsafe-inline'" not in sources
    if (
        blocks_inline
        and "inline_scripts" in snap.features
        and not policy.nonce
        and not has_nonce_or_hash(sources or [])
    ):
        yield Finding(
            "the CSP blocks inline scripts, the app emits inline scripts (live/SSE helpers) and no nonce is enabled",
            policy.location,
            "Content-Security-Policy",
        )


@rule(
    "csp_nonce.unsafe_inline",
    title="CSP allows 'unsafe-inline' scripts",
    severity=levels(None, W, E),
    hint="Remove 'unsafe-inline' from script-src and enable csp_nonce_enabled for the scripts you own.",
)
def unsafe_inline(snap: Snapshot) -> Iterator[Finding]:
    """`'unsafe-inline'` lets any injected `<script>` run: the CSP no longer stops XSS."""
    policy = header_policy(snap)
    if not policy.csp:
        return
    sources = script_sources(policy.csp) or []
    if "'unsafe-inline'" in sources and not policy.nonce and not has_nonce_or_hash(sources):
        yield Finding(
            "script-src allows 'unsafe-inline' without a nonce", policy.location, "Content-Security-Policy"
        )


RULES = (missing, unsafe_inline)
