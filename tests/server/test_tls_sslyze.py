"""sslyze's Mozilla compliance check against a real pounce, for each TLS profile.

sslyze pins an older `cryptography` than the project's, so it is not in the `dev` extra: it is
installed on first use, with pip, into `.sslyze/py<X.Y>/` at the repository root (git-ignored;
one per Python, as its `nassl` is a compiled extension) and run as its own process with that
directory first on its path. The test's CA is handed to sslyze, so path validation succeeds
and any finding at all is a deviation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.asgi_apps import echo
from helpers.certs import Authority, make_key
from helpers.server import serve

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENT = "sslyze>=6.3,<7"
TARGET = ROOT / ".sslyze" / f"py{sys.version_info.major}.{sys.version_info.minor}"
CHECK = ROOT / "tests" / "helpers" / "sslyze_check.py"


def _environment() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(TARGET), PYTHONWARNINGS="ignore")


@pytest.fixture(scope="module")
def sslyze() -> dict[str, str]:
    """The environment that runs sslyze, installed into `.sslyze/` when it is not there yet."""
    probe = [sys.executable, "-c", "import sslyze, nassl"]
    if subprocess.run(probe, env=_environment(), capture_output=True).returncode != 0:
        install = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--upgrade", "--target", str(TARGET), REQUIREMENT],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if install.returncode != 0:
            reason = (install.stderr.strip().splitlines() or ["no output"])[-1]
            if sys.version_info[:2] == (3, 11):  # it installs there: a failure is a real one
                pytest.fail(f"pip could not install {REQUIREMENT}: {reason}")
            pytest.skip(f"{REQUIREMENT} does not install on Python {sys.version.split()[0]}: {reason}")
    return _environment()


def scan(env: dict[str, str], port: int, profile: str, ca_file: Path) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, str(CHECK), f"127.0.0.1:{port}", profile, str(ca_file)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    issues: dict[str, str] = json.loads(done.stdout)
    return issues


@pytest.mark.parametrize(
    ("profile", "key", "settings", "deviations"),
    [
        ("intermediate", "ec", {}, set()),
        ("intermediate", "rsa", {}, set()),
        ("modern", "ec", {"tls_profile": "modern"}, set()),
        # the control: the scan does see a configuration that falls below the profile
        ("intermediate", "ec", {"ssl_ciphers": "ECDHE+AESGCM:ECDHE+AES256+SHA384"}, {"ciphers"}),
        ("modern", "ec", {}, {"tls_versions", "ciphers"}),
    ],
)
def test_pounce_is_compliant_with_the_mozilla_profile(
    sslyze: dict[str, str],
    tmp_path: Path,
    profile: str,
    key: str,
    settings: dict[str, str],
    deviations: set[str],
) -> None:
    ca = Authority(key=make_key(key))
    ca_file = ca.write(tmp_path)
    cert, private = ca.issue(tmp_path, "server", key=make_key(key))
    with serve(echo, ssl_certfile=str(cert), ssl_keyfile=str(private), **settings) as srv:
        issues = scan(sslyze, srv.port, profile, ca_file)
    assert set(issues) == deviations, issues
