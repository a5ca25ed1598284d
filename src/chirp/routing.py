"""The route table: path templates with typed parameters, 404/405, HEAD for GET, url_for.

HTTP and WebSocket routes share one table (and one namespace for `url_for`) but are matched
separately: a WebSocket handshake never reaches an HTTP handler, and the reverse.
"""

from __future__ import annotations

import inspect
import re
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from chirp.config import SourceSite
from chirp.errors import ConfigurationError, MethodNotAllowed, NotFound

_PARAM = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?}")
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
CONVERTERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "str": (r"[^/]+", str),
    "int": (r"-?[0-9]+", int),
    "float": (r"-?[0-9]+(?:\.[0-9]+)?", float),
    "uuid": (_UUID, uuid.UUID),
    "path": (r".*", str),
}
MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_MODES = ("token", "origin", "exempt")


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
    #: the route's CSRF mode ("token", "origin" or "exempt"); None: the middleware's own
    csrf: str | None = None
    websocket: bool = False
    #: WebSocket routes: whether the handshake's Origin is verified (by CSRFMiddleware)
    check_origin: bool = True
    #: an async handler that takes nothing: called as it is, without a `Request` unless it fails
    bare: bool = field(init=False)

    def __post_init__(self) -> None:
        self.bare = self.is_async and not self.wants

    @property
    def mutating(self) -> bool:
        return bool(self.methods & MUTATING_METHODS)

    @property
    def kind(self) -> str:
        return "websocket" if self.websocket else "http"

    def url(self, **params: Any) -> str:
        """The path with `params` filled in and quoted; `KeyError` when one is missing,
        `ValueError` when one would not match its parameter (the URL could not route back)."""
        missing = [n for n in self.converters if n not in params]
        if missing:
            raise KeyError(f"url_for({self.name!r}) needs {', '.join(missing)}")

        def sub(match: re.Match[str]) -> str:
            name, kind = match.group(1), match.group(2) or "str"
            value = str(params[name])
            # The path is matched after it is decoded: a value the parameter's pattern refuses
            # (a `/` in a segment, `abc` for an int) would build a URL that routes nowhere.
            if re.fullmatch(CONVERTERS[kind][0], value) is None:
                raise ValueError(
                    f"url_for({self.name!r}): {name}={value!r} would not match {{{name}:{kind}}} in {self.path!r}"
                )
            return quote(value, safe="/" if kind == "path" else "")

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


def check_handler(
    path: str, handler: Callable[..., Any], injected: Collection[str], what: str
) -> frozenset[str]:
    """The parameter names `handler` takes, after checking it fits the route `path`.

    Every path parameter must be one of them (or land in `**kwargs`), and every parameter
    without a default must be a path parameter or one of `injected` (`request`, `websocket`):
    otherwise the route could only fail at request time. Raises `ConfigurationError` naming
    the route, the parameter and the fix.
    """
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"{what}({path!r})", handler, "register a function (or another callable with a signature)"
        ) from None
    params = signature.parameters
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    name = getattr(handler, "__qualname__", repr(handler))
    declared = [m.group(1) for m in _PARAM.finditer(path)]
    for param in declared:
        if param not in params and not takes_kwargs:
            raise ConfigurationError(
                f"{what}({path!r})",
                f"{name}({', '.join(params)})",
                f"the handler has no parameter {param!r} for the path parameter {{{param}}}; "
                f"add {param!r} to its signature or rename the path parameter",
            )
    for param in params.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or param.default is not param.empty:
            continue
        if param.kind is param.POSITIONAL_ONLY or (param.name not in declared and param.name not in injected):
            offered = ", ".join([*(repr(d) for d in declared), *(repr(i) for i in injected)])
            raise ConfigurationError(
                f"{what}({path!r})",
                f"{name}({', '.join(params)})",
                f"nothing supplies the parameter {param.name!r} (a route passes {offered} by keyword); "
                f"give it a default, add {{{param.name}}} to the path or remove it",
            )
    return frozenset(params) | (frozenset(declared) if takes_kwargs else frozenset())


class Router:
    """Routes in registration order; static paths are looked up in a dict.

    HTTP and WebSocket routes are kept in separate tables (one namespace for names).
    """

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self._static: dict[str, dict[str, list[Route]]] = {"http": {}, "websocket": {}}
        self._dynamic: dict[str, list[Route]] = {"http": [], "websocket": []}
        self._by_name: dict[str, Route] = {}
        # static HTTP path -> method -> the first route that answers it (HEAD: a GET route too);
        # read-only outside `add`: the runtime looks a request up here before calling `match`
        self.static_methods: dict[str, dict[str, Route]] = {}

    def add(self, route: Route) -> None:
        if route.name in self._by_name:
            raise ValueError(f"a route named {route.name!r} already exists; pass name= to route()")
        route.regex, route.converters = compile_path(route.path)
        self.routes.append(route)
        self._by_name[route.name] = route
        if route.regex is None:
            self._static[route.kind].setdefault(route.path, []).append(route)
            if not route.websocket:
                methods = self.static_methods.setdefault(route.path, {})
                for method in sorted(route.methods | ({"HEAD"} if "GET" in route.methods else set())):
                    methods.setdefault(method, route)
        else:
            self._dynamic[route.kind].append(route)

    def claims(self, path: str) -> list[Route]:
        """Every HTTP route whose template matches `path` (for probe and metrics collisions)."""
        found = list(self._static["http"].get(path, ()))
        found += [r for r in self._dynamic["http"] if r.regex and r.regex.match(path)]
        return found

    def match(self, method: str, path: str) -> tuple[Route, dict[str, Any]]:
        """The route for this request, or `NotFound` / `MethodNotAllowed` with `Allow`."""
        methods = self.static_methods.get(path)
        if methods is not None and (route := methods.get(method)) is not None:
            return route, {}  # a static path: two lookups, the templates are not tried
        allowed: set[str] = set()
        for route in self._static["http"].get(path, ()):
            if method in route.methods or (method == "HEAD" and "GET" in route.methods):
                return route, {}
            allowed |= route.methods
        for route in self._dynamic["http"]:
            params = _params(route, path)
            if params is None:
                continue
            if method in route.methods or (method == "HEAD" and "GET" in route.methods):
                return route, params
            allowed |= route.methods
        if allowed:
            if "GET" in allowed:
                allowed.add("HEAD")
            raise MethodNotAllowed(sorted(allowed))
        raise NotFound()

    def match_websocket(self, path: str) -> tuple[Route, dict[str, Any]]:
        """The WebSocket route for a handshake on `path`, or `NotFound`."""
        for route in self._static["websocket"].get(path, ()):
            return route, {}
        for route in self._dynamic["websocket"]:
            params = _params(route, path)
            if params is not None:
                return route, params
        raise NotFound()

    def url_for(self, name: str, /, **params: Any) -> str:
        try:
            route = self._by_name[name]
        except KeyError:
            raise KeyError(f"no route named {name!r}") from None
        return route.url(**params)


def _params(route: Route, path: str) -> dict[str, Any] | None:
    """The converted parameters when `route` matches `path`; None when it does not."""
    assert route.regex is not None
    m = route.regex.match(path)
    if m is None:
        return None
    try:
        return {k: route.converters[k](v) for k, v in m.groupdict().items()}
    except ValueError:
        return None
