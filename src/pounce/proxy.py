"""Trusted reverse proxies: which `X-Forwarded-For` / `X-Forwarded-Proto` to believe.

Forwarded headers are only read when the socket peer is one of `trusted_hosts`; anyone
else could have written them. The client is then the entry `forwarded_for_trusted_hops`
from the right of `X-Forwarded-For` (each trusted proxy appends the address it saw), and
the scheme comes from `X-Forwarded-Proto` counted the same way. With no trusted hosts
the headers are never looked at.

The access log keeps the raw socket peer; the scope's `client` (and so the rate limiter
and `request.client`) gets the resolved one.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = tuple[str, int]

_SCHEMES = frozenset({"http", "https"})


def parse_networks(entries: Iterable[str]) -> tuple[tuple[IPNetwork, ...], bool]:
    """`(networks, trust_everyone)` from IPs, CIDRs and `*`; raises ValueError on a bad entry."""
    networks: list[IPNetwork] = []
    everyone = False
    for entry in entries:
        entry = entry.strip()
        if entry == "*":
            everyone = True
            continue
        networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
    return tuple(networks), everyone


def parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP from a forwarded entry (`1.2.3.4`, `1.2.3.4:5678`, `[::1]:80`, `::1`), or None."""
    value = value.strip().strip('"')
    if value.startswith("["):
        value = value[1 : value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value.partition("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _entries(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> list[str]:
    """Every comma-separated entry of every `name` header, in order."""
    values: list[str] = []
    for key, value in headers:
        if key.lower() == name:
            values.extend(p.strip() for p in value.decode("latin-1").split(","))
    return values


def _pick(entries: list[str], hops: int) -> str:
    """The entry `hops` from the right; the leftmost one when there are fewer."""
    return entries[-min(hops, len(entries))]


class ProxyTrust:
    """Resolve the real client and scheme of a request that may have come through proxies."""

    __slots__ = ("everyone", "hops", "networks")

    def __init__(self, trusted_hosts: Iterable[str] = (), hops: int = 1) -> None:
        if hops < 1:
            raise ValueError("forwarded_for_trusted_hops must be >= 1")
        self.networks, self.everyone = parse_networks(trusted_hosts)
        self.hops = hops

    @property
    def enabled(self) -> bool:
        return self.everyone or bool(self.networks)

    def is_trusted(self, peer: str | None) -> bool:
        if self.everyone:
            return True
        if not self.networks or not peer:
            return False
        address = parse_ip(peer)
        return address is not None and any(address in net for net in self.networks)

    def resolve(
        self, peer: Address | None, headers: Sequence[tuple[bytes, bytes]], scheme: str
    ) -> tuple[Address | None, str]:
        """`(client, scheme)` for the scope; the peer and scheme unchanged unless trusted."""
        if not self.enabled or not self.is_trusted(peer[0] if peer else None):
            return peer, scheme
        client = peer
        forwarded_for = [e for e in _entries(headers, b"x-forwarded-for") if e]
        if forwarded_for:
            address = parse_ip(_pick(forwarded_for, self.hops))
            if address is not None:
                client = (str(address), 0)
        protos = [e.lower() for e in _entries(headers, b"x-forwarded-proto") if e]
        if protos:
            proto = _pick(protos, self.hops)
            if proto in _SCHEMES:
                scheme = proto if scheme in _SCHEMES else ("wss" if proto == "https" else "ws")
        return client, scheme


@functools.lru_cache(maxsize=32)
def proxy_trust(trusted_hosts: tuple[str, ...], hops: int) -> ProxyTrust:
    """The `ProxyTrust` for a configuration, parsed once and shared by every connection."""
    return ProxyTrust(trusted_hosts, hops)
