"""`--list-rules` and `--explain`: the rule catalogue, from the same objects the runner uses."""

from __future__ import annotations

import json
import textwrap

from chirp.contracts.model import ENVIRONMENTS, Rule, docs_url
from chirp.contracts.output import UsageError
from chirp.contracts.registry import RuleRegistry
from pounce.errors import did_you_mean


def _level(rule: Rule, env: str) -> str:
    level = rule.level(env)
    return level.label if level else "-"


LIST_FORMATS = ("text", "json", "markdown")
EXPLAIN_FORMATS = ("text", "json")


def check_format(fmt: str, allowed: tuple[str, ...], flag: str) -> None:
    """A report-only format asked of the catalogue is a usage error, not silently text."""
    if fmt not in allowed:
        raise UsageError(
            f"--format {fmt} does not apply to {flag}", f"use --format {' or '.join(allowed)} with {flag}"
        )


def list_rules_text(registry: RuleRegistry, fmt: str = "text") -> str:
    """Every rule with its severity per environment and origin (`chirp` or the rule pack's
    distribution), as text, JSON or a Markdown table."""
    check_format(fmt, LIST_FORMATS, "--list-rules")
    rules = sorted(registry, key=lambda r: r.id)
    if fmt == "json":
        from chirp.contracts.render.json import rule_dict

        return json.dumps([{**rule_dict(r), "origin": registry.origin(r.id)} for r in rules], indent=2) + "\n"
    if fmt == "markdown":
        head = (
            "| rule | "
            + " | ".join(ENVIRONMENTS)
            + " | origin | title |\n|---|"
            + "---|" * len(ENVIRONMENTS)
            + "---|---|"
        )
        rows = [
            f"| `{r.id}` | "
            + " | ".join(_level(r, e) for e in ENVIRONMENTS)
            + f" | {registry.origin(r.id)} | {r.title} |"
            for r in rules
        ]
        return "\n".join([head, *rows]) + "\n"
    width = max(len(r.id) for r in rules)
    origin_width = max(len(registry.origin(r.id)) for r in rules)
    head = f"{'rule':<{width}}  " + "  ".join(f"{e:<11}" for e in ENVIRONMENTS)
    lines = [f"{head}  {'origin':<{origin_width}}  title"]
    for item in rules:
        cells = "  ".join(f"{_level(item, e):<11}" for e in ENVIRONMENTS)
        lines.append(f"{item.id:<{width}}  {cells}  {registry.origin(item.id):<{origin_width}}  {item.title}")
    return "\n".join(lines) + "\n"


def explain_rule(registry: RuleRegistry, name: str, fmt: str = "text") -> str:
    """One rule's page (what, why, severities, fix, docs, how to suppress), or every rule of a
    category, as text or JSON."""
    check_format(fmt, EXPLAIN_FORMATS, "--explain")
    item = registry.get(name)
    rules = (
        [item]
        if item is not None
        else [r for r in sorted(registry, key=lambda r: r.id) if r.category == name]
    )
    if not rules:
        hint = did_you_mean(name, [*(r.id for r in registry), *registry.categories()])
        raise UsageError(f"no rule or category {name!r}", hint or "see `chirp check --list-rules`")
    if fmt == "json":
        from chirp.contracts.render.json import rule_dict

        pages = [
            {**rule_dict(r), "description": r.description or r.title, "origin": registry.origin(r.id)}
            for r in rules
        ]
        return json.dumps(pages[0] if item is not None else pages, indent=2) + "\n"
    return "\n".join(_page(r, registry.origin(r.id)) for r in rules)


def _page(item: Rule, origin: str) -> str:
    rows = "\n".join(f"  {env:<12} {_level(item, env)}" for env in ENVIRONMENTS)
    return (
        f"{item.id}: {item.title}\n\n"
        f"{textwrap.fill(item.description or item.title, 96)}\n\n"
        f"severity:\n{rows}\n\n"
        f"fix:  {item.hint}\n"
        f"docs: {docs_url(item.docs) or item.docs}\n"
        f"from: {origin}\n\n"
        f"suppress (with a reason):\n"
        f'  app.suppress("{item.id}", reason="...", until=datetime.date(2030, 1, 1))\n'
        f'  # or in pyproject.toml: [tool.chirp.check] suppress = [{{ rule = "{item.id}", reason = "..." }}]\n'
    )
