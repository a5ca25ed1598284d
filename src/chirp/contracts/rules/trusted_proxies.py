"""`trusted_proxies.*`: only your own proxies may tell the app who the client is."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from chirp.contracts.model import Finding, Severity, levels, rule
from chirp.contracts.snapshot import Snapshot

E, W = Severity.ERROR, Severity.WARNING


def is_wildcard(entry: str) -> bool:
    if entry.strip() == "*":
        return True
    try:
        return ipaddress.ip_network(entry.strip(), strict=False).prefixlen == 0
    except ValueError:
        return False


@rule(
    "trusted_proxies.wildcard",
    title="Every peer trusted as a proxy",
    severity=levels(W, W, E),
    hint="List your proxies' addresses or networks, e.g. trusted_proxies=('10.0.0.0/8',).",
    tags=("app", "server"),
)
def wildcard(snap: Snapshot) -> Iterator[Finding]:
    """Then any client can forge X-Forwarded-For and escape rate limits and IP allow-lists."""
    entries: list[tuple[str, str]] = []
    if snap.config is not None:
        entries += [("trusted_proxies", e) for e in snap.config.trusted_proxies]
    if snap.server is not None:
        entries += [("trusted_hosts", e) for e in snap.server.trusted_hosts]
    for name, entry in entries:
        if is_wildcard(entry):
            yield Finding(
                f"{name} contains {entry!r}: every peer may set X-Forwarded-For", snap.setting_location, name
            )
            return


RULES = (wildcard,)
