"""Liveness and readiness probes, and the readiness checks behind `/ready`."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pounce.asgi import Scope, Send

CheckFn = Callable[[], Any] | Callable[[], Awaitable[Any]]


@dataclass(frozen=True)
class HealthCheck:
    """A readiness dependency: `check` passes unless it raises or returns False."""

    name: str
    check: CheckFn
    timeout: float = 5.0

    def __post_init__(self) -> None:
        from chirp.errors import ConfigurationError

        if self.timeout <= 0:
            raise ConfigurationError("HealthCheck.timeout", self.timeout, "must be greater than 0")
        if not callable(self.check):
            raise ConfigurationError("HealthCheck.check", self.check, "pass a sync or async callable")

    async def run(self) -> str | None:
        """None when healthy; otherwise the reason, one line."""
        import anyio  # loaded when a probe runs, not when an app is built

        with anyio.move_on_after(self.timeout) as timer:
            try:
                if inspect.iscoroutinefunction(self.check):
                    result = await self.check()
                else:
                    result = await anyio.to_thread.run_sync(self.check, abandon_on_cancel=True)
                    if inspect.isawaitable(result):
                        result = await result
            except Exception as exc:
                return f"{type(exc).__name__}: {exc}".splitlines()[0]
        if timer.cancelled_caught:
            return f"timed out after {self.timeout}s"
        if result is False:
            return "check returned False"
        return None


async def run_checks(checks: list[HealthCheck]) -> list[tuple[str, str]]:
    """Run every check concurrently; return (name, reason) for each failure."""
    import anyio  # loaded when a probe runs, not when an app is built

    failures: list[tuple[str, str]] = []

    async def one(check: HealthCheck) -> None:
        reason = await check.run()
        if reason is not None:
            failures.append((check.name, reason))

    async with anyio.create_task_group() as tg:
        for check in checks:
            tg.start_soon(one, check)
    return sorted(failures)


async def send_probe(
    scope: Scope, send: Send, status: int, text: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A plain-text probe answer: no cookies, no caching, outside negotiation."""
    body = text.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


def is_draining(scope: Scope) -> bool:
    state = scope.get("extensions", {}).get("pounce.server")
    return bool(getattr(state, "draining", False))
