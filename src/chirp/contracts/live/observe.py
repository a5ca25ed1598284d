"""What a live run saw: the HTTP exchanges with the booted server, plus how it started and stopped.

Plain data, filled by `chirp.contracts.live.probes` and judged by the `live.*` rules, so the
rules stay pure functions of the snapshot like every other rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Exchange:
    """One request sent to the live server and what came back (`status` None: no answer)."""

    method: str
    path: str
    host: str
    status: int | None = None
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    error: str | None = None
    #: bytes that followed the header block of a HEAD response (should be none)
    head_extra: bytes | None = None

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    def header_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [v for k, v in self.headers if k.lower() == wanted]

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def describe(self) -> str:
        """`GET /path` with the outcome, for finding messages."""
        outcome = f"-> {self.status}" if self.status is not None else f"failed: {self.error}"
        return f"{self.method} {self.path} {outcome}"


@dataclass
class Handshake:
    """One TLS handshake with the live server: what was negotiated, or why it failed."""

    version: str | None = None
    cipher: str | None = None
    alpn: str | None = None
    error: str | None = None


@dataclass
class Shutdown:
    """How the server ended after SIGTERM."""

    returncode: int | None = None
    seconds: float = 0.0
    killed: bool = False


@dataclass
class TlsObservation:
    """The certificate a deployed instance presents, and whether a client can trust it."""

    verified: bool
    error: str | None = None  # why verification failed
    not_after: str | None = None  # ISO 8601, UTC
    days_left: float | None = None
    subject: str = ""


@dataclass
class LiveRun:
    """Everything one `--live` run observed; the `live.*` rules read only this."""

    url: str | None = None
    #: why the server never became reachable (None: it did)
    boot_error: str | None = None
    log_tail: list[str] = field(default_factory=list)
    #: probe name -> exchange (see `chirp.contracts.live.probes` for the names)
    exchanges: dict[str, Exchange] = field(default_factory=dict)
    #: probe name -> why it was not run
    skipped: dict[str, str] = field(default_factory=dict)
    ready: bool = False
    ready_seconds: float = 0.0
    shutdown: Shutdown | None = None
    posture: str = "development"
    #: route templates -> the route object (for finding locations)
    routes: dict[str, Any] = field(default_factory=dict)
    session_cookie: str | None = None
    session_site: Any = None
    forced_error_token: str | None = None
    duration_ms: float = 0.0
    #: TLS probe name -> handshake (see `chirp.contracts.live.probes`; empty without TLS)
    handshakes: dict[str, Handshake] = field(default_factory=dict)
    #: a deployed instance (`chirp check --url`) rather than a server booted for the check
    remote: bool = False
    tls: TlsObservation | None = None

    @property
    def booted(self) -> bool:
        return self.boot_error is None

    def get(self, name: str) -> Exchange | None:
        return self.exchanges.get(name)

    def matching(self, prefix: str) -> list[tuple[str, Exchange]]:
        return [(k, v) for k, v in self.exchanges.items() if k.startswith(prefix)]

    def tail(self, lines: int = 15) -> str:
        return "".join(self.log_tail[-lines:]).rstrip()


def summary(run: LiveRun) -> dict[str, Any]:
    """The run in the JSON report (`"live"`): where it ran, how long it took, what was skipped."""
    down = run.shutdown
    return {
        "url": run.url,
        "posture": run.posture,
        "booted": run.booted,
        "ready": run.ready,
        "ready_seconds": run.ready_seconds,
        "duration_ms": run.duration_ms,
        "remote": run.remote,
        "tls": None
        if run.tls is None
        else {
            "verified": run.tls.verified,
            "error": run.tls.error,
            "not_after": run.tls.not_after,
            "days_left": run.tls.days_left,
        },
        "probes": sorted(run.exchanges),
        "skipped": dict(run.skipped),
        "shutdown": None
        if down is None
        else {"returncode": down.returncode, "seconds": down.seconds, "killed": down.killed},
    }
