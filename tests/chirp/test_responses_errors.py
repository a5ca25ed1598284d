"""What `None` means, and error pages negotiated between plain text and problem+json (RFC 9457)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from chirp import App, AppConfig, HTTPError, Request
from chirp.db import Database
from chirp.negotiation import prefers_json
from helpers.server import raw_request, serve

JSON = {"accept": "application/json"}


def build_app() -> App:
    app = App(AppConfig(allowed_hosts=("127.0.0.1",)), database=Database("sqlite:///:memory:"))

    @app.on_startup
    async def schema() -> None:
        assert app.database is not None
        await app.database.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        await app.database.execute("INSERT INTO users (id, name) VALUES (1, 'ann')")

    @app.route("/users/{user_id:int}", methods=("GET", "DELETE"))
    async def user(request: Request, user_id: int) -> Any:
        assert app.database is not None
        if request.method == "DELETE":
            await app.database.execute("DELETE FROM users WHERE id = ?", (user_id,))
            return None
        return await app.database.fetch_one("SELECT id, name FROM users WHERE id = ?", (user_id,))

    @app.route("/created", methods=("POST",))
    def created() -> tuple[None, int, dict[str, str]]:
        return None, 201, {"location": "/users/2"}

    @app.route("/teapot")
    def teapot() -> str:
        raise HTTPError(418, "short and stout", {"x-pot": "1"})

    @app.route("/plain-error")
    def plain_error() -> str:
        raise HTTPError(409)

    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("secret internals")

    return app


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve(build_app()) as server:
        yield server.url


def test_none_from_a_get_is_404_and_a_found_row_is_json(url: str) -> None:
    found = httpx.get(url + "/users/1")
    assert (found.status_code, found.json()) == (200, {"id": 1, "name": "ann"})
    missing = httpx.get(url + "/users/99")
    assert (missing.status_code, missing.text) == (404, "404 Not Found\n")


def test_none_from_another_method_is_204_without_content_type_or_length(url: str) -> None:
    port = int(url.rsplit(":", 1)[1])
    raw = raw_request(port, b"DELETE /users/5 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 204 ")
    names = {line.split(b":", 1)[0].lower() for line in head.split(b"\r\n")[1:]}
    assert b"content-type" not in names and b"content-length" not in names
    assert body == b""


def test_a_none_body_in_a_tuple_keeps_status_and_headers(url: str) -> None:
    response = httpx.post(url + "/created")
    assert (response.status_code, response.headers["location"], response.content) == (201, "/users/2", b"")
    assert "content-type" not in response.headers


@pytest.mark.parametrize(
    ("path", "status", "text", "problem"),
    [
        ("/nowhere", 404, "404 Not Found\n", {"type": "about:blank", "title": "Not Found", "status": 404}),
        ("/plain-error", 409, "409 Conflict\n", {"type": "about:blank", "title": "Conflict", "status": 409}),
        (
            "/teapot",
            418,
            "418 I'm a Teapot: short and stout\n",
            {"type": "about:blank", "title": "I'm a Teapot", "status": 418, "detail": "short and stout"},
        ),
        (
            "/boom",
            500,
            "500 Internal Server Error\n",
            {"type": "about:blank", "title": "Internal Server Error", "status": 500},
        ),
    ],
)
def test_errors_are_text_or_problem_json_as_the_client_prefers(
    url: str, path: str, status: int, text: str, problem: dict[str, Any]
) -> None:
    plain = httpx.get(url + path)
    assert (plain.status_code, plain.text) == (status, text)
    assert plain.headers["content-type"] == "text/plain; charset=utf-8"
    as_json = httpx.get(url + path, headers=JSON)
    assert as_json.status_code == status
    assert as_json.headers["content-type"] == "application/problem+json"
    assert as_json.json() == problem
    assert "Accept" in as_json.headers["vary"]


def test_error_headers_survive_negotiation(url: str) -> None:
    response = httpx.get(url + "/teapot", headers=JSON)
    assert response.headers["x-pot"] == "1"


def test_a_405_lists_allowed_methods_in_either_form(url: str) -> None:
    response = httpx.put(url + "/users/1", headers=JSON)
    assert response.status_code == 405 and response.headers["allow"] == "DELETE, GET, HEAD"
    assert response.json()["title"] == "Method Not Allowed"


def test_a_refused_host_is_negotiated_too(url: str) -> None:
    response = httpx.get(url + "/users/1", headers={"host": "evil.example", **JSON})
    assert response.status_code == 400
    assert response.json()["detail"] == "the Host header is not allowed"


@pytest.mark.parametrize(
    ("accept", "json"),
    [
        (None, False),
        ("*/*", False),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),
        ("application/json", True),
        ("application/problem+json", True),
        ("application/vnd.api+json", True),
        ("application/json, text/plain, */*", True),  # equal quality: the first listed wins
        ("text/plain, application/json", False),
        ("text/html;q=0.5, application/json", True),
        ("application/json;q=0", False),
        ("application/json;q=oops, text/plain;q=0.1", False),
    ],
)
def test_prefers_json(accept: str | None, json: bool) -> None:
    assert prefers_json(accept) is json


def test_a_handler_that_takes_nothing_fails_like_any_other_without_middleware(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Such a handler is called without a Request; its error page is negotiated all the same."""
    app = App(AppConfig())

    @app.route("/teapot")
    async def teapot() -> str:
        raise HTTPError(418, "short and stout", {"x-pot": "1"})

    @app.route("/boom")
    async def boom() -> dict[str, int]:
        raise RuntimeError("secret internals")

    @app.route("/json")
    async def as_json() -> dict[str, int]:
        return {"a": 1}

    with serve(app) as server:
        r = httpx.get(server.url + "/teapot", headers=JSON)
        assert (r.status_code, r.headers["content-type"], r.headers["x-pot"]) == (
            418,
            "application/problem+json",
            "1",
        )
        assert r.json()["detail"] == "short and stout"
        r = httpx.get(server.url + "/boom")
        assert (r.status_code, r.text) == (500, "500 Internal Server Error\n")
        assert httpx.get(server.url + "/json").json() == {"a": 1}
        assert httpx.get(server.url + "/missing").status_code == 404
    assert "unhandled error in GET /boom" in caplog.text
