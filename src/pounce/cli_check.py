"""`pounce check`: preflight the server settings before `pounce serve` runs them."""

from __future__ import annotations

import sys
from typing import Any

import click

from chirp.contracts.cli_options import report_options
from pounce.cli import build_config, server_options

EPILOG = """\b
Exit codes (the same as `chirp check`, for every format):
  0 passed   1 findings at or above the fail level   2 usage error
  3 the app could not be imported (JSON/SARIF still carry an `error` object)

\b
Examples:
  pounce check --app myapp:app --config pounce.toml
  pounce check --app myapp:app --host 0.0.0.0 --port 8000 --workers 4
  pounce check --app myapp:app --ssl-certfile cert.pem --ssl-keyfile key.pem --format sarif -o pounce.sarif
"""

ENVIRONMENTS = ("development", "test", "staging", "production")


@click.command(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@server_options
@click.option(
    "--env",
    type=click.Choice(ENVIRONMENTS),
    help="Judge as this env (default: the chirp app's, else production).",
)
@report_options
def check(
    config_file: str | None,
    env: str | None,
    warnings_as_errors: bool,
    fail_on: str | None,
    fmt: str,
    output: str | None,
    **flags: Any,
) -> None:
    """Check that `pounce serve` with these settings can start: app, bind, TLS, workers."""
    from chirp.contracts import output as out
    from chirp.contracts.model import Severity
    from pounce.preflight import run_preflight

    config = build_config(config_file, **flags)
    if not config.app:
        click.echo("error: no app given", err=True)
        click.echo("hint: pass --app module:attr, for example --app myapp:app", err=True)
        sys.exit(out.EXIT_USAGE)
    report = run_preflight(
        config,
        env=env,
        warnings_as_errors=warnings_as_errors,
        fail_on=Severity.parse(fail_on) if fail_on else None,
        config_file=config_file,
        flags=flags,
    )
    try:
        out.emit(report, fmt, output)
    except out.UsageError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(out.EXIT_USAGE)
    sys.exit(out.exit_code(report))
