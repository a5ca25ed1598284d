"""The reference pages for configuration and commands stay in step with the code.

Every `AppConfig` and `ServerConfig` field has a row (with its default, and its variable or
flag), every command of `chirp` and `pounce` has a page naming each of its options, and the
index links every page under docs/.
"""

from __future__ import annotations

import re
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import click
import pytest

from chirp.cli import main as chirp_main
from chirp.config import AppConfig
from pounce.cli import main as pounce_main
from pounce.cli import serve as pounce_serve
from pounce.config import ServerConfig

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
REFERENCE = DOCS / "reference"


def table_rows(page: Path) -> dict[str, str]:
    """First-column name -> the whole row, for rows like "| `name` | ... |"."""
    rows = {}
    for line in page.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\| `([a-z_0-9]+)` \|", line)
        if match:
            rows[match.group(1)] = line
    return rows


def default_text(value: Any) -> str:
    """How a default is written in the tables."""
    if value is None:
        return "`None`"
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value!r}`"


def config_fields(cls: type, names: list[str]) -> list[tuple[str, Any]]:
    return [(f.name, f.default) for f in fields(cls) if f.name in names and f.default is not MISSING]


@pytest.mark.parametrize("name,default", config_fields(AppConfig, AppConfig.field_names()))
def test_every_appconfig_field_has_a_row_with_default_and_variable(name: str, default: Any) -> None:
    row = table_rows(REFERENCE / "config-appconfig.md").get(name)
    assert row is not None, f"{name} is missing from docs/reference/config-appconfig.md"
    assert f"`CHIRP_{name.upper()}`" in row, row
    assert default_text(default) in row, f"{name}: default {default!r} not in {row}"


@pytest.mark.parametrize("name,default", config_fields(ServerConfig, ServerConfig.field_names()))
def test_every_serverconfig_field_has_a_row_with_default_and_flag(name: str, default: Any) -> None:
    row = table_rows(REFERENCE / "config-serverconfig.md").get(name)
    assert row is not None, f"{name} is missing from docs/reference/config-serverconfig.md"
    assert default_text(default) in row, f"{name}: default {default!r} not in {row}"
    flags = [p.opts[0] for p in pounce_serve.params if p.name == name]
    for flag in flags:
        assert f"`{flag}`" in row, f"{name}: flag {flag} not in {row}"


@pytest.mark.parametrize(
    "page,names",
    [
        ("config-appconfig.md", AppConfig.field_names()),
        ("config-serverconfig.md", ServerConfig.field_names()),
    ],
)
def test_config_pages_document_no_field_that_does_not_exist(page: str, names: list[str]) -> None:
    documented = set(table_rows(REFERENCE / page))
    assert documented - set(names) == set()
    assert len(documented) == len(names)


def commands(group: click.Group, prefix: tuple[str, ...]) -> list[tuple[tuple[str, ...], click.Command]]:
    """Every command under `group`, groups included, as (path, command)."""
    out = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # through the group, so lazily loaded commands count
        command = group.get_command(ctx, name)
        assert command is not None
        path = (*prefix, name)
        out.append((path, command))
        if isinstance(command, click.Group):
            out.extend(commands(command, path))
    return out


ALL_COMMANDS = commands(chirp_main, ("chirp",)) + commands(pounce_main, ("pounce",))


def page_for(path: tuple[str, ...]) -> Path | None:
    """`chirp run` -> cli-chirp-run.md; a subcommand may share its group's page."""
    for end in range(len(path), 1, -1):
        page = REFERENCE / f"cli-{'-'.join(path[:end])}.md"
        if page.is_file():
            return page
    return None


def test_both_command_lines_are_covered() -> None:
    names = {" ".join(path) for path, _ in ALL_COMMANDS}
    assert {"chirp run", "chirp check", "chirp new", "pounce serve", "pounce check"} <= names
    assert {"pounce config", "pounce config schema", "pounce config show"} <= names


@pytest.mark.parametrize("path,command", ALL_COMMANDS, ids=[" ".join(p) for p, _ in ALL_COMMANDS])
def test_every_command_has_a_page_naming_it_and_its_options(
    path: tuple[str, ...], command: click.Command
) -> None:
    page = page_for(path)
    assert page is not None, f"no docs/reference/cli-{'-'.join(path)}.md for `{' '.join(path)}`"
    text = page.read_text(encoding="utf-8")
    assert " ".join(path) in text, f"{page.name} never names `{' '.join(path)}`"
    # Options shared with another command may be documented on that command's page, linked from here.
    for linked in re.findall(r"\]\((cli-[a-z-]+\.md)\)", text):
        text += (REFERENCE / linked).read_text(encoding="utf-8")
    for param in command.params:
        if not isinstance(param, click.Option):
            continue
        long_names = [o for o in param.opts if o.startswith("--") and o != "--help"]
        for option in long_names:
            assert re.search(rf"{re.escape(option)}(?![\w-])", text), f"{page.name} does not mention {option}"


def test_index_links_every_docs_file_and_every_link_resolves() -> None:
    index = REFERENCE / "README.md"
    links = re.findall(r"\]\(([^)#\s]+)\)", index.read_text(encoding="utf-8"))
    targets = {(index.parent / link).resolve() for link in links}
    for target in targets:
        assert target.exists(), f"broken link in docs/reference/README.md: {target}"
    # Every page, and the JSON published beside the pages (generated report data in
    # subdirectories, such as per-case test results, is reached through its own page).
    pages = set(DOCS.rglob("*.md")) | set(DOCS.glob("*.json")) | set(REFERENCE.glob("*.json"))
    files = {p.resolve() for p in pages if p.resolve() != index.resolve()}
    missing = sorted(str(p.relative_to(DOCS.resolve())) for p in files - targets)
    assert missing == [], f"docs/reference/README.md does not link: {missing}"
