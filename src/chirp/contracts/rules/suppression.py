"""`suppression.*`: suppressions are debts with a reason and a date; these rules keep them honest.

The runner produces these findings itself while applying suppressions; the rules exist so
they have severities, documentation and SARIF descriptors like any other rule.
"""

from __future__ import annotations

from collections.abc import Iterator

from chirp.contracts.model import Finding, Severity, everywhere, rule
from chirp.contracts.snapshot import Snapshot

W = Severity.WARNING


def _produced_by_runner(snap: Snapshot) -> Iterator[Finding]:
    return iter(())


expired = rule(
    "suppression.expired",
    title="Suppression past its date",
    severity=everywhere(W),
    hint="Fix the finding it hid, or renew the suppression with a new `until` and an updated reason.",
    description="An expired suppression stops suppressing: the finding it hid is reported again, and so is this.",
    tags=("app", "server"),
)(_produced_by_runner)

unused = rule(
    "suppression.unused",
    title="Suppression that matches nothing",
    severity=everywhere(W),
    hint="Delete the suppression: the rule no longer fires (or the rule id is misspelt).",
    description="A stale suppression would silently hide the rule the day it fires again for a new reason.",
    tags=("app", "server"),
)(_produced_by_runner)

RULES = (expired, unused)
