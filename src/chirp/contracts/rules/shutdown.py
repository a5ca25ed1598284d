"""`shutdown.*`: a rollout must let the server drain: SIGTERM reaches it and it gets time to finish.

The drain is the server's `shutdown_timeout` (after any preStop pause); the platform's grace
period is `terminationGracePeriodSeconds` (Kubernetes, 30 s by default) or `stop_grace_period`
(Compose, 10 s by default).
"""

from __future__ import annotations

from collections.abc import Iterator

from chirp.contracts.model import Finding, Severity, levels, rule
from chirp.contracts.rules._deploy import (
    ARTEFACT_TAGS,
    app_containers,
    artefacts,
    launches,
    shutdown_timeout,
)
from chirp.contracts.snapshot import Snapshot

E, W = Severity.ERROR, Severity.WARNING
DRAIN_SIGNALS = frozenset({"SIGTERM", "TERM", "15", "SIGINT", "INT", "2"})


@rule(
    "shutdown.grace_period",
    title="The platform kills the server before it has drained",
    severity=levels(None, W, E),
    hint="Set terminationGracePeriodSeconds (Compose: stop_grace_period) above shutdown_timeout plus the preStop pause.",
    tags=ARTEFACT_TAGS,
)
def grace_period(snap: Snapshot) -> Iterator[Finding]:
    """When the grace period ends the container gets SIGKILL: requests still in flight are cut
    and shutdown hooks never run."""
    drain = shutdown_timeout(snap)
    if drain is None:
        return
    for app in app_containers(snap):
        container = app.container
        pause = container.pre_stop_pause.value if container.pre_stop_pause is not None else 0.0
        needed = drain + pause
        setting = "stop_grace_period" if container.platform == "compose" else "terminationGracePeriodSeconds"
        if container.grace_period is not None:
            grace, at, stated = container.grace_period.value, container.grace_period.at, ""
        else:
            grace, at, stated = container.grace_default, container.pod_at or container.at, " (the default)"
        if grace > needed:
            continue
        parts = f"shutdown_timeout {drain:g}s" + (f" + preStop pause {pause:g}s" if pause else "")
        yield Finding(
            f"{container.workload}: {setting} is {grace:g}s{stated}, not more than the drain ({parts})",
            at,
            setting,
        )


@rule(
    "shutdown.prestop",
    title="No preStop pause behind a Service",
    severity=levels(None, W, E),
    hint="Add lifecycle.preStop with a pause of a few seconds (sleep: {seconds: 5}, or exec: sleep 5) so endpoints update before SIGTERM.",
    tags=ARTEFACT_TAGS,
)
def prestop(snap: Snapshot) -> Iterator[Finding]:
    """Removing a terminating pod from Service endpoints and load balancers takes seconds; a server
    that stops listening at once refuses the requests still routed to it."""
    art = artefacts(snap)
    if art is None:
        return
    for app in app_containers(snap):
        container = app.container
        if container.platform != "kubernetes" or container.pre_stop_pause is not None:
            continue
        service = next((s for s in art.services if s.selects(container)), None)
        if service is not None:
            yield Finding(
                f"container {container.name!r} of {container.workload} is behind Service {service.name!r} "
                "and has no preStop pause",
                container.at,
                "preStop",
            )


@rule(
    "shutdown.signal",
    title="SIGTERM does not reach the server",
    severity=levels(W, E, E),
    hint='Use the exec form (CMD ["chirp", "run", ...]), `exec` the server from a wrapper script, and keep STOPSIGNAL SIGTERM.',
    tags=ARTEFACT_TAGS,
)
def signal(snap: Snapshot) -> Iterator[Finding]:
    """A shell as the main process may not pass SIGTERM on: the server never drains and is killed
    at the end of the grace period, cutting every request in flight."""
    art = artefacts(snap)
    if art is None:
        return
    seen = set()
    for image in art.images:
        command = image.command
        if command is not None and not command.exec_form:
            seen.add(command.at)
            yield Finding(
                f"{command.origin} uses the shell form: /bin/sh, not the server, is the main process",
                command.at,
                command.origin,
            )
        if image.stop_signal is not None and image.stop_signal.value.upper() not in DRAIN_SIGNALS:
            yield Finding(f"STOPSIGNAL {image.stop_signal.value}: the server drains on SIGTERM",
                          image.stop_signal.at, "STOPSIGNAL")  # fmt: skip
    for command, launch in launches(snap):
        if launch.shell != "shell" or command.at in seen:
            continue
        yield Finding(
            f"{command.origin} runs the server from a shell without `exec`: the shell stays the main process",
            command.at,
            command.origin,
        )
    for app in app_containers(snap):
        stop = app.container.stop_signal
        if stop is not None and stop.value.upper() not in DRAIN_SIGNALS:
            yield Finding(f"stop_signal {stop.value}: the server drains on SIGTERM", stop.at, "stop_signal")


@rule(
    "shutdown.reload",
    title="Auto-reload in a deployed container",
    severity=levels(None, E, E),
    hint="Drop --reload from the container command (and run chirp run with --production).",
    tags=ARTEFACT_TAGS,
)
def reload(snap: Snapshot) -> Iterator[Finding]:
    """The reloader watches files and restarts one process: no workers, no graceful drain, and
    every change in a mounted volume restarts the server."""
    for command, launch in launches(snap):
        if launch.stated("reload"):
            yield Finding(f"{command.origin} runs `{launch.tool} ... --reload`", command.at, "--reload")


RULES = (grace_period, prestop, signal, reload)
