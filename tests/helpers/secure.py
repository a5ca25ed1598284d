"""Helpers for the secure-stack tests: cookie parsing and small chirp apps."""

from __future__ import annotations

import http.cookiejar
from typing import Any

import httpx

from chirp import App, AppConfig
from chirp.middleware import CSRFMiddleware, SessionMiddleware

SECRET = "test-secret-key-with-enough-entropy-0123456789"


def set_cookies(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def cookie_attrs(header: str) -> tuple[str, str, dict[str, str]]:
    """`(name, value, {attribute-lowercase: value})` of one Set-Cookie header."""
    first, *rest = (p.strip() for p in header.split(";"))
    name, _, value = first.partition("=")
    attrs = {}
    for part in rest:
        key, _, val = part.partition("=")
        attrs[key.strip().lower()] = val.strip()
    return name, value, attrs


def session_cookie(response: httpx.Response, name: str = "chirp_session") -> str | None:
    """The session cookie value the response sets (None when it sets none)."""
    for header in set_cookies(response):
        cname, value, _ = cookie_attrs(header)
        if cname == name:
            return value
    return None


def session_app(config: AppConfig | None = None, *, csrf: bool = False, **session_options: Any) -> App:
    """An app with SessionMiddleware (and optionally CSRF) and routes that drive the session."""
    config = config or AppConfig(secret_key=SECRET)
    app = App(config)
    session_options.setdefault("env", config.env)
    app.add_middleware(SessionMiddleware(config.secret_key, config.secret_key_fallbacks, **session_options))
    if csrf:
        app.add_middleware(CSRFMiddleware.from_config(config))

    @app.route("/")
    def index() -> str:
        return "hello"

    @app.route("/peek")
    def peek(request: Any) -> dict[str, Any]:
        return {"data": dict(request.session), "id": request.session.id if len(request.session) else None}

    @app.route("/set/{key}/{value}", methods=("GET", "POST"))
    def set_value(request: Any, key: str, value: str) -> dict[str, Any]:
        request.session[key] = value
        return {"data": dict(request.session), "id": request.session.id}

    @app.route("/login/{user}", methods=("POST",))
    def login(request: Any, user: str) -> dict[str, Any]:
        request.session.regenerate()
        request.session["user"] = user
        return {"id": request.session.id}

    @app.route("/logout", methods=("POST",))
    def logout(request: Any) -> str:
        request.session.clear()
        return "bye"

    return app


def stateless_client(base_url: str) -> httpx.Client:
    """An httpx client that never stores cookies: each test states the cookie it sends."""
    jar = http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return httpx.Client(base_url=base_url, cookies=jar)
