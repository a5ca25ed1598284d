"""`cookie.*`: the session cookie must only travel over HTTPS."""

from __future__ import annotations

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


RULES = (insecure,)
