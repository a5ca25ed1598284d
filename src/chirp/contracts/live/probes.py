"""Drive one live run: boot the server, wait for readiness, send the probes, stop the server.

Probe names recorded in `LiveRun.exchanges` (the `live.*` rules look them up):

- `ready.get`: the last readiness poll; `health.get`, `health.head`, `ready.head`;
- `page <path>`: GET of each parameter-free user GET route (at most `MAX_PAGES`), and
  `page2 <path>`: a second GET of the first page whose CSP carries a nonce;
- `foreign_host`: a GET with a Host the app does not serve;
- `csrf <path>`: a tokenless form POST, as a browser on another site sends it, to the first
  mutating route that is not `csrf="exempt"`;
- `websocket <path>`: a WebSocket handshake from another site's `Origin` to each WebSocket
  route that checks it (at most `MAX_WEBSOCKETS`);
- `sse <path>`: `/_chirp/live` (and any user event stream) asked for with `Accept-Encoding: gzip`;
- `error`: the route that raises on purpose (see `chirp.contracts.live.target`).

Over TLS, `LiveRun.handshakes` records `default` (a current client), `tls1.2` (a client that
stops at TLS 1.2) and `tls1.2-legacy` (a TLS 1.2 client offering only suites without AEAD),
each offering h2 by ALPN.

Nothing here judges: probes only collect, the rules decide.
"""

from __future__ import annotations

import gzip
import re
import secrets
import ssl
import time
import zlib
from collections.abc import Callable
from typing import Any

from chirp.contracts.live.client import Target
from chirp.contracts.live.observe import Exchange, LiveRun, Shutdown
from chirp.contracts.live.server import LiveServer, describe_exit

MAX_PAGES = 8
MAX_WEBSOCKETS = 4
FOREIGN_HOST = "chirp-live-check.invalid"
FOREIGN_ORIGIN = f"https://{FOREIGN_HOST}"
LIVE_PATH = "/_chirp/live"
_PARAM = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?}")
_SAMPLE = {
    "int": "1",
    "float": "1.0",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "path": "live-check",
    "str": "live-check",
}
LEGACY_SUITES = "ALL:!AESGCM:!CHACHA20:!AESCCM:!ARIAGCM:!aNULL:!eNULL"  # TLS 1.2 without AEAD
BROWSER_HEADERS = {"Accept": "text/html,*/*;q=0.8", "Accept-Encoding": "gzip"}


def request_host(allowed_hosts: Any, port: int) -> str:
    """A Host header the app serves: its first allowed host (a `.example.com` pattern → `example.com`)."""
    from chirp.middleware.allowed_hosts import served_host

    return served_host(allowed_hosts or ()) or f"127.0.0.1:{port}"


def sample_path(template: str) -> str:
    """A concrete path for a route template: sample values for its parameters."""
    return _PARAM.sub(lambda m: _SAMPLE.get(m.group(2) or "str", "live-check"), template)


def decoded(exchange: Exchange) -> Exchange:
    """Undo gzip/deflate content coding so rules can read the body."""
    coding = (exchange.header("content-encoding") or "").strip().lower()
    try:
        if coding == "gzip" and exchange.body:
            exchange.body = gzip.decompress(exchange.body)
        elif coding == "deflate" and exchange.body:
            exchange.body = zlib.decompress(exchange.body)
    except (OSError, zlib.error, EOFError):
        pass
    return exchange


def session_middleware(app: Any) -> tuple[str | None, Any]:
    """The session cookie name and the SessionMiddleware registration site, if any."""
    from chirp.middleware.sessions import SessionMiddleware

    for entry in getattr(app, "middleware", ()):
        if isinstance(entry.middleware, SessionMiddleware):
            return entry.middleware.cookie_name, entry.site
    return None, None


def run_live(
    app: Any,
    app_path: str,
    *,
    production: bool,
    timeout: float = 20.0,
    grace: float = 10.0,
    force_error: bool = True,
) -> LiveRun:
    """Boot `app_path` under pounce, probe it over HTTP and stop it; never hangs past the timeouts."""
    started = time.monotonic()
    run = LiveRun(posture="production" if production else app.config.env)
    run.routes = {r.path: r for r in app.router.routes}
    run.session_cookie, run.session_site = session_middleware(app)
    token = secrets.token_hex(12) if force_error else None
    run.forced_error_token = token
    error_path = f"/_chirp/live-check/{token}" if token else None
    server = LiveServer(app_path, production=production, error_path=error_path)
    deadline = started + timeout
    try:
        server.start()
        problem = server.wait_bound(deadline)
        if problem is not None:
            if server.alive():
                server.kill()
                problem = f"{problem} ({timeout:g}s)"
            else:
                problem = describe_exit(server.proc.returncode if server.proc else None, server.tail(40))
            run.boot_error = problem
            return run
        assert server.url is not None
        run.url = server.url
        port = int(server.url.rsplit(":", 1)[1])
        target = Target(server.url, request_host(app.config.allowed_hosts, port))
        wait_ready(run, server.alive, target, app.config.ready_path, deadline)
        if not server.alive():
            run.boot_error = describe_exit(server.proc.returncode if server.proc else None, server.tail(40))
            return run
        probe(run, target, app, error_path)
        if target.scheme == "https":
            handshakes(run, target)
    finally:
        if server.proc is not None:
            code, seconds, killed = server.stop(grace)
            run.shutdown = Shutdown(code, round(seconds, 3), killed)
        run.log_tail = server.tail(40)
        if server.generated_secret:
            run.skipped["secret"] = "CHIRP_SECRET_KEY was not set; the server ran with a throwaway key"
        run.duration_ms = round((time.monotonic() - started) * 1000, 1)
    return run


def wait_ready(run: LiveRun, alive: Callable[[], bool], target: Target, path: str, deadline: float) -> None:
    """Poll the readiness probe until 200, the deadline, or the server dies (`alive()` false)."""
    began = time.monotonic()
    delay = 0.02
    while True:
        exchange = target.request("GET", path)
        run.exchanges["ready.get"] = exchange
        if exchange.status == 200:
            run.ready = True
            break
        if not alive() or time.monotonic() + delay >= deadline:
            break
        time.sleep(delay)  # polling interval between readiness attempts
        delay = min(delay * 2, 0.25)
    run.ready_seconds = round(time.monotonic() - began, 3)


def handshakes(run: LiveRun, target: Target) -> None:
    """Three TLS handshakes for `live.tls`: the client's default, TLS 1.2 only, and TLS 1.2
    offering only suites outside the profiles."""
    run.handshakes["default"] = target.handshake()
    run.handshakes["tls1.2"] = target.handshake(ssl.TLSVersion.TLSv1_2)
    run.handshakes["tls1.2-legacy"] = target.handshake(ssl.TLSVersion.TLSv1_2, LEGACY_SUITES)


def probe(run: LiveRun, target: Target, app: Any, error_path: str | None, *, mutating: bool = True) -> None:
    """Send the probes; `mutating=False` sends no POST (a deployed instance's data stays as it is)."""
    config = app.config
    run.exchanges["health.get"] = target.request("GET", config.health_path)
    run.exchanges["health.head"] = target.head(config.health_path)
    run.exchanges["ready.head"] = target.head(config.ready_path)

    probe_paths = {config.health_path, config.ready_path, LIVE_PATH}
    if config.metrics_enabled:
        probe_paths.add(config.metrics_path)
    pages = [
        r
        for r in app.router.routes
        if ("GET" in r.methods) and "{" not in r.path and r.path not in probe_paths
    ][:MAX_PAGES]
    if not pages:
        run.skipped["pages"] = "the app has no GET route without path parameters"
    nonce_page: str | None = None
    for route in pages:
        exchange = decoded(target.request("GET", route.path, headers=BROWSER_HEADERS))
        run.exchanges[f"page {route.path}"] = exchange
        if exchange.content_type == "text/event-stream":
            run.exchanges[f"sse {route.path}"] = exchange
        policy = exchange.header("content-security-policy") or ""
        if nonce_page is None and "'nonce-" in policy:
            nonce_page = route.path
    if nonce_page is not None:
        run.exchanges[f"page2 {nonce_page}"] = decoded(
            target.request("GET", nonce_page, headers=BROWSER_HEADERS)
        )

    foreign_path = pages[0].path if pages else "/"
    run.exchanges["foreign_host"] = target.request(
        "GET", foreign_path, host=FOREIGN_HOST, headers=BROWSER_HEADERS
    )

    writers = [r for r in app.router.routes if r.mutating]
    guarded = [r for r in writers if r.csrf != "exempt"]
    if guarded and not mutating:
        run.skipped["csrf"] = "not sent to a deployed instance: an unprotected route would act on it"
    elif guarded:
        route = guarded[0]
        method = next(m for m in ("POST", "PUT", "PATCH", "DELETE") if m in route.methods)
        path = sample_path(route.path)
        run.exchanges[f"csrf {route.path}"] = target.request(
            method,
            path,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "text/html",
                "Origin": FOREIGN_ORIGIN,
                "Sec-Fetch-Site": "cross-site",
            },
            body=b"chirp_live_check=1",
        )
    elif writers:
        run.skipped["csrf"] = 'every mutating route is csrf="exempt" (reported by csrf.exempt)'
    else:
        run.skipped["csrf"] = "the app has no POST/PUT/PATCH/DELETE route"

    sockets = [r for r in app.router.routes if r.websocket and r.check_origin][:MAX_WEBSOCKETS]
    if sockets and not mutating:
        run.skipped["websocket"] = "not sent to a deployed instance: an unchecked route's handler would run"
    elif sockets:
        for route in sockets:
            run.exchanges[f"websocket {route.path}"] = target.websocket_handshake(
                sample_path(route.path), FOREIGN_ORIGIN
            )
    else:
        run.skipped["websocket"] = "the app has no WebSocket route that checks the Origin"

    run.exchanges[f"sse {LIVE_PATH}"] = target.request(
        "GET",
        f"{LIVE_PATH}?topics=chirp-live-check",
        headers={"Accept": "text/event-stream", "Accept-Encoding": "gzip", "Cache-Control": "no-cache"},
    )

    if error_path is not None:
        run.exchanges["error"] = decoded(target.request("GET", error_path, headers=BROWSER_HEADERS))
    else:
        run.skipped["error"] = "no error route could be added"
