"""`SessionMiddleware`: a signed-cookie session on `request.session`.

The cookie holds the session itself (JSON), the time it was issued and an HMAC-SHA256 tag.
The signing key is derived from `secret_key` for this one purpose, so the same secret can
sign other things without one signature being accepted in place of another. Keys listed
in `secret_key_fallbacks` still verify (rotation); such a cookie is re-signed with the
current key on the same response.

Anything wrong with the cookie (bad tag, unknown key, expired, truncated, not JSON) gives
the request an empty session: a client can never turn a cookie into an exception.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any, Literal

from chirp.config import secret_required
from chirp.errors import ConfigurationError
from chirp.middleware._log import security_log

if TYPE_CHECKING:
    from chirp.config import AppConfig
    from chirp.request import Request
    from chirp.responses import Response


DEFAULT_MAX_AGE = 14 * 24 * 60 * 60
_PURPOSE = "chirp.session"
_FORMAT_VERSION = 1
_CLOCK_SKEW = 60  # seconds a cookie may appear to come from the future (clock drift between hosts)
_BROWSER_COOKIE_LIMIT = 4093


def derive_key(secret: str, purpose: str) -> bytes:
    """A key for one purpose, derived from `secret` (HMAC-SHA256 as the derivation function)."""
    return hmac.new(
        secret.encode("utf-8"), b"chirp key derivation:" + purpose.encode("ascii"), hashlib.sha256
    ).digest()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Session(MutableMapping[str, Any]):
    """The data of one client's session: a dict of JSON values plus an id.

    Writing marks it `modified`; the middleware then sends a fresh cookie. Use
    `regenerate()` when the user logs in (or changes privilege) and `clear()` on logout.
    """

    __slots__ = ("_csrf_secret", "_data", "_id", "accessed", "issued_at", "modified")

    def __init__(
        self,
        data: dict[str, Any] | None = None,
        *,
        session_id: str | None = None,
        csrf_secret: str | None = None,
        issued_at: int | None = None,
    ) -> None:
        self._data: dict[str, Any] = dict(data or {})
        self._id = session_id
        self._csrf_secret = csrf_secret
        self.issued_at = issued_at
        self.modified = False
        self.accessed = False

    # -- mapping ---------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        self.accessed = True
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.accessed = True
        self._data[key] = value
        self.modified = True

    def __delitem__(self, key: str) -> None:
        self.accessed = True
        del self._data[key]
        self.modified = True

    def __iter__(self) -> Iterator[str]:
        self.accessed = True
        return iter(self._data)

    def __len__(self) -> int:
        self.accessed = True
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        self.accessed = True
        return key in self._data

    def __repr__(self) -> str:
        return f"Session({self._data!r}, modified={self.modified})"

    # -- identity and lifecycle ------------------------------------------------------------
    @property
    def id(self) -> str:
        """A random identifier for this session, created on first use; new after `regenerate()`."""
        if self._id is None:
            self._id = secrets.token_urlsafe(16)
            self.modified = True
        return self._id

    @property
    def csrf_secret(self) -> str | None:
        """The per-session CSRF secret (managed by `CSRFMiddleware`)."""
        return self._csrf_secret

    @csrf_secret.setter
    def csrf_secret(self, value: str | None) -> None:
        self._csrf_secret = value
        self.modified = True

    @property
    def is_empty(self) -> bool:
        """No data and no CSRF secret: nothing worth a cookie."""
        return not self._data and self._csrf_secret is None

    def clear(self) -> None:
        """Forget everything (logout); the cookie is deleted on the response."""
        self.accessed = True
        self._data.clear()
        self._id = None
        self._csrf_secret = None
        self.modified = True

    def regenerate(self) -> None:
        """Keep the data under a new session id and drop the CSRF secret.

        Call it when a user logs in so that an id (or CSRF token) planted in the
        browser before login is worthless afterwards.
        """
        self.accessed = True
        self._id = secrets.token_urlsafe(16)
        self._csrf_secret = None
        self.modified = True

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"v": _FORMAT_VERSION, "id": self.id, "d": self._data}
        if self._csrf_secret is not None:
            payload["csrf"] = self._csrf_secret
        return payload


class SessionMiddleware:
    """Load `request.session` from a signed cookie and write it back when it changed.

    - `secure=None` marks the cookie `Secure` in every env except `development`.
    - No `Set-Cookie` for a request that came without a session and left with an empty one.
    - A session signed with a key from `fallbacks` is accepted and re-signed with `secret_key`.
    - The cookie is re-issued (sliding expiry) once it is older than half of `max_age`.
    """

    def __init__(
        self,
        secret_key: str,
        fallbacks: Iterable[str] = (),
        *,
        cookie_name: str = "chirp_session",
        max_age: int = DEFAULT_MAX_AGE,
        secure: bool | None = None,
        samesite: Literal["lax", "strict", "none"] = "lax",
        env: str = "development",
        path: str = "/",
        domain: str | None = None,
    ) -> None:
        self.own_key = not secret_key  # signed with a key of this process only (see below)
        if not secret_key:
            if secret_required(env):
                raise ConfigurationError(
                    "secret_key", "", f"sessions in env={env!r} need a secret key: export CHIRP_SECRET_KEY"
                )
            secret_key = secrets.token_urlsafe(32)
            if env == "development":
                security_log().warning(
                    "SessionMiddleware has no secret_key: using a random key for this process "
                    "(development only; sessions end when the process restarts)"
                )
        if isinstance(fallbacks, str):
            fallbacks = (fallbacks,)
        if max_age <= 0:
            raise ConfigurationError("max_age", max_age, "use a positive number of seconds")
        samesite_value = str(samesite).lower()
        if samesite_value not in ("lax", "strict", "none"):
            raise ConfigurationError("samesite", samesite, "use 'lax', 'strict' or 'none'")
        self.secure = env != "development" if secure is None else bool(secure)
        if samesite_value == "none" and not self.secure:
            raise ConfigurationError("samesite", samesite, "SameSite=None cookies must also be Secure")
        if not cookie_name or any(c in cookie_name for c in ' =;,\t\r\n"'):
            raise ConfigurationError("cookie_name", cookie_name, "use a plain token such as 'chirp_session'")
        self.samesite: Literal["lax", "strict", "none"] = samesite_value  # type: ignore[assignment]
        self.cookie_name = cookie_name
        self.max_age = int(max_age)
        self.env = env
        self.path = path
        self.domain = domain
        self.httponly = True
        self._key = derive_key(secret_key, _PURPOSE)
        self._fallback_keys = tuple(derive_key(k, _PURPOSE) for k in fallbacks if k)

    @classmethod
    def from_config(cls, config: AppConfig, **overrides: Any) -> SessionMiddleware:
        """Build from `secret_key`, `secret_key_fallbacks` and `env` of an `AppConfig`."""
        return cls(config.secret_key, config.secret_key_fallbacks, env=config.env, **overrides)

    # -- cookie codec ----------------------------------------------------------------------
    def _tag(self, key: bytes, body: str) -> bytes:
        return hmac.new(key, body.encode("ascii"), hashlib.sha256).digest()

    def encode(self, session: Session, now: float | None = None) -> str:
        """The signed cookie value for `session`, issued at `now`."""
        payload = session.to_payload()
        payload["iat"] = int(time.time() if now is None else now)
        import json  # on the first request, not when the app is built

        try:
            raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"session values must be JSON serialisable: {exc}") from None
        body = _b64encode(raw.encode("ascii"))
        return f"{body}.{_b64encode(self._tag(self._key, body))}"

    def decode(self, value: str | None, now: float | None = None) -> tuple[Session | None, bool]:
        """`(session, signed_with_a_fallback_key)`; `(None, False)` for anything invalid."""
        if not value or len(value) > 8192:
            return None, False
        body, dot, tag_text = value.partition(".")
        if not dot or not body or not tag_text:
            return None, False
        try:
            tag = _b64decode(tag_text)
            body.encode("ascii")
        except (binascii.Error, ValueError):
            return None, False
        fallback = False
        if not hmac.compare_digest(tag, self._tag(self._key, body)):
            if not any(hmac.compare_digest(tag, self._tag(k, body)) for k in self._fallback_keys):
                return None, False
            fallback = True
        import json

        try:
            payload = json.loads(_b64decode(body))
        except (binascii.Error, ValueError):
            return None, False
        session = self._from_payload(payload, time.time() if now is None else now)
        return session, fallback and session is not None

    def _from_payload(self, payload: Any, now: float) -> Session | None:
        if not isinstance(payload, dict) or payload.get("v") != _FORMAT_VERSION:
            return None
        issued_at, data = payload.get("iat"), payload.get("d")
        session_id, csrf = payload.get("id"), payload.get("csrf")
        if not isinstance(issued_at, int) or isinstance(issued_at, bool) or not isinstance(data, dict):
            return None
        if not isinstance(session_id, str) or not (csrf is None or isinstance(csrf, str)):
            return None
        if issued_at > now + _CLOCK_SKEW or now - issued_at > self.max_age:
            return None
        return Session(data, session_id=session_id, csrf_secret=csrf, issued_at=issued_at)

    # -- middleware ------------------------------------------------------------------------
    async def __call__(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        raw = request.cookies.get(self.cookie_name)
        loaded, fallback = self.decode(raw)
        session = loaded if loaded is not None else Session()
        request.session = session
        response = await call_next(request)
        self._commit(
            session, response, had_cookie=raw is not None, valid=loaded is not None, fallback=fallback
        )
        return response

    def _commit(
        self, session: Session, response: Response, *, had_cookie: bool, valid: bool, fallback: bool
    ) -> None:
        if session.accessed:
            response.headers.add_vary("Cookie")
        if session.is_empty:
            if had_cookie and (session.modified or not valid):
                self._delete(response)
            return
        stale = session.issued_at is not None and time.time() - session.issued_at > self.max_age / 2
        if not (session.modified or fallback or stale or not valid):
            return
        self.store(session, response)

    def store(self, session: Session, response: Response) -> None:
        """Set the cookie that carries `session` on `response`."""
        value = self.encode(session)
        if len(self.cookie_name) + len(value) > _BROWSER_COOKIE_LIMIT:
            security_log().warning(
                "session cookie is %d bytes; browsers drop cookies over 4 KiB, so keep "
                "large data server-side and store only a reference in the session",
                len(value),
            )
        response.set_cookie(
            self.cookie_name,
            value,
            max_age=self.max_age,
            path=self.path,
            domain=self.domain,
            secure=self.secure,
            httponly=True,
            samesite=self.samesite,
        )

    def _delete(self, response: Response) -> None:
        response.set_cookie(
            self.cookie_name,
            "",
            max_age=0,
            path=self.path,
            domain=self.domain,
            secure=self.secure,
            httponly=True,
            samesite=self.samesite,
        )
