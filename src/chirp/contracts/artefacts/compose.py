"""Compose files → one `Container` per service, each value located.

Compose splits a string `command`/`entrypoint` into words itself (no shell is involved), so
both forms are an argv here. `${VAR}` in an environment value is filled in from the shell
that runs Compose: such a value is not a literal in the file (unless it carries a default).
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from chirp.contracts.artefacts import units
from chirp.contracts.artefacts.kubernetes import Reader
from chirp.contracts.artefacts.model import Artefacts, Command, Container, EnvVar, Value
from chirp.contracts.artefacts.yamldoc import Map, line
from chirp.contracts.model import Location

STOP_GRACE_DEFAULT = 10.0  # seconds `docker compose stop/down` waits before SIGKILL
# compiled by `re` when a Compose file is read (this module loads with any YAML file)
_INTERPOLATION = r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)"


def is_compose(docs: list[Any]) -> bool:
    """A Compose file: one document with a `services` mapping and no Kubernetes `kind`."""
    return (
        len(docs) == 1
        and isinstance(docs[0], dict)
        and isinstance(docs[0].get("services"), dict)
        and "kind" not in docs[0]
    )


def read(path: str, docs: list[Any], out: Artefacts) -> None:
    reader = Reader(path, out)
    services = reader.mapping(docs[0], "services", "services") or Map()
    for name, spec in services.items():
        if not isinstance(spec, dict):
            reader.problem(services, name, f"services.{name}", spec, "each service is a mapping")
            continue
        container = Container(
            platform="compose",
            name=str(name),
            workload=f"Compose service {name}",
            at=reader.at(services, name),
            image=spec.get("image") if isinstance(spec.get("image"), str) else None,
            grace_default=STOP_GRACE_DEFAULT,
            pod_at=reader.at(spec),
        )
        _command(reader, spec, container)
        _environment(reader, spec, container)
        _limits(reader, spec, container)
        if "stop_grace_period" in spec:
            seconds = units.duration(spec["stop_grace_period"])
            if seconds is None:
                reader.problem(spec, "stop_grace_period", f"services.{name}.stop_grace_period",
                               spec["stop_grace_period"], "use a duration such as 45s or 1m30s")  # fmt: skip
            else:
                container.grace_period = Value(seconds, reader.at(spec, "stop_grace_period"))
        if isinstance(spec.get("stop_signal"), str):
            container.stop_signal = Value(spec["stop_signal"], reader.at(spec, "stop_signal"))
        if spec.get("user") is not None:
            user = str(spec["user"]).split(":", 1)[0]
            container.run_as_user = Value(user, reader.at(spec, "user"))
        out.containers.append(container)


def _words(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError:
            return None
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return None


def _command(reader: Reader, spec: dict[Any, Any], container: Container) -> None:
    entrypoint = _words(spec.get("entrypoint"))
    command = _words(spec.get("command"))
    if entrypoint is None and command is None:
        return
    key = "entrypoint" if entrypoint is not None else "command"
    origin = "Compose entrypoint/command" if entrypoint is not None else "Compose command"
    argv = (entrypoint or ()) + (command or ())
    container.command = Command(argv, True, reader.at(spec, key), origin)


def written_value(value: str) -> str | None:
    """The value with the shell's variables unset: defaults filled in, None if one has none."""
    missing = False

    def fill(match: re.Match[str]) -> str:
        nonlocal missing
        if match[2] in (":-", "-") and match[3]:
            return match[3]
        missing = True
        return ""

    filled = re.sub(_INTERPOLATION, fill, value.replace("$$", "\x00")).replace("\x00", "$")
    return None if missing else filled


def _environment(reader: Reader, spec: dict[Any, Any], container: Container) -> None:
    env = spec.get("environment")
    pairs: list[tuple[str, Any, int]] = []
    if isinstance(env, dict):
        pairs = [(str(k), v, line(env, k)) for k, v in env.items()]
    elif isinstance(env, list):
        for index, item in enumerate(env):
            name, sep, value = str(item).partition("=")
            pairs.append((name, value if sep else None, line(env, index)))
    for name, value, number in pairs:
        where = Location(reader.path, number)
        if value is None:
            container.env.append(EnvVar(name, None, "outside", where, "the environment of `docker compose`"))
            continue
        written = written_value(str(value).lower() if isinstance(value, bool) else str(value))
        if written is None:
            container.env.append(EnvVar(name, None, "outside", where, "interpolated from the shell"))
        else:
            container.env.append(EnvVar(name, written, "literal", where))


def _limits(reader: Reader, spec: dict[Any, Any], container: Container) -> None:
    limits = reader.walk(spec, ("deploy", "resources", "limits"), "deploy") or Map()
    for node, key in ((limits, "cpus"), (spec, "cpus")):
        if key in node:
            cores = units.quantity(str(node[key]))
            if cores is None or cores <= 0:
                reader.problem(node, key, key, node[key], "use a number of CPUs, e.g. '1.5'")
            else:
                container.cpu_limit = Value(cores, reader.at(node, key))
            break
    for node, key in ((limits, "memory"), (spec, "mem_limit")):
        if key in node:
            size = units.size(node[key])
            if size is None or size <= 0:
                reader.problem(node, key, key, node[key], "use a size such as 512m or 1g")
            else:
                container.memory_limit = Value(size, reader.at(node, key))
            break
