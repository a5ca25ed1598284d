"""Quantities as Kubernetes and Compose write them: CPU cores, memory bytes, durations.

The patterns are compiled by `re` on first use (and cached there): the capacity rules import
this module on every check, and a check without deployment files parses no quantity.
"""

from __future__ import annotations

import re

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "": 1,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
}
_QUANTITY = r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?$"
# Compose sizes: 512m, 1gb, 300k, 1.5g (a number of bytes with an optional b/k/m/g suffix)
_SIZE = r"(?i)^(\d+(?:\.\d+)?)\s*([bkmg]?)b?$"
_SIZE_UNIT = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30}
# Durations as Compose writes them: 1m30s, 10s, 500ms, 1h
_DURATION_PART = r"(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)"
_SECONDS = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def _plain(value: object) -> float | str | None:
    """A YAML number as is (a boolean is no quantity), anything else as stripped text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return str(value).strip()


def quantity(value: object) -> float | None:
    """A Kubernetes quantity (`500m`, `2`, `256Mi`, `1e9`) as a number; None if malformed."""
    text = _plain(value)
    if not isinstance(text, str):
        return text
    match = re.match(_QUANTITY, text)
    if match is None:
        return None
    number, suffix = float(match[1]), match[2] or ""
    return number * (_BINARY[suffix] if suffix in _BINARY else _DECIMAL[suffix])


def size(value: object) -> float | None:
    """A Compose memory size (`512m`, `1gb`, a byte count); None if malformed."""
    text = _plain(value)
    if not isinstance(text, str):
        return text
    match = re.match(_SIZE, text)
    if match is None:
        return None
    return float(match[1]) * _SIZE_UNIT[match[2].lower()]


def duration(value: object) -> float | None:
    """A Compose duration (`1m30s`, `10s`, a number of seconds); None if malformed."""
    text = _plain(value)
    if not isinstance(text, str):
        return text
    parts = re.findall(_DURATION_PART, text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _SECONDS[u] for n, u in parts)


def mebibytes(value: float) -> str:
    return f"{value / 2**20:g}Mi"
