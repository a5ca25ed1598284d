"""The report as JSON (`"schema": "chirp.check/1"`), the format baselines and tools consume."""

from __future__ import annotations

import json
from typing import Any

from chirp.contracts.model import Finding, Report, Rule, docs_hint

SCHEMA = "chirp.check/1"


def finding_dict(finding: Finding) -> dict[str, Any]:
    loc = finding.location
    return {
        "rule_id": finding.rule_id,
        "category": finding.category,
        "severity": finding.severity.label if finding.severity else "info",
        "message": finding.message,
        "hint": finding.hint,
        "docs": docs_hint(finding.rule_id, finding.docs),
        "location": None if loc is None else {"file": loc.relative(), "line": loc.line},
        "subject": finding.subject,
        "suppressed": None
        if finding.suppressed is None
        else {"reason": finding.suppressed.reason, "origin": finding.suppressed.origin},
        "fingerprint": finding.fingerprint,
    }


def rule_dict(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "category": rule.category,
        "title": rule.title,
        "severity": {env: (s.label if s else None) for env, s in rule.severity.items()},
        "hint": rule.hint,
        "docs": docs_hint(rule.id, rule.docs),
    }


def report_dict(report: Report) -> dict[str, Any]:
    data = {
        "schema": SCHEMA,
        "tool": report.tool,
        "version": report.version,
        "target": report.target,
        "env": report.env,
        "deploy": report.deploy,
        "fail_on": report.fail_on.label,
        "ok": report.ok,
        "counts": report.counts,
        "duration_ms": report.duration_ms,
        "rules_run": list(report.rules_run),
        "findings": [finding_dict(f) for f in report.findings],
        "error": None
        if report.error is None
        else {"code": report.error.code, "message": report.error.message, "hint": report.error.hint},
    }
    if "live" in report.meta:
        data["live"] = report.meta["live"]
    return data


def render_json(report: Report) -> str:
    return json.dumps(report_dict(report), indent=2, ensure_ascii=False) + "\n"
