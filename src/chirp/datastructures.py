"""Case-insensitive headers, multi-value query/form parameters and uploaded files."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TypeVar
from urllib.parse import parse_qsl

V = TypeVar("V")


class MultiDict(Mapping[str, V]):
    """An immutable mapping that keeps every value of a repeated key (last one wins on [])."""

    __slots__ = ("_dict", "_items")

    def __init__(self, items: Iterable[tuple[str, V]] | None = None) -> None:
        self._items = list(items or [])
        self._dict = {k: v for k, v in self._items}

    def __getitem__(self, key: str) -> V:
        return self._dict[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def getlist(self, key: str) -> list[V]:
        return [v for k, v in self._items if k == key]

    def multi_items(self) -> list[tuple[str, V]]:
        return list(self._items)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._items!r})"


class UploadFile:
    """A file part of a multipart form, kept as the bytes the client sent (never decoded, so a
    binary upload arrives intact)."""

    __slots__ = ("content_type", "data", "filename")

    def __init__(self, filename: str, content_type: str, data: bytes) -> None:
        self.filename = filename  # as the client named it: never use it as a path unchecked
        self.content_type = content_type
        self.data = data

    @property
    def size(self) -> int:
        return len(self.data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UploadFile):
            return NotImplemented
        return (self.filename, self.content_type, self.data) == (
            other.filename,
            other.content_type,
            other.data,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"UploadFile(filename={self.filename!r}, content_type={self.content_type!r}, size={self.size})"


class QueryParams(MultiDict[str]):
    @classmethod
    def parse(cls, query: str | bytes) -> QueryParams:
        if isinstance(query, bytes):
            query = query.decode("latin-1")
        return cls(parse_qsl(query, keep_blank_values=True))


class Headers(Mapping[str, str]):
    """Case-insensitive, multi-valued view of raw ASGI headers."""

    __slots__ = ("raw",)

    def __init__(self, raw: list[tuple[bytes, bytes]] | None = None) -> None:
        self.raw = raw or []

    def __getitem__(self, key: str) -> str:
        name = key.lower().encode("latin-1")
        for k, v in reversed(self.raw):
            if k.lower() == name:
                return v.decode("latin-1")
        raise KeyError(key)

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        try:
            return self[key]
        except KeyError:
            return default

    def getlist(self, key: str) -> list[str]:
        name = key.lower().encode("latin-1")
        return [v.decode("latin-1") for k, v in self.raw if k.lower() == name]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        name = key.lower().encode("latin-1")
        return any(k.lower() == name for k, _ in self.raw)

    def __iter__(self) -> Iterator[str]:
        seen: dict[str, None] = {}
        for k, _ in self.raw:
            seen.setdefault(k.decode("latin-1").lower(), None)
        return iter(seen)

    def __len__(self) -> int:
        return len({k.lower() for k, _ in self.raw})

    def __repr__(self) -> str:
        return f"Headers({[(k.decode('latin-1'), v.decode('latin-1')) for k, v in self.raw]!r})"


class MutableHeaders(Headers):
    """Response headers: set, append and delete by case-insensitive name."""

    __slots__ = ()

    def __setitem__(self, key: str, value: str) -> None:
        check_header(key, value)
        name = key.lower().encode("latin-1")
        self.raw[:] = [(k, v) for k, v in self.raw if k != name]
        self.raw.append((name, value.encode("latin-1")))

    def add_vary(self, name: str) -> None:
        """Add `name` to `Vary` (once; never next to `Vary: *`)."""
        current = self.get("vary")
        if current is None:
            self["vary"] = name
        elif name.lower() not in {v.strip().lower() for v in current.split(",")} and current.strip() != "*":
            self["vary"] = f"{current}, {name}"

    def append(self, key: str, value: str) -> None:
        check_header(key, value)
        self.raw.append((key.lower().encode("latin-1"), value.encode("latin-1")))

    def setdefault(self, key: str, value: str) -> str:
        if key in self:
            return self[key]
        self[key] = value
        return value

    def __delitem__(self, key: str) -> None:
        name = key.lower().encode("latin-1")
        self.raw[:] = [(k, v) for k, v in self.raw if k != name]


_FORBIDDEN_IN_NAME = re.compile("[\r\n\0:]")
_FORBIDDEN_IN_VALUE = re.compile("[\r\n\0]")


def check_header(name: str, value: str) -> None:
    """Refuse CR, LF and NUL in header names and values (response splitting)."""
    if _FORBIDDEN_IN_NAME.search(name) or _FORBIDDEN_IN_VALUE.search(value):
        raise ValueError(f"header {name!r} contains a forbidden character (CR, LF or NUL)")
