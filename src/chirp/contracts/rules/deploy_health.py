"""`deploy_health.*`: the liveness and readiness probes must reach chirp's own handlers."""

from __future__ import annotations

from collections.abc import Iterator

from chirp.contracts.model import Finding, Location, Severity, everywhere, rule
from chirp.contracts.snapshot import Snapshot

E = Severity.ERROR


@rule(
    "deploy_health.collision",
    title="A route claims a probe path",
    severity=everywhere(E),
    hint="Rename the route, or move the probe with AppConfig(health_path=..., ready_path=...).",
)
def collision(snap: Snapshot) -> Iterator[Finding]:
    """A user route on /health or /ready wins over the probe, so the orchestrator probes your handler."""
    if snap.config is None:
        return
    for field, path in (("health_path", snap.config.health_path), ("ready_path", snap.config.ready_path)):
        for route in snap.claims(path):
            yield Finding(
                f"route {route.path!r} ({route.name}) claims {field} {path!r}; the probe steps aside for it",
                Location.of(route.site),
                path,
            )


@rule(
    "deploy_health.same_path",
    title="Liveness and readiness share a path",
    severity=everywhere(E),
    hint="Use two paths, e.g. health_path='/health' and ready_path='/ready'.",
)
def same_path(snap: Snapshot) -> Iterator[Finding]:
    """A failing dependency would then restart healthy pods instead of taking them out of rotation."""
    cfg = snap.config
    if cfg is not None and cfg.health_path == cfg.ready_path:
        yield Finding(
            f"health_path and ready_path are both {cfg.health_path!r}", snap.config_location, "ready_path"
        )


RULES = (collision, same_path)
