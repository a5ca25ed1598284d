"""`deploy_metrics.*`: the metrics endpoint must be reachable, and production should have one."""

from __future__ import annotations

from collections.abc import Iterator

from chirp.contracts.model import Finding, Location, Severity, everywhere, levels, rule
from chirp.contracts.snapshot import Snapshot

E, INFO = Severity.ERROR, Severity.INFO


@rule(
    "deploy_metrics.collision",
    title="A route claims the metrics path",
    severity=everywhere(E),
    hint="Rename the route or move metrics with AppConfig(metrics_path=...).",
)
def collision(snap: Snapshot) -> Iterator[Finding]:
    """Prometheus would scrape your handler instead of the metrics, and dashboards go blank."""
    enabled, path = _metrics(snap)
    if not enabled:
        return
    for route in snap.claims(path):
        yield Finding(
            f"route {route.path!r} ({route.name}) claims metrics_path {path!r}", Location.of(route.site), path
        )


@rule(
    "deploy_metrics.disabled",
    title="Metrics off in production",
    severity=levels(None, None, INFO),
    hint="Set metrics_enabled=True (or `chirp run --metrics`) so request rates and errors are visible.",
)
def disabled(snap: Snapshot) -> Iterator[Finding]:
    """Without metrics an outage is noticed by users before it is noticed by you."""
    if snap.config is not None and not _metrics(snap)[0]:
        yield Finding("metrics are disabled", snap.setting_location, "metrics_enabled")


def _metrics(snap: Snapshot) -> tuple[bool, str]:
    """(enabled, path) as the server will serve them; the server, not the AppConfig, serves metrics."""
    source = snap.server if snap.server is not None else snap.config
    if source is None:
        return False, ""
    return source.metrics_enabled, source.metrics_path


RULES = (collision, disabled)
