"""`chirp` command line: run, check, new."""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, Any, ClassVar

import click

from chirp import __version__
from pounce.errors import AppImportError, ConfigurationError, fail
from pounce.implementations import LOOPS, PARSERS

if TYPE_CHECKING:
    from chirp.app import App


class _LazyGroup(click.Group):
    """Subcommands that live in their own modules load only when they are used, so a
    pre-commit run of `chirp check` does not pay for the `chirp new` templates."""

    lazy: ClassVar[dict[str, str]] = {"check": "chirp.cli_check:check", "new": "chirp.cli_new:new"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, _, attr = self.lazy[cmd_name].partition(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chirp")
def main() -> None:
    """chirp: build, check and run chirp apps.

    \b
    Examples:
      chirp run myapp:app --reload
      chirp check myapp:app --deploy
      chirp run myapp:app --production --workers 4
    """


def chirp_app_in(obj: Any) -> App | None:
    """The chirp App `obj` is, or the one inside the ASGI middleware wrapping it."""
    from chirp.app import App
    from pounce.wrapped import wrapped_chain

    return next((a for a in wrapped_chain(obj) if isinstance(a, App)), None)


def load_chirp_app(path: str) -> Any:
    """Import `module:attr`; record the import path on the chirp App it is or wraps."""
    from pounce.importer import import_app

    obj = import_app(path)
    app = chirp_app_in(obj)
    if app is not None and app.import_path is None:
        app.import_path = path
    return obj


@main.command(
    epilog="""\b
Examples:
  chirp run myapp:app                       # development: one worker, auto-reload
  chirp run myapp:app --host 0.0.0.0 --port 8080
  CHIRP_SECRET_KEY=... chirp run myapp:app --production --workers 4
  CHIRP_SECRET_KEY=... chirp run myapp:app --production --workers 4 --metrics --rate-limit --queue
"""
)
@click.argument("app_path", metavar="APP")
@click.option("--host", help="Bind address (default: AppConfig.host).")
@click.option("--port", type=int, help="Bind port (default: AppConfig.port).")
@click.option(
    "--reload/--no-reload", default=None, help="Restart on source change (default: on in development)."
)
@click.option(
    "--production",
    is_flag=True,
    help="Import with CHIRP_ENV=production and serve env=production (a missing secret from "
    "CHIRP_SECRET_KEY); nothing else is overridden.",
)
@click.option("--workers", type=int, help="Worker processes (0 = one per available CPU).")
@click.option("--metrics", is_flag=True, help="Serve Prometheus metrics at AppConfig.metrics_path.")
@click.option("--rate-limit", is_flag=True, help="Per-client-IP rate limiting (AppConfig.rate_limit_*).")
@click.option("--queue", is_flag=True, help="Request queue with load shedding (AppConfig.request_queue_*).")
@click.option("--loop", type=click.Choice(LOOPS), help="Event loop (auto: uvloop when installed).")
@click.option("--http", type=click.Choice(PARSERS), help="HTTP/1.1 parser (auto: httptools when installed).")
def run(
    app_path: str,
    host: str | None,
    port: int | None,
    reload: bool | None,
    production: bool,
    workers: int | None,
    metrics: bool,
    rate_limit: bool,
    queue: bool,
    loop: str | None,
    http: str | None,
) -> None:
    """Serve APP (module:attr) with pounce.

    Exit codes: 0 stopped cleanly; 1 the app could not be imported or the server could not
    start (bind, TLS); 2 a usage or configuration error; 3 the app refused to start (its
    contract check found errors, or a startup hook failed).
    """
    from chirp.config import production_posture
    from chirp.serving import server_config
    from pounce.config import ServerConfig
    from pounce.logs import configure_logging
    from pounce.runner import RELOAD_CHILD_ENV, reload_loop, serve_loaded

    features = {
        name: True
        for name, on in (
            ("metrics_enabled", metrics),
            ("rate_limit_enabled", rate_limit),
            ("request_queue_enabled", queue),
        )
        if on
    }
    flags: dict[str, Any] = {
        "host": host, "port": port, "workers": workers, "reload": reload, "loop": loop, "http": http, **features,
    }  # fmt: skip
    try:  # every flag is checked before the app is imported
        ServerConfig(**{k: v for k, v in flags.items() if v is not None})
    except ConfigurationError as exc:
        fail(str(exc), "fix the flag", 2)
    if production:
        # Before the import: an app built with AppConfig.from_env() (and the middleware it
        # builds from that config) then starts in the production posture, as
        # `chirp check --deploy` imports it; the flag wins over an exported CHIRP_ENV.
        os.environ["CHIRP_ENV"] = "production"

    def load() -> Any:
        """Import the app and apply the flags to its config (before its freeze-time check).

        The target may be an ASGI middleware around the App (`Wrapper(app)`, keeping it as
        `.app`): the wrapper is served, the App inside it is configured and checked."""
        try:
            served = load_chirp_app(app_path)
        except AppImportError as exc:
            fail(exc.message, exc.hint, 1)
        except ConfigurationError as exc:  # raised by the app while it was built
            fail(str(exc), "fix the setting or its CHIRP_* variable", 2)
        app = chirp_app_in(served)
        if app is None:
            fail(f"{app_path} is not a chirp App", "use `pounce serve --app` for other ASGI apps", 2)
        if app.frozen:
            return served
        if production and not (app.config.secret_key or os.environ.get("CHIRP_SECRET_KEY")):
            fail("--production needs a secret key", "export CHIRP_SECRET_KEY=<32+ random characters>", 2)
        try:
            config = production_posture(app.config) if production else app.config
            app.config = config.replace(**features)
        except ConfigurationError as exc:
            fail(str(exc), "fix the setting or the CHIRP_* variable", 2)
        return served

    configure_logging("info", "text")  # so the freeze-time contract log line is not lost
    served = load()
    app = chirp_app_in(served)
    assert app is not None  # load() refused anything else
    try:
        cfg = server_config(app.config, app_path, **flags)
    except ConfigurationError as exc:
        fail(str(exc), "fix the setting or the CHIRP_* variable", 2)
    configure_logging(cfg.log_level, "text")
    if cfg.reload and not os.environ.get(RELOAD_CHILD_ENV):
        sys.exit(reload_loop(cfg, [sys.executable, "-m", "chirp", *sys.argv[1:]]))  # the child checks
    try:  # a reload's workers import afresh (`load`); their lifespan startup checks them
        sys.exit(serve_loaded(served, cfg.replace(reload=False), load))
    except OSError as exc:
        fail(str(exc), "", 1)
