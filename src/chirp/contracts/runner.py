"""Run rules against a snapshot and assemble the `Report`: the one path every check takes.

snapshot → each selected rule (at its effective severity) → findings → suppressions → report.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chirp.contracts.model import Finding, Location, Report, Rule, Severity
from chirp.contracts.project import check_settings, find_upward, read_toml
from chirp.contracts.registry import RuleRegistry, installed_registry
from chirp.contracts.snapshot import Snapshot
from chirp.contracts.suppress import Suppression, apply, check_overrides, effective_level, from_pyproject
from pounce.errors import ConfigurationError, did_you_mean

if TYPE_CHECKING:
    from chirp.contracts.policy import Policy

ENGINE_RULES = ("suppression.expired", "suppression.unused", "contracts.rule_error")


def version() -> str:
    from chirp import __version__

    return __version__


def check_app(
    app: Any,
    *,
    env: str | None = None,
    deploy: bool = False,
    warnings_as_errors: bool = False,
    select: Sequence[str] = (),
    ignore: Sequence[str] = (),
    fail_on: Severity | None = None,
    registry: RuleRegistry | None = None,
    live: Any = None,
    server: Any = None,
    artefacts: Any = None,
    remote: bool = False,
) -> Report:
    """Check a chirp `App`; `deploy=True` judges its production posture with warnings as errors.

    `server` is the `ServerConfig` the launching command will serve with; without it the
    settings found beside the app (pounce.toml, `[tool.pounce]`) are used, else those the
    AppConfig implies. `live` is what `--live` observed (`chirp.contracts.live.observe.LiveRun`);
    with it the `live.*` rules run too. `artefacts` are the deployment files read
    (`chirp.contracts.artefacts.model.Artefacts`); when there are any, the artefact rules run.
    `remote` (`chirp check --url`): only the `live.*` rules run, on what a deployed instance showed.
    """
    started = time.perf_counter()
    pyproject = find_upward(getattr(app.site, "file", None), "pyproject.toml")
    server_file = None if server is not None else server_settings_file(app, pyproject)
    snap = Snapshot.of_app(
        app, env=env, deploy=deploy, server=server, server_file=server_file, live=live, artefacts=artefacts
    )
    registry = registry or installed_registry()
    rules = [] if remote else all_rules(registry, app.contract_rules, "app")
    if live is not None:
        rules.extend(registry.with_tag("live"))
    if artefacts is not None and artefacts.files:
        rules.extend(registry.with_tag("artefact"))
    suppressions = list(app.suppressions) + from_pyproject(pyproject)
    policy = project_policy(pyproject)
    known = [*registry, *app.contract_rules]
    if policy is not None:
        policy.enforce(known, select, ignore, [s.rule_id for s in suppressions])
    level = fail_level(deploy or warnings_as_errors, fail_on)
    return run(
        snap,
        rules,
        overrides=(
            policy.overrides(app.severity_overrides, {r.id: r for r in known})
            if policy is not None
            else dict(app.severity_overrides)
        ),
        suppressions=suppressions,
        select=select,
        ignore=ignore,
        fail_on=level,
        started=started,
        tool="chirp",
        known_names={r.id for r in registry} | {r.category for r in registry},
    )


def check_names(app: Any, select: Sequence[str], ignore: Sequence[str]) -> None:
    """Raise for a `--select`/`--ignore` name that is no rule or category, built-in or the app's."""
    registry = installed_registry()
    rules = all_rules(registry, app.contract_rules, "app") + registry.with_tag("live")
    rules += registry.with_tag("artefact")
    selected(rules, select, ignore, {r.id for r in registry} | {r.category for r in registry})
    pyproject = find_upward(getattr(app.site, "file", None), "pyproject.toml")
    policy = project_policy(pyproject)
    if policy is not None:
        policy.enforce([*registry, *app.contract_rules], select, ignore, ())


def project_policy(pyproject: Path | None) -> Policy | None:
    """The organisation policy named in `[tool.chirp.check]`, or None (the policy module loads
    only for a project that names one)."""
    settings = check_settings(pyproject)
    if "policy" not in settings:
        return None
    from chirp.contracts.policy import load

    return load(pyproject, settings)


def fail_level(warnings_as_errors: bool, fail_on: Severity | None) -> Severity:
    """Warnings-as-errors lowers the bar to WARNING; `--fail-on` may lower it further."""
    level = Severity.WARNING if warnings_as_errors else Severity.ERROR
    return min(level, fail_on) if fail_on is not None else level


def all_rules(registry: RuleRegistry, custom: Iterable[Rule], tag: str) -> list[Rule]:
    """The registry's rules for `tag`, then the app's own (ids must not collide)."""
    out = registry.with_tag(tag)
    ids = {r.id for r in registry}
    for item in custom:
        if not isinstance(item, Rule):
            raise ConfigurationError(
                "add_contract_rule", item, "pass a chirp.contracts.Rule (or use the @rule decorator)"
            )
        if item.id in ids:
            raise ConfigurationError(
                "Rule.id", item.id, "a rule with this id already exists; pick another id"
            )
        ids.add(item.id)
        out.append(item)
    return out


def selected(
    rules: list[Rule], select: Sequence[str], ignore: Sequence[str], known: Iterable[str] = ()
) -> list[Rule]:
    """`--select`/`--ignore` take rule ids or whole categories; unknown names raise.

    `known` names are accepted without matching a rule of this run (for example `live.*` ids
    in a shared ignore list of a run without `--live`).
    """
    ids = {r.id for r in rules} | set(known)
    cats = {r.category for r in rules}
    for name in (*select, *ignore):
        if name not in ids and name not in cats:
            close = did_you_mean(name, ids | cats)
            raise ConfigurationError(
                "--select/--ignore", name, f"no rule or category has this name; {close or 'see --list-rules'}"
            )

    def hit(r: Rule, names: Sequence[str]) -> bool:
        return r.id in names or r.category in names

    return [r for r in rules if (not select or hit(r, select) or r.id in ENGINE_RULES) and not hit(r, ignore)]


def run(
    snap: Snapshot,
    rules: list[Rule],
    *,
    overrides: Any = None,
    suppressions: Iterable[Suppression] = (),
    select: Sequence[str] = (),
    ignore: Sequence[str] = (),
    fail_on: Severity = Severity.ERROR,
    started: float | None = None,
    tool: str = "chirp",
    known_names: Iterable[str] = (),
) -> Report:
    """Evaluate `rules` on `snap` and build the report."""
    started = time.perf_counter() if started is None else started
    by_id = {r.id: r for r in rules}
    tightened = check_overrides(overrides or {}, by_id)
    chosen = selected(rules, select, ignore, known_names)
    levels = {r.id: effective_level(r, snap.env, snap.deploy, tightened.get(r.id)) for r in chosen}
    ran = [r for r in chosen if levels[r.id] is not None]
    findings: list[Finding] = []
    for item in ran:
        if item.id in ENGINE_RULES:
            continue
        findings.extend(_evaluate(item, snap, levels, by_id))

    def make(rule_id: str, message: str, location: Location | None, subject: str | None) -> Finding | None:
        level = levels.get(rule_id)
        if level is None:
            return None
        return _complete(by_id[rule_id], Finding(message, location, subject), level)

    findings = apply(
        findings,
        suppressions,
        env=snap.env,
        deploy=snap.deploy,
        rules_run={r.id for r in ran},
        known=set(by_id),
        make=make,
    )
    return Report(
        findings=tuple(findings),
        env=snap.view_env,  # the posture judged: production for a deploy check
        deploy=snap.deploy,
        fail_on=fail_on,
        rules=tuple(ran),
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
        version=version(),
        target=snap.target,
        tool=tool,
    )


def _complete(item: Rule, finding: Finding, level: Severity) -> Finding:
    severity = level if finding.severity is None else min(level, finding.severity)
    return Finding(
        message=finding.message,
        location=finding.location,
        subject=finding.subject,
        severity=severity,
        rule_id=item.id,
        category=item.category,
        hint=finding.hint or item.hint,
        docs=item.docs,
    )


def _evaluate(item: Rule, snap: Snapshot, levels: dict[str, Any], by_id: dict[str, Rule]) -> list[Finding]:
    """Run one check; an exception becomes a `contracts.rule_error` finding naming the rule."""
    level = levels[item.id]
    try:
        raw = list(item.check(snap))
    except Exception as exc:
        error_rule = by_id.get("contracts.rule_error")
        error_level = levels.get("contracts.rule_error", Severity.ERROR) or Severity.ERROR
        message = f"rule {item.id!r} raised {type(exc).__name__}: {exc}"
        finding = Finding(message, _where(item), item.id)
        if error_rule is None:
            return [
                Finding(
                    message,
                    finding.location,
                    item.id,
                    Severity.ERROR,
                    "contracts.rule_error",
                    "contracts",
                    item.hint,
                )
            ]
        return [_complete(error_rule, finding, error_level)]
    out = []
    for entry in raw:
        finding = Finding(entry) if isinstance(entry, str) else entry
        out.append(_complete(item, finding, level))
    return out


def _where(item: Rule) -> Location | None:
    fn = inspect.unwrap(item.check)
    code = getattr(fn, "__code__", None)
    return Location(code.co_filename, code.co_firstlineno) if code is not None else None


def server_settings_file(app: Any, pyproject: Path | None) -> Path | None:
    """pounce settings beside the app (pounce.toml, else `[tool.pounce]`), for server-facing rules."""
    path = find_upward(getattr(app.site, "file", None), "pounce.toml")
    if path is None and pyproject is not None and "pounce" in read_toml(pyproject).get("tool", {}):
        path = pyproject
    return path
