"""Every launch path refuses an app whose contract check fails, once, before it listens.

`pounce serve` (one or several workers, every lifespan mode), `chirp run` and `app.run()`
exit with code 3, print the report once and name the `chirp check` command that reproduces
the verdict; the same app in development (where the check passes) is served.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from helpers.asgi_apps import plain_asgi
from helpers.process import run_cli, spawn
from helpers.server import serve
from pounce.asgi import LifespanError

SECRET = secrets.token_urlsafe(48)
# allowed_hosts stays "*": an ERROR in production, nothing in development.
APP = """\
from chirp import App, AppConfig

app = App(AppConfig.from_env())


@app.route("/")
def index() -> str:
    return "served"
"""
RUN_SCRIPT = APP + '\n\nif __name__ == "__main__":\n    app.run(port=0)\n'
PRODUCTION = {"CHIRP_ENV": "production", "CHIRP_SECRET_KEY": SECRET}
REPORT_LINE = "✗ allowed_hosts.wildcard"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "gateapp.py").write_text(APP)
    (tmp_path / "gatescript.py").write_text(RUN_SCRIPT)
    return tmp_path


def assert_refused(proc: subprocess.CompletedProcess[str], command: str) -> None:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 3, output
    assert "serving on" not in output
    assert output.count(REPORT_LINE) == 1, output  # the report, printed once
    assert f"`{command}`" in output


@pytest.mark.parametrize(
    "args",
    [
        ["--workers", "1"],
        ["--workers", "2"],
        ["--workers", "1", "--lifespan", "on"],
        ["--workers", "2", "--lifespan", "on"],
    ],
    ids=["1-worker", "2-workers", "1-worker-lifespan-on", "2-workers-lifespan-on"],
)
def test_pounce_serve_refuses_a_failing_app(project: Path, args: list[str]) -> None:
    proc = run_cli(["pounce", "serve", "--app", "gateapp:app", "--port", "0", *args], project, PRODUCTION)
    assert_refused(proc, "chirp check gateapp:app --deploy")
    assert "error: the app failed its contract check" in proc.stderr


def test_pounce_serve_refuses_lifespan_off_for_a_chirp_app(project: Path) -> None:
    proc = run_cli(["pounce", "serve", "--app", "gateapp:app", "--port", "0", "--lifespan", "off"], project)
    assert proc.returncode == 3, proc.stderr
    assert "lifespan='off' is invalid for this app" in proc.stderr and "--lifespan auto or on" in proc.stderr
    assert "serving on" not in proc.stderr


def test_chirp_run_production_refuses_and_names_the_deploy_check(project: Path) -> None:
    proc = run_cli(["chirp", "run", "gateapp:app", "--production", "--port", "0"], project, PRODUCTION)
    assert_refused(proc, "chirp check gateapp:app --deploy")
    assert "error: the app failed its contract check" in proc.stderr


def test_app_run_refuses_with_the_same_code(project: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "gatescript.py"],
        cwd=project,
        env={**os.environ, **PRODUCTION},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert_refused(proc, "chirp check gatescript:app --deploy")


def test_the_same_app_is_served_in_development(project: Path) -> None:
    for args in (["pounce", "serve", "--app", "gateapp:app", "--port", "0"], ["chirp", "run", "gateapp:app",
                 "--port", "0", "--no-reload"]):  # fmt: skip
        server = spawn(args, project, {"CHIRP_ENV": "development"})
        try:
            assert httpx.get(server.url + "/").text == "served"
        finally:
            assert server.stop() == 0


def test_the_hint_reproduces_the_refusal(project: Path) -> None:
    """The command the refusal names fails the same app, on the same rule."""
    proc = run_cli(["chirp", "check", "gateapp:app", "--deploy"], project, {"CHIRP_SECRET_KEY": SECRET})
    assert proc.returncode == 1 and REPORT_LINE in proc.stdout


def test_chirp_run_checks_its_flags_before_importing_the_app(project: Path) -> None:
    (project / "noisy.py").write_text('print("IMPORTED", flush=True)\n' + APP)
    for flag, value, fix in (
        ("--port", "99999", "use a port between 0 and 65535"),
        ("--workers", "-1", "use 0"),
    ):
        proc = run_cli(["chirp", "run", "noisy:app", flag, value], project)
        assert proc.returncode == 2, proc.stderr
        assert f"error: {flag[2:]}={value}" in proc.stderr and fix in proc.stderr
        assert "IMPORTED" not in proc.stdout + proc.stderr


def test_a_server_without_the_preflight_hook_is_refused_through_the_lifespan(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What any ASGI server sees: `lifespan.startup.failed` carrying the report and the command."""
    monkeypatch.setenv("CHIRP_ENV", "production")
    monkeypatch.setenv("CHIRP_SECRET_KEY", SECRET)
    monkeypatch.syspath_prepend(str(project))
    from gateapp import app  # type: ignore[import-not-found]

    with pytest.raises(LifespanError) as refused, serve(plain_asgi(app), lifespan="auto"):
        pass
    message = str(refused.value)
    assert REPORT_LINE in message and "the app failed its contract check" in message
    assert "run `chirp check gateapp:app --deploy` for details" in message  # named from the app's file


QUIET = APP.replace(
    "app = App(AppConfig.from_env())",
    "from chirp.middleware import SecurityHeadersMiddleware\n\n"
    'app = App(AppConfig.from_env(allowed_hosts=("127.0.0.1",)))\n'
    "app.add_middleware(SecurityHeadersMiddleware())",
)
# secret_key.weak is a WARNING outside production
NOISY = APP.replace(
    "AppConfig.from_env()", 'AppConfig.from_env(secret_key="too-short", allowed_hosts=("127.0.0.1",))'
)


def startup_log(project: Path, source: str, args: list[str], env: dict[str, str], reloads: int = 0) -> str:
    (project / "logapp.py").write_text(source)
    server = spawn(args, project, env)
    try:
        for generation in range(2, 2 + reloads):
            server.proc.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + 20
            while not any(f"generation {generation} serving" in line for line in server.read_log()):
                assert time.monotonic() < deadline, "".join(server.read_log())
                time.sleep(0.05)
        assert httpx.get(server.url + "/").text == "served"
    finally:
        assert server.stop() == 0
    return "".join(server.log)


def test_info_only_findings_log_one_line_per_process(project: Path) -> None:
    args = ["pounce", "serve", "--app", "logapp:app", "--port", "0", "--workers", "2"]
    log = startup_log(project, QUIET, args, PRODUCTION, reloads=1)
    assert "deploy_metrics.disabled" in log  # an INFO finding in production
    # the launch (1) and the two workers of the reload generation: one JSON line each
    assert log.count('"event":"chirp.contract_check"') == 3
    assert "chirp check passed" not in log and "WARNING chirp.app" not in log


def test_a_report_with_warnings_is_printed_once_per_launch(project: Path) -> None:
    for args in (["pounce", "serve", "--app", "logapp:app", "--port", "0", "--workers", "2"],
                 ["chirp", "run", "logapp:app", "--port", "0", "--workers", "2", "--no-reload"]):  # fmt: skip
        log = startup_log(project, NOISY, args, {"CHIRP_ENV": "staging", "CHIRP_SECRET_KEY": ""}, reloads=1)
        assert log.count("▲ secret_key.weak") == 1, log
        assert log.count('"event":"chirp.contract_check"') == 3


# Starlette-style ASGI middleware around the App: it keeps the App as `.app` and passes on
# nothing else, so the launch paths must find the App inside it.
WRAPPED_PART = """

class Timing:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        async def timed(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], (b"server-timing", b"app")]}
            await send(message)

        await self.app(scope, receive, timed)


wrapped = Timing(Timing(app))
"""
WRAPPED = APP + WRAPPED_PART


@pytest.mark.parametrize(
    "command",
    [
        ["pounce", "serve", "--app", "wrapapp:wrapped", "--port", "0", "--workers", "2"],
        ["chirp", "run", "wrapapp:wrapped", "--production", "--port", "0"],
    ],
    ids=["pounce-serve", "chirp-run"],
)
def test_an_app_inside_asgi_middleware_is_refused_like_the_app(project: Path, command: list[str]) -> None:
    (project / "wrapapp.py").write_text(WRAPPED)
    proc = run_cli(command, project, PRODUCTION)
    assert_refused(proc, "chirp check wrapapp:wrapped --deploy")
    hinted = run_cli(["chirp", "check", "wrapapp:wrapped", "--deploy"], project, {"CHIRP_SECRET_KEY": SECRET})
    assert hinted.returncode == 1 and REPORT_LINE in hinted.stdout  # the hint reproduces it


def test_an_app_inside_asgi_middleware_is_served_with_its_wrapper(project: Path) -> None:
    (project / "wrapapp.py").write_text(WRAPPED)
    for args in (["pounce", "serve", "--app", "wrapapp:wrapped", "--port", "0"],
                 ["chirp", "run", "wrapapp:wrapped", "--port", "0", "--no-reload"]):  # fmt: skip
        server = spawn(args, project, {"CHIRP_ENV": "development"})
        try:
            response = httpx.get(server.url + "/")
            assert response.text == "served" and response.headers.get_list("server-timing") == ["app", "app"]
        finally:
            assert server.stop() == 0
    # lifespan_required, found inside the wrapper
    proc = run_cli(["pounce", "serve", "--app", "wrapapp:wrapped", "--lifespan", "off"], project)
    assert proc.returncode == 3 and "lifespan='off' is invalid for this app" in proc.stderr
