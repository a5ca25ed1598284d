"""SARIF 2.1.0 for code-scanning dashboards: one reportingDescriptor per rule, one result per finding."""

from __future__ import annotations

import json
from typing import Any

from chirp.contracts.model import Finding, Report, Rule, Severity, docs_url

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
INFO_URI = "https://pypi.org/project/chirp-pounce/"


def descriptor(rule: Rule) -> dict[str, Any]:
    highest = rule.highest
    url = docs_url(rule.docs)
    more = f"See [{url}]({url})." if url else f"Run `chirp check --explain {rule.id}`."
    out: dict[str, Any] = {
        "id": rule.id,
        "name": rule.id.replace(".", "_"),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.description or rule.title},
        "help": {"text": rule.hint, "markdown": f"{rule.hint}\n\n{more}"},
        "defaultConfiguration": {"level": LEVELS[highest] if highest else "none"},
        "properties": {"category": rule.category},
    }
    if url:
        out["helpUri"] = url  # a URI that resolves, or none at all
    return out


def result(finding: Finding, index: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "level": LEVELS[finding.severity or Severity.INFO],
        "message": {"text": f"{finding.message}. Fix: {finding.hint}"},
        "partialFingerprints": {"chirpFinding/v1": finding.fingerprint},
    }
    if finding.rule_id in index:
        out["ruleIndex"] = index[finding.rule_id]
    if finding.location is not None:
        region = {"startLine": finding.location.line} if finding.location.line else None
        physical: dict[str, Any] = {
            "artifactLocation": {"uri": finding.location.relative(), "uriBaseId": "%SRCROOT%"}
        }
        if region:
            physical["region"] = region
        out["locations"] = [{"physicalLocation": physical}]
    if finding.suppressed is not None:
        kind = "external" if finding.suppressed.origin == "pyproject.toml" else "inSource"
        out["suppressions"] = [
            {"kind": kind, "status": "accepted", "justification": finding.suppressed.reason}
        ]
    return out


def sarif_dict(report: Report) -> dict[str, Any]:
    rules = list(report.rules)
    seen = {r.id for r in rules}
    for finding in report.findings:  # findings of rules dropped after the run (baseline) still resolve
        if finding.rule_id not in seen and (extra := report.rule(finding.rule_id)) is not None:
            rules.append(extra)
            seen.add(extra.id)
    index = {r.id: i for i, r in enumerate(rules)}
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": f"{report.tool} check",
                "version": report.version or "0",
                "informationUri": INFO_URI,
                "rules": [descriptor(r) for r in rules],
            }
        },
        "results": [result(f, index) for f in report.findings],
        "properties": {"env": report.env, "deploy": report.deploy, "target": report.target},
    }
    invocation: dict[str, Any] = {"executionSuccessful": report.error is None}
    if report.error is not None:
        invocation["toolExecutionNotifications"] = [
            {
                "level": "error",
                "message": {
                    "text": f"{report.error.message} ({report.error.hint})"
                    if report.error.hint
                    else report.error.message
                },
                "descriptor": {"id": report.error.code},
            }
        ]
        run["properties"]["error"] = {
            "code": report.error.code,
            "message": report.error.message,
            "hint": report.error.hint,
        }
    run["invocations"] = [invocation]
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def render_sarif(report: Report) -> str:
    return json.dumps(sarif_dict(report), indent=2, ensure_ascii=False) + "\n"
