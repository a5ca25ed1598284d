"""An organisation's policy file: severities that may only tighten, and rules that must run.

Named in the project's `[tool.chirp.check]` as a path (relative to pyproject.toml) or as
`package:resource` — a file shipped inside an installed package, so a rule pack can carry
the policy every service adopts:

    [tool.chirp.check]
    policy = "acme_chirp_rules:policy.toml"

The file:

    [severity]                    # tighten only: a rule's level is never lowered
    "probes.missing" = "error"
    [require]
    rules = ["acme.owner_label", "secrets"]   # ids or categories; cannot be ignored or suppressed
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chirp.contracts.model import Rule, Severity
from pounce.errors import ConfigurationError

_RESOURCE = re.compile(r"^([A-Za-z_][\w.]*):([\w./-]+)$")


@dataclass(frozen=True)
class Policy:
    """What the organisation asks of every check: stricter severities and required rules."""

    source: str = ""
    severity: Mapping[str, Severity] = field(default_factory=dict)
    required: tuple[str, ...] = ()

    def overrides(self, own: Mapping[str, Any], rules: Mapping[str, Rule]) -> dict[str, Any]:
        """The app's overrides with the policy's on top (the stricter of the two per rule)."""
        from chirp.contracts.suppress import check_overrides

        mine = check_overrides(self.severity, rules)  # a loosening policy entry raises here
        merged: dict[str, Any] = dict(own)
        for rule_id, level in mine.items():
            current = merged.get(rule_id)
            merged[rule_id] = level if current is None else max(Severity.parse(current), level)
        return merged

    def required_ids(self, rules: Iterable[Rule]) -> set[str]:
        """Ids of the rules the policy requires (categories expanded); an unknown name raises."""
        rules = list(rules)
        out: set[str] = set()
        for name in self.required:
            hit = {r.id for r in rules if r.id == name or r.category == name}
            if not hit:
                raise ConfigurationError(
                    f"{self.source}: [require].rules", name,
                    "no installed rule or category has this name; install the rule pack that provides it",
                )  # fmt: skip
            out |= hit
        return out

    def enforce(self, rules: Sequence[Rule], select: Sequence[str], ignore: Sequence[str],
                suppressed: Iterable[str]) -> None:  # fmt: skip
        """Refuse --select/--ignore that drop a required rule, and suppressions of one."""
        required = self.required_ids(rules)
        by_id = {r.id: r for r in rules}
        for rule_id in sorted(required):
            category = by_id[rule_id].category
            dropped = (
                rule_id in ignore
                or category in ignore
                or (select and rule_id not in select and category not in select)
            )
            if dropped:
                raise ConfigurationError(
                    "--select/--ignore", rule_id, f"{self.source} requires this rule; it cannot be left out"
                )
        for rule_id in suppressed:
            if rule_id in required:
                raise ConfigurationError(
                    "suppress", rule_id, f"{self.source} requires this rule; fix the finding instead"
                )


def _read(path: Path, label: str) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(
            "[tool.chirp.check] policy", label, f"cannot read it: {exc.strerror or exc}"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(label, "", f"fix the TOML syntax: {exc}") from exc


def _locate(value: str, pyproject: Path) -> tuple[Path, str]:
    path = (pyproject.parent / value).resolve()
    match = _RESOURCE.match(value)
    if path.is_file() or match is None:
        return path, str(path)
    from importlib import resources

    try:
        resource = resources.files(match[1]).joinpath(match[2])
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            "[tool.chirp.check] policy",
            value,
            f"no package {match[1]!r} is installed; install the policy's pack",
        ) from exc
    return Path(str(resource)), value


def load(pyproject: Path | None, settings: Mapping[str, Any]) -> Policy:
    """The policy named under `[tool.chirp.check] policy`, or an empty one."""
    value = settings.get("policy")
    if value is None or pyproject is None:
        return Policy()
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(
            "[tool.chirp.check] policy", value, "name a TOML file (relative path) or package:resource"
        )
    path, label = _locate(value.strip(), pyproject)
    data = _read(path, label)
    unknown = set(data) - {"severity", "require"}
    if unknown:
        raise ConfigurationError(
            f"{label}: [{sorted(unknown)[0]}]", "", "a policy has [severity] and [require]"
        )
    severity: dict[str, Severity] = {}
    for rule_id, level in (data.get("severity") or {}).items():
        try:
            severity[rule_id] = Severity.parse(level)
        except ValueError:
            raise ConfigurationError(
                f"{label}: [severity].{rule_id}", level, "use info, warning or error"
            ) from None
    required = (data.get("require") or {}).get("rules", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise ConfigurationError(
            f"{label}: [require].rules", required, "use a list of rule ids or categories"
        )
    return Policy(label, severity, tuple(required))
