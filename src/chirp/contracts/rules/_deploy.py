"""Facts the artefact rules share: which containers run the app, and what their launch states.

Everything about the server comes from the snapshot (the settings `chirp check` resolved for
the app) unless the container's own command states it: a `chirp run APP --workers 4` in a
manifest is what will run in that container, whatever the app's config says.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

from chirp.contracts.model import Location
from chirp.contracts.snapshot import Snapshot

if TYPE_CHECKING:  # annotations only: a check without artefacts never loads the package
    from chirp.contracts.artefacts.launch import Launch
    from chirp.contracts.artefacts.model import Artefacts, Command, Container, Image

ARTEFACT_TAGS = ("artefact",)
# Images that are infrastructure, not the app (a container running one is never judged as the app).
INFRA_IMAGES = frozenset(
    {"postgres", "redis", "valkey", "mysql", "mariadb", "mongo", "memcached", "rabbitmq", "nginx",
     "traefik", "envoy", "haproxy", "caddy", "busybox", "alpine", "elasticsearch", "opensearch",
     "minio", "vault", "consul", "otel/opentelemetry-collector", "prom/prometheus", "grafana/grafana",
     "cloud-sql-proxy", "pgbouncer", "jaeger", "mailhog", "localstack"}
)  # fmt: skip


class AppContainer(NamedTuple):
    """A container that runs the app, with the command it runs and the launch found in it."""

    container: Container
    command: Command | None
    launch: Launch | None
    image: Image | None  # the project's image, when the container runs it


def judged(snap: Snapshot) -> Iterator[AppContainer]:
    """App containers whose launch (if any) parses: what they state can be compared."""
    return (a for a in app_containers(snap) if a.launch is None or a.launch.error is None)


def artefacts(snap: Snapshot) -> Artefacts | None:
    art = snap.artefacts
    return art if art is not None and art.files else None


def project_image(art: Artefacts) -> Image | None:
    """The project's image when there is exactly one Dockerfile (what its containers run)."""
    return art.images[0] if len(art.images) == 1 else None


def _image_name(image: str | None) -> str:
    if not image:
        return ""
    name = image.split("@", 1)[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    for prefix in ("docker.io/library/", "docker.io/", "library/"):
        name = name.removeprefix(prefix)
    return name


def is_infra(image: str | None) -> bool:
    name = _image_name(image)
    return name in INFRA_IMAGES or name.rsplit("/", 1)[-1] in INFRA_IMAGES


def launch_of(art: Artefacts, command: Command | None, env: dict[str, str]) -> Launch | None:
    """The launch in `command` with `env`, parsed once per check (click parses the flags)."""
    if command is None:
        return None
    key = (command, tuple(sorted(env.items())))
    if key not in art.launches:
        from chirp.contracts.artefacts.launch import find

        art.launches[key] = find(command, env)
    launch: Launch | None = art.launches[key]
    return launch


def app_containers(snap: Snapshot) -> Iterator[AppContainer]:
    """Containers that run the app: their command launches chirp/pounce, or they have no command
    of their own and run an image that is not well-known infrastructure (for Compose: one built
    from the project)."""
    art = artefacts(snap)
    if art is None:
        return
    image = project_image(art)
    for container in art.containers:
        env = {e.name: e.literal for e in container.env if e.literal is not None}
        own = launch_of(art, container.command, env)
        if own is not None:
            yield AppContainer(container, container.command, own, None)
            continue
        if container.command is not None or is_infra(container.image):
            continue
        if container.platform == "compose" and container.image is not None:
            continue  # a Compose service running someone else's image, not the project's build
        command = image.command if image is not None else None
        yield AppContainer(container, command, launch_of(art, command, env), image)


def image_launches(snap: Snapshot) -> Iterator[tuple[Image, Launch]]:
    """Each Dockerfile whose command launches the server."""
    art = artefacts(snap)
    if art is None:
        return
    for image in art.images:
        launch = launch_of(art, image.command, {})
        if launch is not None:
            yield image, launch


def bind_port(snap: Snapshot, launch: Launch | None) -> int | None:
    """The port the server binds in the container: the launch's `--port`, else the resolved setting."""
    if launch is not None and launch.stated("uds"):
        return None
    stated = launch.stated("port") if launch is not None else None
    if stated is not None:
        return int(stated)
    if snap.server is not None:
        return snap.server.port
    return snap.config.port if snap.config is not None else None


def configured_workers(snap: Snapshot, launch: Launch | None) -> tuple[int, bool]:
    """(workers as configured, stated by the container command); 0 means one per CPU."""
    stated = launch.stated("workers") if launch is not None else None
    if stated is not None:
        return int(stated), True
    if snap.server is not None:
        return snap.server.workers, False
    return (snap.config.workers if snap.config is not None else 1), False


def cpus_seen(limit: float) -> int:
    """The CPUs a worker count of 0 resolves to under a CPU limit (what pounce counts)."""
    from pounce.workers import quota_cpus

    return quota_cpus(limit)


def shutdown_timeout(snap: Snapshot) -> float | None:
    return snap.server.shutdown_timeout if snap.server is not None else None


def startup_timeout(snap: Snapshot) -> float | None:
    return snap.server.startup_timeout if snap.server is not None else None


def where(app: AppContainer) -> Location:
    """Where a finding about the container's launch points: its command, else the container."""
    return app.command.at if app.command is not None else app.container.at


def launches(snap: Snapshot) -> list[tuple[Command, Launch]]:
    """Every (command, launch) the artefacts run, once per command: containers' and images'."""
    found: dict[Location, tuple[Command, Launch]] = {}
    pairs = [(a.command, a.launch) for a in app_containers(snap)]
    pairs += [(image.command, launch) for image, launch in image_launches(snap)]
    for command, launch in pairs:
        if command is not None and launch is not None:
            found.setdefault(command.at, (command, launch))
    return list(found.values())
