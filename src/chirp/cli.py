"""`chirp` command line: run, check, new."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from chirp import __version__
from pounce.cli import fail
from pounce.errors import AppImportError, ConfigurationError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chirp")
def main() -> None:
    """chirp: build, check and run chirp apps.

    \b
    Examples:
      chirp run myapp:app --reload
      chirp check myapp:app --deploy
      chirp run myapp:app --production --workers 4
    """


def _register() -> None:
    from chirp.cli_check import check

    main.add_command(check)


def load_chirp_app(path: str) -> Any:
    """Import `module:attr`; record the import path on a chirp App."""
    from chirp.app import App
    from pounce.importer import import_app

    obj = import_app(path)
    if isinstance(obj, App) and obj.import_path is None:
        obj.import_path = path
    return obj


@main.command(
    epilog="""\b
Examples:
  chirp run myapp:app                       # development: one worker, auto-reload
  chirp run myapp:app --host 0.0.0.0 --port 8080
  CHIRP_SECRET_KEY=... chirp run myapp:app --production --workers 4
"""
)
@click.argument("app_path", metavar="APP")
@click.option("--host", help="Bind address (default: AppConfig.host).")
@click.option("--port", type=int, help="Bind port (default: AppConfig.port).")
@click.option("--reload/--no-reload", default=None, help="Restart on source change (default: on in development).")
@click.option("--production", is_flag=True, help="env=production, debug off; the secret comes from CHIRP_SECRET_KEY.")
@click.option("--workers", type=int, help="Worker processes (0 = one per available CPU).")
def run(app_path: str, host: str | None, port: int | None, reload: bool | None, production: bool, workers: int | None) -> None:
    """Serve APP (module:attr) with pounce."""
    from chirp.app import App, ContractViolation
    from chirp.serving import server_config
    from pounce.logs import configure_logging
    from pounce.runner import RELOAD_CHILD_ENV, reload_loop, serve_imported

    try:
        app = load_chirp_app(app_path)
    except AppImportError as exc:
        fail(exc.message, exc.hint, 1)
    if not isinstance(app, App):
        fail(f"{app_path} is not a chirp App", "use `pounce serve --app` for other ASGI apps", 2)
    if production:
        secret = os.environ.get("CHIRP_SECRET_KEY") or app.config.secret_key
        if not secret:
            fail("--production needs a secret key", "export CHIRP_SECRET_KEY=<32+ random characters>", 2)
        try:
            app.config = app.config.replace(env="production", debug=False, secret_key=secret)
        except ConfigurationError as exc:
            fail(str(exc), "fix the setting or the CHIRP_* variable", 2)
    try:
        cfg = server_config(app.config, app_path, host=host, port=port, workers=workers, reload=reload)
    except ConfigurationError as exc:
        fail(str(exc), "fix the flag", 2)
    configure_logging(cfg.log_level, cfg.access_log_format)
    if cfg.reload and not os.environ.get(RELOAD_CHILD_ENV):
        sys.exit(reload_loop(cfg, [sys.executable, "-m", "chirp", *sys.argv[1:]]))
    try:
        app.freeze()
    except ContractViolation as exc:
        click.echo(str(exc), err=True)
        fail("the app failed its contract check", f"run `chirp check {app_path}` for details", 1)
    except OSError as exc:
        fail(str(exc), "", 1)
    try:
        sys.exit(serve_imported(app, cfg.replace(reload=False)))
    except OSError as exc:
        fail(str(exc), "", 1)


_register()
