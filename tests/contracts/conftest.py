"""Helpers: real app modules written to a temporary directory and imported like a user's app."""

from __future__ import annotations

import importlib.util
import itertools
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

_counter = itertools.count()


class AppModule:
    """An imported app module and the file it lives in."""

    def __init__(self, path: Path, module: Any) -> None:
        self.path = path
        self.module = module
        self.app = getattr(module, "app", None)

    def line(self, marker: str) -> int:
        """The line number of the first line containing `marker` (a `# <name>` comment)."""
        for number, text in enumerate(self.path.read_text().splitlines(), 1):
            if marker in text:
                return number
        raise AssertionError(f"marker {marker!r} not in {self.path}")


@pytest.fixture
def load_app(tmp_path: Path):
    """Write `source` as a module under tmp_path and import it; returns an AppModule."""
    names: list[str] = []

    def load(source: str, name: str | None = None) -> AppModule:
        name = name or f"contract_app_{next(_counter)}"
        path = tmp_path / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        names.append(name)
        spec.loader.exec_module(module)
        return AppModule(path, module)

    yield load
    for name in names:
        sys.modules.pop(name, None)
