"""AllowedHostsMiddleware over a real pounce server: Host header injection and auto-wiring."""

from __future__ import annotations

import re
from typing import Any

import pytest

from chirp import App, AppConfig
from chirp.middleware import AllowedHostsMiddleware
from chirp.middleware.allowed_hosts import host_matches, split_host
from helpers.secure import stateless_client
from helpers.server import raw_request, serve


def hosts_app(allowed: tuple[str, ...]) -> App:
    app = App(AppConfig(allowed_hosts=allowed))

    @app.route("/")
    def index(request: Any) -> str:
        return f"served {request.host}"

    return app


def status_of(raw: bytes) -> int:
    match = re.match(rb"HTTP/1\.[01] (\d{3})", raw)
    assert match, raw[:200]
    return int(match.group(1))


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("example.com", 200),
        ("EXAMPLE.com:8443", 200),
        ("example.com.", 200),
        ("example.org", 200),
        ("deep.sub.example.org", 200),
        ("[::1]:8000", 200),
        ("evil.com", 400),
        ("notexample.org", 400),
        ("example.com.evil.com", 400),
        ("example.com@evil.com", 400),
        ("evil.com#example.com", 400),
        ("www.example.com", 400),
        ("[::2]", 400),
        ("", 400),
    ],
)
def test_host_header_injection_is_refused(host: str, status: int) -> None:
    with serve(hosts_app(("example.com", ".example.org", "::1"))) as srv, stateless_client(srv.url) as client:
        response = client.get("/", headers={"host": host})
    assert response.status_code == status, response.text
    if status == 400:
        # a fixed message: the attacker's value is never echoed back (pounce itself refuses a
        # Host holding a character no host and port may, before the app sees it)
        assert response.text in (
            "400 Bad Request: the Host header is not allowed\n",
            "400 Bad Request\nthe Host header is not a valid host and port\n",
        )


def test_missing_or_duplicate_host_is_refused() -> None:
    with serve(hosts_app(("example.com",))) as srv:
        http10 = raw_request(srv.port, b"GET / HTTP/1.0\r\n\r\n")
        doubled = raw_request(
            srv.port, b"GET / HTTP/1.1\r\nHost: example.com\r\nHost: evil.com\r\nConnection: close\r\n\r\n"
        )
        good = raw_request(srv.port, b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
    assert status_of(http10) == 400
    assert status_of(doubled) == 400
    assert status_of(good) == 200


def test_an_absolute_form_target_is_judged_by_its_authority_not_the_host_header() -> None:
    with serve(hosts_app(("example.com",))) as srv:
        evil = raw_request(
            srv.port, b"GET http://evil.com/ HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"
        )
        good = raw_request(
            srv.port, b"GET http://example.com/ HTTP/1.1\r\nHost: evil.com\r\nConnection: close\r\n\r\n"
        )
    assert status_of(evil) == 400
    assert status_of(good) == 200 and good.endswith(b"served example.com")


def test_default_allows_any_host_and_wires_nothing() -> None:
    app = hosts_app(("*",))
    with serve(app) as srv, stateless_client(srv.url) as client:
        response = client.get("/", headers={"host": "anything.example"})
    assert response.status_code == 200
    assert not any(isinstance(m.middleware, AllowedHostsMiddleware) for m in app.middleware)


def test_auto_wired_as_the_outermost_middleware_once() -> None:
    app = App(AppConfig(allowed_hosts=("example.com",)))
    calls: list[str] = []

    async def user_middleware(request: Any, call_next: Any) -> Any:
        calls.append(request.host)
        return await call_next(request)

    app.add_middleware(user_middleware)

    @app.route("/")
    def index() -> str:
        return "ok"

    with serve(app) as srv, stateless_client(srv.url) as client:
        refused = client.get("/", headers={"host": "evil.com"})
        served = client.get("/", headers={"host": "example.com"})
    assert (refused.status_code, served.status_code) == (400, 200)
    assert calls == ["example.com"]  # the refused request never reached user middleware
    assert isinstance(app.middleware[0].middleware, AllowedHostsMiddleware)
    assert sum(isinstance(m.middleware, AllowedHostsMiddleware) for m in app.middleware) == 1


def test_explicit_registration_is_not_duplicated() -> None:
    app = App(AppConfig(allowed_hosts=("example.com",)))
    explicit = AllowedHostsMiddleware(["example.com", "www.example.com"])
    app.add_middleware(explicit)
    app._freeze_structure()
    assert [m.middleware for m in app.middleware] == [explicit]


def test_probes_answer_any_host() -> None:
    # Orchestrators probe by pod IP; the probes run before any middleware.
    with serve(hosts_app(("example.com",))) as srv, stateless_client(srv.url) as client:
        response = client.get("/health", headers={"host": "10.1.2.3:8000"})
    assert (response.status_code, response.text) == (200, "ok\n")


def test_split_host_and_patterns() -> None:
    assert split_host("Example.COM:8000") == "example.com"
    assert split_host("[2001:DB8::1]:443") == "2001:db8::1"
    assert split_host("127.0.0.1:80") == "127.0.0.1"
    for bad in (None, "", "a b", "evil.com/x", "a@b", "[::1", "host:port", "x:99999999"):
        assert split_host(bad) is None, bad
    assert host_matches("example.com", [".example.com"])
    assert host_matches("a.b.example.com", [".example.com"])
    assert not host_matches("badexample.com", [".example.com"])
    assert host_matches("anything", ["*"])
    assert not host_matches("example.com", [])
