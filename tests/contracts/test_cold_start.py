"""What a cold `chirp check` and `pounce check` load: nothing the app does not use itself.

The request-time machinery (asyncio, anyio, email parsing, the request and response types,
the realtime bus, the database layer, the server) loads when an app serves, not when it is
checked: pre-commit runs the check on every commit.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY_PACKAGES = ("asyncio", "anyio", "email", "ssl", "sqlite3", "concurrent", "h2", "wsproto",
                  "prometheus_client", "opentelemetry", "sentry_sdk", "httpx", "uvloop", "httptools")  # fmt: skip
HEAVY_MODULES = (
    "chirp.runtime", "chirp.request", "chirp.responses", "chirp.negotiation", "chirp.websocket",
    "chirp.realtime", "chirp.db", "chirp.testing", "pounce.asgi", "pounce.server", "pounce.connection",
    "pounce.runner", "pounce.supervisor", "pounce.features", "pounce.tls",
)  # fmt: skip

APP = """\
import secrets
from chirp import App, AppConfig
from chirp.middleware import secure_stack

config = AppConfig(secret_key=secrets.token_urlsafe(48), allowed_hosts=("example.com",), metrics_enabled=True)
app = App(config)
for middleware in secure_stack(config):
    app.add_middleware(middleware)


@app.route("/")
def index():
    return "hello"


@app.route("/items/{item_id:int}", methods=("GET", "POST"))
async def item(request, item_id: int):
    return {"id": item_id}
"""

# Run a command's entry point in this process, then report every module it loaded (as a
# Python literal: importing json to print it would hide whether the command loaded it).
RUNNER = """\
import sys
from {module} import main
try:
    main(sys.argv[1:], prog_name="{prog}")
except SystemExit as exit:
    code = exit.code
print(repr({{"code": code, "modules": sorted(sys.modules)}}), file=sys.stderr)
"""


def loaded(project: Path, module: str, prog: str, *args: str) -> tuple[int, list[str]]:
    proc = subprocess.run([sys.executable, "-c", RUNNER.format(module=module, prog=prog), *args],
                          cwd=project, capture_output=True, text=True, timeout=60)  # fmt: skip
    result = ast.literal_eval(proc.stderr.strip().splitlines()[-1])
    return result["code"], result["modules"]


def heavy(modules: list[str]) -> list[str]:
    return [
        m
        for m in modules
        if m.split(".")[0] in HEAVY_PACKAGES or any(m == h or m.startswith(h + ".") for h in HEAVY_MODULES)
    ]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "coldapp.py").write_text(APP)
    return tmp_path


@pytest.mark.parametrize("args", [(), ("--deploy",), ("--format", "json"), ("--format", "sarif")])
def test_chirp_check_loads_nothing_the_app_does_not_use(project: Path, args: tuple[str, ...]) -> None:
    code, modules = loaded(project, "chirp.cli", "chirp", "check", "coldapp:app", *args)
    assert code in (0, 1)
    assert heavy(modules) == []


# What a text report needs none of: each loads when a project, a flag or a request asks for it.
LAZY_MODULES = (
    "http",
    "logging",
    "json",
    "tomllib",
    "chirp.health",
    "chirp.contracts.policy",
    "chirp.contracts.explain",
)


@pytest.mark.parametrize("args", [(), ("--deploy",)])
def test_a_text_report_loads_no_logger_json_toml_or_policy(project: Path, args: tuple[str, ...]) -> None:
    code, modules = loaded(project, "chirp.cli", "chirp", "check", "coldapp:app", *args)
    assert code in (0, 1)
    assert [m for m in LAZY_MODULES if m in modules] == []


def test_a_project_file_loads_what_reads_it(project: Path) -> None:
    (project / "pyproject.toml").write_text('[tool.chirp.check]\npolicy = "policy.toml"\n')
    (project / "policy.toml").write_text('[severity]\n"deploy_metrics.disabled" = "warning"\n')
    code, modules = loaded(project, "chirp.cli", "chirp", "check", "coldapp:app", "--format", "json")
    assert code in (0, 1)
    assert [m for m in LAZY_MODULES if m in modules] == ["json", "tomllib", "chirp.contracts.policy"]


def test_pounce_check_loads_nothing_the_app_does_not_use(project: Path) -> None:
    code, modules = loaded(project, "pounce.cli", "pounce", "check", "--app", "coldapp:app", "--port", "0")
    assert code in (0, 1)
    assert heavy(modules) == []


def test_what_the_app_uses_is_loaded(project: Path) -> None:
    """The list above is not vacuous: an app that wires a database gets the database layer."""
    (project / "dbapp.py").write_text(
        APP.replace("metrics_enabled=True)", 'metrics_enabled=True, database_url="sqlite:///x.db")')
    )
    _, modules = loaded(project, "chirp.cli", "chirp", "check", "dbapp:app")
    assert "chirp.db" in modules and "sqlite3" in modules


def test_an_app_importing_the_response_types_loads_no_cookie_or_mime_tables(project: Path) -> None:
    """`chirp new` apps import Response and Redirect; a check builds no response, so the cookie
    writer and the MIME table wait for the first cookie and the first file response."""
    (project / "respapp.py").write_text(
        APP.replace(
            "from chirp import App, AppConfig",
            "from chirp import App, AppConfig, Redirect, Request, Response",
        )
    )
    code, modules = loaded(project, "chirp.cli", "chirp", "check", "respapp:app", "--deploy")
    assert code in (0, 1) and "chirp.responses" in modules
    assert [m for m in ("http.cookies", "mimetypes") if m in modules] == []


ON_DEMAND = """\
import sys
from chirp.errors import HTTPError, NotFound
from chirp.responses import FileResponse, Response
assert [m for m in ("http", "http.cookies", "mimetypes") if m in sys.modules] == []
print(NotFound().detail, "|", HTTPError(418).detail, "|", HTTPError(404, "gone").detail)
response = Response("hi")
response.set_cookie("theme", "dark", max_age=60, secure=True)
print(response.headers.get("set-cookie"))
print(FileResponse("style.css").media_type)
"""


def test_the_status_phrases_the_cookie_writer_and_the_mime_table_load_when_used(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", ON_DEMAND], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    phrases, cookie, media_type = proc.stdout.splitlines()
    assert phrases == "Not Found | I'm a Teapot | gone"
    assert cookie.startswith("theme=dark; ") and "Max-Age=60" in cookie and "Secure" in cookie
    assert media_type == "text/css"
