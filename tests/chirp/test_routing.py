"""The route table on its own: templates, converters and their errors."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from chirp import App, AppConfig, ConfigurationError
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


def test_the_first_route_registered_for_a_static_path_and_method_wins() -> None:
    router = Router()
    router.add(route("/x", ("GET",), "get"))
    router.add(route("/x", ("GET", "HEAD"), "again"))
    router.add(route("/y", ("HEAD",), "head"))
    router.add(route("/y", ("GET",), "y"))
    assert router.match("GET", "/x")[0].name == "get"
    assert router.match("HEAD", "/x")[0].name == "get"
    assert router.match("HEAD", "/y")[0].name == "head"
    assert router.match("GET", "/y")[0].name == "y"


def test_a_static_path_without_the_method_falls_through_to_the_templates() -> None:
    router = Router()
    router.add(route("/items/new", ("POST",), "create"))
    router.add(route("/items/{id}", ("GET",), "show"))
    assert router.match("POST", "/items/new")[0].name == "create"
    found, params = router.match("GET", "/items/new")
    assert (found.name, params) == ("show", {"id": "new"})
    with pytest.raises(MethodNotAllowed) as info:
        router.match("PUT", "/items/new")
    assert info.value.allowed == ("GET", "HEAD", "POST")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("nope", "must start with '/'"),
        ("/a/{x:bogus}", "unknown converter 'bogus'"),
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


def test_uuid_parameters_convert_and_build_urls() -> None:
    router = Router()
    router.add(route("/orders/{order_id:uuid}", name="order"))
    value = uuid.UUID("3f2b8c1e-9d4a-4e7b-a1c2-5d6e7f809a1b")
    matched = router.match("GET", f"/orders/{value}")[1]
    assert matched == {"order_id": value} and isinstance(matched["order_id"], uuid.UUID)
    assert router.match("GET", f"/orders/{str(value).upper()}")[1] == {"order_id": value}
    for bad in ("not-a-uuid", value.hex, f"{value}x"):
        with pytest.raises(NotFound):
            router.match("GET", f"/orders/{bad}")
    assert router.url_for("order", order_id=value) == f"/orders/{value}"


@pytest.mark.parametrize(
    ("path", "source", "message"),
    [
        (
            "/items/{x:int}",
            "def view(y): ...",
            r"route\('/items/\{x:int\}'\)='view\(y\)' is invalid: the handler has no parameter 'x' "
            r"for the path parameter \{x\}; add 'x' to its signature or rename the path parameter",
        ),
        (
            "/items",
            "def view(request, item): ...",
            r"route\('/items'\)='view\(request, item\)' is invalid: nothing supplies the parameter 'item' "
            r"\(a route passes 'request' by keyword\); give it a default, add \{item\} to the path or remove it",
        ),
        ("/items/{x}", "def view(x, /): ...", r"nothing supplies the parameter 'x'"),
    ],
)
def test_templates_that_do_not_fit_the_handler_are_refused_at_registration(
    path: str, source: str, message: str
) -> None:
    app = App(AppConfig())
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    with pytest.raises(ConfigurationError, match=message):
        app.route(path)(namespace["view"])
    assert app.router.routes == []


def test_handlers_with_defaults_or_kwargs_fit() -> None:
    app = App(AppConfig())

    @app.route("/a/{x:int}")
    def with_kwargs(**params: Any) -> dict[str, Any]:
        return params

    @app.route("/b")
    def with_default(request: Any, page: int = 1) -> int:
        return page

    assert [r.path for r in app.router.routes] == ["/a/{x:int}", "/b"]
    assert "x" in app.router.routes[0].wants


@pytest.mark.parametrize(
    ("template", "params"),
    [
        ("/users/{name}", {"name": "a/b"}),
        ("/users/{name}", {"name": ""}),
        ("/items/{n:int}", {"n": "seven"}),
        ("/prices/{x:float}", {"x": 1e20}),
        ("/orders/{id:uuid}", {"id": "not-a-uuid"}),
    ],
)
def test_url_for_refuses_a_value_its_route_would_not_match(template: str, params: dict[str, Any]) -> None:
    """A URL that cannot route back to its handler is an error when built, not a 404 later."""
    router = Router()
    router.add(route(template, name="r"))
    with pytest.raises(ValueError, match="would not match"):
        router.url_for("r", **params)


def test_url_for_builds_urls_that_route_back() -> None:
    router = Router()
    router.add(route("/u/{name}/{n:int}/{x:float}/{rest:path}", name="u"))
    url = router.url_for("u", name="ann lee?", n=-3, x=2.5, rest="a b/c")
    assert url == "/u/ann%20lee%3F/-3/2.5/a%20b/c"
    from urllib.parse import unquote

    assert router.match("GET", unquote(url))[1] == {"name": "ann lee?", "n": -3, "x": 2.5, "rest": "a b/c"}
