"""The example apps: the deploy-ready one passes `chirp check --deploy` and, served in production
posture, shows a stored `<script>` note escaped; the misconfigured one fails with the expected
rule ids; the guestbook passes its own tests (chirp.testing, PostgreSQL, `--deploy --live`);
file-path app arguments work from the repository root."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from helpers.process import spawn
from helpers.services import POSTGRES_PORT, POSTGRES_URL, require

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SECRET = "pZ7-kQ2vX9mL4tR8wN1cB6yH3jF0sD5gA"


def chirp_check(
    target: str, *args: str, env: dict[str, str] | None = None, cwd: Path = EXAMPLES
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CHIRP_")} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "chirp", "check", target, *args],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_deploy_ready_example_passes_the_deploy_check() -> None:
    result = chirp_check("deploy_ready:app", "--deploy", "--format", "json",
                         env={"CHIRP_SECRET_KEY": SECRET, "CHIRP_ALLOWED_HOSTS": "example.com"})  # fmt: skip
    report = json.loads(result.stdout)
    assert result.returncode == 0, result.stdout
    assert report["ok"] is True and report["counts"]["error"] == 0 and report["counts"]["warning"] == 0


def test_deploy_ready_example_escapes_a_stored_note() -> None:
    server = spawn(
        ["chirp", "run", "deploy_ready:app", "--production", "--port", "0", "--workers", "1", "--no-reload"],
        EXAMPLES,
        env={"CHIRP_SECRET_KEY": SECRET, "CHIRP_ALLOWED_HOSTS": "127.0.0.1"},
    )
    payload = '<script>alert("owned")</script><img src=x onerror=alert(1)>'
    try:
        with httpx.Client(base_url=server.url) as client:
            page = client.get("/")
            session = {"cookie": f"chirp_session={page.cookies['chirp_session']}"}
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token is not None, page.text
            stored = client.post("/notes", data={"note": payload, "csrf_token": token[1]}, headers=session)
            assert stored.status_code == 303
            listing = client.get("/", headers=session).text
    finally:
        server.stop()
    assert (
        "<li>&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;</li>"
        in listing
    )
    assert "<script>alert" not in listing and "<img" not in listing


def test_misconfigured_example_fails_with_the_expected_ids() -> None:
    result = chirp_check("misconfigured:app", "--deploy", "--format", "json")
    report = json.loads(result.stdout)
    assert result.returncode == 1
    ids = {f["rule_id"] for f in report["findings"] if not f["suppressed"]}
    assert ids == {
        "secret_key.weak", "secret_key.hardcoded", "deploy_debug.enabled", "allowed_hosts.wildcard",
        "security_stack.missing", "security_stack.headers_missing", "csp_nonce.missing",
        "deploy_metrics.disabled",
    }  # fmt: skip
    weak = next(f for f in report["findings"] if f["rule_id"] == "secret_key.weak")
    assert weak["severity"] == "error" and weak["location"]["file"].endswith("misconfigured.py")


def test_file_path_app_arguments(tmp_path: Path) -> None:
    root = EXAMPLES.parent
    assert chirp_check("examples/hello:app", cwd=root).returncode == 0
    assert chirp_check("examples/hello.py:app", cwd=root).returncode == 0
    missing = chirp_check("examples/nothing:app", cwd=root)
    assert missing.returncode == 3 and "no module named 'nothing'" in missing.stderr


def test_the_guestbook_example_passes_its_own_tests_against_postgresql() -> None:
    require("PostgreSQL", POSTGRES_PORT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHIRP_", "PYTEST_"))}
    env["GUESTBOOK_TEST_DATABASE"] = POSTGRES_URL
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=EXAMPLES / "guestbook", env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b9 passed\b", result.stdout), result.stdout
