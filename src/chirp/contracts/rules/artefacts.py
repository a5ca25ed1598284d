"""`artefacts.*`: the deployment files must be readable, and their container commands valid."""

from __future__ import annotations

from collections.abc import Iterator

from chirp.contracts.model import Finding, Severity, everywhere, rule
from chirp.contracts.rules._deploy import ARTEFACT_TAGS, artefacts, launches
from chirp.contracts.snapshot import Snapshot


@rule(
    "artefacts.invalid",
    title="A deployment file cannot be read",
    severity=everywhere(Severity.ERROR),
    hint="Fix the syntax or the field named in the message (the platform would reject it, or the container would not start).",
    tags=ARTEFACT_TAGS,
)
def invalid(snap: Snapshot) -> Iterator[Finding]:
    """A manifest that does not parse, a field of the wrong type, or a container command that
    `chirp run`/`pounce serve` would refuse: the deploy fails, and the other rules cannot judge it."""
    art = artefacts(snap)
    if art is None:
        return
    for problem in art.problems:
        yield Finding(problem.message, problem.at, problem.subject)
    for command, launch in launches(snap):
        if launch.error is not None:
            yield Finding(
                f"{command.origin} `{' '.join(launch.argv)}` would not start: {launch.error}",
                command.at,
                launch.tool,
            )


RULES = (invalid,)
