"""Which server a container command starts, with which flags, and whether it receives SIGTERM.

The flags are parsed by the real `chirp run` and `pounce serve` commands (click), so a
container command means here exactly what it means when the container starts; one the
command would refuse is reported as such.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chirp.contracts.artefacts.model import Command

SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh"})
# init processes that forward signals to their child (and reap zombies)
INITS = frozenset({"tini", "tini-static", "dumb-init", "catatonit"})
_K8S_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


@dataclass(frozen=True)
class Launch:
    """A `chirp run` or `pounce serve` found in a container command.

    `shell` is None when the server is the container's main process (or an init that forwards
    signals runs it), `"exec"` when a shell runs it with `exec`, and `"shell"` when a shell
    stays in front of it (and may not pass SIGTERM on). `error` says why the command would
    refuse to start; `params` are the parsed flags (None: not stated).
    """

    tool: str  # "chirp run" or "pounce serve"
    argv: tuple[str, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    shell: str | None = None
    error: str | None = None

    def stated(self, name: str) -> Any:
        return self.params.get(name)


def find(command: Command, env: Mapping[str, str] | None = None) -> Launch | None:
    """The launch in `command`, if it starts chirp or pounce."""
    argv = list(command.argv)
    shell: str | None = None
    if not command.exec_form:  # Docker runs shell-form instructions with /bin/sh -c
        argv = ["/bin/sh", "-c", argv[0] if argv else ""]
    argv = _without_init(argv)
    if len(argv) >= 3 and _base(argv[0]) in SHELLS and argv[1] == "-c":
        words, shell = _script_launch(argv[2])
        if words is None:
            return None
        argv = words
    argv = [_K8S_VAR.sub(lambda m: (env or {}).get(m[1], m[0]), a) for a in argv]
    return _parse(argv, shell)


def _base(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def _without_init(argv: list[str]) -> list[str]:
    if argv and _base(argv[0]) in INITS:
        rest = argv[1:]
        if "--" in rest:
            return rest[rest.index("--") + 1 :]
        return [a for a in rest if not a.startswith("-")] if rest and rest[0].startswith("-") else rest
    return argv


def _script_launch(script: str) -> tuple[list[str] | None, str | None]:
    """The words of the shell command that starts the server, and whether the shell execs it."""
    try:
        lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError:
        return None, None
    commands: list[list[str]] = [[]]
    for token in tokens:
        if token and set(token) <= set(";&|()"):
            commands.append([])
        else:
            commands[-1].append(token)
    for words in commands:
        execs = bool(words) and words[0] == "exec"
        body = _without_init(words[1:] if execs else words)
        if _server_index(body) is not None:
            return body, "exec" if execs else "shell"
    return None, None


def _server_index(argv: list[str]) -> int | None:
    """Where `chirp`/`pounce` names the program: first, or after `python [-flags] -m` / `python`."""
    if not argv:
        return None
    if _base(argv[0]) in ("chirp", "pounce"):
        return 0
    if not _base(argv[0]).startswith("python"):
        return None
    index = 1
    while index < len(argv) and argv[index].startswith("-") and argv[index] != "-m":
        index += 1  # interpreter flags such as -u or -X dev
    if index + 1 < len(argv) and argv[index] == "-m" and argv[index + 1] in ("chirp", "pounce"):
        return index + 1
    if index < len(argv) and _base(argv[index]) in ("chirp", "pounce"):
        return index
    return None


def _parse(argv: list[str], shell: str | None) -> Launch | None:
    import click

    index = _server_index(argv)
    if index is None:
        return None
    program, rest = _base(argv[index]), argv[index + 1 :]
    if program == "chirp":
        if not rest or rest[0] != "run":
            return None
        from chirp.cli import main as chirp_main

        command = chirp_main.get_command(click.Context(chirp_main), "run")
        tool, args = "chirp run", rest[1:]
    else:
        from pounce.cli import main as pounce_main

        if rest and rest[0] == "serve":
            args = rest[1:]
        elif rest and not rest[0].startswith("-") and rest[0] not in pounce_main.commands:
            args = ["--app", *rest]
        else:
            return None
        command = pounce_main.commands["serve"]
        tool = "pounce serve"
    assert command is not None
    unresolved = any("$" in a for a in args)  # a variable only the running shell can fill in
    try:
        ctx = command.make_context(tool, list(args), resilient_parsing=unresolved)
    except click.exceptions.Exit:
        return Launch(tool, tuple(argv), {}, shell, f"`{tool} {' '.join(args)}` prints help and exits")
    except click.ClickException as exc:
        return Launch(tool, tuple(argv), {}, shell, exc.format_message())
    return Launch(tool, tuple(argv), dict(ctx.params), shell)
