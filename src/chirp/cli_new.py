"""`chirp new`: write a project that passes `chirp check --deploy` out of the box."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import click

VARIANTS = ("full", "minimal")
TEMPLATE_SUFFIX = ".tmpl"
# A template file called `dot-gitignore.tmpl` is written as `.gitignore`: dotfiles inside
# the package would otherwise act on this repository (a .gitignore) or be skipped by tools.
DOT_PREFIX = "dot-"
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")

EPILOG = """\b
Examples:
  chirp new shop                     # ./shop: app, tests, Dockerfile, Kubernetes manifest
  chirp new shop --minimal           # ./shop: one app file and a README
  chirp new shop --directory ~/src/shop-service
\b
Then:
  cd shop && chirp run app:app
"""


class ScaffoldError(Exception):
    """A request `chirp new` refuses: the message names the value, the hint says what to do."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Project:
    """What the templates are filled in with."""

    name: str

    @property
    def module(self) -> str:
        """The name as a Python identifier (`my-shop` → `my_shop`)."""
        return self.name.replace("-", "_").lower()

    @property
    def k8s_name(self) -> str:
        """The name as a Kubernetes object name (lower-case letters, digits and `-`)."""
        return self.name.replace("_", "-").lower().strip("-")

    def substitutions(self) -> dict[str, str]:
        return {"{{name}}": self.name, "{{module}}": self.module, "{{k8s_name}}": self.k8s_name}


def validate_name(name: str) -> None:
    """Raise `ScaffoldError` unless `name` can be a directory, distribution and Kubernetes name."""
    if NAME_RE.match(name):
        return
    suggestion = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_-")
    if suggestion and not suggestion[0].isalpha():
        suggestion = f"app_{suggestion}"
    example = suggestion[:63] or "my_app"
    raise ScaffoldError(
        f"invalid project name {name!r}",
        f"use letters, digits, '_' and '-', starting with a letter, at most 63 characters (e.g. {example!r})",
    )


def _templates(variant: str) -> Traversable:
    return resources.files("chirp").joinpath("scaffold", variant)


def _walk(root: Traversable, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Traversable]]:
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name in ("__pycache__",) or entry.name.endswith((".pyc", ".pyo")):
            continue
        if entry.is_dir():
            yield from _walk(entry, (*prefix, entry.name))
        else:
            yield (*prefix, entry.name), entry


def _output_name(name: str) -> str:
    if name.endswith(TEMPLATE_SUFFIX):
        name = name[: -len(TEMPLATE_SUFFIX)]
    if name.startswith(DOT_PREFIX):
        name = "." + name[len(DOT_PREFIX) :]
    return name


def render(text: str, project: Project) -> str:
    for placeholder, value in project.substitutions().items():
        text = text.replace(placeholder, value)
    return text


def plan(project: Project, variant: str) -> list[tuple[Path, str]]:
    """`[(relative path, contents)]` of every file the project gets."""
    root = _templates(variant)
    if not root.is_dir():
        raise ScaffoldError(
            f"the {variant!r} templates are not installed",
            "reinstall chirp-pounce (the scaffold is package data)",
        )
    files = []
    for parts, entry in _walk(root):
        relative = Path(*parts[:-1], _output_name(parts[-1]))
        files.append((relative, render(entry.read_text(encoding="utf-8"), project)))
    return files


def check_target(target: Path) -> None:
    """Refuse a file, or a directory that already has something in it."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise ScaffoldError(f"{target} exists and is not a directory", "pick another --directory or name")
    if target.is_dir() and any(target.iterdir()):
        raise ScaffoldError(
            f"{target} already exists and is not empty",
            "pick another NAME or --directory, or remove the directory first",
        )


def create_project(name: str, directory: Path | None = None, *, minimal: bool = False) -> list[Path]:
    """Write the project; returns the files written (absolute). Raises `ScaffoldError`."""
    validate_name(name)
    target = (directory if directory is not None else Path(name)).expanduser().absolute()
    check_target(target)
    files = plan(Project(name), "minimal" if minimal else "full")
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for relative, text in files:
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


@click.command(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("name")
@click.option("--minimal", is_flag=True, help="Only app.py (secure stack and probes) and a README.")
@click.option(
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write the project (default: ./NAME). Must not exist or be empty.",
)
def new(name: str, minimal: bool, directory: Path | None) -> None:
    """Create a new chirp project called NAME with the secure stack wired."""
    try:
        written = create_project(name, directory, minimal=minimal)
    except ScaffoldError as exc:
        click.echo(f"error: {exc.message}", err=True)
        click.echo(f"hint: {exc.hint}", err=True)
        sys.exit(2)
    except OSError as exc:
        click.echo(f"error: cannot write the project: {exc.strerror or exc}", err=True)
        click.echo("hint: check the directory's permissions and free space", err=True)
        sys.exit(1)
    root = (directory if directory is not None else Path(name)).expanduser()
    click.echo(f"created {name} in {root} ({len(written)} files)")
    click.echo("next:")
    click.echo(f"  cd {root}")
    if not minimal:
        click.echo('  python -m pip install -e ".[dev]" && python -m pytest')
    click.echo("  chirp run app:app")
