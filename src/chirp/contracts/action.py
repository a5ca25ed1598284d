"""The GitHub Action's check step (`action.yml` at the repository root), runnable anywhere.

    INPUT_APP=myapp:app INPUT_DEPLOY=true python -m chirp.contracts.action

Inputs come from `INPUT_*` environment variables (the action passes its inputs that way):

=====================  =====================================================================
`INPUT_APP`            the app, `module:attr` (empty: `[tool.chirp.check] app` in pyproject)
`INPUT_DEPLOY`         `true`: judge the production posture (default `true`)
`INPUT_LIVE`           `true`: also boot the app and probe it over HTTP (`--live`)
`INPUT_ARTEFACTS`      deployment files or directories, space separated (`--artefact` each)
`INPUT_URL`            probe this deployed instance instead (`--url`), with `INPUT_CA_FILE`
`INPUT_FORMAT`         what to print to the log: `github` annotations (default) or any
                       `chirp check --format`
`INPUT_FAIL_ON`        `error`, `warning` or `info` (default: error; `--deploy` fails on warnings)
`INPUT_SARIF_FILE`     where to write SARIF (empty: no SARIF)
`INPUT_REPORT_FILE`    where to write the JSON report (default `chirp-check.json`)
`INPUT_POUNCE_CHECK`   `true`: also run `pounce check --app APP`
`INPUT_POUNCE_CONFIG`  a pounce.toml (or pyproject.toml) for `pounce check --config`
=====================  =====================================================================

It writes the annotations to stdout, a Markdown table to `$GITHUB_STEP_SUMMARY`, and the
outputs `report`, `sarif`, `errors`, `warnings`, `infos`, `suppressed`, `ok` and `exit-code`
to `$GITHUB_OUTPUT`; it exits with the worst exit code of the checks (0, 1, 2 or 3, as
`chirp check`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

TRUE = {"1", "true", "yes", "on"}


def flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    value = env.get(name, "").strip().lower()
    return default if not value else value in TRUE


def write_outputs(values: Mapping[str, object]) -> None:
    """Append `name=value` lines to `$GITHUB_OUTPUT` (when the runner provides it)."""
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        for name, value in values.items():
            fh.write(f"{name}={value}\n")


def run_chirp(env: Mapping[str, str]) -> tuple[int, dict[str, object]]:
    """The chirp check: one run, rendered for the log, the step summary, JSON and SARIF."""
    from chirp.cli_check import build_report, project_settings
    from chirp.contracts import output as out
    from chirp.contracts.model import Severity
    from chirp.contracts.render import FORMATS, renderer

    fmt = env.get("INPUT_FORMAT", "").strip() or "github"
    if fmt not in FORMATS:
        raise out.UsageError(f"unknown format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    fail_on = env.get("INPUT_FAIL_ON", "").strip()
    project_app = project_settings()
    app_path = env.get("INPUT_APP", "").strip() or project_app
    if not app_path:
        raise out.UsageError("no app given", "set the action's `app` input, e.g. app: myapp:app")
    from chirp.cli_check import remote_target

    url = env.get("INPUT_URL", "").strip()
    ca_file = env.get("INPUT_CA_FILE", "").strip() or None
    remote = remote_target(url, ca_file, None, live=flag(env, "INPUT_LIVE")) if url else None
    report = build_report(
        app_path,
        env=None,
        deploy=flag(env, "INPUT_DEPLOY", default=True) or bool(url),
        live=flag(env, "INPUT_LIVE"),
        artefacts=env.get("INPUT_ARTEFACTS", "").split() or None,
        read_artefacts=not url,
        remote=remote,
        warnings_as_errors=False,
        fail_on=Severity.parse(fail_on) if fail_on else None,
        select=(),
        ignore=(),
    )
    out.emit(report, fmt, None)  # the github format also appends the step summary
    if fmt != "github":
        from chirp.contracts.render.github import write_step_summary

        write_step_summary(report)
    report_file = Path(env.get("INPUT_REPORT_FILE", "").strip() or "chirp-check.json")
    report_file.write_text(renderer("json")(report), encoding="utf-8")
    sarif = env.get("INPUT_SARIF_FILE", "").strip()
    if sarif:
        Path(sarif).write_text(renderer("sarif")(report), encoding="utf-8")
    counts = report.counts
    return out.exit_code(report), {
        "report": report_file,
        "sarif": sarif,
        "errors": counts["error"],
        "warnings": counts["warning"],
        "infos": counts["info"],
        "suppressed": counts["suppressed"],
        "ok": str(report.ok).lower(),
    }


def run_pounce(env: Mapping[str, str]) -> int:
    """`pounce check` as its own command, annotating in the same format."""
    fmt = env.get("INPUT_FORMAT", "").strip() or "github"
    argv = [sys.executable, "-m", "pounce", "check", "--format", fmt]
    app = env.get("INPUT_APP", "").strip()
    if app:
        argv += ["--app", app]
    config = env.get("INPUT_POUNCE_CONFIG", "").strip()
    if config:
        argv += ["--config", config]
    sys.stdout.flush()
    return subprocess.run(argv, check=False).returncode


def main(env: Mapping[str, str] | None = None) -> int:
    from chirp.contracts import output as out

    env = os.environ if env is None else env
    try:
        code, values = run_chirp(env)
    except out.UsageError as exc:
        print(f"::error title=chirp check::{exc.message} ({exc.hint})", flush=True)
        code, values = out.EXIT_USAGE, {"report": "", "sarif": "", "ok": "false"}
    if flag(env, "INPUT_POUNCE_CHECK"):
        code = max(code, run_pounce(env))
    values["exit-code"] = code
    write_outputs(values)
    return code


if __name__ == "__main__":
    sys.exit(main())
