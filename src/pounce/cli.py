"""`pounce` command line: serve, check, config."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Any

import click

from pounce import __version__
from pounce.config import ServerConfig
from pounce.errors import AppImportError, ConfigurationError, fail
from pounce.implementations import LOOPS, PARSERS

EPILOG_SERVE = """\b
Examples:
  pounce serve --app myapp:app --port 8000
  pounce myapp:app --workers 4
  pounce serve --app myapp:create_app() --uds /run/app.sock
  pounce serve --app myapp:app --config pounce.toml
  pounce serve --app myapp:app --workers 4 --metrics --rate-limit --queue
"""


class _ShorthandGroup(click.Group):
    """`pounce module:app` is shorthand for `pounce serve --app module:app`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["serve", "--app", *args]
        return super().parse_args(ctx, args)


def server_options(f: Any) -> Any:
    """The flags shared by `pounce serve` and `pounce check`."""
    options = [
        click.option("--app", "app", metavar="MODULE:ATTR", help="The ASGI app to serve."),
        click.option(
            "--config", "config_file", type=click.Path(dir_okay=False), help="pounce.toml or pyproject.toml."
        ),
        click.option("--host", help="Bind address (default 127.0.0.1)."),
        click.option("--port", type=int, help="Bind port (default 8000; 0 picks a free port)."),
        click.option("--uds", help="Bind a Unix domain socket instead of TCP."),
        click.option("--workers", type=int, help="Worker processes (0 = one per available CPU)."),
        click.option(
            "--worker-mode", type=click.Choice(["auto", "sync", "async"]), help="Worker execution mode."
        ),
        click.option(
            "--max-requests", type=int, help="Replace a worker after this many requests (0 = never)."
        ),
        click.option("--max-requests-jitter", type=int, help="Up to this many more, at random, per worker."),
        click.option("--ssl-certfile", help="TLS certificate (PEM)."),
        click.option("--ssl-keyfile", help="TLS private key (PEM)."),
        click.option(
            "--tls-profile",
            type=click.Choice(["intermediate", "modern"]),
            help="Mozilla TLS profile: intermediate (TLS 1.2+, default) or modern (TLS 1.3 only).",
        ),
        click.option("--ssl-ciphers", help="OpenSSL cipher string for TLS 1.2, overriding the profile's."),
        click.option("--ssl-ca-certs", help="CA certificates (PEM) that client certificates must chain to."),
        click.option(
            "--ssl-cert-reqs",
            type=click.Choice(["none", "optional", "required"]),
            help="Ask clients for a certificate (mutual TLS).",
        ),
        click.option("--lifespan", type=click.Choice(["auto", "on", "off"]), help="ASGI lifespan handling."),
        click.option(
            "--loop", type=click.Choice(LOOPS), help="Event loop (auto: uvloop when installed, else asyncio)."
        ),
        click.option(
            "--http",
            type=click.Choice(PARSERS),
            help="HTTP/1.1 parser (auto: httptools when installed, else h11).",
        ),
        click.option(
            "--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug", "trace"])
        ),
        click.option("--access-log/--no-access-log", default=None, help="Log one line per request."),
        click.option(
            "--reload", is_flag=True, default=None, help="Restart when source files change (development)."
        ),
        click.option(
            "--access-log-format",
            type=click.Choice(["text", "json"]),
            help="Access log lines as text or JSON.",
        ),
        click.option(
            "--metrics/--no-metrics", "metrics_enabled", default=None, help="Serve Prometheus metrics."
        ),
        click.option("--metrics-path", help="Where metrics are served (default /metrics)."),
        click.option(
            "--rate-limit/--no-rate-limit",
            "rate_limit_enabled",
            default=None,
            help="Per-client-IP rate limiting.",
        ),
        click.option(
            "--rate-limit-rps",
            "rate_limit_requests_per_second",
            type=float,
            help="Sustained requests per second per client.",
        ),
        click.option(
            "--rate-limit-burst", type=int, help="Requests a client may burst before the rate applies."
        ),
        click.option(
            "--queue/--no-queue",
            "request_queue_enabled",
            default=None,
            help="Bounded concurrency with load shedding (503).",
        ),
        click.option(
            "--queue-concurrency",
            "request_queue_max_concurrency",
            type=int,
            help="Requests running at once per worker.",
        ),
        click.option(
            "--queue-depth", "request_queue_max_depth", type=int, help="Requests allowed to wait for a slot."
        ),
        click.option(
            "--queue-timeout",
            "request_queue_timeout",
            type=float,
            help="Seconds a request may wait before a 503.",
        ),
        click.option(
            "--compression/--no-compression",
            "compression",
            default=None,
            help="gzip/br/zstd by Accept-Encoding (default on).",
        ),
        click.option("--redis-url", help="Share rate-limit budgets through Redis (across machines)."),
        click.option("--otel-endpoint", help="Export OpenTelemetry spans to this OTLP/HTTP URL."),
        click.option("--sentry-dsn", help="Report errors to Sentry."),
        click.option(
            "--info-endpoint/--no-info-endpoint",
            "info_endpoint",
            default=None,
            help="Serve /_pounce/info (keep it off public binds).",
        ),
        click.option("--health-path", help="Liveness probe path, exempt from limits (default /health)."),
        click.option("--ready-path", help="Readiness probe path, exempt from limits (default /ready)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def build_config(config_file: str | None, **flags: Any) -> ServerConfig:
    try:
        return ServerConfig.load(config_file, **flags)
    except ConfigurationError as exc:
        fail(str(exc), "see `pounce config schema` for every setting", 2)
        raise  # unreachable


@click.group(cls=_ShorthandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pounce")
def main() -> None:
    """pounce, the production ASGI server for chirp apps.

    \b
    Examples:
      pounce myapp:app
      pounce serve --app myapp:app --host 0.0.0.0 --port 8000 --workers 4
      pounce check --app myapp:app --config pounce.toml
    """


@main.command(epilog=EPILOG_SERVE)
@server_options
def serve(config_file: str | None, **flags: Any) -> None:
    """Serve an ASGI app.

    Exit codes: 0 stopped cleanly; 1 the app could not be imported or the server could not
    start (bind, TLS); 2 a usage or configuration error; 3 the app refused to start (its
    preflight or lifespan startup failed).
    """
    from pounce.runner import serve_app

    config = build_config(config_file, **flags)
    if not config.app:
        fail("no app given", "pass --app module:attr, for example --app myapp:app", 2)
    try:
        code = serve_app(config, config_file, flags)
    except AppImportError as exc:
        fail(exc.message, exc.hint, 1)
    except ConfigurationError as exc:  # raised by the app while it was built
        fail(str(exc), "fix the setting or its environment variable", 2)
    except OSError as exc:
        fail(str(exc), "", 1)
    sys.exit(code)


@main.group()
def config() -> None:
    """Inspect pounce's configuration."""


@config.command("schema")
@click.option(
    "--output-format", type=click.Choice(["json", "toml-template"]), default="json", show_default=True
)
def config_schema(output_format: str) -> None:
    """Print every setting with its type and default.

    \b
    Examples:
      pounce config schema --output-format toml-template > pounce.toml
      pounce config schema --output-format json
    """
    from pounce.schema import json_schema, toml_template

    click.echo(json.dumps(json_schema(), indent=2) if output_format == "json" else toml_template())


@config.command("show")
@click.option(
    "--config", "config_file", type=click.Path(dir_okay=False), help="pounce.toml or pyproject.toml."
)
@click.option("--output-format", type=click.Choice(["toml", "json"]), default="toml", show_default=True)
def config_show(config_file: str | None, output_format: str) -> None:
    """Print the resolved configuration, secrets redacted.

    \b
    Example:
      pounce config show --config pounce.toml --output-format json
    """
    from pounce.schema import redacted, to_toml

    cfg = build_config(config_file)
    data = redacted(asdict(cfg))
    click.echo(json.dumps(data, indent=2) if output_format == "json" else to_toml(data))


# Registered last: the check command reuses `server_options` and `build_config` above.
from pounce.cli_check import check as _check  # noqa: E402

main.add_command(_check)
