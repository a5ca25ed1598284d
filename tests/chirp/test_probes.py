"""/health and /ready: states, checks, bypass of middleware, collisions."""

from __future__ import annotations

import asyncio
import socket
import time

import anyio
import httpx
import pytest

from chirp import App, AppConfig, HealthCheck, Request, Response
from helpers.asgi_apps import plain_asgi
from helpers.server import serve


def cookie_middleware_app(**config: object) -> App:
    app = App(AppConfig(**config))  # type: ignore[arg-type]

    async def sets_cookie(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        response.set_cookie("session", "abc")
        return response

    app.add_middleware(sets_cookie)

    @app.route("/")
    def index() -> str:
        return "home"

    return app


def test_health_and_ready_bypass_middleware_and_set_no_cookie() -> None:
    with serve(cookie_middleware_app()) as srv, httpx.Client(base_url=srv.url) as c:
        assert "set-cookie" in c.get("/").headers
        for path, text in (("/health", "ok\n"), ("/ready", "ready\n")):
            r = c.get(path)
            assert (r.status_code, r.text) == (200, text)
            assert r.headers["content-type"] == "text/plain; charset=utf-8"
            assert "set-cookie" not in r.headers
            head = c.head(path)
            assert head.status_code == 200 and head.content == b""
        r = c.post("/health")
        assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"


def test_ready_is_503_until_startup_completes() -> None:
    with serve(plain_asgi(cookie_middleware_app()), lifespan="off") as srv:
        r = httpx.get(srv.url + "/ready")
        assert (r.status_code, r.text) == (503, "starting\n")
        assert httpx.get(srv.url + "/health").status_code == 200


def test_failed_and_slow_checks_are_listed_and_run_concurrently() -> None:
    app = App()

    def broken() -> None:
        raise ConnectionError("cache refused connection")

    async def slow() -> None:
        await asyncio.sleep(5)

    async def fine() -> bool:
        return True

    app.add_health_check(HealthCheck("cache", broken))
    app.add_health_check(HealthCheck("queue", slow, timeout=0.3))
    app.add_health_check(HealthCheck("falsey", lambda: False))
    app.add_health_check(HealthCheck("db", fine))
    with serve(app) as srv:
        start = time.monotonic()
        r = httpx.get(srv.url + "/ready")
        elapsed = time.monotonic() - start
    assert r.status_code == 503
    assert r.text.splitlines() == [
        "cache: ConnectionError: cache refused connection",
        "falsey: check returned False",
        "queue: timed out after 0.3s",
    ]
    assert elapsed < 2


def test_ready_recovers_when_the_dependency_does() -> None:
    state = {"up": False}
    app = App()
    app.add_health_check(HealthCheck("flag", lambda: state["up"]))
    with serve(app) as srv:
        assert httpx.get(srv.url + "/ready").status_code == 503
        state["up"] = True
        assert httpx.get(srv.url + "/ready").status_code == 200


def test_custom_probe_paths() -> None:
    app = App(AppConfig(health_path="/livez", ready_path="/readyz"))
    with serve(app) as srv:
        assert httpx.get(srv.url + "/livez").text == "ok\n"
        assert httpx.get(srv.url + "/readyz").text == "ready\n"
        assert httpx.get(srv.url + "/health").status_code == 404


def test_user_route_on_probe_path_wins() -> None:
    app = App()

    @app.route("/health")
    def mine() -> str:
        return "custom"

    app.suppress("deploy_health.collision", reason="this test needs the collision to serve")
    with serve(app) as srv:
        assert httpx.get(srv.url + "/health").text == "custom"
        assert httpx.get(srv.url + "/ready").text == "ready\n"


def test_ready_is_503_while_draining_and_in_flight_requests_finish() -> None:
    release = anyio.Event()
    app = App()

    @app.route("/slow")
    async def slow() -> str:
        await release.wait()
        return "done"

    with serve(app) as srv:
        busy = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        probe = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        busy.sendall(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        probe.sendall(b"GET /ready HTTP/1.1\r\nHost: t\r\n")  # head not finished yet
        while sum(c.requests for c in srv.server.connections) < 1 or len(srv.server.connections) < 2:
            time.sleep(0.01)
        srv.portal.start_task_soon(_shutdown, srv.server)
        while not srv.server.state.draining:
            time.sleep(0.01)
        probe.sendall(b"\r\n")
        answer = _read_all(probe)
        assert answer.startswith(b"HTTP/1.1 503") and answer.endswith(b"draining\n")
        srv.portal.call(release.set)
        answer = _read_all(busy)
        assert answer.startswith(b"HTTP/1.1 200") and b"connection: close" in answer.lower()
        assert answer.endswith(b"done")
        busy.close()
        probe.close()


def _read_all(s: socket.socket) -> bytes:
    data = b""
    while chunk := s.recv(4096):
        data += chunk
    return data


async def _shutdown(server) -> None:  # type: ignore[no-untyped-def]
    server.shutdown()


def test_health_check_validation() -> None:
    from chirp import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"HealthCheck\.timeout"):
        HealthCheck("x", lambda: True, timeout=0)
    with pytest.raises(ConfigurationError, match=r"HealthCheck\.check"):
        HealthCheck("x", "not callable")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="HealthCheck"):
        App().add_health_check(lambda: True)  # type: ignore[arg-type]
