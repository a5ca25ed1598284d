"""`SecurityHeadersMiddleware`: the browser-side hardening headers on every response.

Headers a handler set itself are left alone; the only change ever made to one is adding
the per-response nonce to its `script-src`. The App applies the same policy to responses
made outside the middleware (see `SecurityHeadersMiddleware.apply`).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from chirp.config import EMBEDDER_POLICIES, check_choice
from chirp.datastructures import check_header
from chirp.errors import ConfigurationError

if TYPE_CHECKING:
    from chirp.config import AppConfig
    from chirp.request import Request
    from chirp.responses import Response

DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
NONCE_BYTES = 18  # 144 bits
RESOURCE_POLICIES = ("same-origin", "same-site", "cross-origin")
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
    """Add nosniff, DENY framing, a strict CSP, referrer, opener and resource policies, and HSTS.

    - `content_security_policy=None` uses `DEFAULT_CSP`; a custom policy without a
      `frame-ancestors` directive gets `frame-ancestors 'none'` appended.
    - `hsts` is the full `Strict-Transport-Security` value (for example
      `"max-age=63072000; includeSubDomains"`); None sends none.
    - `csp_nonce=True` makes a fresh nonce per response, exposes it as
      `request.csp_nonce`, adds it to `script-src` and marks the response
      `Cache-Control: private, no-store` (a cached nonce is a reusable nonce).
    - `cross_origin_resource_policy` keeps other sites from embedding the responses
      (`same-origin`, `same-site` or `cross-origin`); a handler serving something meant for
      other sites sets its own.
    - `cross_origin_embedder_policy` (`require-corp` or `credentialless`) is opt-in: it blocks
      every cross-origin subresource that does not consent, which breaks pages that load any.
    """

    def __init__(
        self,
        content_security_policy: str | None = None,
        hsts: str | None = None,
        csp_nonce: bool = False,
        *,
        cross_origin_resource_policy: str = "same-origin",
        cross_origin_embedder_policy: str | None = None,
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
        check_choice("cross_origin_resource_policy", cross_origin_resource_policy, RESOURCE_POLICIES)
        if cross_origin_embedder_policy is not None:
            check_choice("cross_origin_embedder_policy", cross_origin_embedder_policy, EMBEDDER_POLICIES)
        self.content_security_policy = policy
        self.hsts = hsts
        self.csp_nonce = bool(csp_nonce)
        headers = [
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "strict-origin-when-cross-origin"),
            ("cross-origin-opener-policy", "same-origin"),
            ("cross-origin-resource-policy", cross_origin_resource_policy),
            ("content-security-policy", policy),
        ]
        if cross_origin_embedder_policy is not None:
            headers.append(("cross-origin-embedder-policy", cross_origin_embedder_policy))
        if hsts:
            headers.append(("strict-transport-security", hsts))
        self.headers: tuple[tuple[str, str], ...] = tuple(headers)
        self._raw = tuple((name.encode("latin-1"), value.encode("latin-1")) for name, value in self.headers)

    @classmethod
    def from_config(cls, config: AppConfig, **overrides: Any) -> SecurityHeadersMiddleware:
        values: dict[str, Any] = {
            "content_security_policy": config.content_security_policy,
            "hsts": config.strict_transport_security,
            "csp_nonce": config.csp_nonce_enabled,
            "cross_origin_embedder_policy": config.cross_origin_embedder_policy,
        }
        values.update(overrides)
        return cls(**values)

    def apply(self, response: Response) -> Response:
        """Add every header of the policy that `response` does not set itself.

        The App calls this on each final response too, so a refusal from a middleware
        registered before this one, or an error escaping the stack, is as hardened as a
        handler's page; on a response that came through here it adds nothing.
        """
        raw = response.headers.raw
        present = {name.lower() for name, _ in raw}
        raw.extend(item for item in self._raw if item[0] not in present)
        return response

    async def __call__(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        nonce = secrets.token_urlsafe(NONCE_BYTES) if self.csp_nonce else None
        if nonce is not None:
            request.csp_nonce = nonce
        response = self.apply(await call_next(request))
        if nonce is None:
            return response
        headers = response.headers
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
