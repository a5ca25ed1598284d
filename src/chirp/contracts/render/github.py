"""GitHub Actions workflow commands: inline annotations, capped, plus the job step summary."""

from __future__ import annotations

import os

from chirp.contracts.model import Finding, Report, Severity

CAP = 10
COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(finding: Finding) -> str:
    props = []
    if finding.location is not None:
        props.append(f"file={_escape_property(finding.location.relative())}")
        if finding.location.line:
            props.append(f"line={finding.location.line}")
    props.append(f"title={_escape_property(finding.rule_id)}")
    command = COMMANDS[finding.severity or Severity.INFO]
    return f"::{command} {','.join(props)}::{_escape_data(f'{finding.message}. Fix: {finding.hint}')}"


def render_github(report: Report) -> str:
    if report.error is not None:
        return f"::error title={report.tool} check::{_escape_data(f'{report.error.message} ({report.error.hint})')}\n"
    lines: list[str] = []
    skipped = {Severity.ERROR: 0, Severity.WARNING: 0}
    shown = {Severity.ERROR: 0, Severity.WARNING: 0}
    for f in report.active:
        sev = f.severity or Severity.INFO
        if sev in shown:
            if shown[sev] >= CAP:
                skipped[sev] += 1
                continue
            shown[sev] += 1
        lines.append(annotation(f))
    if any(skipped.values()):
        lines.append(
            f"::notice title={report.tool} check::{skipped[Severity.ERROR]} more error(s) and "
            f"{skipped[Severity.WARNING]} more warning(s) not annotated; see the full report"
        )
    from chirp.contracts.render.text import summary

    lines.append(summary(report))
    return "\n".join(lines) + "\n"


def write_step_summary(report: Report) -> None:
    """Append the Markdown table to $GITHUB_STEP_SUMMARY when the job provides one."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    from chirp.contracts.render.markdown import render_markdown

    with open(path, "a", encoding="utf-8") as fh:
        fh.write(render_markdown(report) + "\n")
