"""`capacity.*`: the worker count must fit the container's CPU and memory limits.

The workers are those the container command states (`chirp run APP --workers 4`,
`pounce serve --workers 4`), else the resolved setting of the app; `0` means one per CPU the
container may use, which pounce reads from the CPU limit (its cgroup quota).
"""

from __future__ import annotations

from collections.abc import Iterator

from chirp.contracts.artefacts.units import mebibytes
from chirp.contracts.model import Finding, Location, Severity, levels, rule
from chirp.contracts.rules._deploy import (
    ARTEFACT_TAGS,
    AppContainer,
    configured_workers,
    cpus_seen,
    judged,
    where,
)
from chirp.contracts.snapshot import Snapshot

E, W = Severity.ERROR, Severity.WARNING
# A floor for one pounce process serving a small chirp app (measured idle RSS about 30 MiB), with
# room for request buffers; the supervisor of a multi-worker launch is one more process.
PROCESS_MEMORY = 64 * 2**20
OVERSUBSCRIPTION = 2  # workers per CPU beyond which more processes only add switching


def _workers_at(snap: Snapshot, app: AppContainer, stated: bool) -> Location | None:
    return where(app) if stated else snap.setting_location


def _source(stated: bool) -> str:
    return "the container command" if stated else "the app's settings"


def effective_workers(snap: Snapshot, app: AppContainer) -> int | None:
    """The workers the container will run (None: unbounded, 0 with no CPU limit)."""
    configured, _ = configured_workers(snap, app.launch)
    if configured > 0:
        return configured
    limit = app.container.cpu_limit
    return cpus_seen(limit.value) if limit is not None else None


@rule(
    "capacity.workers_cpu",
    title="More workers than the container's CPU limit can run",
    severity=levels(None, W, W),
    hint="Run at most twice as many workers as the CPU limit (or workers=0, one per CPU), or raise resources.limits.cpu.",
    tags=ARTEFACT_TAGS,
)
def workers_cpu(snap: Snapshot) -> Iterator[Finding]:
    """Workers beyond the CPU quota are throttled together: latency grows and probes time out under load."""
    for app in judged(snap):
        limit = app.container.cpu_limit
        configured, stated = configured_workers(snap, app.launch)
        if limit is None or configured <= 0:
            continue
        cpus = cpus_seen(limit.value)
        if configured > OVERSUBSCRIPTION * cpus:
            yield Finding(
                f"{app.container.workload}: {configured} workers ({_source(stated)}) for a CPU limit of {limit.value:g}",
                _workers_at(snap, app, stated) or limit.at,
                "workers",
            )


@rule(
    "capacity.workers_unbounded",
    title="workers=0 with no CPU limit",
    severity=levels(None, W, E),
    hint="Set resources.limits.cpu (Compose: cpus) or a fixed worker count.",
    tags=ARTEFACT_TAGS,
)
def workers_unbounded(snap: Snapshot) -> Iterator[Finding]:
    """With no CPU limit, one worker per CPU means one per CPU of whatever node the pod lands on:
    a 64-core node starts 64 processes in a pod sized for a few."""
    for app in judged(snap):
        configured, stated = configured_workers(snap, app.launch)
        if configured == 0 and app.container.cpu_limit is None:
            yield Finding(
                f"{app.container.workload}: workers=0 (one per CPU, {_source(stated)}) and no CPU limit: the worker count is the node's CPU count",
                where(app) if stated else app.container.at,
                "workers",
            )


@rule(
    "capacity.memory",
    title="The memory limit cannot hold the workers",
    severity=levels(None, W, E),
    hint="Raise resources.limits.memory (Compose: deploy.resources.limits.memory) or run fewer workers.",
    tags=ARTEFACT_TAGS,
)
def memory(snap: Snapshot) -> Iterator[Finding]:
    """Every worker is a process with its own copy of the app; past the limit the kernel kills
    them (OOMKilled) and the pod restarts under load."""
    for app in judged(snap):
        limit = app.container.memory_limit
        workers = effective_workers(snap, app)
        if limit is None or workers is None:
            continue
        processes = workers + (1 if workers > 1 else 0)
        needed = processes * PROCESS_MEMORY
        if limit.value < needed:
            yield Finding(
                f"{app.container.workload}: memory limit {mebibytes(limit.value)} for {workers} worker(s) "
                f"({processes} processes need at least {mebibytes(needed)})",
                limit.at,
                "memory",
            )


RULES = (workers_cpu, workers_unbounded, memory)
