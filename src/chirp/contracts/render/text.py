"""Human-readable report for terminals and logs: grouped by category, fix and docs under each finding."""

from __future__ import annotations

from itertools import groupby

from chirp.contracts.model import Finding, Report, Severity, docs_hint

MARKS = {Severity.ERROR: "✗", Severity.WARNING: "▲", Severity.INFO: "·"}
COLOURS = {Severity.ERROR: "31", Severity.WARNING: "33", Severity.INFO: "36"}


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


def _where(finding: Finding) -> str:
    loc = finding.location
    if loc is None:
        return ""
    return f" ({loc.relative()}:{loc.line})" if loc.line else f" ({loc.relative()})"


def render_finding(finding: Finding, color: bool) -> list[str]:
    sev = finding.severity or Severity.INFO
    mark = _paint(MARKS[sev], COLOURS[sev], color)
    message = finding.message.replace("\n", "\n        ")  # a multi-line message (a log tail) stays indented
    head = f"  {mark} {finding.rule_id}: {message}{_where(finding)}"
    if finding.suppressed is not None:
        head += _paint(f"  [suppressed: {finding.suppressed.reason}]", "2", color)
    return [head, f"      fix:  {finding.hint}", f"      docs: {docs_hint(finding.rule_id, finding.docs)}"]


def summary(report: Report) -> str:
    c = report.counts
    what = "deploy check" if report.deploy else "check"
    verdict = "passed" if report.ok else "FAILED"
    parts = [f"{c['error']} error(s)", f"{c['warning']} warning(s)", f"{c['info']} info"]
    if c["suppressed"]:
        parts.append(f"{c['suppressed']} suppressed")
    bar = f"fail on {report.fail_on.label}+"
    return f"{report.tool} {what} {verdict} ({report.env}, {bar}): {', '.join(parts)}; {len(report.rules)} rules in {report.duration_ms:.0f} ms"


def live_line(live: dict[str, object]) -> str:
    """One line about the `--live` run: where the server ran and how long it all took."""
    if live.get("remote"):
        where = f"probed {live['url']}"
    else:
        where = f"served on {live['url']}" if live.get("url") else "server did not start"
    return f"live: {where} ({live.get('posture')} posture), {live.get('duration_ms', 0):.0f} ms"


def render_text(report: Report, color: bool = False) -> str:
    """The report as text; `color` adds ANSI colours (callers pass isatty and not NO_COLOR)."""
    if report.error is not None:
        hint = f"hint: {report.error.hint}\n" if report.error.hint else ""
        return _paint(f"error: {report.error.message}", "31", color) + "\n" + hint
    lines: list[str] = []
    target = f" {report.target}" if report.target else ""
    lines.append(f"{report.tool} check{target}")
    ordered = sorted(report.findings, key=lambda f: (f.category, f.sort_key()))
    for category, items in groupby(ordered, key=lambda f: f.category):
        lines.append("")
        lines.append(_paint(f"{category}", "1", color))
        for finding in items:
            lines.extend(render_finding(finding, color))
    if not report.findings:
        lines.append("  no findings")
    lines.append("")
    live = report.meta.get("live")
    if live:
        lines.append(live_line(live))
    verdict = summary(report)
    lines.append(_paint(verdict, "32" if report.ok else "31", color))
    return "\n".join(lines) + "\n"
