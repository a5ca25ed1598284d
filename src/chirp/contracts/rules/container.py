"""`container.*`: what the image and containers run as: the environment, the user, the Python."""

from __future__ import annotations

import re
from collections.abc import Iterator

from chirp.contracts.model import Finding, Severity, levels, rule
from chirp.contracts.rules._deploy import ARTEFACT_TAGS, app_containers, artefacts, project_image
from chirp.contracts.snapshot import Snapshot

E, W = Severity.ERROR, Severity.WARNING
_TRUE = frozenset({"1", "true", "yes", "on"})
# compiled by `re` when there is an image to judge
_PYTHON_IMAGE = r"^(?:(?:docker\.io/)?library/)?python:(\d+)\.(\d+)(?:\.(\d+))?(?:[-.].*)?$"
ROOT_USERS = frozenset({"root", "0"})


@rule(
    "container.env",
    title="The artefact's environment disagrees with the one checked",
    severity=levels(None, W, E),
    hint="Set CHIRP_ENV to the environment you deploy to (or run `chirp run APP --production`) and CHIRP_DEBUG off outside development.",
    tags=ARTEFACT_TAGS,
)
def env(snap: Snapshot) -> Iterator[Finding]:
    """The check judged one environment; a container that runs another skips its production
    protections (Secure cookies, HSTS, the deploy gate) or turns debug pages on."""
    art = artefacts(snap)
    if art is None or snap.config is None:
        return
    wanted = snap.view_env
    reads_env = "env" in snap.config.from_environment
    sources = [(var, img.file) for img in art.images for var in img.env]
    sources += [(var, c.workload) for c in art.containers for var in c.env]
    for var, owner in sources:
        if var.literal is None:
            continue
        if var.name == "CHIRP_ENV" and reads_env and var.literal.strip() != wanted:
            yield Finding(
                f"{owner}: CHIRP_ENV={var.literal} but the check judged {wanted}", var.at, "CHIRP_ENV"
            )
        if var.name == "CHIRP_DEBUG" and wanted != "development" and var.literal.strip().lower() in _TRUE:
            yield Finding(f"{owner}: CHIRP_DEBUG={var.literal} in {wanted}", var.at, "CHIRP_DEBUG")
    if not reads_env or wanted == "development":
        return
    image = project_image(art)
    image_env = {v.name for v in image.env} if image is not None else set()
    for app in app_containers(snap):
        named = {v.name for v in app.container.env} | (image_env if app.image is not None else set())
        production = app.launch is not None and app.launch.stated("production")
        if "CHIRP_ENV" not in named and not production and app.launch is not None:
            yield Finding(
                f"{app.container.workload} sets neither CHIRP_ENV nor --production: the app runs in development",
                app.command.at if app.command is not None else app.container.at,
                "CHIRP_ENV",
            )


@rule(
    "container.root",
    title="The app runs as root",
    severity=levels(None, W, E),
    hint="Add a USER with a non-zero uid to the Dockerfile and runAsNonRoot: true (with runAsUser) to the pod's securityContext.",
    tags=ARTEFACT_TAGS,
)
def root(snap: Snapshot) -> Iterator[Finding]:
    """A compromised app running as root owns the container, and more with any escape."""
    art = artefacts(snap)
    if art is None:
        return
    for image in art.images:
        if image.user is None:
            yield Finding(
                f"{image.file}: the final stage has no USER, so it runs as root", image.base.at, "USER"
            )
        elif image.user.value in ROOT_USERS:
            yield Finding(f"USER {image.user.value}", image.user.at, "USER")
    image_root = any(i.user is None or i.user.value in ROOT_USERS for i in art.images) or not art.images
    for app in app_containers(snap):
        c = app.container
        user = str(c.run_as_user.value) if c.run_as_user is not None else None
        if user in ROOT_USERS:
            assert c.run_as_user is not None
            yield Finding(f"{c.workload}: runs as user {user}", c.run_as_user.at, "runAsUser")
        elif (
            c.platform == "kubernetes"
            and user is None
            and not (c.run_as_non_root is not None and c.run_as_non_root.value is True)
            and image_root
        ):
            yield Finding(
                f"{c.workload}: neither runAsNonRoot nor runAsUser is set, and no image of the project sets a non-root USER",
                c.at,
                "securityContext",
            )


@rule(
    "container.python",
    title="The image's Python is outside requires-python",
    severity=levels(W, E, E),
    hint="Build FROM a python image whose version satisfies requires-python in pyproject.toml (or widen requires-python).",
    tags=ARTEFACT_TAGS,
)
def python(snap: Snapshot) -> Iterator[Finding]:
    """pip refuses to install the project on that Python, or the app meets a Python it never ran on."""
    art = artefacts(snap)
    spec = art.requires_python if art is not None else None
    if art is None or spec is None:
        return
    # Only python: images are judged: without one there is nothing to compare, and packaging
    # (the authority on requires-python) is not loaded.
    pythons = [(image, m) for image in art.images if (m := re.match(_PYTHON_IMAGE, str(image.base.value)))]
    if not pythons:
        return
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        allowed = SpecifierSet(spec.value)
    except InvalidSpecifier:
        yield Finding(
            f"requires-python {spec.value!r} is not a version specifier", spec.at, "requires-python"
        )
        return
    for image, match in pythons:
        major, minor, patch = match.groups()
        candidates = [f"{major}.{minor}.{patch}"] if patch else [f"{major}.{minor}.0", f"{major}.{minor}.99"]
        if not any(allowed.contains(v, prereleases=True) for v in candidates):
            yield Finding(
                f"FROM {image.base.value}: Python {major}.{minor}{'.' + patch if patch else ''} "
                f"does not satisfy requires-python {spec.value!r}",
                image.base.at,
                "FROM",
            )


RULES = (env, root, python)
