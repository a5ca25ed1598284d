"""CSRFMiddleware over a real pounce server: tokens, sessions and cross-origin requests."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from chirp import App, AppConfig, ConfigurationError
from chirp.middleware import CSRFMiddleware, SessionMiddleware, csrf_token
from chirp.middleware.csrf import token_matches
from chirp.middleware.sessions import Session
from chirp.testing import TestClient
from helpers.secure import SECRET, session_cookie, stateless_client
from helpers.server import serve

# Requests "behind a TLS proxy": the loopback peer is trusted and says the scheme was https.
HTTPS = {"x-forwarded-proto": "https"}


def csrf_app(config: AppConfig | None = None) -> App:
    config = config or AppConfig(secret_key=SECRET)
    app = App(config)
    app.add_middleware(SessionMiddleware.from_config(config, secure=False))
    app.add_middleware(CSRFMiddleware.from_config(config))

    @app.route("/form")
    def form(request: Any) -> str:
        return f'<form method="post"><input name="csrf_token" value="{csrf_token(request)}"></form>'

    @app.route("/submit", methods=("POST", "PUT", "PATCH", "DELETE", "GET", "OPTIONS"))
    async def submit(request: Any) -> str:
        return f"accepted {request.method}"

    @app.route("/login", methods=("POST",))
    def login(request: Any) -> str:
        request.session.regenerate()
        request.session["user"] = "alice"
        return "welcome"

    return app


def fetch_token(client: httpx.Client, **kwargs: Any) -> tuple[str, str]:
    """GET the form; return (session cookie, token from the page)."""
    response = client.get("/form", **kwargs)
    match = re.search(r'value="([^"]+)"', response.text)
    cookie = session_cookie(response)
    assert match and cookie, response.text
    return cookie, match.group(1)


def with_cookie(cookie: str, **headers: str) -> dict[str, str]:
    return {"cookie": f"chirp_session={cookie}", **headers}


@pytest.fixture
def client() -> Any:
    with serve(csrf_app(), trusted_hosts=("127.0.0.1",)) as srv, stateless_client(srv.url) as c:
        yield c


def test_token_in_form_field_is_accepted(client: httpx.Client) -> None:
    cookie, token = fetch_token(client)
    response = client.post("/submit", data={"csrf_token": token}, headers=with_cookie(cookie))
    assert (response.status_code, response.text) == (200, "accepted POST")


def test_token_in_multipart_form_is_accepted(client: httpx.Client) -> None:
    cookie, token = fetch_token(client)
    response = client.post(
        "/submit", data={"csrf_token": token}, files={"f": ("a.txt", b"hi")}, headers=with_cookie(cookie)
    )
    assert response.status_code == 200


def test_a_file_part_named_like_the_token_field_is_refused_not_a_500(client: httpx.Client) -> None:
    cookie, token = fetch_token(client)
    response = client.post(
        "/submit", files={"csrf_token": ("t.txt", token.encode())}, headers=with_cookie(cookie)
    )
    assert response.status_code == 403 and "csrf_token" in response.text


def test_token_in_header_is_accepted_for_every_unsafe_method(client: httpx.Client) -> None:
    cookie, token = fetch_token(client)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        response = client.request(
            method, "/submit", json={"x": 1}, headers=with_cookie(cookie, **{"X-CSRF-Token": token})
        )
        assert (response.status_code, response.text) == (200, f"accepted {method}")


def test_safe_methods_need_no_token(client: httpx.Client) -> None:
    assert client.get("/submit").status_code == 200
    assert client.options("/submit").status_code == 200
    assert client.head("/submit").status_code == 200


def test_missing_token_is_refused_for_every_unsafe_method(client: httpx.Client) -> None:
    cookie, _ = fetch_token(client)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        response = client.request(method, "/submit", data={"other": "1"}, headers=with_cookie(cookie))
        assert response.status_code == 403
        assert "missing" in response.text
        assert response.headers["content-type"].startswith("text/plain")


def test_wrong_token_is_refused(client: httpx.Client) -> None:
    cookie, token = fetch_token(client)
    tampered = token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB")
    for bad in (tampered, "x", "", "é" * 43, token + "A"):
        response = client.post("/submit", data={"csrf_token": bad}, headers=with_cookie(cookie))
        assert response.status_code == 403, bad
        assert "CSRF" in response.text


def test_token_of_another_session_is_refused(client: httpx.Client) -> None:
    _, token_a = fetch_token(client)
    cookie_b, _ = fetch_token(client)
    response = client.post("/submit", data={"csrf_token": token_a}, headers=with_cookie(cookie_b))
    assert response.status_code == 403
    assert "incorrect" in response.text


def test_post_without_any_session_is_refused(client: httpx.Client) -> None:
    _, token = fetch_token(client)
    response = client.post("/submit", data={"csrf_token": token})
    assert response.status_code == 403
    assert "no CSRF token" in response.text


def test_tokens_are_masked_differently_each_time_but_all_verify(client: httpx.Client) -> None:
    cookie, first = fetch_token(client)
    response = client.get("/form", headers=with_cookie(cookie))
    second = re.search(r'value="([^"]+)"', response.text).group(1)  # type: ignore[union-attr]
    assert first != second
    for token in (first, second):
        ok = client.post("/submit", data={"csrf_token": token}, headers=with_cookie(cookie))
        assert ok.status_code == 200


def test_token_from_before_login_is_dead_after_login(client: httpx.Client) -> None:
    cookie, token = fetch_token(client)
    login = client.post("/login", data={"csrf_token": token}, headers=with_cookie(cookie))
    assert login.status_code == 200
    logged_in = session_cookie(login)
    assert logged_in is not None
    response = client.post("/submit", data={"csrf_token": token}, headers=with_cookie(logged_in))
    assert response.status_code == 403
    # the new token lives in a re-issued cookie: take it from that response
    page = client.get("/form", headers=with_cookie(logged_in))
    renewed = session_cookie(page)
    assert renewed is not None
    fresh = re.search(r'value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    assert client.post("/submit", data={"csrf_token": fresh}, headers=with_cookie(renewed)).status_code == 200


def test_cross_origin_post_is_refused_even_with_a_valid_token(client: httpx.Client) -> None:
    cookie, token = fetch_token(client)
    host = client.base_url.netloc.decode()
    cases = {
        "https://evil.example": 403,
        "null": 403,
        f"http://{host}": 403,  # downgraded scheme on an https request
        f"https://{host}.evil.example": 403,
        f"https://{host}": 200,
    }
    for origin, status in cases.items():
        response = client.post(
            "/submit", data={"csrf_token": token}, headers=with_cookie(cookie, origin=origin, **HTTPS)
        )
        assert response.status_code == status, (origin, response.text)


def test_https_falls_back_to_referer_and_requires_one_of_them(client: httpx.Client) -> None:
    cookie, token = fetch_token(client)
    host = client.base_url.netloc.decode()
    same = client.post(
        "/submit",
        data={"csrf_token": token},
        headers=with_cookie(cookie, referer=f"https://{host}/form", **HTTPS),
    )
    cross = client.post(
        "/submit",
        data={"csrf_token": token},
        headers=with_cookie(cookie, referer="https://evil.example/", **HTTPS),
    )
    neither = client.post("/submit", data={"csrf_token": token}, headers=with_cookie(cookie, **HTTPS))
    assert same.status_code == 200
    assert cross.status_code == 403 and "Referer" in cross.text
    assert neither.status_code == 403 and "neither an Origin nor a Referer" in neither.text


def test_plain_http_refuses_a_foreign_origin(client: httpx.Client) -> None:
    cookie, token = fetch_token(client)
    response = client.post(
        "/submit", data={"csrf_token": token}, headers=with_cookie(cookie, origin="http://evil.example")
    )
    assert response.status_code == 403


def test_forwarded_proto_from_an_untrusted_peer_is_ignored() -> None:
    # Without trusted proxies the forwarded scheme is ignored: the request stays plain http,
    # where a missing Origin/Referer is allowed and the token alone decides.
    with serve(csrf_app()) as srv, stateless_client(srv.url) as client:
        cookie, token = fetch_token(client)
        response = client.post("/submit", data={"csrf_token": token}, headers=with_cookie(cookie, **HTTPS))
    assert response.status_code == 200


def test_origin_on_an_allowed_sibling_host_is_accepted() -> None:
    config = AppConfig(secret_key=SECRET, allowed_hosts=(".example.com",))
    with serve(csrf_app(config), trusted_hosts=("127.0.0.1",)) as srv, stateless_client(srv.url) as client:
        host = {"host": "api.example.com"}
        cookie, token = fetch_token(client, headers=host)
        good = client.post(
            "/submit",
            data={"csrf_token": token},
            headers=with_cookie(cookie, origin="https://www.example.com", **host, **HTTPS),
        )
        bad = client.post(
            "/submit",
            data={"csrf_token": token},
            headers=with_cookie(cookie, origin="https://example.com.evil.net", **host, **HTTPS),
        )
    assert good.status_code == 200
    assert bad.status_code == 403


def test_missing_session_middleware_is_a_clear_500() -> None:
    app = App(AppConfig(secret_key=SECRET))
    app.add_middleware(CSRFMiddleware())

    @app.route("/", methods=("GET", "POST"))
    def index() -> str:
        return "never"

    with serve(app) as srv, stateless_client(srv.url) as client:
        for response in (client.get("/"), client.post("/")):
            assert response.status_code == 500
            assert "register SessionMiddleware before CSRFMiddleware" in response.text


def test_wrong_order_is_the_same_clear_500() -> None:
    config = AppConfig(secret_key=SECRET)
    app = App(config)
    app.add_middleware(CSRFMiddleware())
    app.add_middleware(SessionMiddleware.from_config(config))
    # The contract refuses to start such an app; silenced here to show the runtime guard too.
    app.suppress("security_stack.order", reason="exercise CSRFMiddleware's own order check")

    @app.route("/")
    def index() -> str:
        return "never"

    with serve(app) as srv, stateless_client(srv.url) as client:
        response = client.get("/")
    assert response.status_code == 500
    assert "SessionMiddleware before CSRFMiddleware" in response.text


def test_csrf_token_helper_needs_a_session() -> None:
    class Bare:
        session = None

    with pytest.raises(RuntimeError, match="SessionMiddleware"):
        csrf_token(Bare())  # type: ignore[arg-type]


def test_token_matches_is_strict() -> None:
    session = Session()

    class Holder:
        pass

    holder = Holder()
    holder.session = session  # type: ignore[attr-defined]
    token = csrf_token(holder)  # type: ignore[arg-type]
    secret = session.csrf_secret
    assert secret is not None and len(secret) >= 43
    assert token_matches(token, secret)
    assert token_matches(secret, secret)
    assert not token_matches(token[:-1], secret)
    assert not token_matches("", secret)
    assert not token_matches("\u2603" * 10, secret)


# -- routing first, per-route modes, origin mode ------------------------------------------


def api_app(**csrf_options: Any) -> App:
    """A token-mode app with an exempt webhook, an origin-mode API and a GET-only page."""
    config = AppConfig(secret_key=SECRET, allowed_hosts=("shop.example.com", ".example.com"))
    app = App(config)
    app.add_middleware(SessionMiddleware.from_config(config))
    app.add_middleware(CSRFMiddleware.from_config(config, **csrf_options))

    @app.route("/page")
    def page() -> str:
        return "page"

    @app.route("/form", methods=("POST",))
    def form() -> str:
        return "form saved"

    @app.route("/api/items", methods=("POST",), csrf="origin")
    async def create(request: Any) -> dict[str, Any]:
        return {"created": await request.json()}

    @app.route("/hooks/pay", methods=("POST",), csrf="exempt")
    def paid() -> str:
        return "paid"

    app.suppress("csrf.exempt", reason="the payment provider signs its webhook")
    return app


def test_unknown_routes_and_methods_answer_404_and_405_not_403() -> None:
    with serve(api_app()) as srv, httpx.Client(base_url=srv.url, headers={"host": "shop.example.com"}) as c:
        wrong_method = c.delete("/page")
        nowhere = c.post("/nowhere", data={"x": "1"})
        refused = c.post("/form")
    assert (wrong_method.status_code, wrong_method.headers["allow"]) == (405, "GET, HEAD")
    assert nowhere.status_code == 404
    assert refused.status_code == 403  # a route that exists is still protected


def test_an_exempt_route_needs_no_token() -> None:
    with serve(api_app()) as srv, httpx.Client(base_url=srv.url, headers={"host": "shop.example.com"}) as c:
        response = c.post("/hooks/pay", content=b"{}", headers={"origin": "https://payments.example.net"})
    assert (response.status_code, response.text) == (200, "paid")


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"sec-fetch-site": "same-origin"}, 200),
        ({"sec-fetch-site": "none"}, 200),  # typed into the address bar
        ({"sec-fetch-site": "same-origin", "origin": "https://evil.example"}, 200),  # Sec-Fetch-Site wins
        ({"sec-fetch-site": "cross-site", "origin": "https://evil.example"}, 403),
        ({"sec-fetch-site": "cross-site"}, 403),
        ({"sec-fetch-site": "same-site", "origin": "https://admin.example.com"}, 200),  # an allowed host
        ({"sec-fetch-site": "same-site", "origin": "https://example.com.evil.net"}, 403),
        ({"origin": "https://shop.example.com"}, 200),  # a browser without Sec-Fetch-Site
        ({"origin": "https://evil.example"}, 403),
        ({"origin": "null"}, 403),
        ({}, 200),  # neither header: not a browser, so no victim's cookies
    ],
)
def test_origin_mode_trusts_the_browsers_own_headers(headers: dict[str, str], status: int) -> None:
    with TestClient(api_app(), base_url="https://shop.example.com", origin=None) as client:
        response = client.post("/api/items", json={"name": "tea"}, headers=headers)
    assert response.status_code == status, response.text
    if status == 200:
        assert response.json() == {"created": {"name": "tea"}}
    else:
        assert "CSRF check failed" in response.text


def test_origin_mode_for_the_whole_app_needs_no_session() -> None:
    app = App(AppConfig(secret_key=SECRET))
    app.add_middleware(CSRFMiddleware(mode="origin"))

    @app.route("/api", methods=("POST",))
    def api() -> str:
        return "ok"

    with TestClient(app, origin=None) as client:
        same = client.post("/api", headers={"sec-fetch-site": "same-origin"})
        cross = client.post("/api", headers={"sec-fetch-site": "cross-site"})
    assert (same.status_code, cross.status_code) == (200, 403)


def test_a_refusal_is_problem_json_for_a_json_client() -> None:
    with TestClient(api_app(), base_url="https://shop.example.com") as client:
        response = client.post("/form", json={}, headers={"accept": "application/json"})
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 403 and problem["title"] == "Forbidden"
    assert problem["detail"].startswith("CSRF check failed: the session has no CSRF token")


def test_bad_modes_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match=r"CSRFMiddleware.mode='tokens' is invalid: use 'token'"):
        CSRFMiddleware(mode="tokens")
    app = App(AppConfig())
    with pytest.raises(
        ConfigurationError, match=r"route\('/x', csrf=...\)='off' is invalid: use one of token"
    ):
        app.route("/x", methods=("POST",), csrf="off")
