"""The `tls.*` rules on chain, key password, client certificates, profile and host names: each
misconfiguration fires at its documented severity and location, each correct twin is clean,
and `pounce serve` refuses to start on exactly the fatal ones."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from chirp.contracts import Severity
from helpers.certs import Authority, make_key
from helpers.contracts import only
from helpers.process import run_cli
from pounce.config import ServerConfig
from pounce.preflight import run_preflight

E, W = Severity.ERROR, Severity.WARNING
APP = "from chirp import App, AppConfig\napp = App(AppConfig({settings}))  # cfg\n"


def app_source(**settings: Any) -> str:
    return APP.format(settings=", ".join(f"{k}={v!r}" for k, v in settings.items()))


def tls_findings(report: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for finding in report.findings:
        if finding.category == "tls":
            out.setdefault(finding.rule_id, []).append(finding)
    return out


@pytest.fixture
def ca() -> Authority:
    return Authority()


def pair(ca: Authority, directory: Path, name: str = "server", **options: Any) -> dict[str, str]:
    cert, key = ca.issue(directory, name, **options)
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}


def assert_fires(mod: Any, rule_id: str, severities: dict[str, Severity], text: str) -> None:
    for env, severity in severities.items():
        finding = only(mod.app.check(env=env), rule_id)
        assert finding.severity == severity and text in finding.message, (env, finding)
        assert finding.location.line == mod.line("# cfg")


def test_a_correct_mutual_tls_setup_is_clean(load_app, tmp_path: Path, ca: Authority) -> None:
    settings = pair(ca, tmp_path, hosts=("shop.example.com",))
    settings.update(ssl_ca_certs=str(ca.write(tmp_path)), ssl_cert_reqs="required", allowed_hosts=("shop.example.com",))  # fmt: skip
    mod = load_app(app_source(**settings))
    assert tls_findings(mod.app.check(env="production")) == {}


def test_client_certificates_without_a_ca_file(load_app, tmp_path: Path, ca: Authority) -> None:
    settings = pair(ca, tmp_path)
    mod = load_app(app_source(ssl_cert_reqs="required", **settings))
    assert_fires(mod, "tls.client_auth", {"development": E, "production": E}, "no ssl_ca_certs can verify it")
    mod = load_app(
        app_source(ssl_cert_reqs="optional", ssl_ca_certs=str(tmp_path / "missing.pem"), **settings)
    )
    assert_fires(mod, "tls.client_auth", {"development": E, "production": E}, "does not exist")


def test_a_ca_file_that_is_never_used(load_app, tmp_path: Path, ca: Authority) -> None:
    mod = load_app(app_source(ssl_ca_certs=str(ca.write(tmp_path)), **pair(ca, tmp_path)))
    assert_fires(mod, "tls.client_auth", {"development": W, "production": W}, "clients are never asked")


def test_an_expired_or_expiring_chain_certificate(load_app, tmp_path: Path) -> None:
    root = Authority("root")
    # valid from yesterday: for one day it ends as it is made (stored to the second), for six it
    # has five days left
    for days, severity, text in ((1, E, "expired on"), (6, W, "expires in")):
        intermediate = Authority(f"intermediate {days}", parent=root, days_valid=days)
        mod = load_app(app_source(**pair(intermediate, tmp_path, f"leaf{days}")))
        for env in ("development", "production"):
            finding = only(mod.app.check(env=env), "tls.files")
            assert finding.severity == severity and text in finding.message
            assert "chain certificate 'CN=intermediate" in finding.message


def test_an_encrypted_key_needs_its_password(load_app, tmp_path: Path, ca: Authority) -> None:
    settings = pair(ca, tmp_path, password="s3cret")
    mod = load_app(app_source(**settings))
    assert_fires(
        mod, "tls.files", {"development": E, "production": E}, "is encrypted and no ssl_keyfile_password"
    )
    mod = load_app(app_source(ssl_keyfile_password="wrong", **settings))
    assert_fires(mod, "tls.files", {"development": E}, "ssl_keyfile_password does not decrypt")
    good = load_app(app_source(ssl_keyfile_password="s3cret", **settings))
    assert tls_findings(good.app.check(env="production")) == {}


def test_ciphers_below_the_profile(load_app, tmp_path: Path, ca: Authority) -> None:
    settings = pair(ca, tmp_path)
    mod = load_app(app_source(ssl_ciphers="ECDHE+AESGCM:ECDHE+AES+SHA256", **settings))
    severities = {"development": W, "staging": W, "production": E}
    for env, severity in severities.items():
        found = tls_findings(mod.app.check(env=env))["tls.profile"]
        assert {f.severity for f in found} == {severity} and all(f.subject == "ssl_ciphers" for f in found)
        messages = " ".join(f.message for f in found)
        assert "ECDHE-ECDSA-AES128-SHA256, " in messages and "outside the intermediate profile" in messages
        assert "HTTP/2 is not offered" in messages
    within = load_app(app_source(ssl_ciphers="ECDHE+AESGCM", **settings))
    assert tls_findings(within.app.check(env="production")) == {}


def test_a_certificate_key_the_profile_does_not_accept(load_app, tmp_path: Path, ca: Authority) -> None:
    rsa = pair(ca, tmp_path, "rsa", key=make_key("rsa"))
    mod = load_app(app_source(tls_profile="modern", **rsa))
    assert_fires(mod, "tls.profile", {"staging": W, "production": E}, "rsa key is not one the modern profile")
    intermediate = load_app(app_source(**rsa))
    assert tls_findings(intermediate.app.check(env="production")) == {}
    modern = load_app(app_source(tls_profile="modern", **pair(ca, tmp_path, "ec")))
    assert tls_findings(modern.app.check(env="production")) == {}


@pytest.mark.parametrize(
    ("hosts", "allowed", "missing"),
    [
        (("localhost",), ("shop.example.com",), "shop.example.com"),
        (("*.example.com",), ("a.b.example.com",), "a.b.example.com"),
        (("*.example.com",), (".example.com",), ".example.com"),
        (("10.0.0.1",), ("10.0.0.2",), "10.0.0.2"),
    ],
)
def test_a_certificate_that_does_not_cover_the_host_names(
    load_app, tmp_path: Path, ca: Authority, hosts: tuple[str, ...], allowed: tuple[str, ...], missing: str
) -> None:
    mod = load_app(app_source(allowed_hosts=allowed, **pair(ca, tmp_path, hosts=hosts)))
    assert_fires(mod, "tls.hostname", {"development": W, "staging": W, "production": E}, f"does not cover {missing}")  # fmt: skip


@pytest.mark.parametrize(
    ("hosts", "allowed"),
    [
        (("shop.example.com",), ("shop.example.com",)),
        (("*.example.com",), ("a.example.com", "b.example.com")),
        (("example.com", "*.example.com"), (".example.com",)),
        (("10.0.0.1",), ("10.0.0.1",)),
        (("localhost",), ("*",)),
    ],
)
def test_a_certificate_that_covers_the_host_names(
    load_app, tmp_path: Path, ca: Authority, hosts: tuple[str, ...], allowed: tuple[str, ...]
) -> None:
    mod = load_app(app_source(allowed_hosts=allowed, **pair(ca, tmp_path, hosts=hosts)))
    assert tls_findings(mod.app.check(env="production")) == {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def raw_app(load_app, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.chdir(tmp_path)
    return load_app("async def raw(scope, receive, send):\n    pass\n", name="tls_rules_app")


def test_pounce_check_judges_the_server_settings(raw_app: Any, tmp_path: Path, ca: Authority) -> None:
    settings = pair(ca, tmp_path, hosts=("localhost",))
    config = ServerConfig(
        app="tls_rules_app:raw", host="api.example.com", port=_free_port(), ssl_cert_reqs="required",
        ssl_ciphers="ECDHE+AESGCM:AES128-SHA", **settings,
    )  # fmt: skip
    report = run_preflight(config)
    found = tls_findings(report)
    assert found["tls.client_auth"][0].severity == E
    assert found["tls.hostname"][0].severity == E and "api.example.com" in found["tls.hostname"][0].message
    assert {f.severity for f in found["tls.profile"]} == {E}


def test_pounce_serve_refuses_exactly_the_fatal_problems(tmp_path: Path, ca: Authority) -> None:
    (tmp_path / "raw.py").write_text("async def app(scope, receive, send):\n    pass\n")
    settings = pair(ca, tmp_path)
    base = ["pounce", "serve", "--app", "raw:app", "--port", "0"]
    base += ["--ssl-certfile", settings["ssl_certfile"], "--ssl-keyfile", settings["ssl_keyfile"]]
    done = run_cli([*base, "--ssl-cert-reqs", "required"], tmp_path, timeout=30)
    assert done.returncode == 1
    assert "error: ssl_cert_reqs=required asks clients for a certificate" in done.stderr
    assert "set ssl_ca_certs to the PEM file" in done.stderr
    done = run_cli([*base, "--ssl-ciphers", "NO-SUCH-SUITE"], tmp_path, timeout=30)
    assert done.returncode == 2 and "ssl_ciphers='NO-SUCH-SUITE' is invalid" in done.stderr
