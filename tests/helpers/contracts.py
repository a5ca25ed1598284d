"""Assertions over contract reports shared by the contract tests."""

from __future__ import annotations

from typing import Any


def ids(report: Any) -> set[str]:
    return {f.rule_id for f in report.active}


def only(report: Any, rule_id: str) -> Any:
    found = [f for f in report.findings if f.rule_id == rule_id]
    assert len(found) == 1, f"expected one {rule_id}, got {found}"
    return found[0]
