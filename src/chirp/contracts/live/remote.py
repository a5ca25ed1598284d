"""`chirp check --url`: the live probes against an instance that is already deployed.

The same probes as `--live` (`chirp.contracts.live.probes.probe`), minus what would change a
real deployment (no tokenless POST, no route added to raise an error), plus what only a real
edge shows: the certificate it presents and whether a client can trust it, whether plain HTTP
redirects to HTTPS, and whether `/_pounce/info` answers from outside. Nothing here judges:
the `live.*` rules read the `LiveRun`.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from chirp.contracts.live.client import Target
from chirp.contracts.live.observe import LiveRun, TlsObservation
from chirp.contracts.live.probes import handshakes, probe, wait_ready

INFO_PATH = "/_pounce/info"


def run_remote(
    app: Any,
    url: str,
    *,
    posture: str,
    ca_file: str | None = None,
    http_url: str | None = None,
    timeout: float = 20.0,
) -> LiveRun:
    """Probe the deployed instance at `url` (scheme://host[:port]); never hangs past `timeout`."""
    started = time.monotonic()
    parts = urlsplit(url)
    base = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    run = LiveRun(url=base, posture=posture, remote=True)
    run.routes = {r.path: r for r in app.router.routes}
    from chirp.contracts.live.probes import session_middleware

    run.session_cookie, run.session_site = session_middleware(app)
    target = Target(base, parts.netloc, timeout=min(timeout, 10.0))
    if parts.scheme == "https":
        run.tls = inspect_tls(parts.hostname or "", parts.port or 443, ca_file, timeout=min(timeout, 10.0))
        plain = http_url or urlunsplit(("http", parts.hostname or "", "", "", ""))
        run.exchanges["http"] = Target(plain, parts.hostname or "", timeout=min(timeout, 10.0)).request(
            "GET", "/"
        )
    wait_ready(run, lambda: True, target, app.config.ready_path, started + timeout)
    probe(run, target, app, None, mutating=False)
    if parts.scheme == "https":
        handshakes(run, target)  # the negotiated protocol and suite, for live.tls
    run.skipped["error"] = "a deployed instance gets no route that raises on purpose"
    run.exchanges["info"] = target.request("GET", INFO_PATH)
    run.duration_ms = round((time.monotonic() - started) * 1000, 1)
    return run


def inspect_tls(host: str, port: int, ca_file: str | None, *, timeout: float) -> TlsObservation:
    """Verify the chain and name like a browser would (with `ca_file` as the trust store when
    given), and read the certificate's expiry even when verification fails."""
    from cryptography import x509

    verified, error = True, None
    context = ssl.create_default_context(cafile=ca_file)
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host),
        ):
            pass
    except ssl.SSLCertVerificationError as exc:
        verified, error = False, exc.verify_message or str(exc)
    except (OSError, ssl.SSLError) as exc:
        return TlsObservation(False, f"{type(exc).__name__}: {exc}")
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE  # only to read the certificate a failed check rejected
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            insecure.wrap_socket(raw, server_hostname=host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as exc:
        return TlsObservation(verified, error or f"{type(exc).__name__}: {exc}")
    if not der:
        return TlsObservation(verified, error or "the server presented no certificate")
    cert = x509.load_der_x509_certificate(der)
    expires = cert.not_valid_after_utc
    left = (expires - dt.datetime.now(dt.UTC)).total_seconds() / 86400
    return TlsObservation(verified, error, expires.isoformat(), round(left, 2), cert.subject.rfc4514_string())
