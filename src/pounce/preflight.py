"""`pounce check`: the server-facing half of the deploy contract.

It answers "will `pounce serve` with these settings start and stay up?": the app path
resolves to an ASGI callable, the bind address parses and can be bound, TLS files load,
and the worker settings suit the machine and the app. It runs the server-tagged rules of
the same registry and returns the same `Report` that `chirp check` renders.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pounce.config import ServerConfig, app_defaults
from pounce.errors import AppImportError, ConfigurationError


def run_preflight(
    config: ServerConfig,
    *,
    env: str | None = None,
    warnings_as_errors: bool = False,
    fail_on: Any = None,
    config_file: str | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Any:
    """Import `config.app` and check the server settings; returns a `chirp.contracts.model.Report`.

    Given the command's `flags`, the settings are resolved as `pounce serve` resolves them:
    what the app implies, under `config_file`, under the flags.
    """
    from chirp.config import launched_as
    from chirp.contracts.model import Location
    from chirp.contracts.output import broken
    from chirp.contracts.registry import builtin_registry
    from chirp.contracts.runner import fail_level, run
    from chirp.contracts.snapshot import Snapshot
    from pounce.importer import import_app

    started = time.perf_counter()
    site = Location(str(Path(config_file).resolve()), None) if config_file else None
    try:
        with launched_as(env):  # the secret is not deferred: without one `pounce serve` cannot start
            target = import_app(config.app)
    except AppImportError as exc:
        return broken("pounce", config.app, "import_failed", exc.message, exc.hint, env or "production")
    except ConfigurationError as exc:
        return broken("pounce", config.app, "configuration", str(exc), exc.fix, env or "production")
    if flags is not None and (implied := app_defaults(target)):
        try:
            config = ServerConfig.load(config_file, base={**implied, "app": config.app}, **flags)
        except ConfigurationError as exc:
            return broken("pounce", config.app, "configuration", str(exc), exc.fix, env or "production")
    snap = _snapshot(target, config, env, site, Snapshot)
    return run(
        snap,
        builtin_registry().with_tag("server"),
        fail_on=fail_level(warnings_as_errors, fail_on),
        started=started,
        tool="pounce",
    )


def _snapshot(target: Any, config: ServerConfig, env: str | None, site: Any, snapshot_cls: Any) -> Any:
    """A chirp App contributes its hooks and env; any other ASGI app is judged as production."""
    from chirp.app import App
    from chirp.contracts.snapshot import check_env

    if isinstance(target, App):
        if target.import_path is None:
            target.import_path = config.app
        return snapshot_cls.of_app(target, env=env, server=config, server_site=site)
    return snapshot_cls(
        env=check_env(env or "production"),
        server=config,
        server_site=site,
        asgi_app=target,
        target=config.app,
    )
