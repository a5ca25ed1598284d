"""`chirp check`: run the deploy contract against an app from the command line or CI."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import click

from chirp.contracts.cli_options import report_options
from chirp.contracts.model import ENVIRONMENTS

EPILOG = """\b
Exit codes (the same for every format):
  0 passed   1 findings at or above the fail level   2 usage error
  3 the app could not be imported or built (JSON/SARIF still carry an `error` object)

\b
Examples:
  chirp check myapp:app
  chirp check myapp:app --deploy
  chirp check myapp:app --deploy --live
  chirp check myapp:app --url https://shop.example.com
  chirp check myapp:app --deploy --format sarif --output chirp.sarif
  chirp check myapp:create_app() --env staging --ignore deploy_metrics
  chirp check --list-rules
  chirp check --explain secret_key.weak
"""


@click.command(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("app_path", metavar="[APP]", required=False)
@click.option(
    "--deploy",
    is_flag=True,
    help="Judge the production posture (tighten-only); implies --warnings-as-errors.",
)
@click.option("--env", type=click.Choice(ENVIRONMENTS), help="Check as this env instead of the config's own.")
@report_options
@click.option(
    "--select", multiple=True, metavar="RULE", help="Only these rule ids or categories (repeatable)."
)
@click.option(
    "--ignore", multiple=True, metavar="RULE", help="Skip these rule ids or categories (repeatable)."
)
@click.option("--list-rules", is_flag=True, help="Print every rule with its per-env severities and exit.")
@click.option("--explain", metavar="RULE", help="Print one rule's documentation and exit.")
@click.option(
    "--live",
    is_flag=True,
    help="Also boot the app under pounce on a loopback port and verify it over real HTTP (live.* rules).",
)
@click.option(
    "--live-timeout",
    type=click.FloatRange(min=0.5),
    default=20.0,
    show_default=True,
    metavar="SECONDS",
    help="With --live: how long the server may take to listen and answer /ready with 200.",
)
@click.option(
    "--url",
    metavar="URL",
    help="Probe this deployed instance (https://host) over HTTP instead: the live.* rules only, "
    "judged as production unless --env says otherwise.",
)
@click.option(
    "--ca-file",
    type=click.Path(dir_okay=False),
    help="With --url: trust the certificates this PEM file signs (default: the system's CAs).",
)
@click.option(
    "--http-url",
    metavar="URL",
    help="With --url https://...: where plain HTTP is served (default: the same host on port 80).",
)
@click.option(
    "--artefact",
    "artefacts",
    multiple=True,
    metavar="PATH",
    help="Check this Dockerfile, Compose file, manifest or directory (repeatable) instead of the ones found.",
)
@click.option(
    "--no-artefacts", is_flag=True, help="Do not read Dockerfiles, Compose files or Kubernetes manifests."
)
@click.option(
    "--baseline",
    type=click.Path(dir_okay=False),
    help="Report only findings new since this saved JSON report.",
)
def check(app_path: str | None, **opts: Any) -> None:
    """Check APP (module:attr or module:factory()) against the deploy contract.

    Without APP, the `app` setting under [tool.chirp.check] in pyproject.toml is used.
    """
    from chirp.contracts.output import UsageError

    try:
        code = run_check(app_path, **opts)
    except UsageError as exc:
        click.echo(f"error: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"hint: {exc.hint}", err=True)
        sys.exit(2)
    sys.exit(code)


def run_check(
    app_path: str | None,
    *,
    deploy: bool,
    env: str | None,
    warnings_as_errors: bool,
    fail_on: str | None,
    fmt: str,
    output: str | None,
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    list_rules: bool,
    explain: str | None,
    live: bool,
    baseline: str | None,
    live_timeout: float = 20.0,
    artefacts: tuple[str, ...] = (),
    no_artefacts: bool = False,
    url: str | None = None,
    ca_file: str | None = None,
    http_url: str | None = None,
) -> int:
    """The whole command as a function returning the exit code; usage errors raise `UsageError`."""
    from chirp.contracts import output as out
    from chirp.contracts.model import Severity
    from chirp.contracts.registry import installed_registry
    from pounce.errors import ConfigurationError

    project_app = project_settings()
    if list_rules and explain:
        raise out.UsageError("--list-rules and --explain are exclusive", "ask for one of them")
    if list_rules or explain:
        from chirp.contracts.explain import explain_rule, list_rules_text

        try:
            registry = installed_registry()
        except ConfigurationError as exc:  # a rule pack that does not load
            raise out.UsageError(str(exc), exc.fix) from exc
        text = explain_rule(registry, explain, fmt) if explain else list_rules_text(registry, fmt)
        out.write_text(text, output)
        return out.EXIT_OK
    if deploy and env not in (None, "production"):
        raise out.UsageError(
            f"--deploy judges the production posture, not --env {env}",
            f"drop --env, or check {env} without --deploy",
        )
    app_path = app_path or project_app
    if not app_path:
        raise out.UsageError(
            "missing APP",
            "pass the app as module:attr, e.g. `chirp check myapp:app`, "
            'or set app = "myapp:app" under [tool.chirp.check] in pyproject.toml',
        )
    if artefacts and no_artefacts:
        raise out.UsageError("--artefact and --no-artefacts are exclusive", "drop one of them")
    if (ca_file or http_url) and not url:
        raise out.UsageError(
            "--ca-file and --http-url apply to --url", "add --url https://host, or drop them"
        )
    remote = remote_target(url, ca_file, http_url, live=live) if url else None
    if remote is not None and env is None:
        deploy = True  # a deployed instance is judged as production unless --env says otherwise
    known = out.load_baseline(baseline) if baseline else None
    report = build_report(
        app_path,
        env=env,
        deploy=deploy,
        warnings_as_errors=warnings_as_errors,
        fail_on=Severity.parse(fail_on) if fail_on else None,
        select=select,
        ignore=ignore,
        live=live,
        live_timeout=live_timeout,
        artefacts=None if no_artefacts else (list(artefacts) if artefacts else None),
        read_artefacts=not no_artefacts and remote is None,
        remote=remote,
    )
    if known is not None and report.error is None:
        report = out.without_baseline(report, known)
    out.emit(report, fmt, output)
    return out.exit_code(report)


def project_settings() -> str | None:
    """`[tool.chirp.check]` of the nearest pyproject.toml: its `docs_url` becomes where findings
    link to (unless CHIRP_DOCS_URL says otherwise); returns its `app`, for a bare `chirp check`."""
    from chirp.contracts import output as out
    from chirp.contracts.model import DOCS_URL_ENV
    from chirp.contracts.project import check_settings, find_upward
    from pounce.errors import ConfigurationError

    try:
        settings = check_settings(find_upward(os.getcwd(), "pyproject.toml"))
    except ConfigurationError as exc:
        raise out.UsageError(str(exc), "fix pyproject.toml") from exc
    docs = settings.get("docs_url")
    if isinstance(docs, str) and docs.strip():
        os.environ.setdefault(DOCS_URL_ENV, docs.strip())
    value = settings.get("app")
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise out.UsageError(
            f"[tool.chirp.check] app must be a string such as 'myapp:app', not {value!r}",
            "fix pyproject.toml",
        )
    return value.strip() if value else None


def build_report(
    app_path: str,
    *,
    env: str | None,
    deploy: bool,
    live: bool = False,
    live_timeout: float = 20.0,
    artefacts: list[str] | None = None,
    read_artefacts: bool = False,
    remote: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Import the app and check it; import/build failures become an error report.

    The app is imported as it would be launched in the env judged (`CHIRP_ENV` is the
    env of `--env`, or production with `deploy`), so an app that wires itself by environment
    is judged as it would really run; a missing production secret is reported, not raised.
    With `live`, the app is also booted under pounce (production posture with `deploy`,
    else its own config) and probed over HTTP; the `live.*` findings join the report. With
    `read_artefacts`, the project's deployment files (`artefacts` when named, else those found)
    are judged too.
    """
    from chirp.config import launched_as

    with launched_as("production" if deploy else env, report_missing_secret=True):
        return _build_report(
            app_path, env=env, deploy=deploy, live=live, live_timeout=live_timeout,
            artefacts=artefacts, read_artefacts=read_artefacts, remote=remote, **kwargs,
        )  # fmt: skip


def _build_report(
    app_path: str,
    *,
    env: str | None,
    deploy: bool,
    live: bool,
    live_timeout: float,
    artefacts: list[str] | None,
    read_artefacts: bool,
    remote: dict[str, Any] | None,
    **kwargs: Any,
) -> Any:
    from chirp.app import App
    from chirp.contracts import output as out
    from chirp.contracts.runner import check_app, check_names
    from pounce.errors import AppImportError, ConfigurationError
    from pounce.importer import import_app
    from pounce.wrapped import wrapped_chain

    posture = "production" if deploy else env
    try:
        app = import_app(app_path)
    except AppImportError as exc:
        return out.broken(
            "chirp", app_path, "import_failed", exc.message, exc.hint, posture or "development", deploy
        )
    except ConfigurationError as exc:
        return out.broken(
            "chirp", app_path, "configuration", str(exc), exc.fix, posture or "development", deploy
        )
    app = next((a for a in wrapped_chain(app) if isinstance(a, App)), app)  # the App inside middleware
    if not isinstance(app, App):
        return out.broken(
            "chirp", app_path, "not_a_chirp_app", f"{app_path} is a {type(app).__name__}, not a chirp App",
            "point at the App instance, or use `pounce check --app` for other ASGI apps",
            posture or "development", deploy,
        )  # fmt: skip
    if app.import_path is None:
        app.import_path = app_path
    started = time.perf_counter()
    observed = None
    try:
        check_names(app, kwargs.get("select", ()), kwargs.get("ignore", ()))  # before booting anything
        files = _artefacts(app, artefacts) if read_artefacts else None
        if remote is not None:
            from chirp.contracts.live.remote import run_remote

            posture = "production" if deploy else (env or app.config.env)
            observed = run_remote(app, posture=posture, timeout=live_timeout, **remote)
        elif live and _live_selected(kwargs.get("select", ()), kwargs.get("ignore", ())):
            from chirp.contracts.live.probes import run_live

            observed = run_live(app, app_path, production=deploy, timeout=live_timeout)
        report = check_app(
            app, env=env, deploy=deploy, live=observed, artefacts=files, remote=remote is not None, **kwargs
        )
    except ConfigurationError as exc:
        if exc.field == "--select/--ignore":
            raise out.UsageError(
                str(exc), "see `chirp check --list-rules` for rule ids and categories"
            ) from exc
        return out.broken(
            "chirp", app_path, "configuration", str(exc), exc.fix, posture or app.config.env, deploy
        )
    if observed is not None:
        from chirp.contracts.live.observe import summary

        report = report.with_changes(
            meta={**report.meta, "live": summary(observed)},
            duration_ms=round((time.perf_counter() - started) * 1000, 3),  # the live run included
        )
    return report


def remote_target(url: str, ca_file: str | None, http_url: str | None, *, live: bool) -> dict[str, Any]:
    """The `--url` run's arguments, each checked before anything is imported."""
    from urllib.parse import urlsplit

    from chirp.contracts import output as out

    if live:
        raise out.UsageError(
            "--url and --live are exclusive", "--live boots the app; --url probes a deployed one"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise out.UsageError(
            f"--url {url!r} is not an http(s) origin",
            "pass scheme://host[:port], e.g. https://shop.example.com",
        )
    if ca_file is not None and not os.path.isfile(ca_file):
        raise out.UsageError(f"--ca-file {ca_file} does not exist", "name a PEM file of CA certificates")
    if http_url is not None and (urlsplit(http_url).scheme != "http" or parts.scheme != "https"):
        raise out.UsageError(
            f"--http-url {http_url!r} needs an http:// URL and an https --url",
            "e.g. --http-url http://shop.example.com",
        )
    return {"url": url, "ca_file": ca_file, "http_url": http_url}


def _artefacts(app: Any, paths: list[str] | None) -> Any:
    """The project's deployment files, read; a bad path named by the user is a usage error."""
    from chirp.contracts import output as out
    from chirp.contracts.artefacts.discover import ArtefactError, for_app

    try:
        return for_app(app, paths)
    except ArtefactError as exc:
        raise out.UsageError(exc.message, exc.hint) from exc


def _live_selected(select: tuple[str, ...], ignore: tuple[str, ...]) -> bool:
    """Whether any `live.*` rule survives --select/--ignore (if none does, nothing is booted)."""
    from chirp.contracts.registry import installed_registry

    def hit(rule_id: str, category: str, names: tuple[str, ...]) -> bool:
        return rule_id in names or category in names

    return any(
        (not select or hit(r.id, r.category, select)) and not hit(r.id, r.category, ignore)
        for r in installed_registry().with_tag("live")
    )
