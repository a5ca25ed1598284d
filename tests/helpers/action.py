"""Run the composite GitHub Action's own `run:` scripts from action.yml, as the runner would."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
_EXPR = re.compile(r"\$\{\{\s*inputs\.([a-z-]+)\s*\}\}")


def step(name: str) -> dict:
    return next(s for s in ACTION["runs"]["steps"] if s.get("name") == name)


def resolve(value: str, inputs: dict[str, str]) -> str:
    return _EXPR.sub(lambda m: inputs[m.group(1)], str(value))


class Runner:
    """Runs the action's shell steps the way the runner does (bash, env, working directory)."""

    def __init__(self, tmp_path: Path, **inputs: str) -> None:
        self.cwd = tmp_path
        self.output = tmp_path / "github_output"
        self.summary = tmp_path / "step_summary.md"
        self.output.write_text("")
        self.inputs = {name: spec.get("default", "") for name, spec in ACTION["inputs"].items()}
        self.inputs.update({k.replace("_", "-"): v for k, v in inputs.items()})

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        env = dict(os.environ, GITHUB_OUTPUT=str(self.output), GITHUB_STEP_SUMMARY=str(self.summary))
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # `python` is this venv's
        env["CHIRP_SECRET_KEY"] = secrets.token_urlsafe(48)
        env.pop("CHIRP_ENV", None)
        env.update(extra)
        return env

    def run(self, name: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        spec = step(name)
        env = {k: resolve(v, self.inputs) for k, v in spec.get("env", {}).items()}
        env.update(extra_env or {})
        return subprocess.run(
            ["bash", "-e", "-c", spec["run"]],
            cwd=self.cwd,
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def outputs(self) -> dict[str, str]:
        lines = self.output.read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)
