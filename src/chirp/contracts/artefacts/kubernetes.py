"""Kubernetes manifests → containers, services and Secret/ConfigMap keys, each value located.

Reads workloads (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod, and
anything else with a pod template), Services, Secrets and ConfigMaps, from plain multi-document
files and from `kind: List` (what `kubectl get -o yaml`, `kustomize build` and `helm template`
print). Only fields the rules read are looked at; a malformed one becomes a `Problem`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from chirp.contracts.artefacts import units
from chirp.contracts.artefacts.model import (
    Artefacts,
    Command,
    Container,
    EnvVar,
    KeyedObject,
    Probe,
    Problem,
    Service,
    Value,
)
from chirp.contracts.artefacts.yamldoc import Map, Seq, line
from chirp.contracts.model import Location

POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
DEFAULT_TEMPLATE = ("spec", "template")
PROBES = {"livenessProbe": "liveness", "readinessProbe": "readiness", "startupProbe": "startup"}


class Reader:
    """Typed access to one file's documents; wrong types become problems, not exceptions."""

    def __init__(self, path: str, out: Artefacts) -> None:
        self.path = path
        self.out = out

    def at(self, node: Any, key: Any = None) -> Location:
        return Location(self.path, line(node, key))

    def problem(self, node: Any, key: Any, field: str, value: Any, fix: str) -> None:
        self.out.problems.append(Problem(f"{field} is {value!r}: {fix}", self.at(node, key), field))

    def get(self, node: Any, key: str, kind: type | tuple[type, ...], field: str, fix: str) -> Any:
        """`node[key]` when it has the expected type; otherwise None (and a problem if present)."""
        if not isinstance(node, dict) or key not in node or node[key] is None:
            return None
        value = node[key]
        if isinstance(value, kind) and not (isinstance(value, bool) and kind in (int, float, (int, float))):
            return value
        self.problem(node, key, field, value, fix)
        return None

    def mapping(self, node: Any, key: str, field: str) -> dict[Any, Any] | None:
        return self.get(node, key, dict, field, "make it a mapping")  # type: ignore[no-any-return]

    def sequence(self, node: Any, key: str, field: str) -> list[Any] | None:
        return self.get(node, key, list, field, "make it a list")  # type: ignore[no-any-return]

    def number(self, node: Any, key: str, field: str) -> float | None:
        value = self.get(node, key, (int, float), field, "use a number of seconds, e.g. 45")
        return None if value is None else float(value)

    def walk(self, node: Any, path: tuple[str, ...], field: str) -> dict[Any, Any] | None:
        for step in path:
            node = self.mapping(node, step, f"{field}.{step}")
            if node is None:
                return None
            field = f"{field}.{step}"
        return node if isinstance(node, dict) else None


def read(path: str, docs: list[Any], out: Artefacts) -> None:
    """Add what the manifests in `docs` describe to `out`."""
    reader = Reader(path, out)
    for doc in _objects(docs):
        kind = doc.get("kind")
        if not isinstance(kind, str) or not isinstance(doc.get("apiVersion"), str):
            continue  # not a Kubernetes object (a kustomization, Helm values, ...)
        meta: dict[Any, Any] = doc["metadata"] if isinstance(doc.get("metadata"), dict) else {}
        name = str(meta.get("name", "?"))
        namespace = meta.get("namespace") if isinstance(meta.get("namespace"), str) else None
        if kind == "Service":
            _service(reader, doc, name, namespace)
        elif kind in ("Secret", "ConfigMap"):
            keys: dict[str, Location] = {}
            for section in ("data", "stringData", "binaryData"):
                table = doc.get(section)
                if isinstance(table, dict):
                    keys.update({str(k): reader.at(table, k) for k in table})
            out.objects.append(KeyedObject(kind, name, namespace, keys))
        else:
            template_path = POD_TEMPLATE_PATHS.get(kind, DEFAULT_TEMPLATE)
            template = reader.walk(doc, template_path, kind) if template_path else doc
            if template is None or not isinstance(template.get("spec"), dict):
                continue
            _pod(reader, template, f"{kind}/{name}", namespace)


def _objects(docs: list[Any]) -> Iterator[dict[Any, Any]]:
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            yield from (item for item in doc["items"] if isinstance(item, dict))
        else:
            yield doc


def _service(reader: Reader, doc: dict[Any, Any], name: str, namespace: str | None) -> None:
    spec = reader.mapping(doc, "spec", "Service.spec") or Map()
    selector: dict[Any, Any] = reader.mapping(spec, "selector", "Service.spec.selector") or {}
    reader.out.services.append(
        Service(name, namespace, {str(k): str(v) for k, v in selector.items()}, reader.at(doc))
    )


def _pod(reader: Reader, template: dict[Any, Any], workload: str, namespace: str | None) -> None:
    spec: dict[Any, Any] = template["spec"]
    meta: dict[Any, Any] = template["metadata"] if isinstance(template.get("metadata"), dict) else {}
    labels: dict[Any, Any] = meta["labels"] if isinstance(meta.get("labels"), dict) else {}
    grace = reader.number(spec, "terminationGracePeriodSeconds", "terminationGracePeriodSeconds")
    pod_security = reader.mapping(spec, "securityContext", "spec.securityContext") or Map()
    containers = reader.sequence(spec, "containers", "spec.containers") or Seq()
    for index, item in enumerate(containers):
        if not isinstance(item, dict):
            reader.problem(containers, index, "spec.containers[]", item, "each container is a mapping")
            continue
        container = Container(
            platform="kubernetes",
            name=str(item.get("name", f"#{index}")),
            workload=workload,
            at=reader.at(item),
            image=item.get("image") if isinstance(item.get("image"), str) else None,
            labels={str(k): str(v) for k, v in labels.items()},
            namespace=namespace,
            pod_at=reader.at(template, "spec"),
        )
        if grace is not None:
            container.grace_period = Value(grace, reader.at(spec, "terminationGracePeriodSeconds"))
        _command(reader, item, container)
        _env(reader, item, container)
        _ports(reader, item, container)
        _probes(reader, item, container)
        _resources(reader, item, container)
        _pre_stop(reader, item, container)
        own_security = reader.mapping(item, "securityContext", "securityContext") or Map()
        for key, attr in (("runAsUser", "run_as_user"), ("runAsNonRoot", "run_as_non_root")):
            for scope in (own_security, pod_security):  # the container's own setting wins
                if key in scope:
                    setattr(container, attr, Value(scope[key], reader.at(scope, key)))
                    break
        reader.out.containers.append(container)


def _strings(reader: Reader, node: dict[Any, Any], key: str, field: str) -> list[Any] | None:
    items = reader.sequence(node, key, field)
    if items is None:
        return None
    if not all(isinstance(i, str | int | float) and not isinstance(i, bool) for i in items):
        reader.problem(node, key, field, list(items), "use a list of strings")
        return None
    return items


def _command(reader: Reader, item: dict[Any, Any], container: Container) -> None:
    command = _strings(reader, item, "command", "command")
    args = _strings(reader, item, "args", "args")
    if command is None and args is None:
        return  # the image's ENTRYPOINT/CMD runs
    where = reader.at(item, "command" if command is not None else "args")
    argv = tuple(str(a) for a in (command or [])) + tuple(str(a) for a in (args or []))
    origin = "command/args" if command is not None else "args (after the image's ENTRYPOINT)"
    container.command = Command(argv, True, where, origin)


def _env(reader: Reader, item: dict[Any, Any], container: Container) -> None:
    for entry in reader.sequence(item, "env", "env") or ():
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        where = reader.at(entry)
        value_from = entry.get("valueFrom")
        if isinstance(value_from, dict):
            secret = value_from.get("secretKeyRef")
            config = value_from.get("configMapKeyRef")
            if isinstance(secret, dict):
                ref = f"{secret.get('name')}/{secret.get('key')}"
                container.env.append(EnvVar(entry["name"], None, "secret", where, ref))
            elif isinstance(config, dict):
                ref = f"{config.get('name')}/{config.get('key')}"
                container.env.append(EnvVar(entry["name"], None, "configmap", where, ref))
            else:
                container.env.append(EnvVar(entry["name"], None, "field", where))
            continue
        value = entry.get("value")
        literal = None if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        container.env.append(
            EnvVar(entry["name"], literal, "literal" if literal is not None else "unset", where)
        )
    for entry in reader.sequence(item, "envFrom", "envFrom") or ():
        if not isinstance(entry, dict):
            continue
        for key, source in (("secretRef", "secret"), ("configMapRef", "configmap")):
            target = entry.get(key)
            if isinstance(target, dict) and isinstance(target.get("name"), str):
                container.env_from.append((source, target["name"], reader.at(entry, key)))


def _ports(reader: Reader, item: dict[Any, Any], container: Container) -> None:
    for entry in reader.sequence(item, "ports", "ports") or ():
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            port = reader.get(entry, "containerPort", int, "ports[].containerPort", "use a port number")
            if port is not None:
                container.ports[entry["name"]] = port


def _probes(reader: Reader, item: dict[Any, Any], container: Container) -> None:
    for key, name in PROBES.items():
        node = reader.mapping(item, key, key)
        if node is None:
            continue
        timing: dict[str, Any] = {}
        for field, attr in (("initialDelaySeconds", "initial_delay"), ("periodSeconds", "period")):
            value = reader.number(node, field, f"{key}.{field}")
            if value is not None:
                timing[attr] = value
        threshold = reader.get(
            node, "failureThreshold", int, f"{key}.failureThreshold", "use a count, e.g. 3"
        )
        if threshold is not None:
            timing["failure_threshold"] = threshold
        where = reader.at(item, key)
        http = reader.mapping(node, "httpGet", f"{key}.httpGet")
        if http is not None:
            path = http.get("path", "/")
            container.probes[name] = Probe(
                "http", where, path=str(path).split("?", 1)[0], port=http.get("port"),
                scheme=str(http.get("scheme", "HTTP")).upper(), **timing,
            )  # fmt: skip
        elif isinstance(node.get("tcpSocket"), dict):
            container.probes[name] = Probe("tcp", where, port=node["tcpSocket"].get("port"), **timing)
        elif isinstance(node.get("exec"), dict):
            command = node["exec"].get("command")
            argv = tuple(str(a) for a in command) if isinstance(command, list) else ()
            container.probes[name] = Probe("exec", where, command=argv, **timing)
        elif isinstance(node.get("grpc"), dict):
            container.probes[name] = Probe("grpc", where, port=node["grpc"].get("port"), **timing)


def _resources(reader: Reader, item: dict[Any, Any], container: Container) -> None:
    limits = reader.walk(item, ("resources", "limits"), "resources") or Map()
    parse: dict[str, tuple[Callable[[object], float | None], str]] = {
        "cpu": (units.quantity, "use cores or millicores, e.g. 1 or 500m"),
        "memory": (units.quantity, "use a quantity such as 256Mi or 1Gi"),
    }
    for key, (parser, fix) in parse.items():
        if key not in limits:
            continue
        value = parser(limits[key])
        if value is None or value <= 0:
            reader.problem(limits, key, f"resources.limits.{key}", limits[key], fix)
            continue
        setattr(container, f"{key}_limit", Value(value, reader.at(limits, key)))


def _pre_stop(reader: Reader, item: dict[Any, Any], container: Container) -> None:
    hook = reader.walk(item, ("lifecycle", "preStop"), "lifecycle")
    if hook is None:
        return
    seconds: float | None = None
    sleep = hook.get("sleep")
    if isinstance(sleep, dict):
        seconds = reader.number(sleep, "seconds", "lifecycle.preStop.sleep.seconds")
    elif isinstance(hook.get("exec"), dict) and isinstance(hook["exec"].get("command"), list):
        seconds = sleep_seconds([str(a) for a in hook["exec"]["command"]])
    if seconds is not None:
        container.pre_stop_pause = Value(seconds, reader.at(item, "lifecycle"))


def sleep_seconds(argv: list[str]) -> float | None:
    """The pause of a `sleep N` (or `sh -c "sleep N"`) command, else None."""
    if len(argv) >= 3 and argv[0].rsplit("/", 1)[-1] in ("sh", "bash", "ash", "dash") and argv[1] == "-c":
        argv = argv[2].split()
    if len(argv) == 2 and argv[0].rsplit("/", 1)[-1] == "sleep":
        try:
            return float(argv[1].rstrip("s"))
        except ValueError:
            return None
    return None
