"""Find a project's deployment artefacts and read them.

Which files: those named with `--artefact PATH` (repeatable), else `artefacts = [...]` under
`[tool.chirp.check]` in pyproject.toml, else what is found in the project directory (the one
holding pyproject.toml, else the app's): Dockerfiles and Compose files at the top, and YAML
files under `k8s/`, `kubernetes/`, `deploy/`, `deployment/`, `deployments/` and `manifests/`.
A directory named explicitly is searched the same way. Helm charts (directories with a
`Chart.yaml`) hold templates, not manifests: render them (`helm template ... > rendered.yaml`)
and name the rendered file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from chirp.contracts.artefacts.model import Artefacts, Problem, Value
from chirp.contracts.model import Location

DOCKERFILES = (
    "Dockerfile",
    "Containerfile",
    "Dockerfile.*",
    "Containerfile.*",
    "*.Dockerfile",
    "*.dockerfile",
)
COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml",
                 "compose.*.yaml", "compose.*.yml", "docker-compose.*.yaml", "docker-compose.*.yml")  # fmt: skip
MANIFEST_DIRS = ("k8s", "kubernetes", "deploy", "deployment", "deployments", "manifests")
YAML_SUFFIXES = (".yaml", ".yml")
SKIP_DIRS = frozenset({".git", ".venv", "venv", "node_modules", "__pycache__", ".tox", "build", "dist"})
MAX_FILES = 200  # a bound on discovery, so a huge tree cannot make the check slow


class ArtefactError(Exception):
    """A path named on the command line or in pyproject.toml that cannot be used (exit 2)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def _matches(name: str, patterns: Iterable[str]) -> bool:
    """Whether `name` fits one of `patterns`, each a file name with at most one `*` (any run of
    characters, as in a glob): compared as text, since translating the globs into regular
    expressions is most of the cost of discovery."""
    for pattern in patterns:
        head, star, tail = pattern.partition("*")
        if not star:
            if name == pattern:
                return True
        elif len(name) >= len(head) + len(tail) and name.startswith(head) and name.endswith(tail):
            return True
    return False


def kind_of(path: Path) -> str | None:
    """`dockerfile`, `yaml` or None, from the file name."""
    if _matches(path.name, DOCKERFILES):
        return "dockerfile"
    if path.suffix.lower() in YAML_SUFFIXES:
        return "yaml"
    return None


def _walk(directory: Path, found: list[Path], depth: int = 0) -> None:
    if depth > 4 or (directory / "Chart.yaml").is_file():
        return
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if len(found) >= MAX_FILES:
            return
        if entry.is_dir() and not entry.name.startswith(".") and entry.name not in SKIP_DIRS:
            _walk(Path(entry.path), found, depth + 1)
        elif entry.is_file() and kind_of(Path(entry.path)) is not None:
            found.append(Path(entry.path))


def discover(root: Path) -> list[Path]:
    """The artefacts a project keeps in the usual places."""
    found: list[Path] = []
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return found
    for entry in entries:
        if entry.is_file() and _matches(entry.name, DOCKERFILES + COMPOSE_FILES):
            found.append(Path(entry.path))
        elif entry.is_dir() and entry.name in MANIFEST_DIRS:
            _walk(Path(entry.path), found)
    return found[:MAX_FILES]


def named(paths: Sequence[str], base: Path, origin: str) -> list[Path]:
    """Files for explicitly named paths (directories are searched); a bad path raises."""
    out: list[Path] = []
    for raw in paths:
        if not isinstance(raw, str) or not raw.strip():
            raise ArtefactError(f"{origin}: {raw!r} is not a path", "name a file or directory, e.g. 'k8s/'")
        path = (base / raw).resolve() if not os.path.isabs(raw) else Path(raw)
        if path.is_dir():
            _walk(path, out)
        elif path.is_file():
            if kind_of(path) is None:
                raise ArtefactError(
                    f"{origin}: {raw} is neither a Dockerfile nor a YAML file",
                    "name a Dockerfile, a Compose file or a Kubernetes manifest (.yaml/.yml)",
                )
            out.append(path)
        else:
            raise ArtefactError(f"{origin}: {raw} does not exist (looked in {base})", "fix the path")
    return out


def select(
    cli_paths: Sequence[str] | None, settings: dict[str, Any], root: Path, pyproject: Path | None
) -> list[Path]:
    """The files to check: the command line's, else pyproject's `artefacts`, else discovery."""
    if cli_paths is not None:
        return named(cli_paths, Path.cwd(), "--artefact")
    if "artefacts" in settings:
        value = settings["artefacts"]
        if not isinstance(value, list):
            raise ArtefactError(
                f"{pyproject}: [tool.chirp.check] artefacts is {value!r}",
                'use a list of paths, e.g. artefacts = ["Dockerfile", "k8s/"] (or [] for none)',
            )
        return named(value, root, f"{pyproject}: [tool.chirp.check] artefacts")
    return discover(root)


def load(files: Sequence[Path], pyproject: Path | None = None) -> Artefacts:
    """Parse every file; what cannot be read becomes a `Problem`, never an exception."""
    out = Artefacts(files=[str(f) for f in files])
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            out.problems.append(Problem(f"cannot read the file: {exc}", Location(str(path), None), "file"))
            continue
        if kind_of(path) == "dockerfile":
            from chirp.contracts.artefacts import dockerfile

            image, problems = dockerfile.read(str(path), text)
            out.problems.extend(problems)
            if image is not None:
                out.images.append(image)
            continue
        from chirp.contracts.artefacts import compose, kubernetes
        from chirp.contracts.artefacts.yamldoc import load_documents

        docs, problem = load_documents(str(path), text)
        if problem is not None:
            out.problems.append(problem)
        if compose.is_compose(docs):
            compose.read(str(path), docs, out)
        else:
            kubernetes.read(str(path), docs, out)
    if pyproject is not None and out.files:
        out.requires_python = _requires_python(pyproject)
    return out


def _requires_python(pyproject: Path) -> Value | None:
    from chirp.contracts.project import line_of, read_toml

    value = read_toml(pyproject).get("project", {}).get("requires-python")
    if not isinstance(value, str):
        return None
    return Value(value, Location(str(pyproject), line_of(pyproject, "requires-python")))


def for_app(app: Any, cli_paths: Sequence[str] | None) -> Artefacts:
    """The artefacts of the project `app` belongs to (see the module docstring for which files)."""
    from chirp.contracts.project import check_settings, find_upward

    app_file = getattr(getattr(app, "site", None), "file", None)
    pyproject = find_upward(app_file or os.getcwd(), "pyproject.toml")
    if pyproject is not None:
        root = pyproject.parent
    elif app_file:
        root = Path(app_file).resolve().parent
    else:
        root = Path.cwd()
    files = select(cli_paths, check_settings(pyproject), root, pyproject)
    return load(files, pyproject)
