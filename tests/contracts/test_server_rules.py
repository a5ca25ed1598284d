"""TLS, introspection and the pounce preflight rules (bind, ASGI signature, workers)."""

from __future__ import annotations

import socket

import pytest

from chirp.contracts import Severity
from helpers.certs import make_key, write_pair
from helpers.contracts import only
from pounce.config import ServerConfig
from pounce.preflight import run_preflight

APP = "from chirp import App, AppConfig\napp = App(AppConfig(ssl_certfile={cert!r}, ssl_keyfile={key!r}))  # cfg\n"


def test_tls_valid_pair_is_clean(load_app, tmp_path):
    cert, key = write_pair(tmp_path)
    mod = load_app(APP.format(cert=str(cert), key=str(key)))
    report = mod.app.check(env="production")
    assert not [f for f in report.findings if f.category == "tls"]


@pytest.mark.parametrize(
    ("setup", "severity", "text"),
    [
        ("missing", Severity.ERROR, "does not exist"),
        ("mismatch", Severity.ERROR, "does not match"),
        ("expired", Severity.ERROR, "expired on"),
        ("expiring", Severity.WARNING, "expires in"),
        ("garbage", Severity.ERROR, "not a PEM certificate"),
        ("future", Severity.ERROR, "not valid before"),
    ],
)
def test_tls_files(load_app, tmp_path, setup, severity, text):
    cert, key = write_pair(tmp_path)
    if setup == "missing":
        key = tmp_path / "nope.key"
    elif setup == "mismatch":
        _, key = write_pair(tmp_path, "other")
    elif setup == "expired":
        cert, key = write_pair(tmp_path, "old", days_ago=30, days_valid=10)
    elif setup == "expiring":
        cert, key = write_pair(tmp_path, "soon", days_ago=1, days_valid=6)
    elif setup == "garbage":
        cert.write_text("not a certificate")
    elif setup == "future":
        cert, key = write_pair(tmp_path, "future", days_ago=-5, days_valid=400)
    mod = load_app(APP.format(cert=str(cert), key=str(key)))
    for env in ("development", "production"):
        finding = only(mod.app.check(env=env), "tls.files")
        assert finding.severity == severity and text in finding.message
        assert finding.location.line == mod.line("# cfg")


def test_tls_weak_key(load_app, tmp_path):
    cert, key = write_pair(tmp_path, "weak", key=make_key("rsa", 1024))
    mod = load_app(APP.format(cert=str(cert), key=str(key)))
    assert only(mod.app.check(env="staging"), "tls.weak_key").severity == Severity.WARNING
    finding = only(mod.app.check(env="production"), "tls.weak_key")
    assert finding.severity == Severity.ERROR and "1024-bit RSA" in finding.message
    strong_cert, strong_key = write_pair(tmp_path, "strong", key=make_key("rsa", 2048))
    good = load_app(APP.format(cert=str(strong_cert), key=str(strong_key)))
    assert not [f for f in good.app.check(env="production").findings if f.rule_id == "tls.weak_key"]


def test_tls_through_trusted_proxy_triggers_hsts_only_in_production(load_app):
    mod = load_app(
        "import secrets\nfrom chirp import App, AppConfig\nfrom chirp.middleware import secure_stack\n"
        "config = AppConfig(secret_key=secrets.token_urlsafe(40), trusted_proxies=('10.0.0.0/8',))\n"
        "app = App(config)\nfor m in secure_stack(config):\n    app.add_middleware(m)\n"
    )
    assert only(mod.app.check(env="production"), "hsts.missing").severity == Severity.WARNING
    assert not [f for f in mod.app.check(env="staging").findings if f.rule_id == "hsts.missing"]


# -- introspection ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "fires"), [("0.0.0.0", True), ("10.1.2.3", True), ("127.0.0.1", False), ("::1", False)]
)
def test_introspection_public_from_pounce_toml(load_app, tmp_path, host, fires):
    (tmp_path / "pounce.toml").write_text(f'host = "{host}"\ninfo_endpoint = true\n')
    mod = load_app("from chirp import App\napp = App()\n")
    found = [f for f in mod.app.check(env="staging").findings if f.rule_id == "introspection.public"]
    if not fires:
        assert found == []
        return
    assert len(found) == 1 and found[0].severity == Severity.ERROR
    assert found[0].location.file == str(tmp_path / "pounce.toml")
    assert only(mod.app.check(env="development"), "introspection.public").severity == Severity.WARNING


def test_introspection_from_pyproject_tool_pounce(load_app, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.pounce]\nhost = "0.0.0.0"\ninfo_endpoint = true\n')
    mod = load_app("from chirp import App\napp = App()\n")
    assert only(mod.app.check(env="production"), "introspection.public").severity == Severity.ERROR


def test_introspection_off_is_clean(load_app, tmp_path):
    (tmp_path / "pounce.toml").write_text('host = "0.0.0.0"\n')
    mod = load_app("from chirp import App\napp = App()\n")
    assert not [f for f in mod.app.check(env="production").findings if f.rule_id == "introspection.public"]


# -- pounce preflight -------------------------------------------------------------------


@pytest.fixture
def app_module(load_app, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    return load_app(
        "from chirp import App, AppConfig\napp = App(AppConfig(worker_mode='sync'))\n"
        "async def raw(scope, receive, send):\n    pass\n"
        "def wsgi(environ, start_response):\n    return []\n"
        "class Asgi2:\n    def __init__(self, scope):\n        self.scope = scope\n",
        name="preflight_app",
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_preflight_clean(app_module):
    report = run_preflight(ServerConfig(app="preflight_app:raw", port=_free_port()))
    assert report.ok and report.findings == () and report.tool == "pounce"
    assert "bind.unavailable" in report.rules_run and "secret_key.weak" not in report.rules_run


def test_preflight_import_failure_is_an_error_report(app_module):
    report = run_preflight(ServerConfig(app="preflight_app:missing"))
    assert report.error is not None and report.error.code == "import_failed"
    assert "missing" in report.error.message and report.error.hint


def test_preflight_port_in_use(app_module):
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        report = run_preflight(ServerConfig(app="preflight_app:raw", port=port))
    finding = only(report, "bind.unavailable")
    assert finding.severity == Severity.ERROR and "already in use" in finding.message


def test_preflight_time_wait_port_binds(app_module):
    # A port just released (possibly in TIME_WAIT) must pass: pounce binds with SO_REUSEADDR.
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = server.accept()
    conn.close()  # the server side closes first: its end enters TIME_WAIT
    client.close()
    server.close()
    report = run_preflight(ServerConfig(app="preflight_app:raw", port=port))
    assert "bind.unavailable" not in {f.rule_id for f in report.findings}


def test_preflight_bad_host(app_module):
    report = run_preflight(ServerConfig(app="preflight_app:raw", host="no-such-host.invalid"))
    assert only(report, "bind.address").severity == Severity.ERROR
    assert "bind.unavailable" not in {f.rule_id for f in report.findings}


def test_preflight_unix_socket_directory_missing(app_module, tmp_path):
    report = run_preflight(ServerConfig(app="preflight_app:raw", uds=str(tmp_path / "no" / "app.sock")))
    assert "does not exist" in only(report, "bind.unavailable").message
    ok = run_preflight(ServerConfig(app="preflight_app:raw", uds=str(tmp_path / "app.sock")))
    assert ok.ok and not (tmp_path / "app.sock").exists()


@pytest.mark.parametrize("attr", ["wsgi", "Asgi2"])
def test_preflight_not_asgi3(app_module, attr):
    finding = only(
        run_preflight(ServerConfig(app=f"preflight_app:{attr}", port=_free_port())), "asgi.signature"
    )
    assert finding.severity == Severity.ERROR and finding.location.file == str(app_module.path)


def test_preflight_worker_hooks_with_sync_mode(load_app, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    load_app(
        "from chirp import App, AppConfig\napp = App(AppConfig(env='staging', secret_key='k' * 40))\n"
        "@app.on_worker_startup\nasync def pool():\n    pass\n",
        name="hooks_app",
    )
    sync = run_preflight(ServerConfig(app="hooks_app:app", port=_free_port(), worker_mode="sync"))
    assert only(sync, "worker_hooks.sync_mode").severity == Severity.ERROR and not sync.ok
    fine = run_preflight(ServerConfig(app="hooks_app:app", port=_free_port(), worker_mode="async"))
    assert "worker_hooks.sync_mode" not in {f.rule_id for f in fine.findings}


def test_preflight_workers_and_connections(app_module):
    report = run_preflight(
        ServerConfig(app="preflight_app:raw", port=_free_port(), workers=512, max_connections=10**7)
    )
    assert only(report, "workers.count").severity == Severity.WARNING
    assert only(report, "workers.max_connections").severity == Severity.ERROR  # judged as production
    assert report.env == "production"


def test_preflight_tls_and_trusted_hosts(app_module, tmp_path):
    cert, _ = write_pair(tmp_path)
    _, other_key = write_pair(tmp_path, "other")
    cfg = ServerConfig(
        app="preflight_app:raw", port=_free_port(), ssl_certfile=str(cert), ssl_keyfile=str(other_key),
        trusted_hosts=("*",),
    )  # fmt: skip
    report = run_preflight(cfg, config_file=None)
    assert "does not match" in only(report, "tls.files").message
    assert only(report, "trusted_proxies.wildcard").subject == "trusted_hosts"


def test_preflight_introspection(app_module):
    report = run_preflight(
        ServerConfig(app="preflight_app:raw", host="0.0.0.0", port=_free_port(), info_endpoint=True)
    )
    assert only(report, "introspection.public").severity == Severity.ERROR


REALTIME_APP = (
    "from chirp import App, AppConfig\n"
    'app = App(AppConfig(secret_key="k" * 24 + "0123456789abcdef", workers=4))  # cfg\n'
    "app.contract_features = {'realtime'}\n"
)


def test_single_with_state_counts_the_workers_that_will_run(load_app):
    """Without a launcher, the server `chirp run` would start: one reloading worker in
    development, the configured four elsewhere; with one, exactly its workers."""
    mod = load_app(REALTIME_APP)
    levels = {"development": None, "test": Severity.WARNING, "staging": Severity.WARNING}
    levels["production"] = Severity.ERROR
    for env, level in levels.items():
        found = [f for f in mod.app.check(env=env).findings if f.rule_id == "workers.single_with_state"]
        assert [f.severity for f in found] == ([level] if level else []), env
        if found:
            assert "4 workers will run" in found[0].message
            assert found[0].location.line == mod.line("# cfg")
    one = mod.app.check(env="production", server=ServerConfig(workers=1))
    assert "workers.single_with_state" not in {f.rule_id for f in one.findings}
    three = only(mod.app.check(server=ServerConfig(workers=3)), "workers.single_with_state")
    assert three.severity == Severity.WARNING and "3 workers will run" in three.message
