"""`contracts.*`: problems with the checking itself, reported instead of crashing the check."""

from __future__ import annotations

from collections.abc import Iterator

from chirp.contracts.model import Finding, Severity, everywhere, rule
from chirp.contracts.snapshot import Snapshot


def _produced_by_runner(snap: Snapshot) -> Iterator[Finding]:
    return iter(())


rule_error = rule(
    "contracts.rule_error",
    title="A rule raised an exception",
    severity=everywhere(Severity.ERROR),
    hint="Fix the rule's check function (the message names the rule and the exception).",
    description="A rule that crashes checks nothing, so the run fails rather than pass silently.",
    tags=("app", "server"),
)(_produced_by_runner)

RULES = (rule_error,)
