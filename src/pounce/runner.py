"""From a `ServerConfig` to a running process: logging, app import, reload, exit code."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio

from pounce.config import ServerConfig, app_defaults
from pounce.errors import ConfigurationError, StartupFailed
from pounce.features import check_features
from pounce.implementations import resolve, run_options
from pounce.importer import import_app
from pounce.logs import configure_logging
from pounce.server import Server
from pounce.sockets import BindError
from pounce.supervisor import Supervisor
from pounce.tls import TLSFileError, check_files
from pounce.workers import effective_worker_mode, worker_count
from pounce.wrapped import app_attribute

logger = logging.getLogger("pounce.error")

# Exit codes of every launcher (`pounce serve`, `chirp run`, `app.run()`).
EXIT_OK = 0  # stopped cleanly
EXIT_FAILED = 1  # the app could not be imported, or the server could not start (bind, TLS)
EXIT_CONFIGURATION = 2  # a usage or configuration error
EXIT_STARTUP_FAILED = 3  # the app refused to start: its preflight or lifespan startup failed


def serve_app(
    config: ServerConfig, config_file: str | None = None, flags: Mapping[str, Any] | None = None
) -> int:
    """`pounce serve`: import the app once, settle its settings, check it, then serve it.

    `config` is already built from `config_file` and `flags` (so they are checked before the
    import); an app that implies settings of its own (`pounce_defaults()`) gets them layered
    under the file and the flags. Returns the exit code.
    """
    configure_logging(config.log_level, "text")
    if config.reload:
        return reload_loop(config)
    app = import_app(config.app)
    implied = app_defaults(app)
    if implied:
        config = ServerConfig.load(config_file, base={**implied, "app": config.app}, **(flags or {}))
        configure_logging(config.log_level, "text")
    return serve_loaded(app, config)


def serve_loaded(app: Any, config: ServerConfig, load_next: Callable[[], Any] | None = None) -> int:
    """Serve an imported app: its preflight, then in this process or under a supervisor.

    An app with a `pounce_preflight(config)` hook is asked once, here, before anything listens
    or forks; a `StartupFailed` it raises is printed once and ends the launch with code 3.
    `load_app` gives the workers of a reload generation a freshly imported app.
    """
    try:
        check_files(config)  # the judgement `pounce check` makes of them
    except TLSFileError as exc:
        return report_failure(str(exc), "run `pounce check` with the same settings for every problem")
    hook = app_attribute(app, "pounce_preflight")
    if callable(hook):
        try:
            hook(config)
        except StartupFailed as exc:
            report_refusal(exc)
            return EXIT_STARTUP_FAILED
    workers = worker_count(config.workers)
    try:
        check_features(config)  # here, once, rather than as every worker's traceback
        if workers > 1 or config.max_requests:  # recycling needs a supervisor, even for one worker
            return serve_workers(config, workers, load_next, preloaded=app)
        return serve_imported(app, config)
    except BindError as exc:
        return report_failure(str(exc), "")
    except ConfigurationError as exc:
        return report_failure(str(exc), "", EXIT_CONFIGURATION)


def report_failure(message: str, hint: str, code: int = EXIT_FAILED) -> int:
    """A server that could not start: one `error:` line (and a hint), exit code 1 (or `code`)."""
    sys.stderr.write(f"error: {message}\n" + (f"hint: {hint}\n" if hint else ""))
    sys.stderr.flush()
    return code


def report_refusal(exc: StartupFailed) -> None:
    """The refusal on stderr: its detail (a report) once, then one `error:` line and a hint."""
    if exc.detail:
        sys.stderr.write(exc.detail.rstrip("\n") + "\n")
    sys.stderr.write(f"error: {exc}\n")
    if exc.hint:
        sys.stderr.write(f"hint: {exc.hint}\n")
    sys.stderr.flush()


def serve_workers(
    config: ServerConfig, workers: int, load_app: Callable[[], Any] | None = None, preloaded: Any = None
) -> int:
    """Serve with a supervisor and `workers` processes.

    The first generation forks from `preloaded` (imported and checked here, once); `load_app`
    runs in each worker of a later generation (a reload) to import the code afresh.
    """
    logger.info("%s", startup_banner(config, workers))
    return Supervisor(config, workers, load_app, preloaded).run()


def startup_banner(config: ServerConfig, workers: int) -> str:
    """One line saying what is about to run: version, bind, workers, mode, features."""
    from pounce import __version__
    from pounce.features import enabled_features

    features = ", ".join(enabled_features(config)) or "none"
    mode = effective_worker_mode(config.worker_mode)
    plural = "s" if workers != 1 else ""
    return (
        f"pounce {__version__} starting: bind {config.bind_description}, {workers} worker{plural} "
        f"({mode} mode), loop {resolve('loop', config.loop)}, http {resolve('http', config.http)}, "
        f"features: {features}"
    )


def serve_imported(app: object, config: ServerConfig) -> int:
    logger.info("%s", startup_banner(config, 1))
    server = Server(app, config)  # type: ignore[arg-type]
    try:
        anyio.run(server.serve, **run_options(config.loop))
    except StartupFailed as exc:
        logger.error("application startup failed: %s", exc)
        return EXIT_STARTUP_FAILED
    return EXIT_FAILED if server.forced else EXIT_OK


def _source_mtimes(root: Path) -> dict[Path, float]:
    mtimes: dict[Path, float] = {}
    for path in root.rglob("*.py"):
        if any(part.startswith(".") or part in ("__pycache__", "node_modules") for part in path.parts):
            continue
        try:
            mtimes[path] = path.stat().st_mtime
        except OSError:
            continue
    return mtimes


RELOAD_CHILD_ENV = "POUNCE_RELOAD_CHILD"


def reload_loop(config: ServerConfig, argv: list[str] | None = None, interval: float = 0.5) -> int:
    """Development reload: run the server in a child process, restart it on source change.

    The child is `argv` (default: pounce serving `config.app`); it sees
    `POUNCE_RELOAD_CHILD=1` and the config in `POUNCE_CHILD_CONFIG`.
    """
    root = Path.cwd()
    env = dict(os.environ)
    env[RELOAD_CHILD_ENV] = "1"
    env["POUNCE_CHILD_CONFIG"] = _encode(config.replace(reload=False))
    argv = argv or [sys.executable, "-m", "pounce.reload_child"]
    logger.info("watching %s for changes", root)
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while True:
        child = subprocess.Popen(argv, env=env)
        seen = _source_mtimes(root)
        while not stop and child.poll() is None:
            time.sleep(interval)
            now = _source_mtimes(root)
            if now != seen:
                logger.info("source changed, restarting")
                break
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(config.shutdown_timeout + 5)
            except subprocess.TimeoutExpired:
                child.kill()
        if stop:
            return EXIT_OK
        if child.returncode not in (0, -signal.SIGTERM) and _source_mtimes(root) == seen:
            # crashed without a change: wait for the next edit rather than spinning
            while not stop and _source_mtimes(root) == seen:
                time.sleep(interval)
            if stop:
                return EXIT_OK


def _encode(config: ServerConfig) -> str:
    import json
    from dataclasses import asdict

    data = asdict(config)
    data.pop("extra", None)
    return json.dumps(data)
