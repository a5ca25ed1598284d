"""`SecurityHeadersMiddleware`: the browser-side hardening headers on every response.

Headers a handler set itself are left alone; the only change ever made to one is adding
the per-response nonce to its `script-src`.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from chirp.datastructures import check_header
from chirp.errors import ConfigurationError
from chirp.request import Request
from chirp.responses import Response

if TYPE_CHECKING:
    from chirp.config import AppConfig

DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
NONCE_BYTES = 18  # 144 bits
_CSP_HEADERS = ("content-security-policy", "content-security-policy-report-only")


def parse_csp(policy: str) -> list[tuple[str, list[str]]]:
    """`[(directive, [sources...])]` in order; empty directives dropped."""
    directives = []
    for part in policy.split(";"):
        tokens = part.split()
        if tokens:
            directives.append((tokens[0].lower(), tokens[1:]))
    return directives


def render_csp(directives: list[tuple[str, list[str]]]) -> str:
    return "; ".join(" ".join([name, *sources]) for name, sources in directives)


def add_nonce(policy: str, nonce: str) -> str:
    """`policy` with `'nonce-…'` added to `script-src`.

    Without a `script-src`, one is created from `default-src` (what scripts fell back to),
    or from `'self'` when there is no `default-src` either.
    """
    directives = parse_csp(policy)
    token = f"'nonce-{nonce}'"
    for name, sources in directives:
        if name == "script-src":
            sources[:] = [s for s in sources if s.lower() != "'none'"]
            sources.append(token)
            return render_csp(directives)
    fallback = next((list(s) for n, s in directives if n == "default-src"), ["'self'"])
    fallback = [s for s in fallback if s.lower() != "'none'"]
    directives.append(("script-src", [*fallback, token]))
    return render_csp(directives)


class SecurityHeadersMiddleware:
    """Add nosniff, DENY framing, a strict CSP, referrer and opener policies, and HSTS.

    - `content_security_policy=None` uses `DEFAULT_CSP`; a custom policy without a
      `frame-ancestors` directive gets `frame-ancestors 'none'` appended.
    - `hsts` is the full `Strict-Transport-Security` value (for example
      `"max-age=63072000; includeSubDomains"`); None sends none.
    - `csp_nonce=True` makes a fresh nonce per response, exposes it as
      `request.csp_nonce`, adds it to `script-src` and marks the response
      `Cache-Control: private, no-store` (a cached nonce is a reusable nonce).
    """

    def __init__(
        self,
        content_security_policy: str | None = None,
        hsts: str | None = None,
        csp_nonce: bool = False,
    ) -> None:
        policy = DEFAULT_CSP if content_security_policy is None else content_security_policy.strip()
        _check_value("content_security_policy", policy)
        if not any(name == "frame-ancestors" for name, _ in parse_csp(policy)):
            policy = f"{policy.rstrip('; ')}; frame-ancestors 'none'" if policy else "frame-ancestors 'none'"
        if hsts is not None:
            hsts = hsts.strip()
            _check_value("strict_transport_security", hsts)
            if "max-age=" not in hsts.lower():
                raise ConfigurationError(
                    "strict_transport_security",
                    hsts,
                    "include max-age, e.g. 'max-age=63072000; includeSubDomains'",
                )
        self.content_security_policy = policy
        self.hsts = hsts
        self.csp_nonce = bool(csp_nonce)
        self.static_headers: tuple[tuple[str, str], ...] = (
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "strict-origin-when-cross-origin"),
            ("cross-origin-opener-policy", "same-origin"),
            *((("strict-transport-security", hsts),) if hsts else ()),
        )

    @classmethod
    def from_config(cls, config: AppConfig, **overrides: Any) -> SecurityHeadersMiddleware:
        values: dict[str, Any] = {
            "content_security_policy": config.content_security_policy,
            "hsts": config.strict_transport_security,
            "csp_nonce": config.csp_nonce_enabled,
        }
        values.update(overrides)
        return cls(**values)

    async def __call__(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        nonce = secrets.token_urlsafe(NONCE_BYTES) if self.csp_nonce else None
        if nonce is not None:
            request.csp_nonce = nonce
        response = await call_next(request)
        headers = response.headers
        for name, value in self.static_headers:
            if name not in headers:
                headers[name] = value
        if "content-security-policy" not in headers:
            headers["content-security-policy"] = self.content_security_policy
        if nonce is None:
            return response
        for name in _CSP_HEADERS:
            if name in headers:
                headers[name] = add_nonce(headers[name], nonce)
        if "cache-control" not in headers:
            headers["cache-control"] = "private, no-store"
        return response


def _check_value(field: str, value: str) -> None:
    try:
        check_header(field.replace("_", "-"), value)
    except ValueError:
        raise ConfigurationError(field, value, "remove CR, LF and NUL characters") from None
