"""`AllowedHostsMiddleware`: refuse requests whose `Host` header names a host we do not serve.

A forged `Host` is how password-reset links and cache entries get pointed at an attacker's
domain, so anything outside the list is answered with 400 before any handler runs.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from chirp.middleware._log import security_log

if TYPE_CHECKING:
    from chirp.request import Request
    from chirp.responses import Response


# A DNS name (letters, digits, hyphens, underscores, dots) or an IPv4 literal, then an
# optional port; or a bracketed IPv6 literal with an optional port.
_HOST_RE = re.compile(r"^(?:(?P<name>[a-z0-9_.-]+)|\[(?P<ipv6>[a-f0-9:.]+)\])(?::(?P<port>[0-9]{1,5}))?$")


def split_host(value: str | None) -> str | None:
    """The lower-cased host name of a `Host` header value, without port or brackets.

    Returns None for a missing or malformed value. `[::1]:8000` → `::1`,
    `Example.COM.:443` → `example.com`.
    """
    if not value:
        return None
    match = _HOST_RE.match(value.strip().lower())
    if match is None:
        return None
    if match.group("ipv6") is not None:
        return match.group("ipv6")
    name = match.group("name").rstrip(".")
    return name or None


def normalize_pattern(pattern: str) -> str:
    """An allowed-hosts entry in the form `host_matches` compares against."""
    value = pattern.strip().lower()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    return value.rstrip(".") if value not in (".", "*") else value


def served_host(patterns: Iterable[str]) -> str | None:
    """A host name the patterns allow, for clients that must send one (`.example.com` →
    `example.com`); None when they only hold `*`."""
    for pattern in patterns:
        value = normalize_pattern(str(pattern)).lstrip(".")
        if value and value != "*":
            return f"[{value}]" if ":" in value else value
    return None


def host_matches(host: str, patterns: Iterable[str]) -> bool:
    """Whether `host` (as returned by `split_host`) is allowed by one of `patterns`.

    `*` allows any host, `.example.com` allows example.com and every subdomain of it,
    anything else must match exactly (case-insensitive).
    """
    for pattern in patterns:
        if pattern == "*":
            return True
        if pattern.startswith("."):
            if host == pattern[1:] or host.endswith(pattern):
                return True
        elif host == pattern:
            return True
    return False


class AllowedHostsMiddleware:
    """400 for a request whose `Host` (port stripped) is not in `allowed_hosts`.

    The app wires this automatically, as the outermost middleware, whenever
    `AppConfig.allowed_hosts` is anything other than `("*",)`.
    """

    def __init__(self, allowed_hosts: Iterable[str]) -> None:
        if isinstance(allowed_hosts, str):
            allowed_hosts = (allowed_hosts,)
        self.allowed_hosts: tuple[str, ...] = tuple(normalize_pattern(p) for p in allowed_hosts)
        self.allow_any = "*" in self.allowed_hosts
        if not self.allowed_hosts:
            security_log().warning("allowed_hosts is empty: every request will be refused with 400")

    def is_allowed(self, host_header: str | None) -> bool:
        if self.allow_any:
            return True
        host = split_host(host_header)
        return host is not None and host_matches(host, self.allowed_hosts)

    async def __call__(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if self.allow_any:
            return await call_next(request)
        values = request.headers.getlist("host")
        if len(values) == 1 and self.is_allowed(values[0]):
            return await call_next(request)
        security_log().warning("refused a request for host %r: not in allowed_hosts", values)
        from chirp.negotiation import error_response  # the refusal path only

        response = error_response(request, 400, "the Host header is not allowed")
        response.headers["x-content-type-options"] = "nosniff"
        return response
