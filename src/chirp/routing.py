"""The route table: path templates with typed parameters, 404/405, HEAD for GET, url_for."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from chirp.config import SourceSite
from chirp.errors import MethodNotAllowed, NotFound

_PARAM = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?}")
CONVERTERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "str": (r"[^/]+", str),
    "int": (r"-?[0-9]+", int),
    "float": (r"-?[0-9]+(?:\.[0-9]+)?", float),
    "path": (r".*", str),
}
MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(eq=False)
class Route:
    path: str
    methods: frozenset[str]
    handler: Callable[..., Any]
    name: str
    site: SourceSite | None = None
    regex: re.Pattern[str] | None = None
    converters: dict[str, Callable[[str], Any]] = field(default_factory=dict)
    wants: frozenset[str] = frozenset()
    is_async: bool = False

    @property
    def mutating(self) -> bool:
        return bool(self.methods & MUTATING_METHODS)

    def url(self, **params: Any) -> str:
        missing = [n for n in self.converters if n not in params]
        if missing:
            raise KeyError(f"url_for({self.name!r}) needs {', '.join(missing)}")

        def sub(match: re.Match[str]) -> str:
            value = str(params[match.group(1)])
            return quote(value, safe="/" if match.group(2) == "path" else "")

        return _PARAM.sub(sub, self.path)


def compile_path(path: str) -> tuple[re.Pattern[str] | None, dict[str, Callable[[str], Any]]]:
    """Turn `/items/{id:int}` into a regex and the converters of its parameters."""
    if not path.startswith("/"):
        raise ValueError(f"route path {path!r} must start with '/'")
    converters: dict[str, Callable[[str], Any]] = {}
    pattern = "^"
    pos = 0
    params = list(_PARAM.finditer(path))
    for i, match in enumerate(params):
        name, kind = match.group(1), match.group(2) or "str"
        if kind not in CONVERTERS:
            raise ValueError(
                f"route {path!r}: unknown converter {kind!r}; use one of {', '.join(CONVERTERS)}"
            )
        if kind == "path" and (i != len(params) - 1 or match.end() != len(path)):
            raise ValueError(f"route {path!r}: a {{{name}:path}} parameter must come last")
        if name in converters:
            raise ValueError(f"route {path!r}: parameter {name!r} appears twice")
        regex, convert = CONVERTERS[kind]
        pattern += re.escape(path[pos : match.start()]) + f"(?P<{name}>{regex})"
        converters[name] = convert
        pos = match.end()
    if not params:
        return None, {}
    pattern += re.escape(path[pos:]) + "$"
    return re.compile(pattern), converters


class Router:
    """Routes in registration order; static paths are looked up in a dict."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self._static: dict[str, list[Route]] = {}
        self._dynamic: list[Route] = []
        self._by_name: dict[str, Route] = {}

    def add(self, route: Route) -> None:
        if route.name in self._by_name:
            raise ValueError(f"a route named {route.name!r} already exists; pass name= to route()")
        route.regex, route.converters = compile_path(route.path)
        self.routes.append(route)
        self._by_name[route.name] = route
        if route.regex is None:
            self._static.setdefault(route.path, []).append(route)
        else:
            self._dynamic.append(route)

    def claims(self, path: str) -> list[Route]:
        """Every route whose template matches `path` (for probe and metrics collisions)."""
        found = list(self._static.get(path, ()))
        found += [r for r in self._dynamic if r.regex and r.regex.match(path)]
        return found

    def match(self, method: str, path: str) -> tuple[Route, dict[str, Any]]:
        """The route for this request, or `NotFound` / `MethodNotAllowed` with `Allow`."""
        allowed: set[str] = set()
        for route in self._static.get(path, ()):
            if method in route.methods or (method == "HEAD" and "GET" in route.methods):
                return route, {}
            allowed |= route.methods
        for route in self._dynamic:
            assert route.regex is not None
            m = route.regex.match(path)
            if m is None:
                continue
            if method in route.methods or (method == "HEAD" and "GET" in route.methods):
                try:
                    params = {k: route.converters[k](v) for k, v in m.groupdict().items()}
                except ValueError:
                    continue
                return route, params
            allowed |= route.methods
        if allowed:
            if "GET" in allowed:
                allowed.add("HEAD")
            raise MethodNotAllowed(sorted(allowed))
        raise NotFound()

    def url_for(self, name: str, /, **params: Any) -> str:
        try:
            route = self._by_name[name]
        except KeyError:
            raise KeyError(f"no route named {name!r}") from None
        return route.url(**params)
