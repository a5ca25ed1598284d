"""What the artefact rules read: containers, pods, images and services, each value located.

Kubernetes workloads and Compose services both become `Container`s (with the pod or service
around them), so a rule about a container's command, environment or limits is written once.
The immutable records are NamedTuples: much cheaper to define than dataclasses, and this
module is imported on every check of a project with artefacts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from chirp.contracts.model import Location

Platform = Literal["kubernetes", "compose"]


class Value(NamedTuple):
    """A value read from an artefact and where it is."""

    value: Any
    at: Location


class EnvVar(NamedTuple):
    """One environment variable of a container or image.

    `literal` is the value written in the artefact (None when it comes from elsewhere);
    `source` says where: `literal`, `secret` (a secretKeyRef), `configmap`, `field`,
    `outside` (the environment Compose runs in), `build-arg` (a Dockerfile ARG) or `unset`.
    `ref` names the referenced Secret/ConfigMap and key (`name/key`) when there is one.
    """

    name: str
    literal: str | None
    source: str
    at: Location
    ref: str | None = None


class Probe(NamedTuple):
    """A Kubernetes probe: how it reaches the container and how patient it is."""

    kind: str  # http, tcp, exec, grpc
    at: Location
    path: str | None = None
    port: Any = None  # int or a named container port
    scheme: str = "HTTP"
    command: tuple[str, ...] = ()
    initial_delay: float = 0
    period: float = 10
    failure_threshold: int = 3

    @property
    def budget(self) -> float:
        """Seconds from container start until failures make the kubelet act."""
        return self.initial_delay + self.period * self.failure_threshold


class Command(NamedTuple):
    """The argv a container runs (`exec_form` False: a string a shell will interpret)."""

    argv: tuple[str, ...]
    exec_form: bool
    at: Location
    origin: str  # e.g. "Dockerfile CMD", "command/args", "Compose command"


@dataclass
class Container:
    """One app container: a Kubernetes pod template's container or a Compose service."""

    platform: Platform
    name: str
    workload: str  # "Deployment/shop", "compose service web"
    at: Location
    image: str | None = None
    command: Command | None = None
    env: list[EnvVar] = field(default_factory=list)
    env_from: list[tuple[str, str, Location]] = field(default_factory=list)  # (secret|configmap, name, at)
    ports: dict[str, int] = field(default_factory=dict)
    probes: dict[str, Probe] = field(default_factory=dict)  # liveness, readiness, startup
    cpu_limit: Value | None = None  # cores
    memory_limit: Value | None = None  # bytes
    pre_stop_pause: Value | None = None  # seconds
    grace_period: Value | None = None  # seconds the platform waits after SIGTERM
    grace_default: float = 30.0
    stop_signal: Value | None = None
    run_as_user: Value | None = None
    run_as_non_root: Value | None = None
    labels: dict[str, str] = field(default_factory=dict)
    namespace: str | None = None
    pod_at: Location | None = None  # the pod spec: where pod-level fields go

    def env_var(self, name: str) -> EnvVar | None:
        """The variable as the container sees it (the last definition wins)."""
        found = [e for e in self.env if e.name == name]
        return found[-1] if found else None


class Instruction(NamedTuple):
    """A Dockerfile instruction: name, raw value and its first line."""

    name: str
    value: str
    at: Location


@dataclass
class Image:
    """A Dockerfile's final stage, with what it inherits from earlier stages it is built FROM."""

    file: str
    base: Value  # the resolved base image of the final stage
    instructions: list[Instruction] = field(default_factory=list)  # the final stage's own and inherited
    all_env: list[EnvVar] = field(default_factory=list)  # ENV and ARG of every stage
    env: list[EnvVar] = field(default_factory=list)  # ENV the final image carries
    user: Value | None = None
    command: Command | None = None
    stop_signal: Value | None = None


class KeyedObject(NamedTuple):
    """A Kubernetes Secret or ConfigMap: which keys it holds, with lines."""

    kind: str
    name: str
    namespace: str | None
    keys: dict[str, Location]


class Service(NamedTuple):
    """A Kubernetes Service: which pods it sends traffic to."""

    name: str
    namespace: str | None
    selector: dict[str, str]
    at: Location

    def selects(self, container: Container) -> bool:
        return (
            bool(self.selector)
            and self.namespace == container.namespace
            and all(container.labels.get(k) == v for k, v in self.selector.items())
        )


class Problem(NamedTuple):
    """Something in an artefact that cannot be read: bad syntax or a malformed field."""

    message: str
    at: Location
    subject: str


@dataclass
class Artefacts:
    """Every artefact a check found, parsed."""

    files: list[str] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    containers: list[Container] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    objects: list[KeyedObject] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    requires_python: Value | None = None  # the project's `requires-python`, from pyproject.toml
    # The launch found in each (command, environment) so far: the rules of one check ask for the
    # same few, and each is parsed by the real command line (see `rules._deploy.launch_of`).
    launches: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def object(self, kind: str, name: str, namespace: str | None) -> KeyedObject | None:
        return next(
            (o for o in self.objects if o.kind == kind and o.name == name and o.namespace == namespace),
            None,
        )
