"""What the app's response headers will say, read from SecurityHeadersMiddleware and the config."""

from __future__ import annotations

from typing import NamedTuple

from chirp.contracts.model import Location
from chirp.contracts.snapshot import Snapshot


class HeaderPolicy(NamedTuple):  # a NamedTuple: much cheaper to define than a dataclass
    """The CSP/HSTS the app sends (None: no header) and where that was decided."""

    sent: bool
    csp: str | None
    nonce: bool
    hsts: str | None
    location: Location | None


def header_policy(snap: Snapshot) -> HeaderPolicy:
    """Headers come from the first SecurityHeadersMiddleware; without one none are sent."""
    cfg = snap.config
    found = snap.middleware_of("security_headers", "SecurityHeadersMiddleware")
    nonce_cfg = bool(cfg is not None and cfg.csp_nonce_enabled)
    if not found:
        csp = cfg.content_security_policy if cfg is not None else None
        hsts = cfg.strict_transport_security if cfg is not None else None
        return HeaderPolicy(False, csp, nonce_cfg, hsts, snap.config_location)
    _, entry = found[0]
    mw = entry.middleware
    csp = getattr(mw, "content_security_policy", None)
    hsts = getattr(mw, "hsts", None)
    if hsts is None and cfg is not None:
        hsts = cfg.strict_transport_security
    nonce = bool(getattr(mw, "csp_nonce", False)) or nonce_cfg
    return HeaderPolicy(
        True, csp or None, nonce, hsts or None, Location.of(entry.site) or snap.config_location
    )


def directives(policy: str) -> dict[str, list[str]]:
    """`"default-src 'self'; script-src 'self'"` → {directive: [sources]} (names lower-cased)."""
    out: dict[str, list[str]] = {}
    for part in policy.split(";"):
        tokens = part.split()
        if tokens:
            out.setdefault(tokens[0].lower(), [t.lower() for t in tokens[1:]])
    return out


def script_sources(policy: str) -> list[str] | None:
    """The sources governing scripts: script-src, else default-src, else None (unrestricted)."""
    parsed = directives(policy)
    return parsed.get("script-src", parsed.get("default-src"))


def has_nonce_or_hash(sources: list[str]) -> bool:
    return any(s.startswith(("'nonce-", "'sha256-", "'sha384-", "'sha512-")) for s in sources)


def max_age(hsts: str) -> int | None:
    for part in hsts.split(";"):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "max-age":
            try:
                return int(value.strip().strip('"'))
            except ValueError:
                return None
    return None
