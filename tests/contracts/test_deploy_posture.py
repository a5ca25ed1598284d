"""`chirp check --deploy` judges the app that production would run.

It imports the app with `CHIRP_ENV=production`, so an app that wires itself by environment at
import time gets the findings it gets when imported in production; a missing secret is a
finding, not a crash; and the report names the posture it judged.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

SECRET = secrets.token_urlsafe(48)

# HSTS only outside development, as the `chirp new` scaffold wires it; TLS ends at a proxy.
ENV_WIRED = """\
from chirp import App, AppConfig
from chirp.middleware import CSRFMiddleware, SecurityHeadersMiddleware, SessionMiddleware

config = AppConfig.from_env(
    allowed_hosts=("shop.example.com",), trusted_proxies=("10.0.0.1",), metrics_enabled=True
)
app = App(config)
hsts = None if config.env == "development" else "max-age=63072000; includeSubDomains"
app.add_middleware(SessionMiddleware.from_config(config))
app.add_middleware(CSRFMiddleware.from_config(config))
app.add_middleware(SecurityHeadersMiddleware(hsts=hsts))


@app.route("/")
def index() -> str:
    return "shop"
"""


def check(project: Path, *args: str, **env: str) -> tuple[int, dict, str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CHIRP_")}
    full_env.update(env)
    run = [sys.executable, "-m", "chirp", "check", "shop:app", *args]
    as_json = subprocess.run([*run, "--format", "json"], cwd=project, env=full_env, capture_output=True,
                             text=True, timeout=60)  # fmt: skip
    as_text = subprocess.run(run, cwd=project, env=full_env, capture_output=True, text=True, timeout=60)
    assert as_json.returncode == as_text.returncode, as_text.stderr
    return as_json.returncode, json.loads(as_json.stdout), as_text.stdout


def verdicts(report: dict) -> set[tuple[str, str]]:
    return {(f["rule_id"], f["severity"]) for f in report["findings"]}


def test_deploy_equals_the_production_import(tmp_path: Path) -> None:
    (tmp_path / "shop.py").write_text(ENV_WIRED)
    code, deploy, text = check(tmp_path, "--deploy", CHIRP_SECRET_KEY=SECRET)
    _, production, _ = check(tmp_path, CHIRP_SECRET_KEY=SECRET, CHIRP_ENV="production")
    assert verdicts(deploy) == verdicts(production)
    assert "hsts.missing" not in {rule for rule, _ in verdicts(deploy)}
    assert code == 0, text
    assert deploy["env"] == "production" and deploy["deploy"] is True
    assert "deploy check passed (production, fail on warning+)" in text
    _, staged, _ = check(tmp_path, "--env", "production", CHIRP_ENV="development", CHIRP_SECRET_KEY=SECRET)
    assert verdicts(staged) == verdicts(production)  # --env imports as that env too


def test_a_development_import_is_wired_differently(load_app, monkeypatch) -> None:
    """Why the CLI imports in production: the posture view of a development import judges
    development wiring (here: no HSTS), which production would never run."""
    monkeypatch.delenv("CHIRP_ENV", raising=False)
    mod = load_app(ENV_WIRED)
    assert "hsts.missing" in {f.rule_id for f in mod.app.check(deploy=True).findings}


def test_deploy_reports_a_missing_secret_instead_of_crashing(tmp_path: Path) -> None:
    (tmp_path / "shop.py").write_text(ENV_WIRED)
    code, report, text = check(tmp_path, "--deploy")
    assert code == 1 and report.get("error") is None
    assert ("secret_key.empty", "error") in verdicts(report)
    assert "secret_key.empty" in text
    # a production launch of the same app stops at import, as the finding says it would
    serve = subprocess.run([sys.executable, "-m", "chirp", "run", "shop:app", "--production", "--port", "0"],
                           cwd=tmp_path, env={k: v for k, v in os.environ.items() if not k.startswith("CHIRP_")},
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert serve.returncode == 2 and "CHIRP_SECRET_KEY" in serve.stderr and "serving on" not in serve.stderr
