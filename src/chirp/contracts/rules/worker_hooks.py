"""`worker_hooks.*`: worker lifecycle hooks only run in async workers."""

from __future__ import annotations

from collections.abc import Iterator

from chirp.contracts.model import Finding, Location, Severity, levels, rule
from chirp.contracts.snapshot import Snapshot
from pounce.workers import effective_worker_mode

E, W = Severity.ERROR, Severity.WARNING


def _hook_location(fn: object) -> Location | None:
    code = getattr(fn, "__code__", None)
    return Location(code.co_filename, code.co_firstlineno) if code is not None else None


@rule(
    "worker_hooks.sync_mode",
    title="Worker hooks with sync workers",
    severity=levels(W, E, E),
    hint="Set worker_mode='async' (AppConfig or --worker-mode async) when you register worker hooks.",
    tags=("app", "server"),
)
def sync_mode(snap: Snapshot) -> Iterator[Finding]:
    """Sync workers send no worker lifecycle scopes, so the hooks (and what they create) never run."""
    if not snap.worker_hooks:
        return
    mode = snap.worker_mode()
    if effective_worker_mode(mode) != "sync":
        return
    why = (
        "worker_mode='sync'"
        if mode == "sync"
        else "worker_mode='auto' resolves to sync on free-threaded Python"
    )
    hook = snap.worker_hooks[0]
    name = getattr(hook, "__name__", "hook")
    yield Finding(
        f"{len(snap.worker_hooks)} worker lifecycle hook(s) registered (e.g. {name}) but {why}: they will never run",
        _hook_location(hook) or snap.config_location,
        "worker_mode",
    )


RULES = (sync_mode,)
