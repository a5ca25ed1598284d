"""SessionMiddleware over a real pounce server: signing, expiry, rotation and forged cookies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx
import pytest

from chirp import AppConfig, ConfigurationError
from chirp.middleware import Session, SessionMiddleware
from chirp.middleware.sessions import derive_key
from helpers.secure import SECRET, cookie_attrs, session_app, session_cookie, set_cookies, stateless_client
from helpers.server import serve

OLD_SECRET = "retired-secret-key-0123456789-abcdefghijklmnop"


def signed(secret: str, payload: object, purpose: str = "chirp.session") -> str:
    """A cookie value signed the way the middleware signs, with any payload."""
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    tag = hmac.new(derive_key(secret, purpose), body.encode(), hashlib.sha256).digest()
    return f"{body}.{base64.urlsafe_b64encode(tag).rstrip(b'=').decode()}"


def peek(client: httpx.Client, cookie: str | None) -> httpx.Response:
    headers = {"cookie": f"chirp_session={cookie}"} if cookie is not None else {}
    return client.get("/peek", headers=headers)


def test_anonymous_request_gets_no_cookie() -> None:
    with serve(session_app()) as srv, stateless_client(srv.url) as client:
        plain = client.get("/")
        looked = client.get("/peek")
    assert plain.status_code == looked.status_code == 200
    assert set_cookies(plain) == [] and set_cookies(looked) == []
    assert looked.json()["data"] == {}
    assert "cookie" in looked.headers["vary"].lower()


def test_cookie_attributes_in_development() -> None:
    with serve(session_app()) as srv, stateless_client(srv.url) as client:
        response = client.get("/set/color/blue")
    [header] = set_cookies(response)
    name, value, attrs = cookie_attrs(header)
    assert name == "chirp_session" and value
    assert "httponly" in attrs
    assert attrs["samesite"] == "Lax"
    assert attrs["max-age"] == str(14 * 24 * 3600)
    assert attrs["path"] == "/"
    assert "secure" not in attrs  # development serves plain http


@pytest.mark.parametrize("env", ["test", "staging", "production"])
def test_cookie_is_secure_outside_development(env: str) -> None:
    config = AppConfig(env=env, secret_key=SECRET)
    assert SessionMiddleware.from_config(config).secure is True
    assert SessionMiddleware.from_config(config).samesite == "lax"
    assert SessionMiddleware.from_config(AppConfig(secret_key=SECRET)).secure is False
    assert SessionMiddleware(SECRET, env=env, secure=False).secure is False


def test_staging_cookie_carries_secure_flag_on_the_wire() -> None:
    config = AppConfig(env="staging", secret_key=SECRET)
    with serve(session_app(config)) as srv, stateless_client(srv.url) as client:
        response = client.get("/set/a/1")
    _, _, attrs = cookie_attrs(set_cookies(response)[0])
    assert "secure" in attrs and "httponly" in attrs


def test_session_round_trip_and_no_cookie_when_unchanged() -> None:
    with serve(session_app()) as srv, stateless_client(srv.url) as client:
        first = client.get("/set/color/blue")
        cookie = session_cookie(first)
        again = peek(client, cookie)
    assert again.json()["data"] == {"color": "blue"}
    assert again.json()["id"] == first.json()["id"]
    assert set_cookies(again) == []  # unchanged session, fresh cookie: nothing to send


def test_forged_payload_with_original_signature_is_rejected() -> None:
    with serve(session_app()) as srv, stateless_client(srv.url) as client:
        cookie = session_cookie(client.get("/set/user/alice"))
        assert cookie is not None
        body, _, tag = cookie.partition(".")
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        payload["d"]["user"] = "admin"
        forged_body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
        response = peek(client, f"{forged_body}.{tag}")
        flipped = peek(client, cookie[:-2] + ("AA" if cookie[-2:] != "AA" else "BB"))
    for result in (response, flipped):
        assert result.status_code == 200
        assert result.json()["data"] == {}
        # the bad cookie is deleted rather than re-sent forever
        [deletion] = set_cookies(result)
        assert cookie_attrs(deletion)[2]["max-age"] == "0"


def test_cookie_signed_with_another_secret_is_rejected() -> None:
    attacker = signed("attacker-guess", {"v": 1, "id": "x", "d": {"user": "admin"}, "iat": int(time.time())})
    with serve(session_app()) as srv, stateless_client(srv.url) as client:
        response = peek(client, attacker)
    assert response.json()["data"] == {}


def test_signature_for_another_purpose_is_rejected() -> None:
    payload = {"v": 1, "id": "x", "d": {"user": "admin"}, "iat": int(time.time())}
    with serve(session_app()) as srv, stateless_client(srv.url) as client:
        other_purpose = peek(client, signed(SECRET, payload, purpose="password-reset"))
        right_purpose = peek(client, signed(SECRET, payload))
    assert other_purpose.json()["data"] == {}
    assert right_purpose.json()["data"] == {"user": "admin"}


@pytest.mark.parametrize(
    "garbage",
    ["", ".", "abc", "abc.", ".abc", "a.b.c", "!!!.###", "x" * 9000, "e30.AAAA", "bm90IGpzb24.AAAA"],
)
def test_garbage_cookie_gives_empty_session(garbage: str) -> None:
    with serve(session_app()) as srv, stateless_client(srv.url) as client:
        response = client.get("/peek", headers={"cookie": f"chirp_session={garbage}"})
    assert response.status_code == 200
    assert response.json()["data"] == {}


@pytest.mark.parametrize(
    "payload",
    [
        [1, 2, 3],
        {"v": 2, "id": "x", "d": {}, "iat": 0},
        {"v": 1, "id": "x", "d": [], "iat": "now"},
        {"v": 1, "id": 7, "d": {}, "iat": "now"},
        {"v": 1, "id": "x", "d": {"a": 1}, "iat": True},
        {"v": 1, "id": "x", "d": {"a": 1}, "iat": 1, "csrf": 5},
    ],
)
def test_correctly_signed_but_malformed_payload_gives_empty_session(payload: object) -> None:
    middleware = SessionMiddleware(SECRET)
    session, fallback = middleware.decode(signed(SECRET, payload))
    assert session is None and fallback is False


def test_replayed_cookie_after_expiry_is_rejected() -> None:
    middleware = SessionMiddleware(SECRET, max_age=3600)
    session = Session({"user": "alice"})
    expired = middleware.encode(session, now=time.time() - 3601)
    from_the_future = middleware.encode(session, now=time.time() + 3600)
    fresh = middleware.encode(session)
    assert middleware.decode(expired)[0] is None
    assert middleware.decode(from_the_future)[0] is None
    decoded = middleware.decode(fresh)[0]
    assert decoded is not None and dict(decoded) == {"user": "alice"}

    app = session_app(max_age=3600)
    with serve(app) as srv, stateless_client(srv.url) as client:
        replayed = peek(client, expired)
        accepted = peek(client, fresh)
    assert replayed.json()["data"] == {}
    assert accepted.json()["data"] == {"user": "alice"}


def test_old_cookie_is_reissued_for_sliding_expiry() -> None:
    middleware = SessionMiddleware(SECRET)
    week_old = middleware.encode(Session({"user": "alice"}), now=time.time() - 8 * 24 * 3600)
    with serve(session_app()) as srv, stateless_client(srv.url) as client:
        response = peek(client, week_old)
    assert response.json()["data"] == {"user": "alice"}
    renewed = session_cookie(response)
    assert renewed is not None and renewed != week_old
    session = middleware.decode(renewed)[0]
    assert session is not None and session.issued_at is not None
    assert session.issued_at >= int(time.time()) - 5


def test_rotation_accepts_fallback_key_and_resigns_with_current_key() -> None:
    old = SessionMiddleware(OLD_SECRET)
    retired_cookie = old.encode(Session({"user": "alice"}))
    rotated = AppConfig(secret_key=SECRET, secret_key_fallbacks=(OLD_SECRET,))
    with serve(session_app(rotated)) as srv, stateless_client(srv.url) as client:
        response = peek(client, retired_cookie)
    assert response.json()["data"] == {"user": "alice"}
    resigned = session_cookie(response)
    assert resigned is not None
    current_only = SessionMiddleware(SECRET)
    session, used_fallback = current_only.decode(resigned)
    assert session is not None and dict(session) == {"user": "alice"} and used_fallback is False
    assert old.decode(resigned)[0] is None  # the retired key cannot verify the new cookie


def test_retired_key_is_rejected_once_removed_from_fallbacks() -> None:
    retired_cookie = SessionMiddleware(OLD_SECRET).encode(Session({"user": "alice"}))
    with serve(session_app(AppConfig(secret_key=SECRET))) as srv, stateless_client(srv.url) as client:
        response = peek(client, retired_cookie)
    assert response.json()["data"] == {}


def test_regenerate_on_login_changes_id_and_keeps_data() -> None:
    with serve(session_app()) as srv, stateless_client(srv.url) as client:
        before = client.get("/set/cart/3")
        cookie = session_cookie(before)
        login = client.post("/login/alice", headers={"cookie": f"chirp_session={cookie}"})
        after = peek(client, session_cookie(login))
    assert login.json()["id"] != before.json()["id"]
    assert after.json()["data"] == {"cart": "3", "user": "alice"}
    assert after.json()["id"] == login.json()["id"]


def test_clear_on_logout_deletes_the_cookie() -> None:
    with serve(session_app()) as srv, stateless_client(srv.url) as client:
        cookie = session_cookie(client.get("/set/user/alice"))
        response = client.post("/logout", headers={"cookie": f"chirp_session={cookie}"})
    [deletion] = set_cookies(response)
    name, value, attrs = cookie_attrs(deletion)
    assert name == "chirp_session" and value.strip('"') == "" and attrs["max-age"] == "0"


def test_regenerate_drops_the_csrf_secret() -> None:
    session = Session({"user": "alice"}, session_id="before", csrf_secret="s3cret")
    session.regenerate()
    assert session.id != "before"
    assert session.csrf_secret is None
    assert session.modified is True
    assert dict(session) == {"user": "alice"}


def test_values_that_are_not_json_fail_loudly() -> None:
    middleware = SessionMiddleware(SECRET)
    session = Session()
    session["when"] = object()
    with pytest.raises(TypeError, match="JSON"):
        middleware.encode(session)


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="secret_key"):
        SessionMiddleware("", env="production")
    with pytest.raises(ConfigurationError, match="Secure"):
        SessionMiddleware(SECRET, samesite="none", secure=False)
    with pytest.raises(ConfigurationError, match="samesite"):
        SessionMiddleware(SECRET, samesite="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="max_age"):
        SessionMiddleware(SECRET, max_age=0)
    with pytest.raises(ConfigurationError, match="cookie_name"):
        SessionMiddleware(SECRET, cookie_name="bad name;")


def test_development_without_secret_uses_a_process_key() -> None:
    first, second = SessionMiddleware(""), SessionMiddleware("")
    cookie = first.encode(Session({"a": 1}))
    assert first.decode(cookie)[0] is not None
    assert second.decode(cookie)[0] is None  # a random key, not a well-known constant
