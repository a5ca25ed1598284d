"""Checks shared by pounce's `ServerConfig` and chirp's `AppConfig` (kept import-light)."""

from __future__ import annotations

from typing import Any

from pounce.errors import ConfigurationError


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
