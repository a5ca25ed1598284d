"""Every built-in app rule: a misconfigured app fires it at the documented severity per env,
pointing at the right line; its correctly configured twin does not fire it."""

from __future__ import annotations

import pytest

from chirp.contracts.model import Severity
from helpers.contracts import only
from helpers.rule_cases import CASES, HEAD

ENVS = ("development", "test", "staging", "production")
S = {"E": Severity.ERROR, "W": Severity.WARNING, "I": Severity.INFO, "-": None}


def _case_id(case: tuple[str, ...]) -> str:
    return case[0]


@pytest.mark.parametrize(("rule_id", "levels", "bad", "good"), CASES, ids=[_case_id(c) for c in CASES])
def test_rule_fires_with_severity_per_env_and_location(load_app, rule_id, levels, bad, good):
    mod = load_app(HEAD + bad)
    expected = dict(zip(ENVS, (S[x] for x in levels.split(",")), strict=True))
    for env in ENVS:
        report = mod.app.check(env=env)
        found = [f for f in report.findings if f.rule_id == rule_id]
        if expected[env] is None:
            assert found == [], f"{rule_id} must be silent in {env}"
            continue
        assert len(found) == 1, f"{rule_id} in {env}: {found}"
        finding = found[0]
        assert finding.severity == expected[env], env
        assert finding.category == rule_id.split(".")[0]
        assert finding.location is not None
        assert finding.location.file == str(mod.path)
        assert finding.location.line == mod.line("# here")
        assert finding.hint and finding.docs == f"docs/reference/rules/{finding.category}.md"


@pytest.mark.parametrize(("rule_id", "levels", "bad", "good"), CASES, ids=[_case_id(c) for c in CASES])
def test_correct_twin_is_clean(load_app, rule_id, levels, bad, good):
    mod = load_app(HEAD + good)
    for env in ENVS:
        assert [f for f in mod.app.check(env=env).findings if f.rule_id == rule_id] == []


def test_hardcoded_is_silent_when_the_key_comes_from_the_environment(load_app, monkeypatch):
    monkeypatch.setenv("CHIRP_SECRET_KEY", "q8Vd2kPz7LmX4sRt9WbY1nHc6JfA3eUg")
    mod = load_app(
        HEAD + "config = AppConfig.from_env()\napp = App(config)\n# q8Vd2kPz7LmX4sRt9WbY1nHc6JfA3eUg\n"
    )
    assert "secret_key.hardcoded" not in {f.rule_id for f in mod.app.check(env="staging").findings}


def test_fallback_equal_to_key_is_reported(load_app):
    mod = load_app(
        HEAD + "config = AppConfig(secret_key=KEY, secret_key_fallbacks=(KEY,))\napp = App(config)\n"
    )
    finding = only(mod.app.check(env="production"), "secret_key.fallback_weak")
    assert "repeats the current secret_key" in finding.message
    assert finding.subject == "secret_key_fallbacks[0]"


def test_secret_values_never_appear_in_messages(load_app):
    mod = load_app(
        HEAD + 'config = AppConfig(secret_key="hunter2", secret_key_fallbacks=("tiny",))\napp = App(config)\n'
    )
    report = mod.app.check(env="production")
    text = " ".join(f.message for f in report.findings)
    assert "secret_key.weak" in {f.rule_id for f in report.findings}
    assert "hunter2" not in text and "tiny" not in text
