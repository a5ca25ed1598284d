"""The published reference stays in step with the rules and the report format."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from chirp.contracts import builtin_registry

ROOT = Path(__file__).resolve().parents[2]
LABEL = {None: "—"}


def test_every_category_has_a_page_with_every_rule_and_its_severities():
    for rule in builtin_registry():
        page = ROOT / rule.docs
        assert page.is_file(), rule.docs
        text = page.read_text()
        assert f"## `{rule.id}`" in text, rule.id
        row = " | ".join(
            rule.level(e).name if rule.level(e) else "—"
            for e in ("development", "test", "staging", "production")
        )
        assert f"| {row} |" in text.split(f"## `{rule.id}`")[1], rule.id
        assert rule.hint in text and "## Suppressing" in text


def test_report_schema_is_a_valid_json_schema():
    schema = json.loads((ROOT / "docs/reference/check-report.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)


def test_cli_pages_exist():
    for name in ("cli-chirp-check.md", "cli-pounce-check.md"):
        text = (ROOT / "docs/reference" / name).read_text()
        assert "Exit codes" in text and "--format" in text
