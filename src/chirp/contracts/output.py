"""What `chirp check` and `pounce check` share after the report exists: baselines, writing, exit codes."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

from chirp.contracts.model import Report, ReportError

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_BROKEN = 0, 1, 2, 3


class UsageError(Exception):
    """A bad flag or file named on the command line (exit 2)."""

    def __init__(self, message: str, hint: str = "") -> None:
        self.message = message
        self.hint = hint
        super().__init__(message)


def load_baseline(path: str) -> set[str]:
    """Fingerprints of the findings in a saved `--format json` report."""
    import json  # only a baseline needs it: the text report does not

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(
            f"cannot read baseline {path}: {exc.strerror or exc}", "save one with --format json --output FILE"
        ) from exc
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"baseline {path} is not JSON: {exc}", "save one with --format json --output FILE"
        ) from exc
    if (
        not isinstance(data, dict)
        or data.get("schema") != "chirp.check/1"
        or not isinstance(data.get("findings"), list)
    ):
        raise UsageError(
            f"baseline {path} is not a chirp check JSON report", "save one with --format json --output FILE"
        )
    return {f["fingerprint"] for f in data["findings"] if isinstance(f, dict) and "fingerprint" in f}


def without_baseline(report: Report, known: set[str]) -> Report:
    """Only findings that are new since the baseline."""
    return replace(report, findings=tuple(f for f in report.findings if f.fingerprint not in known))


def broken(
    tool: str,
    target: str | None,
    code: str,
    message: str,
    hint: str,
    env: str = "development",
    deploy: bool = False,
) -> Report:
    """The report for an app that could not be imported or built (exit 3)."""
    from chirp.contracts.runner import version

    return Report(
        env=env,
        deploy=deploy,
        target=target,
        tool=tool,
        version=version(),
        error=ReportError(code, message, hint),
    )


def exit_code(report: Report) -> int:
    if report.error is not None:
        return EXIT_BROKEN
    return EXIT_OK if report.ok else EXIT_FINDINGS


def use_color(output: str | None) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set."""
    return output is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ


def render(report: Report, fmt: str, color: bool) -> str:
    if fmt == "text":
        from chirp.contracts.render.text import render_text

        return render_text(report, color=color)
    from chirp.contracts.render import renderer

    return renderer(fmt)(report)


def write_text(text: str, output: str | None) -> None:
    """`text` to the `--output` file, or to stdout."""
    if output:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(
                f"cannot write {output}: {exc.strerror or exc}", "pick a writable --output path"
            ) from exc
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def emit(report: Report, fmt: str, output: str | None) -> None:
    """Write the rendered report to `output` or stdout (and the GitHub step summary when asked)."""
    text = render(report, fmt, use_color(output))
    if fmt == "text" and report.error is not None and not output:
        sys.stderr.write(text)
        return
    write_text(text, output)
    if fmt == "github":
        from chirp.contracts.render.github import write_step_summary

        write_step_summary(report)
