"""Checks shared by pounce's `ServerConfig` and chirp's `AppConfig` (kept import-light)."""

from __future__ import annotations

import sys
from typing import Any

from pounce.errors import ConfigurationError


def field_type(cls: type, name: str) -> Any:
    """The evaluated annotation of one field of a settings class.

    Settings arrive a few at a time (environment variables, a TOML table, CLI flags), so each
    is resolved when given: `typing.get_type_hints` would compile every one of the dozens of
    annotations on each load, which a cold `chirp check` pays for twice.
    """
    annotation = cls.__annotations__[name]
    if not isinstance(annotation, str):
        return annotation
    return eval(annotation, vars(sys.modules[cls.__module__]))  # as get_type_hints does


def check_ops_paths(cfg: Any) -> None:
    """Probe and metrics paths (shared by `ServerConfig` and chirp's `AppConfig`): absolute,
    and liveness distinct from readiness."""
    for name in ("health_path", "ready_path", "metrics_path"):
        value = getattr(cfg, name)
        if not value.startswith("/"):
            raise ConfigurationError(
                name, value, f"start the path with '/', for example '/{value.lstrip('/')}'"
            )
    if cfg.health_path == cfg.ready_path:
        raise ConfigurationError(
            "ready_path",
            cfg.ready_path,
            "liveness and readiness need different paths, e.g. /health and /ready",
        )


def check_networks(name: str, entries: tuple[str, ...]) -> None:
    """Trusted proxy peers (pounce's `trusted_hosts`, chirp's `trusted_proxies`): IP addresses or
    CIDR networks, or `*`. A hostname is refused when the config is built, so no check passes
    a setting the server would refuse at launch."""
    import ipaddress

    for entry in entries:
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigurationError(
                name, entry, "use IP addresses or CIDR networks such as 10.0.0.0/8"
            ) from None
