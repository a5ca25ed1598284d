"""`deploy_debug.*`: no debug pages or debug logging where real users and data are."""

from __future__ import annotations

from collections.abc import Iterator

from chirp.contracts.model import Finding, Severity, levels, rule
from chirp.contracts.snapshot import Snapshot

E, W, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO


@rule(
    "deploy_debug.enabled",
    title="Debug mode on",
    severity=levels(None, W, E),
    hint="Set debug=False outside development (or unset CHIRP_DEBUG).",
)
def enabled(snap: Snapshot) -> Iterator[Finding]:
    """Debug pages show tracebacks, source and local variables to whoever triggers an error."""
    if snap.config is not None and snap.config.debug:
        yield Finding(
            f"debug=True in {snap.view_env}: error pages expose tracebacks", snap.config_location, "debug"
        )


@rule(
    "deploy_debug.log_level",
    title="Debug logging",
    severity=levels(None, INFO, W),
    hint="Use log_level='info' (or CHIRP_LOG_LEVEL=info) outside development.",
)
def log_level(snap: Snapshot) -> Iterator[Finding]:
    """Debug logs record headers, bodies and tokens that should not sit in a log store."""
    if snap.config is not None and snap.config.log_level.lower() == "debug":
        yield Finding(f"log_level='debug' in {snap.view_env}", snap.config_location, "log_level")


RULES = (enabled, log_level)
