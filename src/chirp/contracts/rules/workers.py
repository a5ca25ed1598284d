"""`workers.*`: the worker count must suit the machine and the app's in-process state."""

from __future__ import annotations

from collections.abc import Iterator

from chirp.contracts.model import Finding, Severity, everywhere, levels, rule
from chirp.contracts.snapshot import Snapshot
from pounce.workers import available_cpus

E, W = Severity.ERROR, Severity.WARNING
FD_HEADROOM = 64  # descriptors kept for listening sockets, logs, files and pools


@rule(
    "workers.single_with_state",
    title="In-process realtime state with several workers",
    severity=levels(W, W, E),
    hint="Run one worker, or use a shared backplane (RedisBackplane) so app.emit reaches every worker.",
)
def single_with_state(snap: Snapshot) -> Iterator[Finding]:
    """Each worker has its own in-process bus: an event emitted in one never reaches clients of another."""
    if "realtime" not in snap.features or "in_process_backplane" not in snap.features:
        return
    count = snap.worker_count()
    if count > 1:
        yield Finding(
            f"signals/realtime use the in-process backplane but {count} workers will run",
            snap.setting_location,
            "workers",
        )


@rule(
    "workers.count",
    title="More workers than the machine can run",
    severity=everywhere(W),
    hint="Use workers=0 (one per available CPU) or a count up to twice the CPUs.",
    tags=("server",),
)
def count(snap: Snapshot) -> Iterator[Finding]:
    """Far more processes than CPUs only add memory and context switches, not throughput."""
    workers = snap.worker_count()
    cpus = available_cpus()
    if workers > 2 * cpus:
        yield Finding(f"{workers} workers for {cpus} available CPU(s)", snap.setting_location, "workers")


@rule(
    "workers.max_connections",
    title="max_connections above the file-descriptor limit",
    severity=levels(W, W, E),
    hint="Lower max_connections or raise the limit (ulimit -n / LimitNOFILE) above it.",
    tags=("server",),
)
def max_connections(snap: Snapshot) -> Iterator[Finding]:
    """Past the descriptor limit accept() fails and the worker stops taking connections."""
    limit = snap.server.max_connections if snap.server is not None else None
    if limit is None:
        return
    import resource  # POSIX only, and only needed when a limit is configured

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and limit > soft - FD_HEADROOM:
        yield Finding(
            f"max_connections={limit} but each worker may open only {soft} files",
            snap.setting_location,
            "max_connections",
        )


RULES = (single_with_state, count, max_connections)
