"""`introspection.*`: pounce's `/_pounce/info` endpoint must not face the internet."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from chirp.contracts.model import Finding, Severity, levels, rule
from chirp.contracts.snapshot import LOOPBACK_HOSTS, Snapshot

E, W = Severity.ERROR, Severity.WARNING


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@rule(
    "introspection.public",
    title="/_pounce/info reachable beyond loopback",
    severity=levels(W, E, E),
    hint="Turn info_endpoint off, or bind to 127.0.0.1 / a private admin network and reach it through a tunnel.",
    tags=("app", "server"),
)
def public(snap: Snapshot) -> Iterator[Finding]:
    """The endpoint is served before the app and its middleware, so no chirp auth protects it."""
    server = snap.server
    if server is None or not server.info_endpoint or server.uds:
        return
    if not is_loopback(server.host):
        yield Finding(
            f"info_endpoint is on and the server binds {server.host}: /_pounce/info is public",
            snap.setting_location,
            "info_endpoint",
        )


RULES = (public,)
