"""`probes.*`: the orchestrator's probes must reach chirp's liveness and readiness handlers.

The paths are the app's `health_path`/`ready_path`, the port the one the server binds (the
container command's `--port`, else the resolved setting), the patience the server's
`startup_timeout`: the same facts `chirp check` judges the app by.
"""

from __future__ import annotations

from collections.abc import Iterator

from chirp.contracts.model import Finding, Severity, levels, rule
from chirp.contracts.rules._deploy import (
    ARTEFACT_TAGS,
    AppContainer,
    bind_port,
    judged,
    startup_timeout,
)
from chirp.contracts.snapshot import Snapshot

E, W = Severity.ERROR, Severity.WARNING


def _kube(snap: Snapshot) -> Iterator[AppContainer]:
    return (a for a in judged(snap) if a.container.platform == "kubernetes")


def _paths(snap: Snapshot) -> tuple[str, str] | None:
    if snap.config is not None:
        return snap.config.health_path, snap.config.ready_path
    if snap.server is not None:
        return snap.server.health_path, snap.server.ready_path
    return None


@rule(
    "probes.missing",
    title="A container has no liveness or readiness probe",
    severity=levels(None, W, E),
    hint="Add livenessProbe (httpGet on health_path) and readinessProbe (httpGet on ready_path) to the container.",
    tags=ARTEFACT_TAGS,
)
def missing(snap: Snapshot) -> Iterator[Finding]:
    """Without readiness a pod gets traffic before startup finishes and while it drains; without
    liveness a wedged process is never restarted."""
    paths = _paths(snap)
    for app in _kube(snap):
        absent = [name for name in ("liveness", "readiness") if name not in app.container.probes]
        if absent and paths is not None:
            wanted = " and ".join(f"{n}Probe on {p}" for n, p in zip(("liveness", "readiness"), paths, strict=True)
                                  if n in absent)  # fmt: skip
            yield Finding(
                f"container {app.container.name!r} of {app.container.workload} has no {wanted}",
                app.container.at,
                app.container.name,
            )


@rule(
    "probes.path",
    title="A probe asks a path the app does not serve as a probe",
    severity=levels(W, E, E),
    hint="Point livenessProbe at the app's health_path and readinessProbe at its ready_path (AppConfig/CHIRP_HEALTH_PATH, CHIRP_READY_PATH).",
    tags=ARTEFACT_TAGS,
)
def path(snap: Snapshot) -> Iterator[Finding]:
    """A probe on a path chirp does not answer gets 404: the pod never becomes ready, or is restarted forever."""
    paths = _paths(snap)
    if paths is None:
        return
    wanted = dict(zip(("liveness", "readiness", "startup"), (paths[0], paths[1], paths[0]), strict=True))
    for app in _kube(snap):
        for name, probe in app.container.probes.items():
            if probe.kind != "http" or probe.path in paths:
                continue
            served = "a route of the app" if snap.claims(probe.path or "/") else "no route (404)"
            yield Finding(
                f"{name}Probe of {app.container.name!r} asks {probe.path}, which is {served}, "
                f"not the app's probe {wanted[name]}",
                probe.at,
                f"{name}Probe",
            )


@rule(
    "probes.port",
    title="A probe asks a port or scheme the server does not serve",
    severity=levels(W, E, E),
    hint="Use the port the server binds (or the name of the containerPort that declares it), and scheme HTTPS only when the server serves TLS.",
    tags=ARTEFACT_TAGS,
)
def port(snap: Snapshot) -> Iterator[Finding]:
    """A probe on the wrong port is refused: the pod is never ready, or restarted in a loop."""
    tls = bool(snap.tls_files()[0])
    for app in _kube(snap):
        bound = bind_port(snap, app.launch)
        for name, probe in app.container.probes.items():
            if probe.kind not in ("http", "tcp", "grpc") or bound is None:
                continue
            label = f"{name}Probe of {app.container.name!r}"
            target = probe.port
            if isinstance(target, str) and not target.isdigit():
                if target not in app.container.ports:
                    yield Finding(f"{label} names port {target!r}, which the container does not declare",
                                  probe.at, f"{name}Probe")  # fmt: skip
                    continue
                target = app.container.ports[target]
            if target is not None and int(target) != bound:
                yield Finding(
                    f"{label} asks port {target}; the server binds {bound}", probe.at, f"{name}Probe"
                )
            elif probe.kind == "http" and (probe.scheme == "HTTPS") != tls:
                served = "serves TLS" if tls else "serves plain HTTP"
                yield Finding(
                    f"{label} uses scheme {probe.scheme}; the server {served}", probe.at, f"{name}Probe"
                )


@rule(
    "probes.readiness_on_liveness",
    title="Readiness probes the liveness path",
    severity=levels(W, E, E),
    hint="Point readinessProbe at ready_path: it answers 503 until startup finishes, while a health check fails and while draining.",
    tags=ARTEFACT_TAGS,
)
def readiness_on_liveness(snap: Snapshot) -> Iterator[Finding]:
    """The liveness path always answers 200, so the pod takes traffic before it is ready and while it drains."""
    paths = _paths(snap)
    for app in _kube(snap):
        probe = app.container.probes.get("readiness")
        if paths is not None and probe is not None and probe.kind == "http" and probe.path == paths[0]:
            yield Finding(
                f"readinessProbe of {app.container.name!r} asks the liveness path {paths[0]}",
                probe.at,
                "readinessProbe",
            )


@rule(
    "probes.liveness_on_readiness",
    title="Liveness probes the readiness path",
    severity=levels(W, E, E),
    hint="Point livenessProbe at health_path: a restart cannot fix a database outage, and /ready fails on purpose while draining.",
    tags=ARTEFACT_TAGS,
)
def liveness_on_readiness(snap: Snapshot) -> Iterator[Finding]:
    """The readiness path runs the health checks (the database's among them): when the database is
    down every pod is restarted at once, and a draining pod is killed."""
    paths = _paths(snap)
    database = (snap.config is not None and bool(snap.config.database_url)) or bool(snap.health_checks)
    for app in _kube(snap):
        for name in ("liveness", "startup"):
            probe = app.container.probes.get(name)
            if paths is None or probe is None or probe.kind != "http" or probe.path != paths[1]:
                continue
            depends = " and so on the database and every health check" if database else ""
            yield Finding(
                f"{name}Probe of {app.container.name!r} asks the readiness path {paths[1]}{depends}",
                probe.at,
                f"{name}Probe",
            )


@rule(
    "probes.startup",
    title="Liveness gives up before the app can finish starting",
    severity=levels(None, W, W),
    hint="Add a startupProbe on health_path whose failureThreshold × periodSeconds covers startup_timeout, or raise the liveness initialDelaySeconds.",
    tags=ARTEFACT_TAGS,
)
def startup(snap: Snapshot) -> Iterator[Finding]:
    """The server listens only once lifespan startup has finished (up to `startup_timeout`); a
    liveness probe that fails before then restarts the pod in a loop."""
    needed = startup_timeout(snap)
    for app in _kube(snap):
        probes = app.container.probes
        probe = probes.get("startup") or probes.get("liveness")
        if needed is None or probe is None or probe.budget >= needed:
            continue
        kind = "startupProbe" if "startup" in probes else "livenessProbe"
        yield Finding(
            f"{kind} of {app.container.name!r} gives up after {probe.budget:g}s "
            f"(initialDelaySeconds + periodSeconds × failureThreshold); startup may take {needed:g}s (startup_timeout)",
            probe.at,
            kind,
        )


RULES = (missing, path, port, readiness_on_liveness, liveness_on_readiness, startup)
