"""SecurityHeadersMiddleware over a real pounce server: defaults, overrides, HSTS and nonces."""

from __future__ import annotations

import base64
import re
from typing import Any

import httpx
import pytest

from chirp import App, AppConfig, ConfigurationError, Response
from chirp.middleware import SecurityHeadersMiddleware
from chirp.middleware.security_headers import DEFAULT_CSP, add_nonce, parse_csp
from helpers.secure import stateless_client
from helpers.server import serve

EXPECTED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


def headers_app(middleware: SecurityHeadersMiddleware) -> App:
    app = App(AppConfig())
    app.add_middleware(middleware)

    @app.route("/")
    def index(request: Any) -> str:
        return f'<script nonce="{request.csp_nonce}">1</script>'

    @app.route("/json")
    def as_json() -> dict[str, int]:
        return {"a": 1}

    @app.route("/own")
    def own() -> Response:
        return Response(
            "mine",
            headers={
                "X-Frame-Options": "SAMEORIGIN",
                "Content-Security-Policy": "default-src 'none'; script-src https://cdn.example",
                "Cache-Control": "public, max-age=60",
                "Referrer-Policy": "no-referrer",
                "Cross-Origin-Resource-Policy": "cross-origin",
            },
        )

    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("handler failed")

    return app


def directive(policy: str, name: str) -> list[str]:
    return next(sources for directive_name, sources in parse_csp(policy) if directive_name == name)


def test_defaults_on_every_kind_of_response() -> None:
    with serve(headers_app(SecurityHeadersMiddleware())) as srv, stateless_client(srv.url) as client:
        responses = [client.get("/"), client.get("/json"), client.get("/missing"), client.get("/boom")]
    assert [r.status_code for r in responses] == [200, 200, 404, 500]
    for response in responses:
        for name, value in EXPECTED.items():
            assert response.headers[name] == value
        assert response.headers["content-security-policy"] == DEFAULT_CSP
        assert "strict-transport-security" not in response.headers
        assert "cross-origin-embedder-policy" not in response.headers  # opt-in
        assert "cache-control" not in response.headers
    policy = responses[0].headers["content-security-policy"]
    assert directive(policy, "frame-ancestors") == ["'none'"]
    assert directive(policy, "object-src") == ["'none'"]
    assert directive(policy, "script-src") == ["'self'"]
    assert responses[0].text == '<script nonce="None">1</script>'  # no nonce unless enabled


def test_headers_set_by_the_handler_win() -> None:
    with serve(headers_app(SecurityHeadersMiddleware())) as srv, stateless_client(srv.url) as client:
        response = client.get("/own")
    assert response.headers["x-frame-options"] == "SAMEORIGIN"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["content-security-policy"] == "default-src 'none'; script-src https://cdn.example"
    assert response.headers["cache-control"] == "public, max-age=60"
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_hsts_only_when_configured() -> None:
    middleware = SecurityHeadersMiddleware(hsts="max-age=63072000; includeSubDomains")
    with serve(headers_app(middleware)) as srv, stateless_client(srv.url) as client:
        response = client.get("/")
    assert response.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"


def test_resource_and_embedder_policies_are_settings() -> None:
    middleware = SecurityHeadersMiddleware(
        cross_origin_resource_policy="same-site", cross_origin_embedder_policy="require-corp"
    )
    with serve(headers_app(middleware)) as srv, stateless_client(srv.url) as client:
        page, own = client.get("/"), client.get("/own")
    assert page.headers["cross-origin-resource-policy"] == "same-site"
    assert own.headers["cross-origin-resource-policy"] == "cross-origin"  # the handler's own
    for response in (page, own):
        assert response.headers["cross-origin-embedder-policy"] == "require-corp"


def test_custom_policy_gets_frame_ancestors_when_it_has_none() -> None:
    middleware = SecurityHeadersMiddleware(content_security_policy="default-src 'self'; img-src *")
    assert middleware.content_security_policy == "default-src 'self'; img-src *; frame-ancestors 'none'"
    kept = SecurityHeadersMiddleware(content_security_policy="default-src 'self'; frame-ancestors 'self'")
    assert kept.content_security_policy == "default-src 'self'; frame-ancestors 'self'"


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="max-age"):
        SecurityHeadersMiddleware(hsts="includeSubDomains")
    with pytest.raises(ConfigurationError, match="CR, LF"):
        SecurityHeadersMiddleware(hsts="max-age=1\r\nSet-Cookie: a=b")
    with pytest.raises(ConfigurationError, match="CR, LF"):
        SecurityHeadersMiddleware(content_security_policy="default-src 'self'\nX: y")
    with pytest.raises(ConfigurationError, match="same-origin, same-site, cross-origin"):
        SecurityHeadersMiddleware(cross_origin_resource_policy="same-origin\r\nX: y")
    with pytest.raises(ConfigurationError, match="require-corp, credentialless"):
        SecurityHeadersMiddleware(cross_origin_embedder_policy="unsafe-none")


def test_nonce_is_fresh_long_and_matches_the_page() -> None:
    middleware = SecurityHeadersMiddleware(csp_nonce=True)
    seen = set()
    with serve(headers_app(middleware)) as srv, stateless_client(srv.url) as client:
        for _ in range(200):
            response = client.get("/")
            page_nonce = re.fullmatch(r'<script nonce="([^"]+)">1</script>', response.text).group(1)  # type: ignore[union-attr]
            sources = directive(response.headers["content-security-policy"], "script-src")
            assert sources == ["'self'", f"'nonce-{page_nonce}'"]
            assert response.headers["cache-control"] == "private, no-store"
            assert len(base64.urlsafe_b64decode(page_nonce + "=" * (-len(page_nonce) % 4))) >= 16
            seen.add(page_nonce)
    assert len(seen) == 200


def test_nonce_is_merged_into_a_handler_policy_without_replacing_it() -> None:
    middleware = SecurityHeadersMiddleware(csp_nonce=True)
    with serve(headers_app(middleware)) as srv, stateless_client(srv.url) as client:
        response = client.get("/own")
    policy = response.headers["content-security-policy"]
    assert directive(policy, "default-src") == ["'none'"]
    sources = directive(policy, "script-src")
    assert sources[0] == "https://cdn.example" and sources[1].startswith("'nonce-")
    assert response.headers["cache-control"] == "public, max-age=60"  # explicitly set by the handler


def test_from_config_reads_the_app_settings() -> None:
    config = AppConfig(
        content_security_policy="default-src 'self'",
        strict_transport_security="max-age=31536000",
        csp_nonce_enabled=True,
        cross_origin_embedder_policy="credentialless",
    )
    middleware = SecurityHeadersMiddleware.from_config(config)
    assert middleware.content_security_policy == "default-src 'self'; frame-ancestors 'none'"
    assert middleware.hsts == "max-age=31536000"
    assert middleware.csp_nonce is True
    assert ("cross-origin-embedder-policy", "credentialless") in middleware.headers
    assert ("cross-origin-resource-policy", "same-origin") in middleware.headers


@pytest.mark.parametrize(
    ("policy", "expected_script_src"),
    [
        ("default-src 'self'", ["'self'", "'nonce-N'"]),
        ("default-src https://a.example; img-src *", ["https://a.example", "'nonce-N'"]),
        ("img-src *", ["'self'", "'nonce-N'"]),
        ("script-src 'none'", ["'nonce-N'"]),
        ("script-src 'self' 'strict-dynamic'", ["'self'", "'strict-dynamic'", "'nonce-N'"]),
    ],
)
def test_add_nonce(policy: str, expected_script_src: list[str]) -> None:
    assert directive(add_nonce(policy, "N"), "script-src") == expected_script_src


def test_header_value_from_user_data_with_crlf_is_refused_not_split() -> None:
    app = App(AppConfig())
    app.add_middleware(SecurityHeadersMiddleware())

    @app.route("/greet")
    def greet(request: Any) -> Response:
        return Response("hi", headers={"X-Greeting": request.query["name"]})

    with serve(app) as srv, httpx.Client(base_url=srv.url) as client:
        injected = client.get("/greet", params={"name": "x\r\nSet-Cookie: admin=1"})
        lf_only = client.get("/greet", params={"name": "x\nLocation: https://evil.example"})
        fine = client.get("/greet", params={"name": "alice"})
    for response in (injected, lf_only):
        assert response.status_code == 500
        assert "set-cookie" not in response.headers
        assert "location" not in response.headers
        assert "x-greeting" not in response.headers
    assert fine.headers["x-greeting"] == "alice"
