"""Header helpers shared by every protocol."""

from __future__ import annotations

from email.utils import formatdate
from time import time

# The current second's IMF-fixdate and `date` line, and the span of time they hold for: two
# comparisons a response, the formatting once a second (or when the clock is set back).
_fresh_from = 0.0
_stale_at = 0.0
_date = b""
_date_line = b""


def _refresh(now: float) -> None:
    global _fresh_from, _stale_at, _date, _date_line
    second = int(now)
    _date = formatdate(second, usegmt=True).encode()
    _date_line = b"date: %s\r\n" % _date
    _fresh_from, _stale_at = second, second + 1  # last: a reader in another thread sees them fresh


def date_line() -> bytes:
    """The `date` header line for now, as an HTTP/1.1 head carries it."""
    now = time()
    if now >= _stale_at or now < _fresh_from:
        _refresh(now)
    return _date_line


def date_header() -> bytes:
    """The IMF-fixdate for now."""
    date_line()  # (refreshes both when the second has turned)
    return _date


_TOKEN = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# What a field value may hold (RFC 9110, section 5.5): HTAB, space, visible ASCII and obs-text;
# never CR, LF, NUL or another control character (RFC 9113, section 8.2.1, for HTTP/2 too).
FIELD_VALUE = bytes([0x09, *range(0x20, 0x7F), *range(0x80, 0x100)])


def illegal_field(name: bytes, value: bytes) -> bool:
    """Whether a response header must not be sent: its name is not a token, or its value holds
    a byte no field value may (CR and LF would let an app split the response).

    Two C-speed `translate` calls instead of a regular expression per header."""
    return not name or bool(name.translate(None, _TOKEN)) or bool(value.translate(None, FIELD_VALUE))


_TOKENS_SEEN: dict[bytes, bytes] = {}  # field names found to be tokens, and their lower case


def token_lower(name: bytes) -> bytes | None:
    """`name` lower-cased when it is a token (what a field name must be), else None.

    Apps send the same few names with every response: each is checked and lower-cased once,
    and remembered (up to 1,024 of them, so an app inventing names cannot grow the table)."""
    lowered = _TOKENS_SEEN.get(name)
    if lowered is None:
        lowered = name.lower()
        if not lowered or lowered.translate(None, _TOKEN):
            return None
        if len(_TOKENS_SEEN) < 1024:
            _TOKENS_SEEN[name] = lowered
    return lowered


# What a Host value or a URL's authority may hold: uri-host [":" port] (RFC 9110, section 7.2;
# RFC 3986, section 3.2.2), that is unreserved, pct-encoded and sub-delims characters, ":" and the
# brackets of an IP literal. Never "@" (userinfo), "/", "?", "#" or whitespace.
_HOST = b"!$%&'()*+,-.0123456789:;=ABCDEFGHIJKLMNOPQRSTUVWXYZ[]_abcdefghijklmnopqrstuvwxyz~"
_NOT_HOST = bytes(c if c in _HOST else 0 for c in range(256))  # every other byte becomes NUL


def valid_host(value: bytes) -> bool:
    """Whether `value` holds only characters a host and port may: a cheap screen, not a parse.

    A 256-byte table, where deleting the 81 allowed characters would build one per call."""
    return 0 not in value.translate(_NOT_HOST)
