"""The contract vocabulary shared by `app.check()`, `chirp check`, `pounce check` and the renderers.

Everything here is plain immutable data so a report can be rendered, compared with a
baseline or serialised without knowing which command produced it.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chirp.contracts.snapshot import Snapshot

ENVIRONMENTS = ("development", "test", "staging", "production")


class Severity(enum.IntEnum):
    """How much a finding matters; ordered so `max()` picks the stricter level."""

    INFO = 10
    WARNING = 20
    ERROR = 30

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str | Severity) -> Severity:
        """`"error"`, `"ERROR"` or a `Severity`; anything else raises `ValueError`."""
        if isinstance(value, Severity):
            return value
        try:
            return cls[str(value).strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {value!r}; use info, warning or error") from None


Level = Severity | None
CheckFn = Callable[["Snapshot"], Iterable["Finding | str"]]


def levels(
    development: Level, staging: Level, production: Level, *, test: Level | str = "development"
) -> dict[str, Level]:
    """A per-environment severity mapping; `test` follows development unless given."""
    test_level = development if test == "development" else test
    assert not isinstance(test_level, str)
    return {"development": development, "test": test_level, "staging": staging, "production": production}


def everywhere(severity: Severity) -> dict[str, Level]:
    """The same severity in every environment."""
    return levels(severity, severity, severity)


@dataclass(frozen=True)
class Location:
    """A place in the user's source: the line a finding should send them to."""

    file: str
    line: int | None = None

    @classmethod
    def of(cls, site: Any) -> Location | None:
        """Accept a `Location`, a `SourceSite`-like object (file, line) or None."""
        if site is None or isinstance(site, Location):
            return site
        file = getattr(site, "file", None)
        if not file:
            return None
        return cls(str(file), getattr(site, "line", None))

    def relative(self, root: str | None = None) -> str:
        """The file relative to `root` (default: the working directory) when it is inside it."""
        base = os.path.abspath(root or os.getcwd())
        path = os.path.abspath(self.file)
        if path == base or path.startswith(base + os.sep):
            return os.path.relpath(path, base).replace(os.sep, "/")
        return self.file.replace(os.sep, "/")


@dataclass(frozen=True)
class Suppressed:
    """Why a finding is suppressed and where the suppression was declared."""

    reason: str
    origin: str
    location: Location | None = None


@dataclass(frozen=True)
class Finding:
    """One violated expectation. Checks fill message/location/subject; the runner the rest.

    A check may set `severity` to lower a single finding below the rule's level (for
    example a certificate that is only *close* to expiry); it never raises it.
    """

    message: str
    location: Location | None = None
    subject: str | None = None
    severity: Severity | None = None
    rule_id: str = ""
    category: str = ""
    hint: str = ""
    docs: str = ""
    suppressed: Suppressed | None = None

    def __post_init__(self) -> None:
        if self.location is not None and not isinstance(self.location, Location):
            object.__setattr__(self, "location", Location.of(self.location))

    @property
    def fingerprint(self) -> str:
        """Stable across line moves: rule, subject and file (not line) identify a finding."""
        import hashlib

        file = self.location.relative() if self.location else ""
        raw = "\x1f".join((self.rule_id, self.subject or self.message, file))
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    def sort_key(self) -> tuple[int, str, str, int]:
        loc = self.location
        return (
            -int(self.severity or 0),
            self.rule_id,
            loc.file if loc else "",
            (loc.line or 0) if loc else 0,
        )


@dataclass(frozen=True)
class Rule:
    """A named expectation about an app or server, with a severity per environment."""

    id: str
    title: str
    severity: Mapping[str, Level]
    hint: str
    check: CheckFn
    description: str = ""
    docs: str = ""
    tags: frozenset[str] = frozenset({"app"})

    def __post_init__(self) -> None:
        from pounce.errors import ConfigurationError

        if not self.id or "." not in self.id or self.id.startswith(".") or self.id.endswith("."):
            raise ConfigurationError("Rule.id", self.id, "use a dotted id such as 'myteam.no_admin_route'")
        if not self.hint:
            raise ConfigurationError("Rule.hint", self.hint, "say in one sentence how to fix the finding")
        if not callable(self.check):
            raise ConfigurationError(
                "Rule.check", self.check, "pass a function of the snapshot that yields findings"
            )
        mapping = dict(self.severity)
        unknown = set(mapping) - set(ENVIRONMENTS)
        if unknown:
            raise ConfigurationError(
                "Rule.severity", sorted(unknown), f"use the environments {', '.join(ENVIRONMENTS)}"
            )
        if "test" not in mapping:
            mapping["test"] = mapping.get("development")
        for env in ENVIRONMENTS:
            value = mapping.get(env)
            mapping[env] = None if value is None else Severity.parse(value)
        object.__setattr__(self, "severity", mapping)
        if not self.docs:
            object.__setattr__(self, "docs", f"docs/reference/rules/{self.category}.md")

    @property
    def category(self) -> str:
        return self.id.split(".", 1)[0]

    def level(self, env: str) -> Level:
        return self.severity.get(env)

    @property
    def highest(self) -> Level:
        present = [s for s in self.severity.values() if s is not None]
        return max(present) if present else None


def rule(
    id: str,
    *,
    title: str,
    severity: Mapping[str, Level],
    hint: str,
    description: str = "",
    docs: str = "",
    tags: Iterable[str] = ("app",),
) -> Callable[[CheckFn], Rule]:
    """Decorator turning a check function into a `Rule`; the docstring is its description."""

    def make(fn: CheckFn) -> Rule:
        return Rule(
            id=id,
            title=title,
            severity=severity,
            hint=hint,
            check=fn,
            description=description or " ".join((fn.__doc__ or "").split()),
            docs=docs,
            tags=frozenset(tags),
        )

    return make


@dataclass(frozen=True)
class ReportError:
    """Why no findings could be produced (the app did not import or build)."""

    code: str
    message: str
    hint: str = ""


@dataclass(frozen=True)
class Report:
    """The outcome of one check run; `ok` is judged against `fail_on`."""

    findings: tuple[Finding, ...] = ()
    env: str = "development"
    deploy: bool = False
    fail_on: Severity = Severity.ERROR
    rules: tuple[Rule, ...] = ()
    duration_ms: float = 0.0
    version: str = ""
    target: str | None = None
    tool: str = "chirp"
    error: ReportError | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "findings", tuple(sorted(self.findings, key=Finding.sort_key)))

    @property
    def rules_run(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.rules)

    @property
    def active(self) -> tuple[Finding, ...]:
        """Findings that count: not suppressed."""
        return tuple(f for f in self.findings if f.suppressed is None)

    @property
    def suppressed(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.suppressed is not None)

    @property
    def counts(self) -> dict[str, int]:
        out = {s.label: 0 for s in sorted(Severity, reverse=True)}
        for f in self.active:
            if f.severity is not None:
                out[f.severity.label] += 1
        out["suppressed"] = len(self.suppressed)
        return out

    @property
    def failing(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.active if f.severity is not None and f.severity >= self.fail_on)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failing

    @property
    def warnings_as_errors(self) -> bool:
        return self.fail_on <= Severity.WARNING

    def with_changes(self, **changes: Any) -> Report:
        return replace(self, **changes)

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


DOCS_URL_ENV = "CHIRP_DOCS_URL"
_DOCS_ROOT = "docs/reference/"


def docs_url(docs: str) -> str | None:
    """The published page of a rule's `docs` path, when `CHIRP_DOCS_URL` names where the
    reference is published (set it, or `docs_url` under `[tool.chirp.check]`); else None."""
    base = os.environ.get(DOCS_URL_ENV, "").strip().rstrip("/")
    if not base or "://" in docs:
        return docs if "://" in docs else None
    return f"{base}/{docs.removeprefix(_DOCS_ROOT)}"


def docs_hint(rule_id: str, docs: str) -> str:
    """Where to read about a rule, valid anywhere a report travels (a PR comment, an installed
    package): the published page, or the `--explain` command that prints it."""
    return docs_url(docs) or f"chirp check --explain {rule_id}"
