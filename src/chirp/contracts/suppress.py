"""Suppressions (a reason is mandatory, a date optional) and tighten-only severity overrides."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from chirp.contracts.model import ENVIRONMENTS, Finding, Level, Location, Rule, Severity, Suppressed
from chirp.contracts.project import check_settings, line_of
from pounce.errors import ConfigurationError


@dataclass(frozen=True)
class Suppression:
    """Silence `rule_id` (in `env`, or everywhere) until `until`, for a stated reason."""

    rule_id: str
    reason: str
    until: dt.date | None = None
    env: str | None = None
    site: Location | None = None
    origin: str = "app.suppress"

    @classmethod
    def create(
        cls,
        rule_id: str,
        *,
        reason: str,
        until: Any = None,
        env: str | None = None,
        site: Any = None,
        origin: str = "app.suppress",
        field_prefix: str = "",
    ) -> Suppression:
        """Validate and build; every problem raises `ConfigurationError` naming the field."""
        if not isinstance(rule_id, str) or not rule_id.strip():
            raise ConfigurationError(
                f"{field_prefix}rule", rule_id, "name the rule id to suppress, e.g. 'hsts.missing'"
            )
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigurationError(
                f"{field_prefix}reason", reason, "a suppression needs a reason: say why it is acceptable"
            )
        if env is not None and env not in ENVIRONMENTS:
            raise ConfigurationError(
                f"{field_prefix}env", env, f"use one of {', '.join(ENVIRONMENTS)} (or leave it out)"
            )
        return cls(
            rule_id.strip(),
            reason.strip(),
            _parse_date(until, f"{field_prefix}until"),
            env,
            Location.of(site),
            origin,
        )

    def expired(self, today: dt.date) -> bool:
        return self.until is not None and self.until < today

    def applies(self, env: str, deploy: bool) -> bool:
        """Env-scoped suppressions apply in their env; the deploy posture only honours production ones."""
        if self.env is None:
            return True
        return self.env == ("production" if deploy else env)


def _parse_date(value: Any, field: str) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConfigurationError(field, value, "use a date (datetime.date or 'YYYY-MM-DD')")


def from_pyproject(pyproject: Path | None) -> list[Suppression]:
    """`[tool.chirp.check] suppress = [{rule, reason, until, env}]` from the project file."""
    entries = check_settings(pyproject).get("suppress", [])
    assert pyproject is not None or not entries
    if not isinstance(entries, list):
        raise ConfigurationError(
            f"{pyproject}: [tool.chirp.check].suppress", entries, "use a list of {rule, reason} tables"
        )
    out = []
    for i, entry in enumerate(entries):
        prefix = f"{pyproject}: [tool.chirp.check].suppress[{i}]."
        if not isinstance(entry, dict):
            raise ConfigurationError(prefix.rstrip("."), entry, "use a table {rule = ..., reason = ...}")
        unknown = set(entry) - {"rule", "reason", "until", "env"}
        if unknown:
            raise ConfigurationError(
                prefix + sorted(unknown)[0],
                entry[sorted(unknown)[0]],
                "allowed keys: rule, reason, until, env",
            )
        rule_id = entry.get("rule", "")
        line = line_of(pyproject, f'"{rule_id}"') if pyproject and rule_id else None
        site = Location(str(pyproject), line) if pyproject else None
        out.append(
            Suppression.create(
                rule_id,
                reason=entry.get("reason", ""),
                until=entry.get("until"),
                env=entry.get("env"),
                site=site,
                origin="pyproject.toml",
                field_prefix=prefix,
            )
        )
    return out


def check_overrides(overrides: Mapping[str, Any], rules: Mapping[str, Rule]) -> dict[str, Severity]:
    """Validate `app.override_severity` calls: known rules, real severities, never looser."""
    out: dict[str, Severity] = {}
    for rule_id, value in overrides.items():
        field = f"override_severity({rule_id!r})"
        rule = rules.get(rule_id)
        if rule is None:
            raise ConfigurationError(field, rule_id, "no rule has this id; see `chirp check --list-rules`")
        try:
            severity = Severity.parse(value)
        except ValueError:
            raise ConfigurationError(
                field, value, "use Severity.INFO, Severity.WARNING or Severity.ERROR"
            ) from None
        highest = rule.highest
        if highest is not None and severity < highest:
            raise ConfigurationError(
                field,
                severity.name,
                f"overrides may only tighten ({rule_id} is {highest.name} somewhere); "
                "to loosen, use app.suppress(rule_id, reason=...)",
            )
        out[rule_id] = severity
    return out


def effective_level(rule: Rule, env: str, deploy: bool, override: Severity | None) -> Level:
    """The rule's severity for this run: override tightens; deploy takes the stricter of env and production."""

    def one(name: str) -> Level:
        base = rule.level(name)
        if override is None:
            return base
        return override if base is None else max(base, override)

    own = one(env)
    if not deploy:
        return own
    prod = one("production")
    present = [s for s in (own, prod) if s is not None]
    return max(present) if present else None


def apply(
    findings: Sequence[Finding],
    suppressions: Iterable[Suppression],
    *,
    env: str,
    deploy: bool,
    rules_run: Collection[str],
    known: Collection[str],
    make: Any,
    today: dt.date | None = None,
) -> list[Finding]:
    """Mark suppressed findings; add `suppression.expired` / `suppression.unused` findings.

    `make(rule_id, message, location, subject)` builds an engine finding (or None when the
    engine rule is not selected).
    """
    today = today or dt.date.today()
    active = [s for s in suppressions if s.applies(env, deploy)]
    used: set[int] = set()  # positions in `active` that matched a finding
    out: list[Finding] = []
    for finding in findings:
        match = None
        for position, s in enumerate(active):
            if s.rule_id == finding.rule_id:
                used.add(position)
                if not s.expired(today) and match is None:
                    match = s
        if match is not None:
            finding = replace(finding, suppressed=Suppressed(match.reason, match.origin, match.site))
        out.append(finding)
    for position, s in enumerate(active):
        if s.expired(today):
            assert s.until is not None
            extra = make(
                "suppression.expired",
                f"the suppression of {s.rule_id} expired on {s.until.isoformat()} ({s.reason})",
                s.site,
                s.rule_id,
            )
        elif position not in used and s.rule_id in rules_run:
            extra = make(
                "suppression.unused",
                f"the suppression of {s.rule_id} matched no finding ({s.reason})",
                s.site,
                s.rule_id,
            )
        elif position not in used and s.rule_id not in known:
            extra = make(
                "suppression.unused",
                f"the suppression names {s.rule_id!r}, which is not a known rule",
                s.site,
                s.rule_id,
            )
        else:
            extra = None
        if extra is not None:
            out.append(extra)
    return out
