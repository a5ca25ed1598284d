"""One verdict on every path, generated: no expectation in this file is written by hand.

The corpus is a good app, an app that wires itself by environment at import time, and one
misconfigured app per rule category (the first case of each category in
`helpers.rule_cases`, built with `AppConfig.from_env` so that the environment decides its
env). For each app, the verdict of `CHIRP_ENV=<env> chirp check APP` is the reference, and
every other entry point must reach the same one, as rule ids, severities, subjects and
suppression:

- `chirp check APP --env <env>` (any CHIRP_ENV);
- the freeze-time `app.check()` of `chirp run` and `pounce serve` launches in that env (read
  from the structured log line every launch writes), and of `app.run()` in production;
- `chirp check APP --deploy`, the pre-commit hook's entry, the GitHub Action's script and
  `--deploy --live` (its static part) against the production verdict.

Every production launch must refuse exactly when the production verdict holds an ERROR,
and the deploy gate must fail whenever a launch refuses.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers.action import Runner
from helpers.process import terminate
from helpers.rule_cases import CASES, GOOD_CONFIG, HEAD, STACK

ROOT = Path(__file__).resolve().parents[2]
SECRET = secrets.token_urlsafe(48)
ENVS = ("development", "staging", "production")
LAUNCH_ENVS = ("development", "production")
ROUTE = '\n\n@app.route("/")\ndef index():\n    return "hi"\n'

ENV_WIRED = """\
from chirp import App, AppConfig
from chirp.middleware import CSRFMiddleware, SecurityHeadersMiddleware, SessionMiddleware

config = AppConfig.from_env(allowed_hosts=("shop.example.com",), trusted_proxies=("10.0.0.1",))
app = App(config)
hsts = None if config.env == "development" else "max-age=63072000; includeSubDomains"
app.add_middleware(SessionMiddleware.from_config(config))
app.add_middleware(CSRFMiddleware.from_config(config))
app.add_middleware(SecurityHeadersMiddleware(hsts=hsts))


@app.route("/save", methods=("POST",))
def save():
    return "saved"
"""


def corpus() -> dict[str, str]:
    """name → app source; the environment (CHIRP_ENV) decides each app's env."""
    apps = {"good": HEAD + GOOD_CONFIG + "\n" + STACK + ROUTE, "env_wired": ENV_WIRED}
    for rule_id, _levels, bad, _good in CASES:
        category = rule_id.split(".")[0]
        apps.setdefault(category, HEAD + bad + ROUTE)
    return {name: source.replace("AppConfig(", "AppConfig.from_env(") for name, source in apps.items()}


APPS = corpus()

Verdict = list[tuple[str, str, str | None, bool]]


def from_report(report: dict[str, Any]) -> Verdict:
    """A JSON report's findings without `live.*` ones (only --live runs those)."""
    assert report.get("error") is None, report["error"]
    return sorted(
        (f["rule_id"], f["severity"], f["subject"], f["suppressed"] is not None)
        for f in report["findings"]
        if not f["rule_id"].startswith("live.")
    )


def from_log(line: dict[str, Any]) -> Verdict:
    return sorted((f["rule"], f["severity"], f["subject"], f["suppressed"]) for f in line["findings"])


def refuses(verdict: Verdict) -> bool:
    return any(severity == "error" and not suppressed for _, severity, _, suppressed in verdict)


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHIRP_", "GITHUB_"))}
    env.update(CHIRP_SECRET_KEY=SECRET, NO_COLOR="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def check(project: Path, module: str, *args: str, **env: str) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run([sys.executable, "-m", "chirp", "check", f"{module}:app", *args, "--format", "json"],
                          cwd=project, env=environment(**env), capture_output=True, text=True, timeout=90)  # fmt: skip
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


@dataclass
class Launch:
    """What one server launch did: served, or exited with `code`; its freeze-time verdict."""

    served: bool
    code: int | None
    verdict: Verdict | None
    log: str


def launch(project: Path, argv: list[str], timeout: float = 30, **env: str) -> Launch:
    """Start a server, wait until it serves or exits, stop it; read its contract log line."""
    log_path = project / f"launch-{time.monotonic_ns()}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(argv, cwd=project, env=environment(**env), stdout=log, stderr=log, text=True)
    deadline = time.monotonic() + timeout
    served = False
    while time.monotonic() < deadline and proc.poll() is None:
        if "serving on" in log_path.read_text():
            served = True
            break
        time.sleep(0.05)  # polling a file the child writes
    if proc.poll() is None:
        terminate(proc)
    text = log_path.read_text()
    lines = [
        json.loads(line[line.index("{") :]) for line in text.splitlines() if '"chirp.contract_check"' in line
    ]
    return Launch(served, None if served else proc.returncode, from_log(lines[0]) if lines else None, text)


def launches(project: Path, module: str, env: str) -> Iterator[tuple[str, Launch]]:
    """Every launch path in `env`, as its user would type it."""
    production = ["--production"] if env == "production" else []
    yield "chirp run", launch(project, [sys.executable, "-m", "chirp", "run", f"{module}:app", "--port", "0",
                                         "--no-reload", *production], CHIRP_ENV=env)  # fmt: skip
    yield "pounce serve", launch(project, [sys.executable, "-m", "pounce", "serve", "--app", f"{module}:app",
                                            "--port", "0"], CHIRP_ENV=env)  # fmt: skip
    if env == "production":
        script = project / f"run_{module}.py"
        script.write_text(f"from {module} import app\n\napp.run(port=0)\n")
        yield "app.run()", launch(project, [sys.executable, script.name], CHIRP_ENV=env)


def hook_entry(hook_id: str) -> list[str]:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    entry = next(h["entry"] for h in hooks if h["id"] == hook_id)
    command, *rest = shlex.split(entry)
    assert command == "chirp"
    return [sys.executable, "-m", "chirp", *rest]


@pytest.mark.parametrize("name", sorted(APPS))
def test_every_entry_point_reaches_the_same_verdict(tmp_path: Path, name: str) -> None:
    module = f"verdict_{name}"
    (tmp_path / f"{module}.py").write_text(APPS[name])
    pool = ThreadPoolExecutor(max_workers=4)
    reference = {env: pool.submit(check, tmp_path, module, CHIRP_ENV=env) for env in ENVS}
    flagged = {env: pool.submit(check, tmp_path, module, "--env", env) for env in ENVS}
    deploy = pool.submit(check, tmp_path, module, "--deploy", CHIRP_ENV="development")
    live = pool.submit(check, tmp_path, module, "--deploy", "--live")
    launched = {env: pool.submit(lambda e: list(launches(tmp_path, module, e)), env) for env in LAUNCH_ENVS}
    hook = pool.submit(
        subprocess.run, [*hook_entry("chirp-check-deploy"), f"{module}:app", "--format", "json"],
        cwd=tmp_path, env=environment(), capture_output=True, text=True, timeout=90,
    )  # fmt: skip

    verdicts = {env: from_report(future.result()[1]) for env, future in reference.items()}
    for env in ENVS:
        assert from_report(flagged[env].result()[1]) == verdicts[env], f"chirp check --env {env}"
    for env in LAUNCH_ENVS:
        for path, outcome in launched[env].result():
            where = f"{path} in {env}"
            if outcome.verdict is not None:
                assert outcome.verdict == verdicts[env], where
            else:  # refused while the app was built (a bad setting): nothing served
                assert not outcome.served and outcome.code not in (None, 0), f"{where}:\n{outcome.log}"
            assert outcome.served != refuses(verdicts[env]) or outcome.verdict is None, (
                f"{where}:\n{outcome.log}"
            )
            if not outcome.served and path != "app.run()":  # a script's own import error is Python's
                assert outcome.code in (2, 3), f"{where} exited {outcome.code}:\n{outcome.log}"

    production = verdicts["production"]
    deploy_code, deploy_report = deploy.result()
    assert from_report(deploy_report) == production, "chirp check --deploy"
    assert deploy_report["env"] == "production" and deploy_report["deploy"] is True
    refused = any(not o.served for _, o in launched["production"].result())
    assert not refused or deploy_code == 1, "a production launch refused what the gate passed"
    assert from_report(json.loads(hook.result().stdout)) == production, "pre-commit hook"
    runner = Runner(tmp_path, app=f"{module}:app", deploy="true")
    step = runner.run("chirp check", {"CHIRP_SECRET_KEY": SECRET})
    action_report = json.loads((tmp_path / runner.outputs()["report"]).read_text())
    assert from_report(action_report) == production, f"GitHub Action:\n{step.stdout}{step.stderr}"
    _, live_report = live.result()
    assert from_report(live_report) == production, "--deploy --live"
    booted = "live.boot" not in {f["rule_id"] for f in live_report["findings"]}
    assert booted == (not refused), "--live booted what production refuses (or the reverse)"
    pool.shutdown()
