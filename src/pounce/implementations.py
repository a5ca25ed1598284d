"""Which event loop and HTTP/1.1 parser a server runs: `loop` and `http` resolved.

`auto` takes the fast implementation (uvloop, httptools) when it is importable, so
installing the `fast` extra is all it takes; naming one that is not installed is a
configuration error rather than a silent fall back.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from typing import Any

from pounce.errors import ConfigurationError

LOOPS = ("auto", "asyncio", "uvloop")
PARSERS = ("auto", "h11", "httptools")
FAST_EXTRA = "pip install 'chirp-pounce[fast]'"
_FAST = {"loop": ("uvloop", "asyncio"), "http": ("httptools", "h11")}


@cache
def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def check(field: str, value: str) -> None:
    """Refuse a `loop` or `http` value that is unknown, or names what is not installed."""
    choices = LOOPS if field == "loop" else PARSERS
    if value not in choices:
        raise ConfigurationError(field, value, f"use one of {', '.join(choices)}")
    fast = _FAST[field][0]
    if value == fast and not installed(fast):
        raise ConfigurationError(field, value, f"{fast} is not installed; {FAST_EXTRA}, or use auto")


def resolve(field: str, value: str) -> str:
    """The implementation a `loop` or `http` setting stands for on this machine."""
    fast, portable = _FAST[field]
    if value == "auto":
        return fast if installed(fast) else portable
    return value


def run_options(loop: str) -> dict[str, Any]:
    """Keyword arguments for `anyio.run` that run it on the configured event loop."""
    return {"backend_options": {"use_uvloop": resolve("loop", loop) == "uvloop"}}
