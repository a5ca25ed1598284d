"""ACME's rules for every chirp service: who owns a workload, and metrics in production."""

from __future__ import annotations

from collections.abc import Iterator

from chirp.contracts import Finding, Severity, Snapshot, levels, rule

OWNER_LABEL = "app.kubernetes.io/owner"
DOCS = "https://platform.acme.example/chirp-rules"


@rule(
    "acme.owner_label",
    title="A workload without an owner",
    severity=levels(None, Severity.WARNING, Severity.ERROR),
    hint=f"Add the label {OWNER_LABEL}: <team> to the pod template.",
    docs=f"{DOCS}#owner_label",
    tags=("artefact",),
)
def owner_label(snap: Snapshot) -> Iterator[Finding]:
    """On-call needs to know which team to page for a pod."""
    artefacts = snap.artefacts
    for container in artefacts.containers if artefacts is not None else ():
        if container.platform == "kubernetes" and OWNER_LABEL not in container.labels:
            yield Finding(
                f"{container.workload} has no {OWNER_LABEL} label", container.pod_at, container.workload
            )


@rule(
    "acme.request_timeout",
    title="Request timeout above the load balancer's",
    severity=levels(None, Severity.WARNING, Severity.ERROR),
    hint="Keep request_timeout at or under 60 seconds, the load balancer's idle timeout.",
    docs=f"{DOCS}#request_timeout",
)
def request_timeout(snap: Snapshot) -> Iterator[Finding]:
    """The load balancer gives up after 60 s: a slower handler only holds a worker for nothing."""
    if snap.config is not None and snap.config.request_timeout > 60:
        yield Finding(
            f"request_timeout is {snap.config.request_timeout:g}s", snap.config_location, "request_timeout"
        )


RULES = (owner_label, request_timeout)
