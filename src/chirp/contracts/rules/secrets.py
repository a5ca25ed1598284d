"""`secrets.*`: the secret key (and credentials) never written into a deployment file.

A manifest, Compose file or Dockerfile is committed, copied into images and CI logs; a
`secretKeyRef`, an external secret, Compose's `${VAR}` from the deploying shell, or a secret
mounted at run time keep the value out of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from chirp.contracts.model import Finding, Location, Severity, everywhere, rule
from chirp.contracts.rules._deploy import ARTEFACT_TAGS, artefacts
from chirp.contracts.snapshot import Snapshot

SECRET_VARS = frozenset({"CHIRP_SECRET_KEY", "CHIRP_SECRET_KEY_FALLBACKS"})
URL_VARS = frozenset({"CHIRP_DATABASE_URL", "CHIRP_REDIS_URL"})
_PASSWORD = r"://[^/@:\s]*:[^/@\s]+@"  # compiled by `re` when a URL variable has a value


def _holds_secret(name: str, value: str | None) -> bool:
    if name in SECRET_VARS:
        return True
    return name in URL_VARS and value is not None and bool(re.search(_PASSWORD, value))


@rule(
    "secrets.literal",
    title="A secret written into a deployment file",
    severity=everywhere(Severity.ERROR),
    hint="Take it from a Secret (env.valueFrom.secretKeyRef, an external secret) or the deploying environment, and rotate the exposed value.",
    tags=ARTEFACT_TAGS,
)
def literal(snap: Snapshot) -> Iterator[Finding]:
    """Anyone who can read the repository, the image or its history can sign sessions and CSRF
    tokens as the app."""
    art = artefacts(snap)
    if art is None:
        return
    found: dict[Location, Finding] = {}

    def add(message: str, at: Location, subject: str) -> None:
        found.setdefault(at, Finding(message, at, subject))

    for image in art.images:
        for var in image.all_env:
            if _holds_secret(var.name, var.literal) and (var.source == "literal" or var.name in SECRET_VARS):
                kind = "ENV" if var.source == "literal" else "ARG (kept in the image's history)"
                add(f"Dockerfile {kind} sets {var.name}", var.at, var.name)
    for container in art.containers:
        for var in container.env:
            if not _holds_secret(var.name, var.literal):
                continue
            if var.source == "literal":
                add(f"{container.workload}: {var.name} is written in the file", var.at, var.name)
            elif var.source == "configmap":
                add(f"{container.workload}: {var.name} comes from ConfigMap {var.ref} (not a Secret)", var.at,
                    var.name)  # fmt: skip
            elif var.source == "secret" and var.ref:
                name, _, key = var.ref.partition("/")
                obj = art.object("Secret", name, container.namespace)
                if obj is not None and key in obj.keys:
                    add(f"{container.workload}: {var.name} comes from Secret {name!r}, whose value is committed "
                        "in this manifest", obj.keys[key], var.name)  # fmt: skip
        for kind, name, _ in container.env_from:
            obj = art.object("Secret" if kind == "secret" else "ConfigMap", name, container.namespace)
            for key in SECRET_VARS & set(obj.keys if obj is not None else ()):
                assert obj is not None
                add(f"{container.workload}: {key} comes from {obj.kind} {name!r}, whose value is committed "
                    "in this manifest", obj.keys[key], key)  # fmt: skip
    for obj in art.objects:
        for key in SECRET_VARS & set(obj.keys):
            add(f"{obj.kind} {obj.name!r} holds {key} in the manifest", obj.keys[key], key)
    yield from found.values()


RULES = (literal,)
