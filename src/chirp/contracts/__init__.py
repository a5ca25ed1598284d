"""The deploy contract engine: rules about an app's configuration, checked before it serves.

Kept out of `import chirp`: the app imports it only when a check runs.
"""

from __future__ import annotations

from chirp.contracts.model import Finding, Location, Report, Rule, Severity, everywhere, levels, rule
from chirp.contracts.registry import RuleRegistry, builtin_registry
from chirp.contracts.snapshot import Snapshot
from chirp.contracts.suppress import Suppression

__all__ = [
    "Finding",
    "Location",
    "Report",
    "Rule",
    "RuleRegistry",
    "Severity",
    "Snapshot",
    "Suppression",
    "builtin_registry",
    "everywhere",
    "levels",
    "rule",
]
