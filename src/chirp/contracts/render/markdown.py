"""A Markdown table for PR comments and the GitHub step summary."""

from __future__ import annotations

from chirp.contracts.model import Finding, Report, docs_url
from chirp.contracts.render.text import MARKS, summary


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _where(finding: Finding) -> str:
    loc = finding.location
    if loc is None:
        return ""
    return f"`{loc.relative()}:{loc.line}`" if loc.line else f"`{loc.relative()}`"


def render_markdown(report: Report) -> str:
    title = f"### {report.tool} check" + (f" `{report.target}`" if report.target else "")
    if report.error is not None:
        return f"{title}\n\n**error** ({report.error.code}): {_cell(report.error.message)}\n\n{_cell(report.error.hint)}\n"
    lines = [title, "", summary(report), ""]
    if not report.findings:
        return "\n".join([*lines, "No findings."]) + "\n"
    lines += ["| | Severity | Rule | Finding | Location | Fix |", "|---|---|---|---|---|---|"]
    for f in report.findings:
        sev = f.severity.label if f.severity else "info"
        mark = MARKS[f.severity] if f.severity else ""
        message = _cell(f.message) + (
            f" *(suppressed: {_cell(f.suppressed.reason)})*" if f.suppressed else ""
        )
        url = docs_url(f.docs)
        rule = f"[`{f.rule_id}`]({url})" if url else f"`{f.rule_id}`"
        lines.append(f"| {mark} | {sev} | {rule} | {message} | {_where(f)} | {_cell(f.hint)} |")
    return "\n".join(lines) + "\n"
