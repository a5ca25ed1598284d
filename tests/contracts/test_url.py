"""`chirp check --url`: the live probes against an instance that is already deployed.

pounce serves a chirp app over TLS on loopback (certificates made for the test), with a plain
HTTP listener beside it; the check runs through the real CLI, as a post-deploy gate would.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from helpers.certs import write_loopback_pair, write_pair
from helpers.deploy import READY_APP
from helpers.process import ServerProcess, spawn

ROOT = Path(__file__).resolve().parents[2]
SECRET = secrets.token_urlsafe(48)

GOOD_APP = (
    READY_APP
    + """

@app.route("/")
def index(request):
    return f'<form method="post" action="/notes"><input name="csrf_token" value="{csrf_token(request)}"></form>'


@app.route("/notes", methods=("POST",))
def notes():
    return "saved"
"""
)

# No security headers, no session/CSRF: what a forgotten secure_stack looks like from outside.
BAD_APP = """
from chirp import App, AppConfig

app = App(AppConfig.from_env())


@app.route("/")
def index():
    return "<p>hello</p>"
"""

REDIRECT_APP = """
import os

TARGET = os.environ["REDIRECT_TO"]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 308,
                "headers": [(b"location", (TARGET + scope["path"]).encode())]})
    await send({"type": "http.response.body", "body": b""})
"""


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHIRP_")}
    env.update(CHIRP_SECRET_KEY=SECRET, CHIRP_ALLOWED_HOSTS="127.0.0.1", **extra)
    return env


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("url")
    for name, text in (("goodapp.py", GOOD_APP), ("badapp.py", BAD_APP), ("redirect.py", REDIRECT_APP)):
        (root / name).write_text(textwrap.dedent(text))
    (root / "bad-pounce.toml").write_text('server_header = "pounce/1.2.3"\ninfo_endpoint = true\n')
    write_loopback_pair(root)
    write_pair(root, "expiring", days_valid=10, days_ago=5)  # for "localhost" only, 5 days left
    return root


def serve(site: Path, *args: str, **env: str) -> ServerProcess:
    variables = {"CHIRP_SECRET_KEY": SECRET, "CHIRP_ALLOWED_HOSTS": "127.0.0.1", **env}
    return spawn(["pounce", "serve", "--host", "127.0.0.1", "--port", "0", "--workers", "1", *args],
                 site, env=variables)  # fmt: skip


@pytest.fixture(scope="module")
def good(site: Path) -> Iterator[tuple[str, str]]:
    """The good app over TLS, and a plain-HTTP listener that redirects to it."""
    tls = serve(site, "--app", "goodapp:app", "--ssl-certfile", "loopback.crt", "--ssl-keyfile", "loopback.key",
                CHIRP_ENV="production")  # fmt: skip
    plain = serve(site, "--app", "redirect:app", "--lifespan", "off", REDIRECT_TO=tls.url)
    yield tls.url, plain.url
    plain.stop()
    tls.stop()


def check(site: Path, app: str, url: str, *args: str) -> tuple[int, dict]:
    result = subprocess.run(
        [sys.executable, "-m", "chirp", "check", app, "--url", url, "--format", "json", *args],
        cwd=site, env=environment(), capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    jsonschema.validate(report, json.loads((ROOT / "docs/reference/check-report.schema.json").read_text()))
    return result.returncode, report


def active(report: dict) -> set[str]:
    return {f["rule_id"] for f in report["findings"] if not f["suppressed"]}


def test_a_good_deployment_passes(site: Path, good: tuple[str, str]) -> None:
    url, plain = good
    code, report = check(site, "goodapp:app", url, "--ca-file", "loopback.crt", "--http-url", plain)
    assert code == 0, report["findings"]
    live = report["live"]
    assert live["remote"] is True and live["url"] == url and report["env"] == "production"
    assert live["tls"]["verified"] is True and 29 < live["tls"]["days_left"] <= 30
    assert {"health.get", "ready.head", "page /", "page2 /", "http", "info"} <= set(live["probes"])
    assert "csrf" in live["skipped"] and "error" in live["skipped"]  # nothing that acts on the site
    assert all(r.startswith(("live.", "suppression.", "contracts.")) for r in report["rules_run"])
    assert {"live.tls_certificate", "live.https_redirect", "live.introspection"} <= set(report["rules_run"])


def test_an_untrusted_certificate_fails(site: Path, good: tuple[str, str]) -> None:
    code, report = check(site, "goodapp:app", good[0], "--http-url", good[1])
    assert code == 1 and active(report) == {"live.tls_certificate"}
    assert "does not verify" in report["findings"][0]["message"]


def test_a_bad_deployment_fails_with_what_is_wrong(site: Path) -> None:
    tls = serve(site, "--app", "badapp:app", "--ssl-certfile", "expiring.crt", "--ssl-keyfile", "expiring.key",
                "--config", "bad-pounce.toml")  # fmt: skip
    plain = serve(site, "--app", "badapp:app")  # the site over plain HTTP, no redirect
    try:
        code, report = check(
            site, "badapp:app", tls.url, "--ca-file", "expiring.crt", "--http-url", plain.url
        )
    finally:
        plain.stop()
        tls.stop()
    assert code == 1
    assert active(report) >= {
        "live.tls_certificate", "live.https_redirect", "live.introspection", "live.security_headers",
        "live.server_header",
    }  # fmt: skip
    messages = {
        f["rule_id"]: f["message"] for f in report["findings"] if f["rule_id"] != "live.tls_certificate"
    }
    certificate = sorted(
        (f["severity"], f["message"]) for f in report["findings"] if f["rule_id"] == "live.tls_certificate"
    )
    assert [severity for severity, _ in certificate] == ["error", "warning"]
    assert "does not verify" in certificate[0][1] and "127.0.0.1" in certificate[0][1]
    assert "expires in 5.0 days" in certificate[1][1]
    assert "plain HTTP GET / answers 200" in messages["live.https_redirect"]
    assert "Strict-Transport-Security" in messages["live.security_headers"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--url", "ftp://example.com"], "is not an http(s) origin"),
        (["--url", "https://example.com/app"], "is not an http(s) origin"),
        (["--url", "https://example.com", "--live"], "--url and --live are exclusive"),
        (
            ["--url", "https://example.com", "--ca-file", "missing.pem"],
            "--ca-file missing.pem does not exist",
        ),
        (["--ca-file", "loopback.crt"], "--ca-file and --http-url apply to --url"),
    ],
)
def test_usage_errors(site: Path, args: list[str], message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "chirp", "check", "goodapp:app", *args], cwd=site,
                            env=environment(), capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2 and message in result.stderr, result.stderr
