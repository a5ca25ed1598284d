"""`allowed_hosts.*`: a production app must say which Host names it serves."""

from __future__ import annotations

from collections.abc import Iterator

from chirp.contracts.model import Finding, Severity, everywhere, levels, rule
from chirp.contracts.snapshot import Snapshot

E, W = Severity.ERROR, Severity.WARNING


@rule(
    "allowed_hosts.wildcard",
    title="Any Host header accepted",
    severity=levels(None, W, E),
    hint="List your domains: AppConfig(allowed_hosts=('example.com', '.example.com')) or CHIRP_ALLOWED_HOSTS.",
)
def wildcard(snap: Snapshot) -> Iterator[Finding]:
    """With `*` a forged Host header reaches handlers and poisons absolute URLs and caches."""
    if snap.config is not None and "*" in snap.config.allowed_hosts:
        yield Finding(
            "allowed_hosts contains '*': any Host header is accepted", snap.config_location, "allowed_hosts"
        )


@rule(
    "allowed_hosts.empty",
    title="No Host header accepted",
    severity=everywhere(E),
    hint="Give at least one host name in allowed_hosts, e.g. ('localhost', '127.0.0.1') in development.",
)
def empty(snap: Snapshot) -> Iterator[Finding]:
    """An empty list answers every request with 400: the app cannot serve anything."""
    if snap.config is not None and not snap.config.allowed_hosts:
        yield Finding(
            "allowed_hosts is empty: every request will be refused", snap.config_location, "allowed_hosts"
        )


RULES = (wildcard, empty)
