"""`CSRFMiddleware` and `csrf_token(request)`: cross-site requests are refused.

Token mode (the default): the secret lives in the session (so `SessionMiddleware` must run
first). Pages embed `csrf_token(request)` in a `csrf_token` form field or send it as
`X-CSRF-Token`; every call returns a freshly masked copy so a compressed page never repeats
the same bytes (which would let a compression side channel recover it). On HTTPS the
`Origin` (or, without one, the `Referer`) must also name this site.

Origin mode (`mode="origin"`, or `@app.route(..., csrf="origin")`): no token; the browser's
own `Sec-Fetch-Site` (or, without it, `Origin`) must say the request comes from this site.
That suits JSON APIs called with `fetch()`. A route may also be `csrf="exempt"` (a webhook
authenticated by a signature): the contract reports every exemption.

WebSocket handshakes carry no token: their `Origin`, when present, must name this site
(unless the route was registered with `check_origin=False`), which stops cross-site
WebSocket hijacking.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from chirp.errors import ConfigurationError
from chirp.middleware._log import security_log
from chirp.middleware.allowed_hosts import host_matches, normalize_pattern, split_host

if TYPE_CHECKING:
    from chirp.config import AppConfig
    from chirp.request import Request
    from chirp.responses import Response
    from chirp.routing import Route


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
MODES = ("token", "origin")
SAME_SITE_FETCHES = ("same-origin", "none")  # `none`: the user typed the URL or used a bookmark
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MISSING_SESSION = (
    "CSRFMiddleware needs request.session: register SessionMiddleware before CSRFMiddleware "
    "(app.add_middleware(SessionMiddleware(...)) first, or use chirp.secure_stack(config))"
)
_SECRET_BYTES = 32


def _new_secret() -> str:
    return secrets.token_urlsafe(_SECRET_BYTES)


def _session_of(request: Request) -> Any:
    session = request.session
    if session is None:
        raise RuntimeError(MISSING_SESSION)
    return session


def csrf_token(request: Request) -> str:
    """A token for this request's session to put in a form field or `X-CSRF-Token`.

    The session's secret is created on first use. Each call returns a different
    (masked) string; all of them verify against the same secret.
    """
    return session_token(_session_of(request))


def session_token(session: Any) -> str:
    """A masked token for `session` (a `Session`), creating its secret on first use."""
    secret = session.csrf_secret
    if secret is None:
        secret = _new_secret()
        session.csrf_secret = secret
    return mask(secret)


def mask(secret: str) -> str:
    """`secret` XOR a fresh random pad, with the pad prepended (URL-safe base64)."""
    raw = secret.encode("ascii")
    pad = secrets.token_bytes(len(raw))
    return base64.urlsafe_b64encode(pad + bytes(a ^ b for a, b in zip(raw, pad, strict=True))).decode("ascii")


def unmask(token: str) -> bytes | None:
    """The secret inside a masked token, or None when the token is not one."""
    try:
        data = base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return None
    if not data or len(data) % 2 or base64.urlsafe_b64encode(data).decode("ascii") != token:
        return None
    half = len(data) // 2
    return bytes(a ^ b for a, b in zip(data[half:], data[:half], strict=True))


def token_matches(submitted: str, secret: str) -> bool:
    """Constant-time comparison of a submitted (masked or bare) token with the secret."""
    expected = secret.encode("ascii")
    candidate = submitted.encode("utf-8", "replace")
    if len(candidate) != len(expected):
        unmasked = unmask(submitted)
        if unmasked is None:
            return False
        candidate = unmasked
    return hmac.compare_digest(candidate, expected)


class CSRFMiddleware:
    """403 for a POST/PUT/PATCH/DELETE (any non-safe method) that may come from another site.

    `mode="token"` wants the session's token; `mode="origin"` wants the browser's
    `Sec-Fetch-Site`/`Origin` to name this site; a route's own `csrf=` wins over `mode`.
    Requests for no route pass through (the app answers 404/405). `allowed_hosts` (the
    `AppConfig` field) and `trusted_origins` (full origins such as `https://admin.example.com`)
    widen which `Origin`/`Referer` a request may carry; the request's own host is always
    accepted. `exempt_paths` skips the check for exact paths (reported by `csrf.exempt`).
    """

    def __init__(
        self,
        *,
        allowed_hosts: Iterable[str] = (),
        trusted_origins: Iterable[str] = (),
        field_name: str = "csrf_token",
        header_name: str = "X-CSRF-Token",
        exempt_paths: Iterable[str] = (),
        mode: str = "token",
    ) -> None:
        if mode not in MODES:
            raise ConfigurationError(
                "CSRFMiddleware.mode", mode, "use 'token' (forms) or 'origin' (fetch clients, no token)"
            )
        self.mode = mode
        if isinstance(allowed_hosts, str):
            allowed_hosts = (allowed_hosts,)
        # "*" means "any Host header is served", not "any site may post to us".
        self.allowed_hosts = tuple(p for p in (normalize_pattern(h) for h in allowed_hosts) if p != "*")
        self.trusted_origins = frozenset(_origin_of(o) for o in trusted_origins if _origin_of(o) is not None)
        self.field_name = field_name
        self.header_name = header_name
        self.exempt_paths = frozenset(exempt_paths)

    @classmethod
    def from_config(cls, config: AppConfig, **overrides: Any) -> CSRFMiddleware:
        return cls(allowed_hosts=config.allowed_hosts, **overrides)

    def route_mode(self, route: Route | None) -> str:
        """The mode for `route`: its own `csrf=`, else the middleware's."""
        return route.csrf if route is not None and route.csrf is not None else self.mode

    async def __call__(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        route = request.route
        mode = self.route_mode(route)
        if request.session is None and mode == "token":
            security_log().error("%s", MISSING_SESSION)
            return _refusal(request, 500, MISSING_SESSION)
        if request.scope.get("type") == "websocket":
            if route is not None and route.check_origin and request.headers.get("origin") is not None:
                reason = self._check_origin(request)
                if reason is not None:
                    security_log().warning(
                        "refused a cross-site WebSocket handshake on %s: %s", request.path, reason
                    )
                    return _refusal(request, 403, f"cross-site WebSocket handshake: {reason}")
            return await call_next(request)
        if (
            request.method in SAFE_METHODS
            or route is None
            or mode == "exempt"
            or request.path in self.exempt_paths
        ):
            return await call_next(request)
        if mode == "origin":
            reason = self._check_fetch_site(request)
        else:
            reason = self._check_origin(request) or await self._check_token(request)
        if reason is not None:
            security_log().warning("CSRF check failed for %s %s: %s", request.method, request.path, reason)
            return _refusal(request, 403, f"CSRF check failed: {reason}")
        return await call_next(request)

    def _check_fetch_site(self, request: Request) -> str | None:
        """Origin mode: the browser says where the request comes from.

        `Sec-Fetch-Site: same-origin` (or `none`) passes; otherwise a present `Origin` must
        name this site. A request with neither header was not sent by a current browser
        (a CLI, another server), which cannot carry a victim's cookies: it passes.
        """
        fetch_site = (request.headers.get("sec-fetch-site") or "").strip().lower()
        if fetch_site in SAME_SITE_FETCHES:
            return None
        if request.headers.get("origin") is None:
            if fetch_site:
                return f"Sec-Fetch-Site is {fetch_site!r} and the request has no Origin header"
            return None
        return self._check_origin(request)

    def _check_origin(self, request: Request) -> str | None:
        origin = request.headers.get("origin")
        source = "Origin"
        if origin is None:
            if not request.is_secure:
                return None
            origin = request.headers.get("referer")
            source = "Referer"
            if not origin:
                return "the request has neither an Origin nor a Referer header"
        parsed = _origin_of(origin)
        if parsed is None:
            return f"the {source} header is not a valid origin"
        if parsed in self.trusted_origins:
            return None
        scheme, host, port = parsed
        request_host = split_host(request.host)
        if request.is_secure:
            if scheme != "https":
                return f"the {source} header is not an https origin"
            same_site = request_host is not None and (host, port) == (
                request_host,
                _host_port(request.host, 443),
            )
        else:
            # Over plain HTTP the scheme and port may have been rewritten by a proxy:
            # compare host names only.
            same_site = host == request_host
        if same_site or host_matches(host, self.allowed_hosts):
            return None
        return f"the {source} header does not match this site"

    async def _check_token(self, request: Request) -> str | None:
        if request.session is None:  # a token route under mode="origin", without SessionMiddleware
            return MISSING_SESSION
        secret = request.session.csrf_secret
        if not secret:
            return "the session has no CSRF token (render csrf_token(request) in the form first)"
        submitted = request.headers.get(self.header_name)
        if submitted is None:
            content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
            if content_type in FORM_TYPES:
                field = (await request.form()).get(self.field_name)
                submitted = field if isinstance(field, str) else None  # a file part is no token
        if not submitted:
            return f"the {self.field_name!r} form field or {self.header_name} header is missing"
        if not token_matches(submitted, secret):
            return "the CSRF token is incorrect"
        return None


def _refusal(request: Request, status: int, detail: str) -> Response:
    from chirp.negotiation import error_response  # the refusal path only

    response = error_response(request, status, detail)
    response.headers["x-content-type-options"] = "nosniff"
    response.headers["cache-control"] = "no-store"
    return response


def _host_port(host_header: str, default: int) -> int:
    value = host_header.strip()
    _, bracket, rest = value.rpartition("]")
    tail = rest if bracket else value
    _, colon, port = tail.rpartition(":")
    return int(port) if colon and port.isdigit() else default


def _origin_of(value: str) -> tuple[str, str, int] | None:
    """`(scheme, host, port)` of an origin or URL; None for `null` or anything malformed."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.rstrip(".").lower()
    return scheme, host, port if port is not None else (443 if scheme == "https" else 80)
