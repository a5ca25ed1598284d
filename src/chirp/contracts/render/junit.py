"""JUnit XML for CI test tabs: one testcase per rule run, failing when the rule found something."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from chirp.contracts.model import Report


def render_junit(report: Report) -> str:
    suite = ET.Element("testsuite", name=f"{report.tool} check", time=f"{report.duration_ms / 1000:.3f}")
    if report.error is not None:
        case = ET.SubElement(suite, "testcase", classname=f"{report.tool}.check", name="import")
        error = ET.SubElement(case, "error", type=report.error.code, message=report.error.message)
        error.text = report.error.hint
        suite.set("tests", "1")
        suite.set("errors", "1")
        suite.set("failures", "0")
        return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
    failures = 0
    for rule in report.rules:
        case = ET.SubElement(
            suite, "testcase", classname=f"{report.tool}.check.{rule.category}", name=rule.id
        )
        mine = [f for f in report.findings if f.rule_id == rule.id]
        failing = [
            f
            for f in mine
            if f.suppressed is None and f.severity is not None and f.severity >= report.fail_on
        ]
        if failing:
            failures += 1
            worst = failing[0]
            element = ET.SubElement(
                case,
                "failure",
                type=worst.severity.label if worst.severity else "info",
                message=worst.message,
            )
            element.text = "\n".join(
                f"{f.severity.label if f.severity else 'info'}: {f.message}"
                + (f" ({f.location.relative()}:{f.location.line})" if f.location else "")
                + f"\nfix: {f.hint}"
                for f in failing
            )
        others = [f for f in mine if f not in failing]
        if others:
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(
                f"{f.severity.label if f.severity else 'info'}: {f.message}"
                + (" [suppressed]" if f.suppressed else "")
                for f in others
            )
    suite.set("tests", str(len(report.rules)))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
