"""`live.*` rules about the edge of a deployed instance (`chirp check --url`): its certificate,
its plain-HTTP port and what it exposes. Silent when nothing of the kind was observed."""

from __future__ import annotations

from collections.abc import Iterator

from chirp.contracts.model import Finding, Severity, everywhere, levels, rule
from chirp.contracts.snapshot import Snapshot

E, W = Severity.ERROR, Severity.WARNING
TAGS = ("live",)
EXPIRY_WARNING_DAYS = 14  # as tls.files: time to renew before clients refuse the certificate
REDIRECTS = (301, 302, 307, 308)


@rule(
    "live.tls_certificate",
    title="The certificate is untrusted, mismatched or about to expire",
    severity=everywhere(E),
    hint="Serve the full chain of a certificate for this host name from a trusted CA, and renew it well before it expires.",
    tags=TAGS,
)
def tls_certificate(snap: Snapshot) -> Iterator[Finding]:
    """Clients refuse a certificate they cannot verify or that has expired: the site is down for them."""
    run = snap.live
    tls = run.tls if run is not None else None
    if run is None or tls is None:
        return
    where = snap.config_location
    if not tls.verified:
        yield Finding(f"{run.url}: the certificate does not verify: {tls.error}", where, "certificate")
    if tls.days_left is not None and tls.days_left < 0:
        yield Finding(f"{run.url}: the certificate expired on {tls.not_after}", where, "expiry")
    elif tls.days_left is not None and tls.days_left < EXPIRY_WARNING_DAYS:
        yield Finding(
            f"{run.url}: the certificate expires in {tls.days_left:.1f} days ({tls.not_after})",
            where,
            "expiry",
            severity=W,
        )


@rule(
    "live.https_redirect",
    title="Plain HTTP is served instead of redirected",
    severity=levels(None, W, E),
    hint="Answer every plain-HTTP request with a 301/308 redirect to the same URL over https (at the load balancer or ingress).",
    tags=TAGS,
)
def https_redirect(snap: Snapshot) -> Iterator[Finding]:
    """A page served over plain HTTP can be read and rewritten on the way, and strips HSTS's protection
    from a first visit."""
    run = snap.live
    ex = run.get("http") if run is not None else None
    if ex is None or ex.status is None:  # nothing listens for plain HTTP: nothing to downgrade to
        return
    location = ex.header("location") or ""
    if ex.status in REDIRECTS and location.startswith("https://"):
        return
    outcome = f"redirects to {location}" if ex.status in REDIRECTS else f"answers {ex.status}"
    yield Finding(f"plain HTTP GET / {outcome}, not a redirect to https", snap.config_location, "http")


@rule(
    "live.introspection",
    title="/_pounce/info answers from outside",
    severity=levels(W, E, E),
    hint="Turn info_endpoint off, or bind it to loopback or an admin network the public edge does not route to.",
    tags=TAGS,
)
def introspection(snap: Snapshot) -> Iterator[Finding]:
    """It is served before the app's middleware: its configuration, version and worker details are public."""
    run = snap.live
    ex = run.get("info") if run is not None else None
    if ex is not None and ex.status == 200:
        yield Finding(f"GET {ex.path} answered 200 at {run.url if run else ''}", snap.setting_location,
                      "info_endpoint")  # fmt: skip


RULES = (tls_certificate, https_redirect, introspection)
