"""The route table on its own: templates, converters and their errors."""

from __future__ import annotations

import pytest

from chirp.errors import MethodNotAllowed, NotFound
from chirp.routing import Route, Router, compile_path


def route(path: str, methods: tuple[str, ...] = ("GET",), name: str | None = None) -> Route:
    return Route(path=path, methods=frozenset(methods), handler=lambda: None, name=name or path)


def test_typed_parameters_convert() -> None:
    router = Router()
    router.add(route("/items/{id:int}"))
    router.add(route("/price/{value:float}"))
    router.add(route("/files/{rest:path}"))
    router.add(route("/users/{name}"))
    assert router.match("GET", "/items/42")[1] == {"id": 42}
    assert router.match("GET", "/price/2.5")[1] == {"value": 2.5}
    assert router.match("GET", "/files/a/b/c.txt")[1] == {"rest": "a/b/c.txt"}
    assert router.match("GET", "/users/ann")[1] == {"name": "ann"}
    with pytest.raises(NotFound):
        router.match("GET", "/items/abc")


def test_405_lists_allowed_methods_with_head() -> None:
    router = Router()
    router.add(route("/x", ("GET",), "a"))
    router.add(route("/x", ("POST",), "b"))
    with pytest.raises(MethodNotAllowed) as info:
        router.match("DELETE", "/x")
    assert info.value.allowed == ("GET", "HEAD", "POST")
    assert info.value.headers["allow"] == "GET, HEAD, POST"


def test_head_matches_get() -> None:
    router = Router()
    router.add(route("/x"))
    assert router.match("HEAD", "/x")[0].path == "/x"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("nope", "must start with '/'"),
        ("/a/{x:uuid}", "unknown converter 'uuid'"),
        ("/a/{x:path}/b", "must come last"),
        ("/a/{x}/{x}", "appears twice"),
    ],
)
def test_bad_templates_raise(path: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        compile_path(path)


def test_url_for_quotes_values_and_requires_params() -> None:
    router = Router()
    router.add(route("/u/{name}/{rest:path}", name="u"))
    assert router.url_for("u", name="a b", rest="x/y z") == "/u/a%20b/x/y%20z"
    with pytest.raises(KeyError, match="needs rest"):
        router.url_for("u", name="a")
    with pytest.raises(KeyError, match="no route named"):
        router.url_for("missing")


def test_duplicate_names_refused() -> None:
    router = Router()
    router.add(route("/a", name="same"))
    with pytest.raises(ValueError, match="already exists"):
        router.add(route("/b", name="same"))
