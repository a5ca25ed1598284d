"""The composite GitHub Action, run locally: its own `run:` scripts from action.yml, with
`$GITHUB_OUTPUT` and `$GITHUB_STEP_SUMMARY` pointing at temporary files."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from helpers.action import ACTION, Runner, step

ROOT = Path(__file__).resolve().parents[2]
REPORT_SCHEMA = json.loads((ROOT / "docs/reference/check-report.schema.json").read_text())
SARIF_SCHEMA = json.loads((Path(__file__).parent / "sarif-2.1.0-rtm.5.schema.json").read_text())

GOOD = """\
import os
from chirp import App, AppConfig
from chirp.middleware import secure_stack

config = AppConfig.from_env(allowed_hosts=("example.com",), metrics_enabled=True)
app = App(config)
for middleware in secure_stack(config):
    app.add_middleware(middleware)


@app.route("/")
def index():
    return "hello"
"""

BAD = """\
from chirp import App, AppConfig

app = App(AppConfig(debug=True))


@app.route("/form", methods=["POST"])
def form():
    return "ok"
"""


def test_the_action_declares_the_documented_inputs_and_outputs():
    assert ACTION["runs"]["using"] == "composite"
    assert {
        "app",
        "deploy",
        "live",
        "format",
        "sarif-file",
        "fail-on",
        "python-version",
        "pounce-check",
    } <= set(ACTION["inputs"])
    assert {"report", "sarif", "errors", "warnings", "infos", "exit-code"} <= set(ACTION["outputs"])
    check_env = step("chirp check")["env"]
    for name in ("app", "deploy", "live", "format", "fail-on", "sarif-file", "pounce-check"):
        assert check_env[f"INPUT_{name.upper().replace('-', '_')}"] == f"${{{{ inputs.{name} }}}}"
    assert "${{" not in step("chirp check")["run"]  # inputs only through env: no script injection
    upload = step("Upload SARIF")
    assert upload["uses"].startswith("github/codeql-action/upload-sarif@")


def test_a_passing_app_writes_outputs_summary_report_and_sarif(tmp_path):
    (tmp_path / "myapp.py").write_text(GOOD)
    runner = Runner(tmp_path, app="myapp:app", sarif_file="chirp.sarif", pounce_check="true")
    result = runner.run("chirp check")
    assert result.returncode == 0, result.stdout + result.stderr
    outputs = runner.outputs()
    assert outputs["exit-code"] == "0" and outputs["ok"] == "true"
    assert outputs["errors"] == outputs["warnings"] == "0"
    report = json.loads((tmp_path / outputs["report"]).read_text())
    jsonschema.validate(report, REPORT_SCHEMA)
    assert report["deploy"] is True and report["ok"] is True
    sarif = json.loads((tmp_path / "chirp.sarif").read_text())
    jsonschema.validate(sarif, SARIF_SCHEMA)
    assert outputs["sarif"] == "chirp.sarif"
    summary = runner.summary.read_text()
    assert "### chirp check `myapp:app`" in summary and "chirp deploy check passed" in summary
    assert "pounce check passed" in summary  # pounce check ran too, in the same format
    fail = runner.run("Fail on findings", {"EXIT_CODE": outputs["exit-code"]})
    assert fail.returncode == 0


def test_a_failing_app_annotates_summarises_and_then_fails_the_job(tmp_path):
    (tmp_path / "myapp.py").write_text(BAD)
    runner = Runner(tmp_path, app="myapp:app", sarif_file="out/chirp.sarif")
    (tmp_path / "out").mkdir()
    result = runner.run("chirp check")
    assert result.returncode == 0, result.stderr  # the step records; the last step fails the job
    assert "::error file=myapp.py,line=3,title=deploy_debug.enabled::" in result.stdout
    outputs = runner.outputs()
    assert outputs["exit-code"] == "1" and outputs["ok"] == "false"
    assert int(outputs["errors"]) >= 3
    summary = runner.summary.read_text()
    assert "deploy_debug.enabled" in summary and "security_stack.missing" in summary
    sarif = json.loads((tmp_path / "out/chirp.sarif").read_text())
    results = sarif["runs"][0]["results"]
    assert any(r["ruleId"] == "deploy_debug.enabled" for r in results)
    fail = runner.run("Fail on findings", {"EXIT_CODE": outputs["exit-code"]})
    assert fail.returncode == 1 and "exit code 1" in fail.stdout


def test_without_deploy_the_apps_own_env_is_judged_with_the_fail_on_input(tmp_path):
    (tmp_path / "myapp.py").write_text(BAD)
    runner = Runner(tmp_path, app="myapp:app", deploy="false", format="text", fail_on="warning")
    result = runner.run("chirp check")
    outputs = runner.outputs()
    assert outputs["exit-code"] == "1", result.stdout
    assert "deploy_debug.enabled" not in result.stdout  # silent in development
    assert "security_stack.headers_missing" in result.stdout
    assert "chirp check FAILED (development, fail on warning+)" in result.stdout
    assert "security_stack.headers_missing" in runner.summary.read_text()  # text log, summary still written


def test_an_app_that_does_not_import_reports_exit_3(tmp_path):
    (tmp_path / "myapp.py").write_text("import not_installed_anywhere\n")
    runner = Runner(tmp_path, app="myapp:app")
    result = runner.run("chirp check")
    outputs = runner.outputs()
    assert outputs["exit-code"] == "3", result.stdout
    assert result.stdout.startswith("::error title=chirp check::")
    report = json.loads((tmp_path / "chirp-check.json").read_text())
    assert report["error"]["code"] == "import_failed"


def test_a_missing_app_input_is_a_usage_error(tmp_path):
    runner = Runner(tmp_path)
    result = runner.run("chirp check")
    assert runner.outputs()["exit-code"] == "2"
    assert "::error title=chirp check::no app given" in result.stdout


@pytest.mark.parametrize("live", ["true"])
def test_live_runs_through_the_action(tmp_path, live):
    (tmp_path / "myapp.py").write_text(GOOD)
    runner = Runner(tmp_path, app="myapp:app", live=live)
    result = runner.run("chirp check", {"CHIRP_ENV": "production"})
    outputs = runner.outputs()
    assert outputs["exit-code"] == "0", result.stdout
    report = json.loads((tmp_path / "chirp-check.json").read_text())
    assert report["live"]["booted"] and report["live"]["ready"]
