"""Renderers: one report, many audiences (terminal, CI annotations, code scanning, PR comments)."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from chirp.contracts.model import Report

FORMATS = ("text", "json", "sarif", "github", "junit", "markdown")


def renderer(name: str) -> Callable[[Report], str]:
    """The render function for a format name (text without colour)."""
    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r}; use one of {', '.join(FORMATS)}")
    module = importlib.import_module(f"chirp.contracts.render.{name}")
    fn: Callable[[Report], str] = getattr(module, f"render_{name}")
    return fn
