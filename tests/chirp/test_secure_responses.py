"""Responses chirp makes itself carry the same security headers as a handler's page.

A refusal from a middleware outside SecurityHeadersMiddleware (Host 400, CSRF 403, a body
over the limit read by CSRF 413), an error escaping the stack (500), the router's 404 and
405 and a FileResponse whose file is gone are all checked over real HTTP against the headers
of an ordinary page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from chirp import App, AppConfig, FileResponse, Request, Response, csrf_token, secure_stack
from chirp.app import CallNext
from chirp.middleware import SecurityHeadersMiddleware
from helpers.secure import SECRET, session_cookie, stateless_client
from helpers.server import serve

HOST = "app.example"
BODY_LIMIT = 1024


def secured_app() -> App:
    config = AppConfig(
        secret_key=SECRET,
        allowed_hosts=(HOST,),
        strict_transport_security="max-age=63072000; includeSubDomains",
        cross_origin_embedder_policy="require-corp",
        max_request_body_size=BODY_LIMIT,
    )
    app = App(config)

    async def outermost(request: Request, call_next: CallNext) -> Response:
        if request.path == "/broken-middleware":
            raise RuntimeError("middleware failed")
        return await call_next(request)

    app.add_middleware(outermost)
    for middleware in secure_stack(config):
        app.add_middleware(middleware)

    @app.route("/")
    def index(request: Request) -> str:
        return f"<form method=post><input name=csrf_token value={csrf_token(request)}></form>"

    @app.route("/notes", methods=("POST",))
    async def add_note(request: Request) -> str:
        return "stored"

    @app.route("/download")
    def download() -> FileResponse:
        return FileResponse(
            "/nonexistent/chirp-test-file.txt", headers={"cache-control": "max-age=86400"}, filename="r.txt"
        )

    return app


def policy_of(app: App) -> tuple[tuple[str, str], ...]:
    return next(
        m.middleware.headers for m in app.middleware if isinstance(m.middleware, SecurityHeadersMiddleware)
    )


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[httpx.Client, tuple[tuple[str, str], ...]]]:
    app = secured_app()
    # pounce would refuse an oversized body itself (its max_body_size follows the app's limit):
    # raise its limit so the app's own 413, from inside the middleware, is what gets tested.
    with serve(app, max_body_size=64 * BODY_LIMIT) as srv, stateless_client(srv.url) as client:
        client.headers["host"] = HOST
        yield client, policy_of(app)


def assert_secured(response: httpx.Response, policy: tuple[tuple[str, str], ...]) -> None:
    for name, value in policy:
        assert response.headers.get(name) == value, (response.status_code, name, response.headers)


def test_the_policy_covers_every_header_and_a_page_carries_it(served: Any) -> None:
    client, policy = served
    names = {name for name, _ in policy}
    assert {
        "cross-origin-resource-policy",
        "cross-origin-embedder-policy",
        "strict-transport-security",
    } <= names
    page = client.get("/")
    assert page.status_code == 200
    assert_secured(page, policy)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/missing", 404), ("GET", "/notes", 405), ("GET", "/broken-middleware", 500)],
)
def test_error_pages_carry_the_headers(served: Any, method: str, path: str, status: int) -> None:
    client, policy = served
    response = client.request(method, path)
    assert response.status_code == status
    assert "middleware failed" not in response.text  # debug is off: no details
    assert_secured(response, policy)


def test_a_foreign_host_refusal_carries_the_headers(served: Any) -> None:
    client, policy = served
    response = client.get("/", headers={"host": "attacker.example"})
    assert response.status_code == 400
    assert_secured(response, policy)


def test_a_csrf_refusal_carries_the_headers(served: Any) -> None:
    client, policy = served
    response = client.post("/notes", data={"note": "hi"})
    assert response.status_code == 403
    assert response.text.startswith("403 Forbidden: CSRF check failed")
    assert_secured(response, policy)


def test_a_body_over_the_limit_read_by_csrf_carries_the_headers(served: Any) -> None:
    client, policy = served
    page = client.get("/")
    cookie = session_cookie(page)
    assert cookie is not None and re.search("csrf_token value=", page.text)
    response = client.post(
        "/notes", data={"note": "x" * (2 * BODY_LIMIT)}, headers={"cookie": f"chirp_session={cookie}"}
    )
    assert response.status_code == 413
    assert_secured(response, policy)


def test_a_missing_file_answers_404_with_the_headers(served: Any) -> None:
    client, policy = served
    response = client.get("/download")
    assert (response.status_code, response.text) == (404, "404 Not Found\n")
    assert "content-disposition" not in response.headers and "cache-control" not in response.headers
    assert_secured(response, policy)


def test_probes_stay_plain(served: Any) -> None:
    client, _ = served
    health = client.get("/health", headers={"host": "10.0.0.7"})
    assert (health.status_code, health.text) == (200, "ok\n")
    assert "content-security-policy" not in health.headers and "set-cookie" not in health.headers
