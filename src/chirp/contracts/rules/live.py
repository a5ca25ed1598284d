"""`live.*`: what the app does over real HTTP, booted under pounce (`chirp check --live`).

These rules judge `snap.live`, the exchanges recorded by `chirp.contracts.live.probes`; they
are silent when no live run happened. A probe that could not be run (no HTML route, no
mutating route, ...) yields nothing rather than a guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from chirp.contracts.model import Finding, Location, Severity, everywhere, levels, rule
from chirp.contracts.snapshot import Snapshot

if TYPE_CHECKING:  # only annotations here: a check without --live never loads the live package
    from chirp.contracts.live.observe import Exchange, LiveRun

E, W = Severity.ERROR, Severity.WARNING
TAGS = ("live",)
# Patterns `re` compiles on first use: only a check with --live or --url reads a response.
_NONCE = r"'nonce-([^']+)'"
_NONCE_ATTR = r"""\bnonce\s*=\s*["']?([A-Za-z0-9+/_=-]+)"""
_VERSION = r"\d+\.\d+|/\s*\d"
# most specific first: the lifespan line carries the exception message
SHUTDOWN_FAILURES = ("lifespan shutdown failed", "shutdown did not finish", "shutdown hook failed")
MIN_NONCE_CHARS = 22  # 16 random bytes (128 bits) in base64


def _live(snap: Snapshot) -> LiveRun | None:
    run = snap.live
    return run if run is not None and run.booted else None


def _route_site(snap: Snapshot, run: LiveRun, path: str) -> Location | None:
    route = run.routes.get(path)
    return Location.of(getattr(route, "site", None)) or snap.app_site


def _pages(run: LiveRun) -> list[tuple[str, Exchange]]:
    return [(name.split(" ", 1)[1], ex) for name, ex in run.matching("page ")]


def html_page(run: LiveRun) -> tuple[str, Exchange] | None:
    """The first user page that answered HTML (else the first that answered at all)."""
    pages = [(p, ex) for p, ex in _pages(run) if ex.status is not None and ex.status < 500]
    for path, ex in pages:
        if ex.content_type == "text/html" and ex.status is not None and ex.status < 400:
            return path, ex
    return pages[0] if pages else None


@rule(
    "live.boot",
    title="The server did not start",
    severity=everywhere(E),
    hint="Run `chirp run APP --production` locally and fix what the log shows (import error, startup hook, port).",
    tags=TAGS,
)
def boot(snap: Snapshot) -> Iterator[Finding]:
    """If the app cannot boot under pounce in production posture, nothing else matters."""
    run = snap.live
    if run is None or run.booted:
        return
    tail = run.tail()
    message = run.boot_error or "the server did not start"
    if tail:
        message = f"{message}; server log:\n{tail}"
    yield Finding(message, snap.app_site, "server")


def _probe_problems(ex: Exchange | None, head: Exchange | None) -> list[str]:
    problems = []
    if ex is None:
        return ["no request was made"]
    if ex.status is None:
        problems.append(f"GET failed: {ex.error}")
    else:
        if ex.status != 200:
            body = ex.text.strip().replace("\n", "; ")[:300]
            problems.append(f"GET answered {ex.status}" + (f" ({body})" if body else ""))
        if ex.header_all("set-cookie"):
            problems.append("GET set a cookie")
        if ex.status == 200 and ex.content_type != "text/plain":
            problems.append(f"GET answered {ex.content_type or 'no content type'}, not text/plain")
    if head is not None:
        if head.status is None:
            problems.append(f"HEAD failed: {head.error}")
        elif head.status != 200:
            problems.append(f"HEAD answered {head.status}")
        elif head.head_extra:
            problems.append(f"HEAD sent a body ({len(head.head_extra)} bytes)")
    return problems


@rule(
    "live.health",
    title="Liveness probe misbehaves",
    severity=everywhere(E),
    hint="Leave /health to chirp (no user route on it) so it answers plain 200 ok to GET and HEAD, without cookies.",
    tags=TAGS,
)
def health(snap: Snapshot) -> Iterator[Finding]:
    """An orchestrator restarts a pod whose liveness probe fails; a cookie on it means middleware ran."""
    run = _live(snap)
    if run is None or snap.config is None:
        return
    problems = _probe_problems(run.get("health.get"), run.get("health.head"))
    if problems:
        path = snap.config.health_path
        yield Finding(f"{path}: {'; '.join(problems)}", snap.config_location, path)


@rule(
    "live.ready",
    title="Readiness probe never reached 200",
    severity=everywhere(E),
    hint="Make every on_startup hook and health check pass (the /ready body lists the failures).",
    tags=TAGS,
)
def ready(snap: Snapshot) -> Iterator[Finding]:
    """A pod whose readiness probe never passes never receives traffic; a deploy waiting on it stalls."""
    run = _live(snap)
    if run is None or snap.config is None:
        return
    problems = _probe_problems(run.get("ready.get"), run.get("ready.head"))
    if problems:
        path = snap.config.ready_path
        waited = f" after {run.ready_seconds:g}s" if not run.ready else ""
        yield Finding(f"{path}{waited}: {'; '.join(problems)}", snap.config_location, path)


REQUIRED_HEADERS = {
    "x-content-type-options": "X-Content-Type-Options: nosniff",
    "content-security-policy": "Content-Security-Policy",
    "referrer-policy": "Referrer-Policy",
}


@rule(
    "live.security_headers",
    title="Security headers missing on a page",
    severity=levels(None, W, E),
    hint="Register SecurityHeadersMiddleware (chirp.secure_stack(config)) and keep handlers from removing its headers.",
    tags=TAGS,
)
def security_headers(snap: Snapshot) -> Iterator[Finding]:
    """The headers are what the browser enforces; the check reads them off a real response."""
    run = _live(snap)
    page = html_page(run) if run is not None else None
    if run is None or page is None:
        return
    path, ex = page
    missing = [label for name, label in REQUIRED_HEADERS.items() if not ex.header(name)]
    if (ex.header("x-content-type-options") or "nosniff").strip().lower() != "nosniff":
        missing.append("X-Content-Type-Options: nosniff")
    policy = (ex.header("content-security-policy") or "").lower()
    if not ex.header("x-frame-options") and "frame-ancestors" not in policy:
        missing.append("X-Frame-Options or CSP frame-ancestors")
    if run.url and run.url.startswith("https:") and not ex.header("strict-transport-security"):
        missing.append("Strict-Transport-Security")
    if missing:
        yield Finding(
            f"GET {path} ({ex.status}, {ex.content_type or 'no content type'}) lacks {', '.join(missing)}",
            _route_site(snap, run, path),
            path,
        )


@rule(
    "live.csp_nonce",
    title="CSP nonces repeat or do not match the page",
    severity=levels(W, E, E),
    hint="Take the nonce from request.csp_nonce for every inline script and never cache nonce pages.",
    tags=TAGS,
)
def csp_nonce(snap: Snapshot) -> Iterator[Finding]:
    """A nonce that repeats, is short, or differs from the one in the page defeats the policy."""
    run = _live(snap)
    if run is None:
        return
    for name, second in run.matching("page2 "):
        path = name.split(" ", 1)[1]
        first = run.get(f"page {path}")
        if first is None:
            continue
        problems = []
        nonces = [
            set(re.findall(_NONCE, ex.header("content-security-policy") or "")) for ex in (first, second)
        ]
        if nonces[0] & nonces[1]:
            problems.append(f"two responses carried the same nonce {sorted(nonces[0] & nonces[1])[0]!r}")
        short = sorted(n for n in nonces[0] | nonces[1] if len(n) < MIN_NONCE_CHARS)
        if short:
            problems.append(f"nonce {short[0]!r} is shorter than 128 bits")
        for ex, header_nonces in zip((first, second), nonces, strict=True):
            stray = sorted(set(re.findall(_NONCE_ATTR, ex.text)) - header_nonces)
            if stray and ex.content_type == "text/html":
                problems.append(f"the page uses nonce {stray[0]!r}, which is not in its CSP header")
                break
        cache = (first.header("cache-control") or "").lower()
        if "no-store" not in cache and "private" not in cache:
            problems.append("a nonce page is cacheable (no Cache-Control: private/no-store)")
        if problems:
            yield Finding(f"GET {path}: {'; '.join(problems)}", _route_site(snap, run, path), path)


def _cookie(header: str) -> tuple[str, dict[str, str]]:
    first, *rest = (p.strip() for p in header.split(";"))
    attrs = {}
    for part in rest:
        key, _, value = part.partition("=")
        attrs[key.strip().lower()] = value.strip()
    return first.partition("=")[0].strip(), attrs


@rule(
    "live.session_cookie",
    title="Session cookie flags are weak",
    severity=levels(None, W, E),
    hint="Build SessionMiddleware from the production config (env='production') so its cookie is Secure, HttpOnly and SameSite.",
    tags=TAGS,
)
def session_cookie(snap: Snapshot) -> Iterator[Finding]:
    """Without HttpOnly scripts can read it, without Secure it travels in clear, without SameSite it rides cross-site."""
    run = _live(snap)
    if run is None:
        return
    wanted = run.session_cookie
    seen: set[str] = set()
    for ex in run.exchanges.values():
        for header in ex.header_all("set-cookie"):
            cookie, attrs = _cookie(header)
            matches = cookie == wanted if wanted else "session" in cookie.lower()
            if not matches or attrs.get("max-age") == "0" or cookie in seen:
                continue
            seen.add(cookie)
            problems = []
            if "httponly" not in attrs:
                problems.append("no HttpOnly")
            if "secure" not in attrs and run.posture != "development":
                problems.append(f"no Secure (in {run.posture})")
            samesite = attrs.get("samesite", "").lower()
            if not samesite:
                problems.append("no SameSite")
            elif samesite == "none" and "secure" not in attrs:
                problems.append("SameSite=None without Secure")
            if problems:
                where = Location.of(run.session_site) or snap.app_site
                yield Finding(
                    f"cookie {cookie!r} set by {ex.method} {ex.path}: {', '.join(problems)}", where, cookie
                )


@rule(
    "live.csrf",
    title="A POST without a CSRF token was accepted",
    severity=levels(None, W, E),
    hint="Register SessionMiddleware then CSRFMiddleware (chirp.secure_stack(config)) in front of mutating routes.",
    tags=TAGS,
)
def csrf(snap: Snapshot) -> Iterator[Finding]:
    """Any site a user visits can submit a form to an unprotected mutating route in their name."""
    run = _live(snap)
    if run is None:
        return
    for name, ex in run.matching("csrf "):
        template = name.split(" ", 1)[1]
        if ex.status is None or ex.status in (404, 405):
            continue
        if ex.status < 400:
            verdict = f"was accepted ({ex.status})"
        elif ex.status >= 500:
            verdict = f"crashed the handler ({ex.status}) instead of being rejected"
        else:
            continue
        yield Finding(
            f"{ex.method} {ex.path} without a CSRF token {verdict}",
            _route_site(snap, run, template),
            template,
        )


@rule(
    "live.websocket_origin",
    title="A cross-site WebSocket handshake was accepted",
    severity=levels(None, W, E),
    hint="Register CSRFMiddleware (chirp.secure_stack(config)): it refuses a WebSocket handshake whose Origin names another site.",
    tags=TAGS,
)
def websocket_origin(snap: Snapshot) -> Iterator[Finding]:
    """A page on any site could open the socket with the user's cookies and read every reply."""
    run = _live(snap)
    if run is None:
        return
    for name, ex in run.matching("websocket "):
        if ex.status == 101:
            template = name.split(" ", 1)[1]
            yield Finding(
                f"GET {ex.path} (a WebSocket handshake) from another site's Origin was accepted (101)",
                _route_site(snap, run, template),
                template,
            )


@rule(
    "live.allowed_hosts",
    title="A foreign Host header was served",
    severity=levels(None, W, E),
    hint="Set AppConfig(allowed_hosts=('example.com', '.example.com')) (or CHIRP_ALLOWED_HOSTS); it answers 400 to other hosts.",
    tags=TAGS,
)
def allowed_hosts(snap: Snapshot) -> Iterator[Finding]:
    """A served forged Host poisons caches and password-reset links."""
    run = _live(snap)
    ex = run.get("foreign_host") if run is not None else None
    if ex is None or ex.status is None or ex.status in (400, 421):
        return
    yield Finding(
        f"GET {ex.path} with Host: {ex.host} was answered {ex.status}, not 400",
        snap.config_location,
        "allowed_hosts",
    )


@rule(
    "live.server_header",
    title="Response headers reveal software versions",
    severity=levels(None, W, W),
    hint="Keep pounce's plain `Server: pounce` (server_header) and drop X-Powered-By headers.",
    tags=TAGS,
)
def server_header(snap: Snapshot) -> Iterator[Finding]:
    """Version strings tell an attacker which known vulnerabilities to try."""
    run = _live(snap)
    if run is None:
        return
    leaks: dict[str, str] = {}
    for ex in run.exchanges.values():
        server = ex.header("server")
        if server and re.search(_VERSION, server):
            leaks.setdefault(f"Server: {server}", ex.path)
        powered = ex.header("x-powered-by")
        if powered:
            leaks.setdefault(f"X-Powered-By: {powered}", ex.path)
    for header, path in leaks.items():
        yield Finding(f"{header} (on {path})", snap.app_site, header.split(":", 1)[0])


@rule(
    "live.sse_compression",
    title="An event stream is compressed",
    severity=levels(W, W, E),
    hint="Do not compress text/event-stream responses (pounce never does; check your own middleware).",
    tags=TAGS,
)
def sse_compression(snap: Snapshot) -> Iterator[Finding]:
    """A compressor buffers events behind its window, so clients receive them late or in bursts."""
    run = _live(snap)
    if run is None:
        return
    for name, ex in run.matching("sse "):
        coding = (ex.header("content-encoding") or "identity").strip().lower()
        if ex.content_type == "text/event-stream" and coding != "identity":
            path = name.split(" ", 1)[1]
            yield Finding(
                f"GET {ex.path} streams text/event-stream with Content-Encoding: {coding}",
                _route_site(snap, run, path),
                path,
            )


@rule(
    "live.debug_page",
    title="An error page leaks internals",
    severity=levels(None, W, E),
    hint="Run with debug=False outside development and keep error handlers from rendering tracebacks.",
    tags=TAGS,
)
def debug_page(snap: Snapshot) -> Iterator[Finding]:
    """Tracebacks show source, paths and local values to whoever triggers an error."""
    run = _live(snap)
    ex = run.get("error") if run is not None else None
    if run is None or ex is None or ex.status is None or ex.status < 500:
        return
    body = ex.text
    leaked = []
    if "Traceback (most recent call last)" in body or re.search(r'File "[^"]+", line \d+', body):
        leaked.append("a traceback")
    if run.forced_error_token and run.forced_error_token in body:
        leaked.append("the exception message")
    if leaked:
        yield Finding(
            f"a forced error answered {ex.status} with {' and '.join(leaked)} in the body",
            snap.config_location,
            "error page",
        )


@rule(
    "live.shutdown",
    title="SIGTERM did not stop the server cleanly",
    severity=levels(W, W, W),
    hint="Keep on_shutdown hooks short and failure-free so SIGTERM ends the process promptly with exit code 0.",
    tags=TAGS,
)
def shutdown(snap: Snapshot) -> Iterator[Finding]:
    """Orchestrators send SIGTERM, then SIGKILL after a grace period: a slow stop drops requests."""
    run = _live(snap)
    down = run.shutdown if run is not None else None
    if run is None or down is None:
        return
    if down.killed:
        yield Finding(
            f"the server was still running {down.seconds:g}s after SIGTERM and was killed",
            snap.app_site,
            "SIGTERM",
        )
    elif down.returncode not in (0, None):
        yield Finding(
            f"the server exited with code {down.returncode} after SIGTERM", snap.app_site, "SIGTERM"
        )
    for marker in SHUTDOWN_FAILURES:
        failed = [line.strip() for line in run.log_tail if marker in line]
        if failed:
            reason = failed[0][failed[0].index(marker) :]
            yield Finding(f"shutdown reported a failure: {reason}", snap.app_site, "on_shutdown")
            return


@rule(
    "live.tls",
    title="TLS negotiated below the chosen profile",
    severity=levels(W, W, E),
    hint="Serve with pounce's TLS profile (tls_profile, no ssl_ciphers override) and terminate TLS in pounce, not in front of it.",
    tags=TAGS,
)
def tls(snap: Snapshot) -> Iterator[Finding]:
    """What clients really get: a current client should get TLS 1.3; a TLS 1.2 client only a
    suite of the profile (none at all under `modern`); a client offering only suites without
    AEAD nothing; and HTTP/2 never over a suite on its blocklist (RFC 9113 §9.2.2)."""
    from pounce.tls import within_profile

    run = _live(snap)
    settings, where = snap.tls_config()
    if run is None or not run.handshakes or settings is None:
        return
    profile = settings.tls_profile
    default = run.handshakes.get("default")
    if default is not None and default.version is not None and default.version != "TLSv1.3":
        yield Finding(f"a current client negotiated {default.version}, not TLS 1.3", where, "tls_profile")
    for name in ("tls1.2", "tls1.2-legacy"):
        shake = run.handshakes.get(name)
        if shake is None or shake.version is None or shake.cipher is None:
            continue
        if not within_profile(profile, shake.version, shake.cipher):
            yield Finding(
                f"a {name} client was served {shake.version} with {shake.cipher}, outside the {profile} profile",
                where,
                "ssl_ciphers" if settings.ssl_ciphers else "tls_profile",
            )
        if shake.alpn == "h2" and name == "tls1.2-legacy":
            yield Finding(
                f"HTTP/2 was negotiated over {shake.cipher}, which HTTP/2 forbids", where, "ssl_ciphers"
            )


RULES = (
    boot,
    health,
    ready,
    security_headers,
    csp_nonce,
    session_cookie,
    csrf,
    websocket_origin,
    allowed_hosts,
    server_header,
    sse_compression,
    debug_page,
    shutdown,
    tls,
)
