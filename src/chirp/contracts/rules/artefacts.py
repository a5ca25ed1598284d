"""`artefacts.*`: the deployment files must be readable, and their container commands valid."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from chirp.contracts.model import Finding, Severity, everywhere, levels, rule
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


@rule(
    "artefacts.settings_unread",
    title="The container's server does not read the settings file the check judged",
    severity=levels(Severity.WARNING, Severity.ERROR, Severity.ERROR),
    hint=(
        "Start the server with `pounce serve --config <that file>`, or move its settings into the "
        "AppConfig (CHIRP_* variables, `chirp run` flags) and delete the file: the check then "
        "judges what the container serves with."
    ),
    tags=ARTEFACT_TAGS,
)
def settings_unread(snap: Snapshot) -> Iterator[Finding]:
    """`chirp check` judges the worker, bind, TLS and proxy settings of a `pounce.toml` (or
    `[tool.pounce]`) found beside the app, as `pounce serve --config` would serve them. A
    container that starts `chirp run`, or `pounce serve` without that file, serves with other
    settings: the check's verdict is not the launch's, and the container may refuse to start
    (or serve a posture nobody judged) although the check passed."""
    if snap.server_site is None:
        return
    judged = Path(snap.server_site.file).name
    for command, launch in launches(snap):
        if launch.error is not None:
            continue  # artefacts.invalid says why it would not start at all
        stated = launch.stated("config_file") if launch.tool == "pounce serve" else None
        if stated is not None and (PurePosixPath(stated).name == judged or "$" in stated):
            continue  # (a file only the running shell names is given the benefit of the doubt)
        if launch.tool == "chirp run":
            reads = "reads no settings file"
        elif stated is None:
            reads = "reads a settings file only with --config"
        else:
            reads = f"reads {stated}"
        yield Finding(
            f"{command.origin} `{' '.join(launch.argv)}` {reads}, but the check judged the server "
            f"settings in {judged}: the container serves with others",
            command.at,
            launch.tool,
        )


RULES = (invalid, settings_unread)
