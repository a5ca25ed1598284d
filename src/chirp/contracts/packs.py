"""Rule packs: rules other distributions ship through the `chirp.rules` entry-point group.

A platform team publishes its policy as a pip-installable package; every service that installs
it runs its rules with the built-in ones. An entry point names a `Rule`, an iterable of rules,
or a function returning either:

    [project.entry-points."chirp.rules"]
    acme = "acme_chirp_rules:RULES"

`importlib.metadata` is costly to import, so installed distributions are first scanned for an
entry-point file that mentions the group at all; a project without packs pays a directory
listing per `sys.path` entry.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from chirp.contracts.model import Rule
from pounce.errors import ConfigurationError

GROUP = "chirp.rules"
_MARKER = f"[{GROUP}]"


def _declared() -> bool:
    """Whether any installed distribution declares entry points in the group."""
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        # Metadata directories, and an egg's own (`EGG-INFO` in a `.egg` on the path), as
        # `importlib.metadata` finds them.
        found = [n for n in names if n.endswith((".dist-info", ".egg-info"))]
        if entry.endswith(".egg") and "EGG-INFO" in names:
            found.append("EGG-INFO")
        for name in found:
            try:
                with open(os.path.join(entry or ".", name, "entry_points.txt"), encoding="utf-8") as fh:
                    if _MARKER in fh.read():
                        return True
            except OSError:
                continue
    return False


def _rules_of(value: Any, where: str) -> Iterator[Rule]:
    if callable(value) and not isinstance(value, Rule):
        value = value()
    items: Iterable[Any] = (value,) if isinstance(value, Rule) else value
    try:
        for item in items:
            if not isinstance(item, Rule):
                raise TypeError
            yield item
    except TypeError:
        raise ConfigurationError(
            f"entry point {where}", type(value).__name__,
            "point it at a chirp.contracts.Rule, a list of rules, or a function returning them",
        ) from None  # fmt: skip


@functools.cache
def installed() -> tuple[tuple[Rule, str], ...]:
    """(rule, origin) for every rule of every installed pack; origin is `distribution version`.

    A pack that cannot be imported or names something that is not a rule raises
    `ConfigurationError` naming the entry point: a policy must not vanish silently.
    """
    if not _declared():
        return ()
    from importlib.metadata import entry_points

    out: list[tuple[Rule, str]] = []
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        origin = f"{dist.name} {dist.version}" if dist is not None else ep.value
        where = f"{GROUP}:{ep.name} = {ep.value} ({origin})"
        try:
            value = ep.load()
        except Exception as exc:
            raise ConfigurationError(
                f"entry point {where}", f"{type(exc).__name__}: {exc}",
                "fix the pack or uninstall it (pip uninstall " + (dist.name if dist else ep.name) + ")",
            ) from exc  # fmt: skip
        out.extend((rule, origin) for rule in _rules_of(value, where))
    return tuple(out)
