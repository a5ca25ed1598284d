"""`secure_stack(config)`: the three middleware together, through a real pounce server."""

from __future__ import annotations

import re
from typing import Any

import pytest

from chirp import App, AppConfig, Redirect, Response
from chirp.middleware import (
    CSRFMiddleware,
    SecurityHeadersMiddleware,
    SessionMiddleware,
    csrf_token,
    secure_stack,
)
from helpers.secure import SECRET, cookie_attrs, session_cookie, set_cookies, stateless_client
from helpers.server import raw_request, serve


def test_order_types_and_settings_come_from_config() -> None:
    config = AppConfig(
        env="staging",
        secret_key=SECRET,
        secret_key_fallbacks=("old-key",),
        content_security_policy="default-src 'self'",
        strict_transport_security="max-age=600",
        csp_nonce_enabled=True,
    )
    session, csrf, headers = secure_stack(config)
    assert isinstance(session, SessionMiddleware)
    assert isinstance(csrf, CSRFMiddleware)
    assert isinstance(headers, SecurityHeadersMiddleware)
    assert session.secure is True and session.samesite == "lax"
    assert headers.hsts == "max-age=600" and headers.csp_nonce is True
    assert headers.content_security_policy.startswith("default-src 'self'")
    dev_session = secure_stack(AppConfig(secret_key=SECRET))[0]
    assert isinstance(dev_session, SessionMiddleware) and dev_session.secure is False


def login_app() -> App:
    config = AppConfig(secret_key=SECRET, csp_nonce_enabled=True)
    app = App(config)
    for middleware in secure_stack(config):
        app.add_middleware(middleware)

    @app.route("/login", methods=("GET", "POST"))
    async def login(request: Any) -> Any:
        if request.method == "GET":
            return (
                f'<script nonce="{request.csp_nonce}"></script>'
                f'<form method="post"><input name="csrf_token" value="{csrf_token(request)}"></form>'
            )
        form = await request.form()
        request.session.regenerate()
        request.session["user"] = form["user"]
        return Redirect("/me")

    @app.route("/me")
    def me(request: Any) -> dict[str, Any]:
        return {"user": request.session.get("user")}

    @app.route("/echo")
    def echo(request: Any) -> Response:
        return Response("ok", headers={"X-Echo": request.query.get("v", "")})

    return app


def token_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def test_login_flow_through_the_whole_stack() -> None:
    with serve(login_app()) as srv, stateless_client(srv.url) as client:
        page = client.get("/login")
        cookie = session_cookie(page)
        assert cookie is not None
        nonce = re.search(r'nonce="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        assert f"'nonce-{nonce}'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "private, no-store"

        forged = client.post(
            "/login", data={"user": "mallory"}, headers={"cookie": f"chirp_session={cookie}"}
        )
        assert forged.status_code == 403

        done = client.post(
            "/login",
            data={"user": "alice", "csrf_token": token_of(page.text)},
            headers={"cookie": f"chirp_session={cookie}"},
        )
        assert done.status_code == 303 and done.headers["location"] == "/me"
        assert done.headers["x-frame-options"] == "DENY"
        [header] = set_cookies(done)
        _, logged_in, attrs = cookie_attrs(header)
        assert "httponly" in attrs and attrs["samesite"] == "Lax"

        me = client.get("/me", headers={"cookie": f"chirp_session={logged_in}"})
        assert me.json() == {"user": "alice"}
        anonymous = client.get("/me")
        assert anonymous.json() == {"user": None}
        assert set_cookies(anonymous) == []

        # the pre-login token died with regenerate(): replaying it with the new cookie fails
        replay = client.post(
            "/login",
            data={"user": "mallory", "csrf_token": token_of(page.text)},
            headers={"cookie": f"chirp_session={logged_in}"},
        )
        assert replay.status_code == 403


@pytest.mark.parametrize(
    "payload", [b"a%0d%0aSet-Cookie:%20admin=1", b"a%0aX-Injected:%201", b"a%0d%0a%0d%0a<html>"]
)
def test_crlf_from_user_data_never_splits_the_response(payload: bytes) -> None:
    with serve(login_app()) as srv:
        raw = raw_request(
            srv.port, b"GET /echo?v=" + payload + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500 ")
    lowered = head.lower()
    assert b"x-echo" not in lowered
    assert b"admin=1" not in lowered and b"x-injected" not in lowered
    assert b"<html>" not in body


@pytest.mark.parametrize("headers_at", [0, 2], ids=["headers-outermost", "headers-innermost"])
def test_security_headers_cover_every_response_wherever_registered(headers_at: int) -> None:
    """The order rule does not ask for SecurityHeaders innermost: every position serves alike."""
    config = AppConfig(secret_key=SECRET, csp_nonce_enabled=True)
    session, csrf, headers = secure_stack(config)
    stack: list[Any] = [session, csrf]
    stack.insert(headers_at, headers)
    app = App(config)
    for middleware in stack:
        app.add_middleware(middleware)

    @app.route("/notes", methods=("GET", "POST"))
    def notes(request: Any) -> str:
        return f"nonce {request.csp_nonce}"

    assert not [f for f in app.check().findings if f.rule_id.startswith("security_stack.")]
    with serve(app) as srv, stateless_client(srv.url) as client:
        page = client.get("/notes")
        refused = client.post("/notes", data={"text": "hi"})  # no CSRF token: CSRFMiddleware refuses
    assert page.status_code == 200 and refused.status_code == 403
    nonce = page.text.removeprefix("nonce ")
    assert f"'nonce-{nonce}'" in page.headers["content-security-policy"]
    for response in (page, refused):
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
