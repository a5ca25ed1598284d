"""A Dockerfile → the final image: base, environment, user, command and stop signal, located.

dockerfile-parse does the reading (continuation lines, comments, the escape directive, ARG
substitution in FROM). A stage built `FROM` an earlier stage inherits that stage's ENV, USER,
CMD and ENTRYPOINT, as Docker builds it.
"""

from __future__ import annotations

import io
import json

from chirp.contracts.artefacts.model import Command, EnvVar, Image, Instruction, Problem, Value
from chirp.contracts.model import Location

INHERITED = ("ENV", "USER", "CMD", "ENTRYPOINT", "STOPSIGNAL")


def read(path: str, text: str) -> tuple[Image | None, list[Problem]]:
    """The final image a Dockerfile builds, or problems saying why it cannot be read."""
    from dockerfile_parse import DockerfileParser
    from dockerfile_parse.util import extract_key_values

    parser = DockerfileParser(fileobj=io.BytesIO(text.encode("utf-8")), env_replace=False)
    try:
        structure = parser.structure
        bases = parser.parent_images
    except Exception as exc:  # the parser's own errors are plain exceptions
        return None, [Problem(f"cannot parse the Dockerfile: {exc}", Location(path, 1), "Dockerfile")]
    stages: list[tuple[str | None, Value, list[Instruction]]] = []
    all_env: list[EnvVar] = []
    for entry in structure:
        name = entry["instruction"].upper()
        at = Location(path, entry["startline"] + 1)
        value = entry["value"]
        if name == "FROM":
            words = value.split()
            alias = words[-1] if len(words) >= 3 and words[-2].upper() == "AS" else None
            base = bases[len(stages)] if len(stages) < len(bases) else words[0]
            stages.append((alias, Value(base, at), []))
            continue
        if name in ("ENV", "ARG"):
            try:
                pairs = extract_key_values(env_replace=False, args={}, envs={}, instruction_value=value)
            except ValueError as exc:
                return None, [Problem(f"cannot parse {name} {value!r}: {exc}", at, name)]
            source = "literal" if name == "ENV" else "build-arg"
            all_env.extend(EnvVar(k, v if v or name == "ENV" else None, source, at) for k, v in pairs)
        if stages:
            stages[-1][2].append(Instruction(name, value, at))
    if not stages:
        return None, [Problem("the Dockerfile has no FROM instruction", Location(path, 1), "FROM")]
    image = Image(path, _root_base(stages, len(stages) - 1), _inherited(stages, len(stages) - 1), all_env)
    _finish(image, extract_key_values)
    return image, []


def _earlier(stages: list[tuple[str | None, Value, list[Instruction]]], index: int) -> int | None:
    """The earlier stage that stage `index` is built FROM, if any."""
    base = stages[index][1].value
    return next((i for i in range(index) if stages[i][0] == base or str(i) == base), None)


def _root_base(stages: list[tuple[str | None, Value, list[Instruction]]], index: int) -> Value:
    """The image the stage ultimately starts from (through earlier stages), with its FROM line."""
    earlier = _earlier(stages, index)
    return stages[index][1] if earlier is None else _root_base(stages, earlier)


def _inherited(stages: list[tuple[str | None, Value, list[Instruction]]], index: int) -> list[Instruction]:
    """The stage's instructions after those of the stages it is built FROM."""
    own = stages[index][2]
    earlier = _earlier(stages, index)
    if earlier is None:
        return list(own)
    return [i for i in _inherited(stages, earlier) if i.name in INHERITED] + own


def _finish(image: Image, extract: object) -> None:
    entrypoint: Instruction | None = None
    cmd: Instruction | None = None
    for item in image.instructions:
        if item.name == "ENV":
            pairs = extract(env_replace=False, args={}, envs={}, instruction_value=item.value)  # type: ignore[operator]
            image.env.extend(EnvVar(k, v, "literal", item.at) for k, v in pairs)
        elif item.name == "USER":
            image.user = Value(item.value.split(":", 1)[0].strip(), item.at)
        elif item.name == "STOPSIGNAL":
            image.stop_signal = Value(item.value.strip(), item.at)
        elif item.name == "ENTRYPOINT":
            entrypoint, cmd = item, None  # a new ENTRYPOINT resets an inherited CMD
        elif item.name == "CMD":
            cmd = item
    image.command = _command(entrypoint, cmd)


def exec_form(value: str) -> list[str] | None:
    """The argv of a JSON-array instruction, or None for the shell form (as Docker decides)."""
    text = value.strip()
    if not text.startswith("["):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed) else None


def _command(entrypoint: Instruction | None, cmd: Instruction | None) -> Command | None:
    if entrypoint is None and cmd is None:
        return None
    if entrypoint is not None:
        argv = exec_form(entrypoint.value)
        if argv is None:  # a shell-form ENTRYPOINT ignores CMD
            return Command((entrypoint.value,), False, entrypoint.at, "Dockerfile ENTRYPOINT")
        if cmd is None:
            return Command(tuple(argv), True, entrypoint.at, "Dockerfile ENTRYPOINT")
        rest = exec_form(cmd.value) or ["/bin/sh", "-c", cmd.value]
        return Command(tuple(argv + rest), True, cmd.at, "Dockerfile ENTRYPOINT and CMD")
    assert cmd is not None
    argv = exec_form(cmd.value)
    if argv is None:
        return Command((cmd.value,), False, cmd.at, "Dockerfile CMD")
    return Command(tuple(argv), True, cmd.at, "Dockerfile CMD")
