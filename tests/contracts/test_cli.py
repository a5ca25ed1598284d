"""`chirp check` and `pounce check` end to end, as subprocesses, with every format and exit code."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[2]
REPORT_SCHEMA = json.loads((ROOT / "docs/reference/check-report.schema.json").read_text())
SARIF_SCHEMA = json.loads((Path(__file__).parent / "sarif-2.1.0-rtm.5.schema.json").read_text())
FORMATS = ("text", "json", "sarif", "github", "junit", "markdown")

GOOD = """\
import secrets
from chirp import App, AppConfig
from chirp.middleware import secure_stack

config = AppConfig.from_env(secret_key=secrets.token_urlsafe(48), allowed_hosts=("example.com",), metrics_enabled=True)
app = App(config)
for middleware in secure_stack(config):
    app.add_middleware(middleware)


@app.route("/post", methods=["POST"])
def post():
    return "ok"
"""

BAD = """\
from chirp import App, AppConfig

app = App(AppConfig(debug=True))


@app.route("/health")
def mine():
    return "shadowed"


@app.route("/form", methods=["POST"])
def form():
    return "ok"
"""


def _chirp_cmd() -> list[str]:
    from chirp.cli import main

    if "check" in getattr(main, "commands", {}):
        return [sys.executable, "-m", "chirp", "check"]
    return [
        sys.executable,
        "-c",
        "import sys; from chirp.cli_check import check; check(sys.argv[1:], prog_name='chirp check')",
    ]


def _pounce_cmd() -> list[str]:
    from pounce.cli import main

    if "check" in getattr(main, "commands", {}):
        return [sys.executable, "-m", "pounce", "check"]
    return [
        sys.executable,
        "-c",
        "import sys; from pounce.cli_check import check; check(sys.argv[1:], prog_name='pounce check')",
    ]


def run(
    cmd: list[str], *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("CHIRP_", "GITHUB_"))}
    full_env.update(env or {})
    return subprocess.run([*cmd, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "goodapp.py").write_text(GOOD)
    (tmp_path / "badapp.py").write_text(BAD)
    (tmp_path / "crashapp.py").write_text("raise RuntimeError('database url missing')\n")
    (tmp_path / "factoryapp.py").write_text(
        GOOD.replace("app = App(config)", "app = App(config)\ndef create():\n    return app")
    )
    (tmp_path / "plainasgi.py").write_text("async def app(scope, receive, send):\n    pass\n")
    return tmp_path


def test_a_stack_built_for_development_fails_the_gate_and_the_launch(project: Path) -> None:
    """An `AppConfig(...)` that ignores CHIRP_ENV builds the secure stack for development;
    `chirp run --production` makes the app's config production, not the middleware built from
    the old one: the session cookie would go out without Secure. The gate and the launch refuse."""
    (project / "plainapp.py").write_text(GOOD.replace("AppConfig.from_env(", "AppConfig("))
    env = {"CHIRP_SECRET_KEY": secrets.token_urlsafe(48)}
    gate = run(_chirp_cmd(), "plainapp:app", "--deploy", "--format", "json", cwd=project, env=env)
    assert gate.returncode == 1, gate.stderr
    (finding,) = json.loads(gate.stdout)["findings"]
    assert finding["rule_id"] == "cookie.built_for_development" and finding["severity"] == "error"
    assert "without Secure" in finding["message"] and finding["location"]["file"] == "plainapp.py"
    launch = run([sys.executable, "-m", "chirp", "run", "plainapp:app", "--production", "--port", "0"],
                 cwd=project, env=env)  # fmt: skip
    assert launch.returncode == 3 and "cookie.built_for_development" in launch.stderr
    # Built from the config it serves with, the same app passes (the launch is the verdict tests').
    assert run(_chirp_cmd(), "goodapp:app", "--deploy", cwd=project, env=env).returncode == 0
    # In process, after a development import, the app gets the benefit of the doubt.
    assert run([sys.executable, "-c", "import plainapp; r = plainapp.app.check(deploy=True); "
                "assert 'cookie.built_for_development' not in {f.rule_id for f in r.findings}"],
               cwd=project).returncode == 0  # fmt: skip


def validate(fmt: str, text: str) -> None:
    if fmt == "json":
        jsonschema.validate(json.loads(text), REPORT_SCHEMA, cls=jsonschema.Draft202012Validator)
    elif fmt == "sarif":
        jsonschema.validate(json.loads(text), SARIF_SCHEMA, cls=jsonschema.Draft4Validator)
    elif fmt == "junit":
        import xml.etree.ElementTree as ET

        ET.fromstring(text)


@pytest.mark.parametrize("fmt", FORMATS)
def test_exit_codes_identical_for_every_format(project, fmt):
    cmd = _chirp_cmd()
    good = run(cmd, "goodapp:app", "--deploy", "--format", fmt, cwd=project)
    assert good.returncode == 0, good.stderr + good.stdout
    validate(fmt, good.stdout)
    bad = run(cmd, "badapp:app", "--format", fmt, cwd=project)
    assert bad.returncode == 1, bad.stderr
    validate(fmt, bad.stdout)
    broken = run(cmd, "crashapp:app", "--format", fmt, cwd=project)
    assert broken.returncode == 3
    if fmt == "text":
        assert broken.stdout == "" and broken.stderr.startswith(
            "error: importing 'crashapp' raised RuntimeError"
        )
    else:
        validate(fmt, broken.stdout)
    usage = run(cmd, "goodapp:app", "--select", "nonsense.rule", "--format", fmt, cwd=project)
    assert usage.returncode == 2 and usage.stderr.startswith("error:")


def test_json_error_object_on_import_failure(project):
    out = run(_chirp_cmd(), "crashapp:app", "--format", "json", cwd=project)
    data = json.loads(out.stdout)
    assert out.returncode == 3 and data["ok"] is False
    assert data["error"]["code"] == "import_failed" and "database url missing" in data["error"]["message"]
    assert data["error"]["hint"]


def test_sarif_error_and_results(project):
    broken = json.loads(run(_chirp_cmd(), "missingmod:app", "--format", "sarif", cwd=project).stdout)
    invocation = broken["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert broken["runs"][0]["properties"]["error"]["code"] == "import_failed"
    sarif = json.loads(run(_chirp_cmd(), "badapp:app", "--format", "sarif", cwd=project).stdout)
    run0 = sarif["runs"][0]
    rule_ids = [r["id"] for r in run0["tool"]["driver"]["rules"]]
    assert len(rule_ids) == len(set(rule_ids)) and "deploy_health.collision" in rule_ids
    collision = next(r for r in run0["results"] if r["ruleId"] == "deploy_health.collision")
    location = collision["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "badapp.py" and location["region"]["startLine"] == 6
    assert collision["partialFingerprints"]["chirpFinding/v1"]
    assert rule_ids[collision["ruleIndex"]] == "deploy_health.collision"


def test_sarif_marks_suppressed_findings(project):
    (project / "pyproject.toml").write_text(
        '[tool.chirp.check]\nsuppress = [{ rule = "deploy_health.collision", reason = "legacy probe handler" }]\n'
    )
    out = run(_chirp_cmd(), "badapp:app", "--format", "sarif", cwd=project)
    validate("sarif", out.stdout)
    results = json.loads(out.stdout)["runs"][0]["results"]
    collision = next(r for r in results if r["ruleId"] == "deploy_health.collision")
    assert collision["suppressions"][0]["justification"] == "legacy probe handler"
    assert out.returncode == 0  # the only ERROR is suppressed
    data = json.loads(run(_chirp_cmd(), "badapp:app", "--format", "json", cwd=project).stdout)
    assert data["counts"]["suppressed"] == 1
    assert (
        next(f for f in data["findings"] if f["rule_id"] == "deploy_health.collision")["suppressed"]["origin"]
        == "pyproject.toml"
    )


def test_text_output_groups_and_marks(project):
    out = run(_chirp_cmd(), "badapp:app", "--env", "production", cwd=project)
    assert out.returncode == 1
    text = out.stdout
    assert "\x1b[" not in text  # not a TTY: no colour
    assert "deploy_health\n  ✗ deploy_health.collision" in text
    assert "fix:  " in text and "docs: chirp check --explain deploy_health.collision" in text
    assert "(badapp.py:6)" in text
    assert text.rstrip().splitlines()[-1].startswith("chirp check FAILED (production")


def test_deploy_flag_fails_on_warnings_and_fail_on(project):
    weak = project / "weakapp.py"
    weak.write_text(GOOD.replace("secrets.token_urlsafe(48)", "secrets.token_urlsafe(8)"))
    assert run(_chirp_cmd(), "weakapp:app", cwd=project).returncode == 0  # WARNING in development
    assert run(_chirp_cmd(), "weakapp:app", "--warnings-as-errors", cwd=project).returncode == 1
    assert run(_chirp_cmd(), "weakapp:app", "--fail-on", "warning", cwd=project).returncode == 1
    assert run(_chirp_cmd(), "weakapp:app", "--deploy", cwd=project).returncode == 1
    assert (
        run(_chirp_cmd(), "goodapp:app", "--env", "production", "--fail-on", "info", cwd=project).returncode
        == 0
    )


def test_output_file_and_baseline(project):
    baseline = project / "baseline.json"
    first = run(_chirp_cmd(), "badapp:app", "--format", "json", "--output", str(baseline), cwd=project)
    assert first.returncode == 1 and first.stdout == "" and baseline.exists()
    again = run(_chirp_cmd(), "badapp:app", "--baseline", str(baseline), "--format", "json", cwd=project)
    assert again.returncode == 0 and json.loads(again.stdout)["findings"] == []
    (project / "badapp.py").write_text(
        BAD.replace("AppConfig(debug=True)", "AppConfig(debug=True, allowed_hosts=())")
    )
    new = run(_chirp_cmd(), "badapp:app", "--baseline", str(baseline), "--format", "json", cwd=project)
    assert new.returncode == 1 and [f["rule_id"] for f in json.loads(new.stdout)["findings"]] == [
        "allowed_hosts.empty"
    ]
    for bad_file, content in (
        ("missing.json", None),
        ("junk.json", "{not json"),
        ("other.json", '{"schema": "x"}'),
    ):
        if content is not None:
            (project / bad_file).write_text(content)
        out = run(_chirp_cmd(), "badapp:app", "--baseline", bad_file, cwd=project)
        assert out.returncode == 2 and out.stderr.startswith("error:"), bad_file


def test_github_format_caps_and_step_summary(project):
    many = "\n".join(
        f'@app.route("/m{i}", methods=["POST"])\ndef m{i}():\n    return "x"\n' for i in range(3)
    )
    (project / "manyapp.py").write_text(
        "from chirp import App, AppConfig, HealthCheck\nfrom chirp.contracts import rule, everywhere, Severity, Finding\n"
        "app = App(AppConfig())\n"
        "@rule('acme.many', title='Many', severity=everywhere(Severity.ERROR), hint='Fix.')\n"
        "def many(snap):\n    for i in range(15):\n        yield Finding(f'problem {i}', subject=str(i))\n"
        "@rule('acme.warn', title='Warn', severity=everywhere(Severity.WARNING), hint='Fix.')\n"
        "def warn(snap):\n    for i in range(12):\n        yield Finding(f'w {i}', subject=str(i))\n"
        "app.add_contract_rule(many)\napp.add_contract_rule(warn)\n" + many
    )
    summary = project / "summary.md"
    out = run(
        _chirp_cmd(),
        "manyapp:app",
        "--format",
        "github",
        cwd=project,
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert sum(line.startswith("::error ") for line in lines) == 10
    assert sum(line.startswith("::warning ") for line in lines) == 10
    assert any("5 more error(s) and 3 more warning(s)" in line for line in lines)
    table = summary.read_text()
    assert "| | Severity | Rule |" in table and "acme.many" in table
    bad = run(_chirp_cmd(), "badapp:app", "--format", "github", cwd=project).stdout.splitlines()
    annotated = next(line for line in bad if "deploy_health.collision" in line)
    assert annotated.startswith("::error file=badapp.py,line=6,title=deploy_health.collision::")


def test_junit_one_testcase_per_rule_run(project):
    import xml.etree.ElementTree as ET

    out = run(_chirp_cmd(), "badapp:app", "--format", "junit", "--env", "production", cwd=project)
    suite = ET.fromstring(out.stdout)
    data = json.loads(
        run(_chirp_cmd(), "badapp:app", "--format", "json", "--env", "production", cwd=project).stdout
    )
    names = [case.get("name") for case in suite.iter("testcase")]
    assert names == data["rules_run"]
    failed = {case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None}
    assert "deploy_health.collision" in failed and int(suite.get("failures")) == len(failed)


def test_markdown_table(project):
    out = run(_chirp_cmd(), "badapp:app", "--format", "markdown", cwd=project)
    assert "| ✗ | error | `deploy_health.collision` |" in out.stdout


def test_list_rules_and_explain(project):
    listed = run(_chirp_cmd(), "--list-rules", cwd=project)
    assert listed.returncode == 0
    row = next(line for line in listed.stdout.splitlines() if line.startswith("secret_key.weak "))
    assert row.split()[1:5] == ["warning", "warning", "warning", "error"]
    as_json = json.loads(run(_chirp_cmd(), "--list-rules", "--format", "json", cwd=project).stdout)
    assert {r["id"] for r in as_json} >= {"tls.files", "introspection.public", "bind.unavailable"}
    explained = run(_chirp_cmd(), "--explain", "hsts.missing", cwd=project)
    assert (
        explained.returncode == 0
        and "production   warning" in explained.stdout
        and "app.suppress(" in explained.stdout
    )
    unknown = run(_chirp_cmd(), "--explain", "hsts.mising", cwd=project)
    assert unknown.returncode == 2 and "did you mean 'hsts.missing'" in unknown.stderr
    category = run(_chirp_cmd(), "--explain", "workers", cwd=project)
    assert category.returncode == 0
    assert "workers.single_with_state:" in category.stdout and "workers.count:" in category.stdout
    pages = json.loads(run(_chirp_cmd(), "--explain", "workers", "--format", "json", cwd=project).stdout)
    assert {p["category"] for p in pages} == {"workers"} and len(pages) >= 2
    near = run(_chirp_cmd(), "--explain", "worker", cwd=project)
    assert near.returncode == 2 and "did you mean 'workers'" in near.stderr
    typo = run(_chirp_cmd(), "goodapp:app", "--select", "secret_key.emty", cwd=project)
    assert typo.returncode == 2 and "did you mean 'secret_key.empty'" in typo.stderr
    one = json.loads(run(_chirp_cmd(), "--explain", "hsts.missing", "--format", "json", cwd=project).stdout)
    assert one["id"] == "hsts.missing" and one["severity"]["production"] == "warning" and one["description"]
    table = run(_chirp_cmd(), "--list-rules", "--format", "markdown", cwd=project).stdout
    assert "| `secret_key.weak` | warning | warning | warning | error |" in table
    listed_to_file = run(_chirp_cmd(), "--list-rules", "--output", "rules.txt", cwd=project)
    assert listed_to_file.stdout == "" and "secret_key.weak" in (project / "rules.txt").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--list-rules", "--format", "sarif"], "--format sarif does not apply to --list-rules"),
        (["--list-rules", "--format", "junit"], "--format junit does not apply to --list-rules"),
        (["--explain", "hsts.missing", "--format", "github"], "--format github does not apply to --explain"),
        (["--list-rules", "--explain", "hsts.missing"], "--list-rules and --explain are exclusive"),
        (["goodapp:app", "--deploy", "--env", "staging"], "--deploy judges the production posture"),
    ],
)
def test_catalogue_and_posture_usage_errors(project, args, message):
    out = run(_chirp_cmd(), *args, cwd=project)
    assert out.returncode == 2 and f"error: {message}" in out.stderr and "hint: " in out.stderr
    assert out.stdout == ""


def test_usage_errors(project):
    for args in (
        ["--live"],
        ["--live", "goodapp:app", "--live-timeout", "0"],
        [],
        ["goodapp:app", "--format", "yaml"],
        ["goodapp:app", "--env", "prod"],
    ):
        out = run(_chirp_cmd(), *args, cwd=project)
        assert out.returncode == 2, args


def test_factory_path_and_not_a_chirp_app(project):
    assert run(_chirp_cmd(), "factoryapp:create()", "--deploy", cwd=project).returncode == 0
    plain = run(_chirp_cmd(), "plainasgi:app", "--format", "json", cwd=project)
    assert plain.returncode == 3 and json.loads(plain.stdout)["error"]["code"] == "not_a_chirp_app"


def test_configuration_error_at_check_time_exits_3(project):
    (project / "overapp.py").write_text(
        "from chirp import App\nfrom chirp.contracts import Severity\napp = App()\n"
        "app.override_severity('secret_key.weak', Severity.INFO)\n"
    )
    out = run(_chirp_cmd(), "overapp:app", "--format", "json", cwd=project)
    assert out.returncode == 3 and json.loads(out.stdout)["error"]["code"] == "configuration"


def test_color_only_when_asked(project):
    from chirp.contracts.render.text import render_text
    from chirp.contracts.runner import check_app
    from pounce.importer import import_app

    os.chdir(project)
    try:
        report = check_app(import_app("badapp:app"), env="production")
    finally:
        os.chdir(ROOT)
    assert "\x1b[31m" in render_text(report, color=True)
    assert "\x1b[" not in render_text(report, color=False)


# -- pounce check -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_pounce_check_formats_and_exit_codes(project, fmt):
    cmd = _pounce_cmd()
    ok = run(cmd, "--app", "plainasgi:app", "--port", "0", "--format", fmt, cwd=project)
    assert ok.returncode == 0, ok.stderr + ok.stdout
    validate(fmt, ok.stdout)
    bad = run(cmd, "--app", "plainasgi:app", "--host", "no-such-host.invalid", "--format", fmt, cwd=project)
    assert bad.returncode == 1
    validate(fmt, bad.stdout)
    broken = run(cmd, "--app", "nosuchmodule:app", "--format", fmt, cwd=project)
    assert broken.returncode == 3
    if fmt != "text":
        validate(fmt, broken.stdout)


def test_pounce_check_reads_config_file_and_usage_errors(project):
    (project / "pounce.toml").write_text(
        'app = "plainasgi:app"\nhost = "0.0.0.0"\nport = 0\ninfo_endpoint = true\n'
    )
    out = run(_pounce_cmd(), "--config", "pounce.toml", "--format", "json", cwd=project)
    data = json.loads(out.stdout)
    assert out.returncode == 1 and data["tool"] == "pounce"
    finding = next(f for f in data["findings"] if f["rule_id"] == "introspection.public")
    assert finding["location"]["file"] == "pounce.toml"
    assert run(_pounce_cmd(), cwd=project, env={}).returncode in (1, 2)
    (project / "pounce.toml").write_text("prot = 1\n")
    typo = run(_pounce_cmd(), "--config", "pounce.toml", cwd=project)
    assert typo.returncode == 2 and "did you mean 'port'" in typo.stderr
    no_app = run(_pounce_cmd(), "--port", "0", cwd=project)
    assert no_app.returncode == 2 and no_app.stderr.startswith("error: no app given")


def test_cli_help_has_examples(project):
    for cmd in (_chirp_cmd(), _pounce_cmd()):
        out = run(cmd, "--help", cwd=project)
        assert out.returncode == 0 and "Examples:" in out.stdout and "Exit codes" in out.stdout


def test_no_color_env_and_pipe(project):
    out = run(_chirp_cmd(), "badapp:app", cwd=project, env={"NO_COLOR": "1"})
    assert "\x1b[" not in out.stdout


def test_findings_link_to_the_published_docs_when_a_base_url_is_set(project):
    """Without one, a finding points at `chirp check --explain ID` (shipped with the package):
    a repository-relative path is dead in a PR comment or an installed package."""
    base = "https://docs.example.org/chirp/reference"
    page = f"{base}/rules/deploy_health.md"
    text = run(_chirp_cmd(), "badapp:app", cwd=project, env={"CHIRP_DOCS_URL": base + "/"}).stdout
    assert f"docs: {page}" in text
    table = run(_chirp_cmd(), "badapp:app", "--format", "markdown", cwd=project, env={"CHIRP_DOCS_URL": base})
    assert f"[`deploy_health.collision`]({page})" in table.stdout
    sarif = json.loads(run(_chirp_cmd(), "badapp:app", "--format", "sarif", cwd=project,
                           env={"CHIRP_DOCS_URL": base}).stdout)  # fmt: skip
    uris = {r["id"]: r.get("helpUri") for r in sarif["runs"][0]["tool"]["driver"]["rules"]}
    assert uris["deploy_health.collision"] == page
    plain = json.loads(run(_chirp_cmd(), "badapp:app", "--format", "sarif", cwd=project).stdout)
    rules = plain["runs"][0]["tool"]["driver"]["rules"]
    assert all("helpUri" not in r and "chirp check --explain" in r["help"]["markdown"] for r in rules)
    (project / "pyproject.toml").write_text(f'[tool.chirp.check]\ndocs_url = "{base}"\n')
    as_json = json.loads(run(_chirp_cmd(), "badapp:app", "--format", "json", cwd=project).stdout)
    assert {f["docs"] for f in as_json["findings"] if f["rule_id"] == "deploy_health.collision"} == {page}
