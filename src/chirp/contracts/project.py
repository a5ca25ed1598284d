"""Project files the check reads next to the app: `[tool.chirp.check]` and pounce's settings."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from pounce.errors import ConfigurationError


def find_upward(start: str | None, name: str) -> Path | None:
    """The nearest `name` in the directory of `start` or any parent."""
    if not start:
        return None
    here = Path(start).resolve()
    directory = here if here.is_dir() else here.parent
    for candidate in (directory, *directory.parents):
        path = candidate / name
        if path.is_file():
            return path
    return None


@functools.lru_cache(maxsize=32)
def _load(path: str, mtime: float) -> dict[str, Any]:
    import tomllib  # a project without pyproject.toml never pays for the TOML parser

    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(path, "", f"fix the TOML syntax: {exc}") from exc


def read_toml(path: Path) -> dict[str, Any]:
    """Parsed TOML, cached by path and modification time."""
    return _load(str(path), os.path.getmtime(path))


def check_settings(pyproject: Path | None) -> dict[str, Any]:
    """The `[tool.chirp.check]` table, or {}."""
    if pyproject is None:
        return {}
    table = read_toml(pyproject).get("tool", {}).get("chirp", {}).get("check", {})
    if not isinstance(table, dict):
        raise ConfigurationError(f"{pyproject}: [tool.chirp.check]", table, "make it a table")
    return table


def line_of(path: Path, needle: str) -> int | None:
    """The first line of `path` containing `needle` (to point findings at a TOML entry)."""
    try:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if needle in line:
                return number
    except OSError:
        return None
    return None
