"""`RuleRegistry`: the explicit list of rules a check runs, and the built-in one.

The built-in registry is assembled on first use and cached, so importing chirp (or running
`chirp check --list-rules`) pays only for the rule modules, which import nothing heavy.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping

from chirp.contracts.model import CheckFn, Level, Rule, rule
from pounce.errors import ConfigurationError


class RuleRegistry:
    """Rules by id, in registration order; ids are unique."""

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self._rules: dict[str, Rule] = {}
        self._origins: dict[str, str] = {}
        for item in rules:
            self.add(item)

    def add(self, item: Rule, origin: str = "chirp") -> Rule:
        """Register `item`; `origin` says who ships it (`chirp`, or a pack's `distribution version`)."""
        if not isinstance(item, Rule):
            raise ConfigurationError("rule", item, "pass a chirp.contracts.Rule (or use the @rule decorator)")
        if item.id in self._rules:
            raise ConfigurationError(
                "Rule.id", item.id, "a rule with this id is already registered; pick another id"
            )
        self._rules[item.id] = item
        self._origins[item.id] = origin
        return item

    def origin(self, rule_id: str) -> str:
        return self._origins.get(rule_id, "chirp")

    def register(
        self, id: str, *, title: str, severity: Mapping[str, Level], hint: str, tags: Iterable[str] = ("app",)
    ) -> Callable[[CheckFn], Rule]:
        """Decorator: define a rule from a check function and add it here."""

        def make(fn: CheckFn) -> Rule:
            return self.add(rule(id, title=title, severity=severity, hint=hint, tags=tags)(fn))

        return make

    def get(self, rule_id: str) -> Rule | None:
        return self._rules.get(rule_id)

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._rules

    def __iter__(self) -> Iterator[Rule]:
        return iter(self._rules.values())

    def __len__(self) -> int:
        return len(self._rules)

    def with_tag(self, tag: str) -> list[Rule]:
        return [r for r in self._rules.values() if tag in r.tags]

    def categories(self) -> list[str]:
        return sorted({r.category for r in self._rules.values()})

    def copy(self) -> RuleRegistry:
        out = RuleRegistry()
        for item in self._rules.values():
            out.add(item, self.origin(item.id))
        return out


@functools.cache
def builtin_registry() -> RuleRegistry:
    """Every rule chirp and pounce ship, built once per process."""
    from chirp.contracts.rules import builtin_rules

    return RuleRegistry(builtin_rules())


@functools.cache
def installed_registry() -> RuleRegistry:
    """The built-in rules and those of every installed rule pack (`chirp.rules` entry points)."""
    from chirp.contracts.packs import installed

    packs = installed()
    if not packs:
        return builtin_registry()
    registry = builtin_registry().copy()
    for item, origin in packs:
        if item.id in registry:
            raise ConfigurationError(
                f"rule pack {origin}", item.id,
                f"the id is taken by {registry.origin(item.id)}; the pack must use ids of its own",
            )  # fmt: skip
        registry.add(item, origin)
    return registry
