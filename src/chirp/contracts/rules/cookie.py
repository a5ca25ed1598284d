"""`cookie.*`: the session cookie must only travel over HTTPS."""

from __future__ import annotations

import os
from collections.abc import Iterator

from chirp.contracts.model import Finding, Location, Severity, levels, rule
from chirp.contracts.snapshot import Snapshot

E, W = Severity.ERROR, Severity.WARNING


def configured_secure(mw: object) -> bool | None:
    """The `secure` the user asked for: None means automatic (Secure outside development).

    Prefer `secure_option` (the constructor argument as given); a middleware that resolved
    `secure` at construction in development reads False for "automatic", so that value is
    treated as automatic rather than as an explicit opt-out.
    """
    if hasattr(mw, "secure_option"):
        return mw.secure_option  # type: ignore[no-any-return]
    secure = getattr(mw, "secure", None)
    if secure is False and getattr(mw, "env", None) == "development":
        return None
    return secure if isinstance(secure, bool) else None


@rule(
    "cookie.insecure",
    title="Session cookie may travel over plain HTTP",
    severity=levels(None, W, E),
    hint="Leave SessionMiddleware(secure=None) (automatic: Secure outside development); SameSite=None requires secure=True.",
)
def insecure(snap: Snapshot) -> Iterator[Finding]:
    """A session cookie sent over HTTP can be read on the network and replayed as the user."""
    for _, entry in snap.middleware_of("sessions", "SessionMiddleware"):
        mw = entry.middleware
        secure = configured_secure(mw)
        samesite = str(getattr(mw, "samesite", "") or "").lower()
        where = Location.of(entry.site) or snap.config_location
        if secure is False:
            yield Finding(
                "the session cookie is explicitly not Secure (secure=False)", where, "session cookie"
            )
        elif samesite == "none" and secure is not True:
            yield Finding(
                "the session cookie has SameSite=None without an explicit Secure flag; browsers reject it",
                where,
                "session cookie",
            )


def built_for_development(snap: Snapshot, mw: object) -> bool:
    """Whether `mw` was built from a development config for an app that serves in another env.

    A launch does not rebuild it: either the app's env was set after it was built (`chirp run
    --production` on an `AppConfig(...)` that ignores CHIRP_ENV), or the app was imported with
    CHIRP_ENV set to the env judged (`chirp check --deploy`, `pounce serve`) and still built it
    for development. An app checked in process after a development import (`app.check(deploy=True)`)
    is given the benefit of the doubt: a launch imports it again.
    """
    if getattr(mw, "env", None) != "development" or snap.config is None or snap.config.env == "development":
        return False
    own_env = getattr(getattr(snap.asgi_app, "config", None), "env", None)  # not the env judged
    return own_env != "development" or os.environ.get("CHIRP_ENV") == snap.config.env


@rule(
    "cookie.built_for_development",
    title="The session middleware was built for development",
    severity=levels(None, W, E),
    hint=(
        "Build the secure stack from the config the app serves with: `AppConfig.from_env()` (which "
        "follows CHIRP_ENV and `chirp run --production`), then `secure_stack(config)`."
    ),
)
def dev_sessions(snap: Snapshot) -> Iterator[Finding]:
    """A SessionMiddleware keeps the env it was built in. Built from a development config, it
    serves a production app with development sessions: the cookie without Secure (unless asked
    for), and without a secret a signing key of each process's own, so every restart, reload
    and other worker logs the user out."""
    for _, entry in snap.middleware_of("sessions", "SessionMiddleware"):
        mw = entry.middleware
        if not built_for_development(snap, mw):
            continue
        harms = []
        if configured_secure(mw) is None:
            harms.append("sends the cookie without Secure")
        if getattr(mw, "own_key", False):
            harms.append("signs it with a random key of each process, not secret_key")
        if harms:
            yield Finding(
                f"the SessionMiddleware was built for env='development' and keeps that env in an "
                f"app served in env={snap.config.env!r}: it {' and '.join(harms)}",  # type: ignore[union-attr]
                Location.of(entry.site) or snap.config_location,
                "session cookie",
            )


RULES = (insecure, dev_sessions)
