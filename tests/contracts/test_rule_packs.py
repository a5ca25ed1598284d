"""Rule packs: examples/rule-pack built and installed into a temporary virtual environment,
then picked up by `chirp check` there (rules, origin, the policy file it ships)."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.deploy import DEPLOYMENT, READY_APP

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "examples" / "rule-pack"
SECRET = "pZ7-kQ2vX9mL4tR8wN1cB6yH3jF0sD5gA"
POLICY = '[tool.chirp.check]\npolicy = "acme_chirp_rules:policy.toml"\n'


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv that sees this environment's packages (chirp included) and has the pack installed."""
    root = tmp_path_factory.mktemp("packs")
    env_dir = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True, timeout=60)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    # This environment's site-packages (and its .pth files, the editable chirp among them) after the venv's own.
    lines = [f"import site; site.addsitedir({path!r})" for path in site.getsitepackages()]
    Path(purelib, "_outer_site.pth").write_text("\n".join(lines) + "\n")
    source = root / "rule-pack"
    shutil.copytree(PACK, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-index",
         "--no-build-isolation", "--no-deps", str(source)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return env_dir


def chirp(venv: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHIRP_")}
    env.update(CHIRP_SECRET_KEY=SECRET, CHIRP_ALLOWED_HOSTS="example.com")
    return subprocess.run([str(venv / "bin" / "python"), "-m", "chirp", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


@pytest.fixture
def project(tmp_path: Path) -> Path:
    # metrics off: the policy makes deploy_metrics.disabled an error
    (tmp_path / "app.py").write_text(READY_APP.replace("metrics_enabled=True", "metrics_enabled=False"))
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "web.yaml").write_text(DEPLOYMENT.lstrip())
    (tmp_path / "pyproject.toml").write_text(POLICY)
    return tmp_path


def test_list_rules_shows_the_packs_rules_and_their_origin(venv: Path, project: Path) -> None:
    result = chirp(venv, ["check", "--list-rules", "--format", "json"], project)
    assert result.returncode == 0, result.stderr
    origins = {r["id"]: r["origin"] for r in json.loads(result.stdout)}
    assert origins["acme.owner_label"] == origins["acme.request_timeout"] == "acme-chirp-rules 1.0.0"
    assert origins["secrets.literal"] == "chirp"
    text = chirp(venv, ["check", "--list-rules"], project).stdout
    assert any(
        line.startswith("acme.owner_label ") and "acme-chirp-rules 1.0.0" in line
        for line in text.splitlines()
    )


def test_the_packs_rules_and_policy_apply(venv: Path, project: Path) -> None:
    result = chirp(venv, ["check", "app:app", "--deploy", "--format", "json"], project)
    report = json.loads(result.stdout)
    found = {f["rule_id"]: f for f in report["findings"]}
    assert result.returncode == 1 and set(found) == {"acme.owner_label", "deploy_metrics.disabled"}
    assert found["acme.owner_label"]["location"] == {"file": "k8s/web.yaml", "line": 7}
    assert found["acme.owner_label"]["docs"] == "https://platform.acme.example/chirp-rules#owner_label"
    assert found["deploy_metrics.disabled"]["severity"] == "error"  # INFO, tightened by the policy
    assert "acme.request_timeout" in report["rules_run"]


def test_required_rules_cannot_be_skipped_or_suppressed(venv: Path, project: Path) -> None:
    ignored = chirp(venv, ["check", "app:app", "--deploy", "--ignore", "acme"], project)
    assert ignored.returncode == 2 and "requires this rule" in ignored.stderr, ignored.stderr
    (project / "pyproject.toml").write_text(
        POLICY + 'suppress = [{ rule = "secrets.literal", reason = "we know" }]\n'
    )
    suppressed = chirp(venv, ["check", "app:app", "--deploy", "--format", "json"], project)
    error = json.loads(suppressed.stdout)["error"]
    assert (
        suppressed.returncode == 3 and "secrets.literal" in error["message"] and "requires" in error["hint"]
    )


def test_a_policy_may_only_tighten(venv: Path, project: Path) -> None:
    (project / "policy.toml").write_text('[severity]\n"secret_key.weak" = "info"\n')
    (project / "pyproject.toml").write_text('[tool.chirp.check]\npolicy = "policy.toml"\n')
    result = chirp(venv, ["check", "app:app", "--deploy", "--format", "json"], project)
    error = json.loads(result.stdout)["error"]
    assert result.returncode == 3 and "may only tighten" in error["hint"], error


def test_without_the_pack_its_policy_is_an_error(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHIRP_")}
    result = subprocess.run([sys.executable, "-m", "chirp", "check", "app:app", "--format", "json"], cwd=project,
                            env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    error = json.loads(result.stdout)["error"]
    assert result.returncode == 3 and "acme_chirp_rules" in error["hint"], error


def test_a_broken_pack_names_its_entry_point(venv: Path, project: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.dist-info"
    broken.mkdir()
    (broken / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-pack\nVersion: 0.1\n")
    (broken / "entry_points.txt").write_text("[chirp.rules]\nbroken = no_such_module:RULES\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHIRP_")}
    env["PYTHONPATH"] = str(tmp_path)
    result = subprocess.run([str(venv / "bin" / "python"), "-m", "chirp", "check", "--list-rules"], cwd=project,
                            env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2 and "chirp.rules:broken = no_such_module:RULES" in result.stderr, (
        result.stderr
    )


def test_a_pack_installed_as_an_egg_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The quick scan finds an egg's entry points (`EGG-INFO` in a `.egg` on the path), as
    `importlib.metadata` does, so such a pack is not skipped silently."""
    from importlib.metadata import distributions

    from chirp.contracts import packs

    egg = tmp_path / "acme_rules-1.0-py3.11.egg"
    (egg / "EGG-INFO").mkdir(parents=True)
    (egg / "EGG-INFO" / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: acme-rules\nVersion: 1.0\n")
    (egg / "EGG-INFO" / "entry_points.txt").write_text("[chirp.rules]\nacme = acme_rules:RULES\n")
    monkeypatch.setattr(sys, "path", [str(egg)])
    found = [
        ep.name
        for dist in distributions(path=[str(egg)])
        for ep in dist.entry_points
        if ep.group == packs.GROUP
    ]
    assert found == ["acme"]  # what the full lookup sees ...
    assert packs._declared()  # ... the quick scan sees too
    (egg / "EGG-INFO" / "entry_points.txt").write_text("[console_scripts]\nacme = acme_rules:main\n")
    assert not packs._declared()
