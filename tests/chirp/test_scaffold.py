"""`chirp new`: the generated projects pass the deploy gate and their own tests, and serve securely."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from helpers.process import ServerProcess, spawn

REPO = Path(__file__).resolve().parents[2]
SCAFFOLD = REPO / "src" / "chirp" / "scaffold"
FULL_FILES = {
    ".dockerignore",
    ".gitignore",
    "Dockerfile",
    "README.md",
    "app.py",
    "k8s/deployment.yaml",
    "pyproject.toml",
    "tests/conftest.py",
    "tests/test_app.py",
    "tests/test_served.py",
}


def production_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHIRP_", "PYTEST_"))}
    env.update(
        CHIRP_ENV="production",
        CHIRP_SECRET_KEY=secrets.token_urlsafe(48),
        CHIRP_ALLOWED_HOSTS="localhost,127.0.0.1",
    )
    return env


def chirp(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chirp", *args],
        cwd=cwd,
        env=env if env is not None else production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def files_in(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def deploy_check(project: Path) -> dict[str, object]:
    result = chirp(["check", "app:app", "--deploy", "--format", "json"], project)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def full_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    parent = tmp_path_factory.mktemp("scaffold")
    result = chirp(["new", "shop_app"], parent)
    assert result.returncode == 0, result.stderr
    assert "created shop_app" in result.stdout
    return parent / "shop_app"


@pytest.fixture(scope="module")
def minimal_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    parent = tmp_path_factory.mktemp("scaffold-min")
    result = chirp(["new", "tiny", "--minimal", "--directory", str(parent / "elsewhere")], parent)
    assert result.returncode == 0, result.stderr
    return parent / "elsewhere"


# -- what is generated --------------------------------------------------------------------


def test_full_project_has_app_tests_image_and_manifest(full_project: Path) -> None:
    assert files_in(full_project) == FULL_FILES
    app = (full_project / "app.py").read_text()
    assert "AppConfig.from_env(csp_nonce_enabled=True)" in app
    assert "for middleware in secure_stack(config):" in app
    assert "csrf_token(request)" in app
    assert 'nonce="{nonce}"' in app
    assert "{{" not in "".join((full_project / f).read_text() for f in FULL_FILES)
    dockerfile = (full_project / "Dockerfile").read_text()
    assert 'CMD ["chirp", "run", "app:app", "--production"' in dockerfile
    assert "USER 10001" in dockerfile
    image_python = re.search(r"^FROM python:(\d+\.\d+)-slim$", dockerfile, re.M)
    assert image_python is not None and image_python[1] in supported_pythons()
    assert image_python[1] == max(supported_pythons(), key=lambda v: tuple(map(int, v.split("."))))
    manifest = (full_project / "k8s/deployment.yaml").read_text()
    assert "kind: Deployment" in manifest and "kind: Service" in manifest
    assert re.search(r"livenessProbe:\s+httpGet:\s+path: /health", manifest)
    assert re.search(r"readinessProbe:\s+httpGet:\s+path: /ready", manifest)
    assert re.search(
        r"name: CHIRP_SECRET_KEY\s+valueFrom:\s+secretKeyRef:\s+name: shop-app-secrets", manifest
    )
    assert "name: shop-app\n" in manifest  # Kubernetes names use '-', not '_'
    assert "__pycache__/" in (full_project / ".gitignore").read_text()
    for path in full_project.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")


def supported_pythons() -> list[str]:
    """The versions the package's classifiers promise (and CI runs)."""
    text = (REPO / "pyproject.toml").read_text()
    return re.findall(r'"Programming Language :: Python :: (3\.\d+)"', text)


def test_minimal_project_is_one_app_file_and_a_readme(minimal_project: Path) -> None:
    assert files_in(minimal_project) == {"app.py", "README.md"}
    app = (minimal_project / "app.py").read_text()
    assert "AppConfig.from_env()" in app and "secure_stack(config)" in app
    assert "/health (liveness) and /ready (readiness)" in app


# -- the gates ----------------------------------------------------------------------------


def test_full_project_passes_the_deploy_check(full_project: Path) -> None:
    report = deploy_check(full_project)
    assert report["ok"] is True and report["env"] == "production" and report["deploy"] is True
    assert report["counts"]["error"] == 0 and report["counts"]["warning"] == 0, report["findings"]


def test_minimal_project_passes_the_deploy_check(minimal_project: Path) -> None:
    report = deploy_check(minimal_project)
    assert report["ok"] is True and report["env"] == "production" and report["deploy"] is True
    assert report["counts"]["error"] == 0 and report["counts"]["warning"] == 0, report["findings"]


def test_without_the_deploy_settings_the_check_fails(full_project: Path) -> None:
    env = production_env()
    del env["CHIRP_ALLOWED_HOSTS"]
    result = chirp(["check", "app:app", "--deploy"], full_project, env)
    assert result.returncode == 1
    assert "allowed_hosts.wildcard" in result.stdout


def test_full_project_own_tests_pass(full_project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHIRP_", "PYTEST_"))}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=full_project,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b10 passed\b", result.stdout), result.stdout


# -- refusals -----------------------------------------------------------------------------


def test_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    result = chirp(["new", "taken"], tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0] == f"error: {target} already exists and is not empty"
    assert lines[1].startswith("hint: pick another NAME or --directory")
    assert files_in(target) == {"notes.txt"}
    assert (target / "notes.txt").read_text() == "keep me"


def test_refuses_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("")
    result = chirp(["new", "blocked"], tmp_path)
    assert result.returncode == 2
    assert "exists and is not a directory" in result.stderr


def test_an_existing_empty_directory_is_used(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = chirp(["new", "svc", "--minimal", "--directory", "empty"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert files_in(tmp_path / "empty") == {"app.py", "README.md"}
    assert "<title>svc</title>" in (tmp_path / "empty" / "app.py").read_text()


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("my app", "my_app"),
        ("1st", "app_1st"),
        ("../escape", "escape"),
        ("shop.v2", "shop_v2"),
        ("_private", "private"),
    ],
)
def test_refuses_a_bad_name(tmp_path: Path, name: str, suggestion: str) -> None:
    result = chirp(["new", name], tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0] == f"error: invalid project name {name!r}"
    assert lines[1].startswith("hint: use letters, digits, '_' and '-', starting with a letter")
    assert f"(e.g. {suggestion!r})" in lines[1]
    assert list(tmp_path.iterdir()) == []


# -- served in production posture ---------------------------------------------------------


@pytest.fixture(scope="module")
def served(full_project: Path) -> Iterator[ServerProcess]:
    env = production_env()
    server = spawn(
        ["chirp", "run", "app:app", "--production", "--port", "0", "--workers", "1", "--no-reload"],
        full_project,
        env={k: env[k] for k in ("CHIRP_ENV", "CHIRP_SECRET_KEY", "CHIRP_ALLOWED_HOSTS")},
    )
    try:
        yield server
    finally:
        server.stop()


def page_token(response: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
    assert match, response.text
    return match.group(1)


def nonce_of(response: httpx.Response) -> str:
    match = re.search(r"'nonce-([A-Za-z0-9_-]+)'", response.headers["content-security-policy"])
    assert match, response.headers["content-security-policy"]
    return match.group(1)


def test_served_pages_carry_the_security_headers(served: ServerProcess) -> None:
    response = httpx.get(served.url + "/")
    assert response.status_code == 200
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert headers["cross-origin-resource-policy"] == "same-origin"
    assert headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"
    assert headers["cache-control"] == "private, no-store"
    csp = headers["content-security-policy"]
    assert csp.startswith("default-src 'none'; script-src 'self' 'nonce-")
    assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
    cookie = headers["set-cookie"].lower()
    assert {"secure", "httponly", "samesite=lax"} <= {p.strip() for p in cookie.split(";")}


def test_served_nonce_differs_between_responses(served: ServerProcess) -> None:
    first, second = httpx.get(served.url + "/"), httpx.get(served.url + "/")
    assert nonce_of(first) != nonce_of(second)
    assert len(nonce_of(first)) >= 22  # ≥ 128 bits, URL-safe base64
    assert f'nonce="{nonce_of(first)}"></script>' in first.text


def test_served_script_is_pinned_by_subresource_integrity(served: ServerProcess) -> None:
    page = httpx.get(served.url + "/")
    tag = re.search(r'<script src="(/[^"]+)" integrity="(sha384-[^"]+)" nonce="([^"]+)">', page.text)
    assert tag is not None, page.text
    assert tag[3] == nonce_of(page)
    script = httpx.get(served.url + tag[1])
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert script.headers["x-content-type-options"] == "nosniff"
    expected = "sha384-" + base64.b64encode(hashlib.sha384(script.content).digest()).decode()
    assert tag[2] == expected


def test_served_post_needs_the_csrf_token(served: ServerProcess) -> None:
    page = httpx.get(served.url + "/")
    cookie = {"cookie": f"chirp_session={page.cookies['chirp_session']}"}
    refused = httpx.post(served.url + "/notes", data={"note": "hi"}, headers=cookie)
    assert refused.status_code == 403
    assert refused.text.startswith("403 Forbidden: CSRF check failed:")
    wrong = httpx.post(served.url + "/notes", data={"note": "hi", "csrf_token": "x" * 86}, headers=cookie)
    assert wrong.status_code == 403
    accepted = httpx.post(
        served.url + "/notes", data={"note": "<i>hi</i>", "csrf_token": page_token(page)}, headers=cookie
    )
    assert accepted.status_code == 303 and accepted.headers["location"] == "/"
    session = accepted.cookies["chirp_session"]
    listing = httpx.get(served.url + "/", headers={"cookie": f"chirp_session={session}"})
    assert "<li>&lt;i&gt;hi&lt;/i&gt;</li>" in listing.text


def test_served_foreign_host_is_refused(served: ServerProcess) -> None:
    refused = httpx.get(served.url + "/", headers={"host": "attacker.example"})
    assert refused.status_code == 400
    assert "attacker.example" not in refused.text
    probe = httpx.get(served.url + "/health", headers={"host": "10.1.2.3:8000"})
    assert (probe.status_code, probe.text) == (200, "ok\n")  # kubelet probes use the pod IP


# -- packaging ----------------------------------------------------------------------------


def test_wheel_ships_every_template(tmp_path: Path) -> None:
    """Build the wheel from a copy of the tree (nothing written into the repository)."""
    source = tmp_path / "src-copy"
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(tmp_path / "dist")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (tmp_path / "dist").glob("chirp_pounce-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n.removeprefix("chirp/scaffold/") for n in names if n.startswith("chirp/scaffold/")}
    assert shipped == files_in(SCAFFOLD)
    assert "full/dot-gitignore.tmpl" in shipped and "full/tests/test_app.py.tmpl" in shipped
