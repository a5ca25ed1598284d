"""`pounce` and `chirp run` as real processes: serving, signals, errors."""

from __future__ import annotations

import json
import re
import signal
import socket
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest

from helpers.process import run_cli, spawn

APP = textwrap.dedent(
    """
    import asyncio
    import sys
    from chirp import App

    app = App()

    @app.route("/")
    def index() -> str:
        return "hello from chirp"

    @app.route("/slow")
    async def slow() -> str:
        print("slow handler started", file=sys.stderr, flush=True)
        await asyncio.sleep(1.0)
        return "slow done"

    async def raw(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"raw asgi"})

    def factory():
        return raw

    not_an_app = 42
    """
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "myapp.py").write_text(APP)
    (tmp_path / "broken.py").write_text("import nonexistent_dependency_xyz\n")
    return tmp_path


def test_pounce_serves_an_app_from_the_current_directory(project: Path) -> None:
    server = spawn(["pounce", "serve", "--app", "myapp:app", "--port", "0"], project)
    try:
        assert httpx.get(server.url + "/").text == "hello from chirp"
    finally:
        assert server.stop() == 0


def test_pounce_shorthand_and_factory(project: Path) -> None:
    server = spawn(["pounce", "myapp:factory()", "--port", "0", "--lifespan", "off"], project)
    try:
        assert httpx.get(server.url + "/").text == "raw asgi"
    finally:
        assert server.stop() == 0


def test_chirp_run_serves(project: Path) -> None:
    server = spawn(["chirp", "run", "myapp:app", "--port", "0", "--no-reload"], project)
    try:
        assert httpx.get(server.url + "/health").text == "ok\n"
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_drains_in_flight_requests_then_exits_zero(project: Path, signum: int) -> None:
    server = spawn(["pounce", "serve", "--app", "myapp:app", "--port", "0"], project)
    results: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: results.append(httpx.get(server.url + "/slow", timeout=10)))
    thread.start()
    try:
        deadline = time.monotonic() + 10  # wait until the request is in the handler
        while not any("slow handler started" in line for line in server.read_log()):
            assert time.monotonic() < deadline, "the slow request never reached its handler"
            time.sleep(0.01)
        server.proc.send_signal(signum)
        thread.join(10)
        assert results and results[0].status_code == 200 and results[0].text == "slow done"
        assert results[0].headers["connection"] == "close"
        assert server.proc.wait(10) == 0
        with pytest.raises(httpx.ConnectError):
            httpx.get(server.url + "/")
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (
            ["pounce", "serve", "--app", "nosuchmodule:app"],
            "no module named 'nosuchmodule'",
            "run from the directory",
        ),
        (["pounce", "serve", "--app", "myapp:missing"], "has no attribute 'missing'", "myapp:app"),
        (["pounce", "serve", "--app", "myapp:not_an_app"], "not an ASGI application", "App instance"),
        (
            ["pounce", "serve", "--app", "broken:app"],
            "nonexistent_dependency_xyz",
            "install the missing package",
        ),
        (["pounce", "serve"], "no app given", "--app module:attr"),
        (["chirp", "run", "nosuchmodule:app"], "no module named 'nosuchmodule'", "run from the directory"),
        (
            ["pounce", "serve", "--app", "myapp:app", "--port", "99999"],
            "between 0 and 65535",
            "pounce config schema",
        ),
    ],
)
def test_cli_errors_are_one_line_with_a_hint(project: Path, args: list[str], message: str, hint: str) -> None:
    result = run_cli(args, project)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and message in lines[0]
    assert lines[1].startswith("hint: ") and hint in lines[1]
    assert "Traceback" not in result.stderr


def test_port_in_use_is_a_clear_error(project: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        result = run_cli(["pounce", "serve", "--app", "myapp:app", "--port", str(port)], project)
    assert result.returncode == 1
    assert "already in use" in result.stderr and "Traceback" not in result.stderr


def test_unknown_config_key_suggests_the_nearest(project: Path) -> None:
    (project / "pounce.toml").write_text('app = "myapp:app"\nworkrs = 2\n')
    result = run_cli(["pounce", "config", "show", "--config", "pounce.toml"], project)
    assert result.returncode == 2
    assert "workrs" in result.stderr and "did you mean 'workers'" in result.stderr


def test_config_show_and_schema(project: Path) -> None:
    (project / "pounce.toml").write_text('app = "myapp:app"\nport = 9001\n')
    shown = run_cli(
        ["pounce", "config", "show", "--config", "pounce.toml", "--output-format", "json"], project
    )
    assert shown.returncode == 0 and '"port": 9001' in shown.stdout
    schema = run_cli(["pounce", "config", "schema", "--output-format", "toml-template"], project)
    assert schema.returncode == 0 and "# max_body_size = 16777216" in schema.stdout


def test_the_toml_template_uncommented_is_the_defaults(project: Path) -> None:
    """ "Every setting with its default; uncomment what you change": uncommenting every line
    that has a value must load, and change nothing."""
    template = run_cli(["pounce", "config", "schema", "--output-format", "toml-template"], project)
    assert template.returncode == 0
    lines = template.stdout.splitlines()
    settings = [line.removeprefix("# ") for line in lines[1:] if " = " in line]
    unset = [line for line in lines[1:] if " = " not in line]
    assert len(settings) > 50 and "# max_connections: unset by default (set it to a whole number)" in unset
    (project / "all.toml").write_text("\n".join(settings) + "\n")
    shown = run_cli(["pounce", "config", "show", "--config", "all.toml", "--output-format", "json"], project)
    default = run_cli(["pounce", "config", "show", "--output-format", "json"], project)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == json.loads(default.stdout)


def test_config_show_redacts_secrets_and_url_credentials(project: Path) -> None:
    (project / "pounce.toml").write_text(
        'app = "myapp:app"\nsentry_dsn = "https://k3y@o1.ingest.example/1"\n'
        'otel_endpoint = "https://otel:s3cr3t@collector.example:4318/v1/traces"\n'
        'redis_url = "redis://:hunter2@cache:6379/0"\n'
    )
    shown = run_cli(["pounce", "config", "show", "--config", "pounce.toml"], project)
    assert shown.returncode == 0, shown.stderr
    assert not {"k3y", "s3cr3t", "hunter2"} & set(re.findall(r"\w+", shown.stdout)), shown.stdout
    assert 'otel_endpoint = "https://***@collector.example:4318/v1/traces"' in shown.stdout
    assert 'sentry_dsn = "***"' in shown.stdout and 'redis_url = "***"' in shown.stdout


@pytest.mark.parametrize("tool", ["chirp", "pounce"])
def test_help_has_examples_and_version(project: Path, tool: str) -> None:
    help_text = run_cli([tool, "--help"], project)
    assert help_text.returncode == 0 and "Examples:" in help_text.stdout
    version = run_cli([tool, "--version"], project)
    assert version.returncode == 0 and "0.1.0" in version.stdout


SECURE_APP = textwrap.dedent(
    """
    import os
    from chirp import App, AppConfig, secure_stack

    config = AppConfig.from_env()
    app = App(config)
    for middleware in secure_stack(config):
        app.add_middleware(middleware)

    @app.route("/")
    def index() -> str:
        return f"{config.env} {os.getpid()}"
    """
)


def test_chirp_run_production_with_workers_and_metrics(tmp_path: Path) -> None:
    (tmp_path / "secureapp.py").write_text(SECURE_APP)
    env = {"CHIRP_SECRET_KEY": "Vb3-q9LmZt8Rw2Xc7Np4Kd6Hf1Gj5Sy0Ua", "CHIRP_ALLOWED_HOSTS": "127.0.0.1"}
    server = spawn(["chirp", "run", "secureapp:app", "--production", "--workers", "2", "--port", "0", "--metrics"],
                   tmp_path, env)  # fmt: skip
    try:
        answers = set()
        for _ in range(40):
            with httpx.Client() as client:
                answers.add(client.get(server.url + "/").text)
            if len(answers) == 2:
                break
        assert {a.split()[0] for a in answers} == {"production"} and len(answers) == 2
        metrics = httpx.get(server.url + "/metrics").text
        assert 'pounce_requests_total{method="GET",route="/",status="200"}' in metrics
    finally:
        assert server.stop() == 0


def test_chirp_run_production_refuses_an_app_failing_its_contract(project: Path) -> None:
    result = run_cli(["chirp", "run", "myapp:app", "--production", "--port", "0"], project,
                     {"CHIRP_SECRET_KEY": "Vb3-q9LmZt8Rw2Xc7Np4Kd6Hf1Gj5Sy0Ua"})  # fmt: skip
    assert result.returncode == 3  # the app refused to start
    assert "failed its contract check" in result.stderr and "allowed_hosts.wildcard" in result.stderr


def test_chirp_run_production_needs_a_secret(project: Path) -> None:
    result = run_cli(["chirp", "run", "myapp:app", "--production"], project, {"CHIRP_SECRET_KEY": ""})
    assert result.returncode == 2
    assert "error: --production needs a secret key" in result.stderr and "CHIRP_SECRET_KEY" in result.stderr


def _tls_case(project: Path, case: str) -> list[str]:
    """`--ssl-certfile/--ssl-keyfile` flags for one way TLS files can be wrong."""
    from helpers.certs import make_key, write_pair

    cert, key = write_pair(project)
    if case == "missing":
        cert = project / "missing.pem"
    elif case == "mismatch":
        _, key = write_pair(project, "other", key=make_key())
    elif case == "not-pem":
        cert = project / "garbage.pem"
        cert.write_text("not a certificate\n")
    elif case == "unreadable":
        key = project  # a directory: open() fails as it does for a file without permission
    elif case == "expired":
        cert, key = write_pair(project, "old", days_valid=10, days_ago=30)
    return ["--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "ssl_certfile '{project}/missing.pem' does not exist"),
        ("mismatch", "does not match the certificate"),
        ("not-pem", "is not a PEM certificate"),
        ("unreadable", "ssl_keyfile '{project}' cannot be read"),
        ("expired", "expired on"),
    ],
)
@pytest.mark.parametrize("command", ["pounce", "chirp"])
def test_tls_problems_stop_the_start_with_one_line(
    project: Path, case: str, message: str, command: str
) -> None:
    tls = _tls_case(project, case)
    if command == "pounce":
        args = ["pounce", "serve", "--app", "myapp:app", "--port", "0", *tls]
        env = None
    else:  # chirp run takes TLS from the AppConfig
        args = ["chirp", "run", "myapp:app", "--port", "0", "--no-reload"]
        env = {"CHIRP_SSL_CERTFILE": tls[1], "CHIRP_SSL_KEYFILE": tls[3]}
        (project / "myapp.py").write_text(
            APP.replace("app = App()", "from chirp import AppConfig\napp = App(AppConfig.from_env())")
        )
    result = run_cli(args, project, env)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message.format(project=project) in errors[0], result.stderr
    assert "Traceback" not in result.stderr and "serving on" not in result.stderr
    # the same judgement as the preflight
    checked = run_cli(["pounce", "check", "--app", "myapp:app", "--port", "0", *tls], project)
    assert checked.returncode == 1 and message.format(project=project) in checked.stdout


@pytest.mark.parametrize(
    ("args", "toml", "code", "message"),
    [
        (["--uds", "/nonexistent-dir/pounce.sock"], None, 1, "the directory /nonexistent-dir does not exist"),
        (
            ["--config", "pounce.toml"],
            'workers = "many"\n',
            2,
            "workers='many' is invalid: expected an integer",
        ),
        (
            ["--config", "pounce.toml"],
            "access_log = 3.5\n",
            2,
            "access_log=3.5 is invalid: expected true or false",
        ),
        (["--app", "myapp:crash()"], None, 1, "raised RuntimeError: database url missing"),
    ],
)
def test_other_startup_errors_are_one_line(
    project: Path, args: list[str], toml: str | None, code: int, message: str
) -> None:
    (project / "myapp.py").write_text(
        APP + "\n\ndef crash():\n    raise RuntimeError('database url missing')\n"
    )
    if toml is not None:
        (project / "pounce.toml").write_text(toml)
    app = [] if "--app" in args else ["--app", "myapp:app"]
    result = run_cli(["pounce", "serve", *app, "--port", "0", *args], project)
    assert result.returncode == code, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr
