"""ASGI plumbing: types, scope building and the lifespan protocol."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import anyio

from pounce.errors import StartupFailed

if TYPE_CHECKING:
    from pounce.config import ServerConfig

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}
logger = logging.getLogger("pounce.error")


class ServerState:
    """What the app may ask the server about while it runs (shared, mutable).

    It reaches the app as `scope["extensions"]["pounce.server"]` in every scope, the lifespan
    scope included, so an app can judge itself against the settings it is really served with.
    """

    __slots__ = ("config", "draining", "requests", "supervised", "worker_id")

    def __init__(
        self, worker_id: int = 0, config: ServerConfig | None = None, supervised: bool = False
    ) -> None:
        self.draining = False
        self.worker_id = worker_id
        self.config = config
        self.supervised = supervised  # one of a supervisor's workers, not the launching process
        self.requests = 0  # HTTP requests taken, for `max_requests`


def http_scope(
    method: bytes,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
    http_version: str,
    scheme: str,
    client: tuple[str, int] | None,
    server: tuple[str, int | None] | None,
    root_path: str,
    state: dict[str, Any],
    server_state: ServerState,
) -> Scope:
    server_state.requests += 1
    raw_path, _, query = target.partition(b"?")
    path = raw_path.decode("latin-1")
    if "%" in path:
        path = unquote(path)
    return {
        "type": "http",
        "asgi": ASGI_VERSION,
        "http_version": http_version,
        "method": method.decode("ascii"),
        "scheme": scheme,
        "path": path,
        "raw_path": raw_path,
        "query_string": query,
        "root_path": root_path,
        "headers": headers,
        "client": client,
        "server": server,
        "state": dict(state) if state else {},
        "extensions": {"pounce.server": server_state},
    }


class LifespanError(StartupFailed):
    """The app refused to start (or stop): `lifespan.startup.failed` or a timeout."""


class Lifespan:
    """Drives the ASGI lifespan protocol for one app in one process.

    An app that sets `lifespan_required = True` (every chirp `App`: its startup hooks, services
    and deploy-contract check run here) is never served without it: `lifespan="off"` refuses to
    start, and under `"auto"` an exception from it is a failed startup, not "unsupported".
    """

    def __init__(
        self,
        app: ASGIApp,
        mode: str,
        startup_timeout: float,
        shutdown_timeout: float,
        *,
        server_state: ServerState | None = None,
        required: bool = False,
    ) -> None:
        self.app = app
        self.mode = mode
        self.required = required
        self.server_state = server_state
        self.startup_timeout = startup_timeout
        self.shutdown_timeout = shutdown_timeout
        self.state: dict[str, Any] = {}
        self._to_app, self._from_server = anyio.create_memory_object_stream[Message](2)
        self._to_server, self._from_app = anyio.create_memory_object_stream[Message](2)
        self._supported = True
        self._done = anyio.Event()

    async def _run(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": ASGI_VERSION,
            "state": self.state,
            "extensions": {"pounce.server": self.server_state},
        }
        try:
            await self.app(scope, self._from_server.receive, self._to_server.send)
        except BaseException as exc:
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                raise
            if self.mode == "auto" and not self.required:
                self._supported = False
                logger.debug("lifespan not supported by the app (%r); continuing without it", exc)
            else:
                logger.error("exception in lifespan", exc_info=exc)
                await self._to_server.send({"type": "lifespan.crashed", "message": repr(exc)})
        finally:
            self._done.set()

    async def _exchange(self, event: str, timeout: float) -> None:
        if not self._supported:
            return
        await self._to_app.send({"type": f"lifespan.{event}"})
        with anyio.fail_after(timeout):
            async with anyio.create_task_group() as tg:
                result: list[Message] = []

                async def wait_reply() -> None:
                    result.append(await self._from_app.receive())
                    tg.cancel_scope.cancel()

                async def wait_exit() -> None:
                    await self._done.wait()
                    await anyio.sleep(0)  # let a final reply arrive first
                    tg.cancel_scope.cancel()

                tg.start_soon(wait_reply)
                tg.start_soon(wait_exit)
        if not result:
            if not self._supported:
                return
            raise LifespanError(f"the app exited during lifespan {event}")
        message = result[0]
        if message["type"] == f"lifespan.{event}.failed":
            raise LifespanError(message.get("message") or f"lifespan {event} failed")
        if message["type"] == "lifespan.crashed":
            raise LifespanError(message["message"])

    async def startup(self, tg: anyio.abc.TaskGroup) -> None:
        if self.mode == "off":
            self._supported = False
            if self.required:
                raise LifespanError(
                    "lifespan='off' is invalid for this app: it runs its startup (hooks, services, "
                    "contract check) in the ASGI lifespan; use --lifespan auto or on"
                )
            return
        tg.start_soon(self._run)
        try:
            await self._exchange("startup", self.startup_timeout)
        except TimeoutError:
            raise LifespanError(
                f"startup did not finish within startup_timeout={self.startup_timeout}s"
            ) from None

    async def shutdown(self) -> None:
        try:
            await self._exchange("shutdown", self.shutdown_timeout)
        except TimeoutError:
            logger.error("lifespan shutdown did not finish within %ss", self.shutdown_timeout)
        except LifespanError as exc:
            logger.error("lifespan shutdown failed: %s", exc)
