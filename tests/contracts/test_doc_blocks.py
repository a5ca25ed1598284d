"""Every Python block in README.md and docs/ runs, so an example can no longer be wrong.

The blocks of one page run in order in one namespace, as a reader would type them into one
file, in a fresh directory with a secret key in the environment. A block that cannot run on
its own (it serves forever, or needs a service the page only names) is preceded by an HTML
comment `<!-- illustration: why -->` and is only compiled. A block preceded by
`<!-- file: NAME.py -->` is the module a later block imports: it is written there and imported.
Test functions a block defines (`def test_...()`, no arguments) are called after it, unless it
calls them itself.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import os
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
_FENCE = re.compile(r"^```python\n(.*?)^```", re.M | re.S)
_MARK = re.compile(r"<!--\s*illustration:\s*(.+?)\s*-->\s*\n\s*\Z")
_FILE = re.compile(r"<!--\s*file:\s*([\w/]+\.py)\s*-->\s*\n\s*\Z")


@dataclass
class Block:
    page: Path
    line: int
    code: str
    illustration: str | None  # why it is only compiled, or None: it runs
    file: str | None  # the module file it is, or None: it runs in the page's namespace


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()]
        mark, file = _MARK.search(before[-300:]), _FILE.search(before[-300:])
        found.append(
            Block(
                page,
                before.count("\n") + 2,
                match.group(1),
                mark.group(1) if mark else None,
                file.group(1) if file else None,
            )
        )
    return found


def run(block: Block, namespace: dict[str, object]) -> None:
    name = f"{block.page.relative_to(ROOT)}:{block.line}"
    code = compile(block.code, name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if block.illustration is not None:
        return  # it compiles: that much is checked
    if block.file is not None:
        Path(block.file).parent.mkdir(parents=True, exist_ok=True)
        Path(block.file).write_text(block.code)
        importlib.import_module(block.file.removesuffix(".py").replace("/", "."))
        return
    result = eval(code, namespace)  # a block with a top-level await gives a coroutine
    if asyncio.iscoroutine(result):
        asyncio.run(result)


def call_tests(block: Block, namespace: dict[str, object]) -> None:
    """Call the argument-less `test_` functions a block defines and does not call itself."""
    for name in re.findall(r"^(?:async )?def (test_\w+)\(\)", block.code, re.M):
        if re.search(rf"^(?:asyncio\.run\()?{name}\(", block.code, re.M):
            continue
        function = namespace[name]
        assert callable(function)
        result = function()
        if asyncio.iscoroutine(result):
            asyncio.run(result)


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p)], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_python_block_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("CHIRP_SECRET_KEY", secrets.token_urlsafe(48))
    for name in [
        n for n in os.environ if n.startswith("CHIRP_") and n not in ("CHIRP_SECRET_KEY", "CHIRP_CI")
    ]:
        monkeypatch.delenv(name)
    namespace: dict[str, object] = {"__name__": f"doc_{page.stem}"}
    before = set(sys.modules)
    try:
        for block in blocks(page):
            run(block, namespace)
            if block.illustration is None and block.file is None:
                call_tests(block, namespace)
    finally:
        for module in set(sys.modules) - before:  # modules a page wrote and imported
            if getattr(sys.modules[module], "__file__", "") and str(tmp_path) in str(
                sys.modules[module].__file__
            ):
                del sys.modules[module]


def test_illustrations_say_why() -> None:
    for page in PAGES:
        for block in blocks(page):
            assert block.illustration is None or len(block.illustration) > 8, f"{page}:{block.line}"
