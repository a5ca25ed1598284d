"""Header helpers shared by every protocol."""

from __future__ import annotations

import time
from email.utils import formatdate

_cache: tuple[int, bytes] = (0, b"")


def date_header() -> bytes:
    """The IMF-fixdate for now, recomputed at most once per second."""
    global _cache
    now = int(time.time())
    if _cache[0] != now:
        _cache = (now, formatdate(now, usegmt=True).encode())
    return _cache[1]
