"""The pre-commit hooks, for real: `pre-commit try-repo` against a committed copy of this tree.

`try-repo` clones the hooks repository at its HEAD commit, so the working tree (which may
hold uncommitted changes) is copied to a temporary directory and committed there first.
pre-commit then builds the hook environment (`pip install` of that copy) exactly as it would
for a user; the cache directory is shared by the tests of this module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("pre_commit")

ROOT = Path(__file__).resolve().parents[2]
SKIP = shutil.ignore_patterns(
    ".git",
    ".venv",
    "venv",
    "__pycache__",
    "*.egg-info",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "build",
    "dist",
)

GOOD = """\
import os
from chirp import App, AppConfig
from chirp.middleware import secure_stack

config = AppConfig(secret_key=os.environ.get("APP_SECRET", "Zq8-" * 12), allowed_hosts=("example.com",))
app = App(config)
for middleware in secure_stack(config):
    app.add_middleware(middleware)


@app.route("/")
def index():
    return "hello"
"""

BAD = """\
from chirp import App, AppConfig

app = App(AppConfig(allowed_hosts=()))


@app.route("/")
def index():
    return "hello"
"""

pytestmark = pytest.mark.timeout(600)


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        [
            "git",
            "-c",
            "user.name=chirp tests",
            "-c",
            "user.email=tests@example.invalid",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def hooks_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed copy of this repository's working tree."""
    repo = tmp_path_factory.mktemp("hooks") / "chirp-pounce"
    shutil.copytree(ROOT, repo, ignore=SKIP)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "snapshot for pre-commit try-repo")
    return repo


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


def project(tmp_path: Path, source: str, pyproject: str) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "myapp.py").write_text(source)
    (root / "pyproject.toml").write_text(textwrap.dedent(pyproject))
    git(root, "init", "-q")
    git(root, "add", "-A")
    return root


def try_repo(project_dir: Path, hooks_repo: Path, cache: Path, hook: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PRE_COMMIT_HOME=str(cache), NO_COLOR="1", PRE_COMMIT_COLOR="never")
    for name in ("CHIRP_ENV", "CHIRP_SECRET_KEY", "VIRTUAL_ENV", "PYTHONPATH"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(hooks_repo), hook, "--all-files"],
        cwd=project_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )


APP_SETTING = """\
[project]
name = "myapp"
version = "0"

[tool.chirp.check]
app = "myapp:app"

[tool.pounce]
app = "myapp:app"
"""


def test_chirp_check_hook_passes_a_good_app(tmp_path, hooks_repo, cache):
    result = try_repo(project(tmp_path, GOOD, APP_SETTING), hooks_repo, cache, "chirp-check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "chirp check" in result.stdout and "Passed" in result.stdout


def test_chirp_check_hook_fails_a_bad_app_and_shows_the_finding(tmp_path, hooks_repo, cache):
    result = try_repo(project(tmp_path, BAD, APP_SETTING), hooks_repo, cache, "chirp-check")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Failed" in result.stdout
    assert "allowed_hosts.empty" in result.stdout and "myapp.py:3" in result.stdout


def test_deploy_hook_fails_an_app_that_is_only_fine_in_development(tmp_path, hooks_repo, cache):
    result = try_repo(project(tmp_path, GOOD, APP_SETTING), hooks_repo, cache, "chirp-check-deploy")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "secret_key.hardcoded" in result.stdout or "deploy_metrics.disabled" in result.stdout


def run_config(project_dir: Path, config: str, cache: Path) -> subprocess.CompletedProcess[str]:
    (project_dir / ".pre-commit-config.yaml").write_text(textwrap.dedent(config))
    git(project_dir, "add", "-A")
    env = dict(os.environ, PRE_COMMIT_HOME=str(cache), NO_COLOR="1", PRE_COMMIT_COLOR="never")
    for name in ("CHIRP_ENV", "CHIRP_SECRET_KEY", "VIRTUAL_ENV", "PYTHONPATH"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "--all-files"],
        cwd=project_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )


def head(repo: Path) -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_hooks_with_args_in_a_project_config(tmp_path, hooks_repo, cache):
    """The documented form: the app named in `args`, pounce's flags passed through."""
    root = project(tmp_path, GOOD, '[project]\nname = "myapp"\nversion = "0"\n')
    config = f"""\
        repos:
          - repo: {hooks_repo}
            rev: {head(hooks_repo)}
            hooks:
              - id: chirp-check
                args: [myapp:app]
              - id: pounce-check
                args: [--app, "myapp:app", --port, "8000"]
        """
    result = run_config(root, config, cache)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "chirp check" in result.stdout and "pounce check" in result.stdout
    assert result.stdout.count("Passed") == 2
    (root / "myapp.py").write_text(BAD)
    result = run_config(root, config, cache)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "allowed_hosts.empty" in result.stdout


def test_one_misconfiguration_one_verdict_everywhere(tmp_path, hooks_repo, cache):
    """`app.check()`, `chirp check`, the pre-commit hook and the GitHub Action's check step
    report the same rule id at the same severity, and all of them fail."""
    import importlib.util
    import json
    import re

    import yaml

    root = project(tmp_path, BAD, APP_SETTING)
    expected = ("allowed_hosts.empty", "error")

    # 1. in process
    spec = importlib.util.spec_from_file_location("consistency_app", root / "myapp.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report = module.app.check()
    assert not report.ok
    assert {(f.rule_id, f.severity.name.lower()) for f in report.active} == {expected}

    # 2. the CLI
    cli = subprocess.run([sys.executable, "-m", "chirp", "check", "myapp:app", "--format", "json"],
                         cwd=root, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert cli.returncode == 1
    found = {(f["rule_id"], f["severity"]) for f in json.loads(cli.stdout)["findings"] if not f["suppressed"]}
    assert found == {expected}

    # 3. the pre-commit hook
    hook = try_repo(root, hooks_repo, cache, "chirp-check")
    assert hook.returncode == 1 and "allowed_hosts.empty" in hook.stdout

    # 4. the action's check step, run as the runner runs it
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    step = next(s for s in action["runs"]["steps"] if s.get("name") == "chirp check")
    inputs = {name: spec.get("default", "") for name, spec in action["inputs"].items()}
    inputs["app"] = "myapp:app"
    inputs["deploy"] = "false"  # judged in the app's own env, like the three above
    expr = re.compile(r"\$\{\{\s*inputs\.([a-z-]+)\s*\}\}")
    env = {k: expr.sub(lambda m: inputs[m.group(1)], str(v)) for k, v in step.get("env", {}).items()}
    output, summary = tmp_path / "github_output", tmp_path / "summary.md"
    output.write_text("")
    env = dict(os.environ, **env, GITHUB_OUTPUT=str(output), GITHUB_STEP_SUMMARY=str(summary))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.pop("CHIRP_ENV", None)
    ran = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=root, env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    assert ran.returncode == 0, ran.stderr  # the step records the result; a later step fails the job
    assert outputs["exit-code"] == "1" and outputs["errors"] == "1"
    assert "allowed_hosts.empty" in ran.stdout + summary.read_text()
