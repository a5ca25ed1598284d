"""`bind.*`: pounce can listen where it is told to."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from chirp.contracts.model import Finding, Severity, everywhere, rule
from chirp.contracts.snapshot import Snapshot

E = Severity.ERROR


def resolves(host: str) -> bool:
    """True for an IP literal or a name this machine can resolve."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        pass
    import socket  # only for a name: the import costs more than the rules of a check

    try:
        socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        return True
    except (socket.gaierror, UnicodeError):
        return False


@rule(
    "bind.address",
    title="Bind address does not parse",
    severity=everywhere(E),
    hint="Use an IP address (127.0.0.1, 0.0.0.0, ::) or a name this machine resolves.",
    tags=("server",),
)
def address(snap: Snapshot) -> Iterator[Finding]:
    """A host that does not resolve makes the server exit before it listens."""
    server = snap.server
    if server is not None and not server.uds and not resolves(server.host):
        yield Finding(
            f"host {server.host!r} is neither an IP address nor a resolvable name",
            snap.setting_location,
            "host",
        )


@rule(
    "bind.unavailable",
    title="Cannot bind the listening socket",
    severity=everywhere(E),
    hint="Stop the process holding the port, pick another --port/--uds, or run with the needed privilege.",
    tags=("server",),
)
def unavailable(snap: Snapshot) -> Iterator[Finding]:
    """Bound the way pounce binds (SO_REUSEADDR), so a port in TIME_WAIT does not count as taken."""
    server = snap.server
    if server is None:
        return
    if server.uds:
        from pounce.sockets import unix_problem

        problem = unix_problem(server.uds)
        if problem:
            yield Finding(f"cannot bind unix:{server.uds}: {problem}", snap.setting_location, "uds")
        return
    if not resolves(server.host):
        return
    from pounce.sockets import BindError, bind_socket

    try:
        bind_socket(server).close()
    except BindError as exc:
        yield Finding(str(exc), snap.setting_location, "port")
    except OSError as exc:
        yield Finding(
            f"cannot bind {server.host}:{server.port}: {exc.strerror or exc}", snap.setting_location, "port"
        )


RULES = (address, unavailable)
