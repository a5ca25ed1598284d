"""The runner, posture, suppressions, overrides and custom rules."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

from chirp import App, AppConfig, ConfigurationError
from chirp.contracts import (
    Finding,
    Report,
    Rule,
    RuleRegistry,
    Severity,
    Suppression,
    builtin_registry,
    everywhere,
    levels,
)
from chirp.contracts.runner import check_app
from helpers.contracts import ids, only

READY = """\
import secrets
from chirp import App, AppConfig
from chirp.middleware import secure_stack

config = AppConfig(
    env="{env}",
    secret_key=secrets.token_urlsafe(48),
    allowed_hosts=("example.com", ".example.com"),
    metrics_enabled=True,
    worker_mode="async",
    workers=2,
)
app = App(config)
for middleware in secure_stack(config):
    app.add_middleware(middleware)


@app.route("/")
def index():
    return "hello"


@app.route("/login", methods=["POST"])
def login():
    return "ok"
"""


@pytest.mark.parametrize("env", ["development", "staging", "production"])
def test_deploy_ready_app_passes_deploy_check(load_app, env):
    mod = load_app(READY.format(env=env))
    report = mod.app.check(deploy=True)
    assert report.findings == ()
    assert report.ok and report.deploy and report.fail_on == Severity.WARNING


def test_deploy_posture_does_not_mutate_config_and_reports_empty_production_secret(load_app):
    mod = load_app(
        "from chirp import App, AppConfig\nconfig = AppConfig(debug=True)  # cfg\napp = App(config)\n"
    )
    before = mod.app.config
    report = mod.app.check(deploy=True)
    assert mod.app.config is before and before.env == "development" and before.debug
    empty = only(report, "secret_key.empty")
    assert empty.severity == Severity.ERROR and empty.location.line == mod.line("# cfg")
    assert only(report, "deploy_debug.enabled").severity == Severity.ERROR
    assert not report.ok
    assert mod.app.check().ok  # the app's own env is still fine


def test_deploy_is_tighten_only_and_counts_warnings_as_errors(load_app):
    # deploy_sentry.no_traces is WARNING everywhere; in deploy it must fail the run.
    mod = load_app(
        READY.format(env="development")
        + 'app.config = app.config.replace(sentry_dsn="https://k@o.ingest.example/1", sentry_traces_sample_rate=0.0)\n'
    )
    normal = mod.app.check()
    assert only(normal, "deploy_sentry.no_traces").severity == Severity.WARNING and normal.ok
    deploy = mod.app.check(deploy=True)
    assert only(deploy, "deploy_sentry.no_traces").severity == Severity.WARNING
    assert not deploy.ok and deploy.failing
    # the stricter of own env and production: a rule stricter in development stays strict
    staging = mod.app.check(env="staging", deploy=True)
    assert staging.env == "production" and staging.deploy  # the report names the posture judged


def test_warnings_as_errors(load_app):
    mod = load_app('from chirp import App, AppConfig\napp = App(AppConfig(secret_key="short"))\n')
    assert mod.app.check().ok
    report = mod.app.check(warnings_as_errors=True)
    assert not report.ok and ids(report) == {"secret_key.weak"}


def test_unknown_env_raises_naming_the_field(load_app):
    mod = load_app("from chirp import App\napp = App()\n")
    with pytest.raises(ConfigurationError) as info:
        mod.app.check(env="prod")
    assert info.value.field == "env"


# -- suppressions -------------------------------------------------------------------------


def test_suppression_marks_finding_and_keeps_it_out_of_the_failing_count(load_app):
    mod = load_app(
        "from chirp import App, AppConfig\napp = App(AppConfig(allowed_hosts=()))\n"
        'app.suppress("allowed_hosts.empty", reason="internal tool, Host checked by the mesh")  # sup\n'
    )
    report = mod.app.check()
    finding = only(report, "allowed_hosts.empty")
    assert finding.suppressed is not None and finding.suppressed.reason.startswith("internal tool")
    assert report.ok and report.counts["suppressed"] == 1 and report.counts["error"] == 0


def test_expired_suppression_stops_suppressing_and_is_reported(load_app):
    mod = load_app(
        "import datetime\nfrom chirp import App, AppConfig\napp = App(AppConfig(allowed_hosts=()))\n"
        'app.suppress("allowed_hosts.empty", reason="temporary", until=datetime.date(2020, 1, 1))  # sup\n'
    )
    report = mod.app.check()
    assert only(report, "allowed_hosts.empty").suppressed is None
    expired = only(report, "suppression.expired")
    assert expired.severity == Severity.WARNING and "2020-01-01" in expired.message
    assert expired.location.line == mod.line("# sup")
    assert not report.ok


def test_future_until_string_is_accepted(load_app):
    mod = load_app(
        "from chirp import App, AppConfig\napp = App(AppConfig(allowed_hosts=()))\n"
        'app.suppress("allowed_hosts.empty", reason="migrating", until="2999-01-01")\n'
    )
    assert mod.app.check().ok


def test_unused_suppression_is_a_warning(load_app):
    mod = load_app(
        "from chirp import App, AppConfig\napp = App(AppConfig())\n"
        'app.suppress("allowed_hosts.empty", reason="was needed once")  # sup\n'
        'app.suppress("allowed_hosts.emtpy", reason="typo")  # typo\n'
    )
    report = mod.app.check()
    unused = sorted(
        (f for f in report.findings if f.rule_id == "suppression.unused"), key=lambda f: f.location.line
    )
    assert [f.location.line for f in unused] == [mod.line("# sup"), mod.line("# typo")]
    assert all(f.severity == Severity.WARNING for f in unused)
    assert "not a known rule" in unused[1].message


def test_env_scoped_suppression_only_applies_in_its_env(load_app):
    mod = load_app(
        "from chirp import App, AppConfig\napp = App(AppConfig(secret_key='x' * 40))\n"
        'app.suppress("allowed_hosts.wildcard", reason="staging sits behind a VPN", env="staging")\n'
    )
    assert only(mod.app.check(env="staging"), "allowed_hosts.wildcard").suppressed is not None
    assert only(mod.app.check(env="production"), "allowed_hosts.wildcard").suppressed is None
    # the deploy posture honours only production-scoped suppressions
    assert only(mod.app.check(env="staging", deploy=True), "allowed_hosts.wildcard").suppressed is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"reason": ""}, "reason"),
        ({"reason": "   "}, "reason"),
        ({"reason": "ok", "until": "next week"}, "until"),
        ({"reason": "ok", "env": "prod"}, "env"),
    ],
)
def test_suppression_validation_names_the_field(kwargs, field):
    with pytest.raises(ConfigurationError) as info:
        Suppression.create("hsts.missing", site=None, **{"until": None, "env": None, **kwargs})
    assert info.value.field == field


def test_app_suppress_without_reason_raises(load_app):
    mod = load_app("from chirp import App\napp = App()\n")
    with pytest.raises(ConfigurationError, match="reason"):
        mod.app.suppress("hsts.missing", reason="")
    with pytest.raises(ConfigurationError) as info:
        mod.app.suppress("", reason="because")
    assert info.value.field == "rule"


def test_pyproject_suppressions(load_app, tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'x'\n\n[tool.chirp.check]\nsuppress = [\n"
        '  { rule = "allowed_hosts.empty", reason = "health-only sidecar" },\n'
        '  { rule = "deploy_debug.enabled", reason = "old", until = 2021-06-01 },\n'
        "]\n"
    )
    mod = load_app("from chirp import App, AppConfig\napp = App(AppConfig(allowed_hosts=()))\n")
    report = mod.app.check()
    finding = only(report, "allowed_hosts.empty")
    assert finding.suppressed is not None and finding.suppressed.origin == "pyproject.toml"
    expired = only(report, "suppression.expired")
    assert expired.location.file == str(tmp_path / "pyproject.toml")
    assert expired.location.line == 7


@pytest.mark.parametrize(
    ("entry", "field_end"),
    [
        ('{ rule = "hsts.missing" }', "suppress[0].reason"),
        ('{ rule = "hsts.missing", reason = "x", until = "soon" }', "suppress[0].until"),
        ('{ rule = "hsts.missing", reason = "x", why = "y" }', "suppress[0].why"),
        ('"hsts.missing"', "suppress[0]"),
    ],
)
def test_pyproject_suppression_errors_name_the_entry(load_app, tmp_path, entry, field_end):
    (tmp_path / "pyproject.toml").write_text(f"[tool.chirp.check]\nsuppress = [{entry}]\n")
    mod = load_app("from chirp import App\napp = App()\n")
    with pytest.raises(ConfigurationError) as info:
        mod.app.check()
    assert info.value.field.endswith(field_end)


# -- overrides ----------------------------------------------------------------------------


def test_override_tightens(load_app):
    mod = load_app(
        "from chirp import App, AppConfig\nfrom chirp.contracts import Severity\n"
        "app = App(AppConfig(secret_key='x' * 40))\n"
        'app.override_severity("deploy_metrics.disabled", Severity.ERROR)\n'
        'app.override_severity("allowed_hosts.wildcard", Severity.ERROR)\n'
    )
    report = mod.app.check()
    assert only(report, "deploy_metrics.disabled").severity == Severity.ERROR
    assert only(report, "allowed_hosts.wildcard").severity == Severity.ERROR
    assert not report.ok


@pytest.mark.parametrize(
    ("rule_id", "severity", "match"),
    [
        ("secret_key.weak", "Severity.WARNING", "only tighten"),
        ("tls.files", "Severity.INFO", "only tighten"),
        ("no_such.rule", "Severity.ERROR", "no rule"),
        ("hsts.missing", "'loud'", "Severity"),
    ],
)
def test_override_loosening_or_unknown_raises(load_app, rule_id, severity, match):
    mod = load_app(
        "from chirp import App\nfrom chirp.contracts import Severity\napp = App()\n"
        f"app.override_severity({rule_id!r}, {severity})\n"
    )
    with pytest.raises(ConfigurationError, match=match) as info:
        mod.app.check()
    assert rule_id in info.value.field


# -- custom rules -------------------------------------------------------------------------


def test_custom_rule_runs_and_can_be_suppressed(load_app):
    mod = load_app(
        """\
from chirp import App, AppConfig
from chirp.contracts import Finding, Severity, levels, rule

app = App(AppConfig())

@rule("acme.admin_route", title="No /admin", severity=levels(Severity.WARNING, Severity.ERROR, Severity.ERROR),
      hint="Serve the admin from the internal app.")
def admin_route(snap):
    for route in snap.routes:
        if route.path.startswith("/admin"):
            yield Finding(f"route {route.path} is public", route.site, route.path)

app.add_contract_rule(admin_route)

@app.route("/admin")  # admin
def admin():
    return "hi"
"""
    )
    finding = only(mod.app.check(), "acme.admin_route")
    assert finding.severity == Severity.WARNING and finding.category == "acme"
    assert finding.location.line == mod.line("# admin")
    assert only(mod.app.check(env="production"), "acme.admin_route").severity == Severity.ERROR


def test_custom_rule_that_raises_becomes_an_error_finding(load_app):
    mod = load_app(
        """\
from chirp import App
from chirp.contracts import everywhere, rule, Severity

app = App()

@rule("acme.broken", title="Broken", severity=everywhere(Severity.INFO), hint="Fix it.")
def broken(snap):  # broken
    raise KeyError("missing")

app.add_contract_rule(broken)
"""
    )
    report = mod.app.check()
    finding = only(report, "contracts.rule_error")
    assert (
        finding.severity == Severity.ERROR
        and "acme.broken" in finding.message
        and "KeyError" in finding.message
    )
    assert finding.location.line == mod.line("@rule(")
    assert not report.ok


def test_custom_rule_may_yield_plain_messages(load_app):
    mod = load_app(
        "from chirp import App\nfrom chirp.contracts import everywhere, rule, Severity\napp = App()\n"
        "@rule('acme.note', title='Note', severity=everywhere(Severity.INFO), hint='Nothing to do.')\n"
        "def note(snap):\n    yield 'just so you know'\n"
        "app.add_contract_rule(note)\n"
    )
    assert only(mod.app.check(), "acme.note").message == "just so you know"


def test_custom_rule_id_collision_raises(load_app):
    mod = load_app(
        "from chirp import App\nfrom chirp.contracts import everywhere, rule, Severity\napp = App()\n"
        "@rule('hsts.missing', title='Mine', severity=everywhere(Severity.INFO), hint='x')\n"
        "def mine(snap):\n    return []\n"
        "app.add_contract_rule(mine)\n"
    )
    with pytest.raises(ConfigurationError) as info:
        mod.app.check()
    assert info.value.field == "Rule.id"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"id": "nodots"}, "Rule.id"),
        ({"hint": ""}, "Rule.hint"),
        ({"check": "not callable"}, "Rule.check"),
        ({"severity": {"prod": Severity.ERROR}}, "Rule.severity"),
    ],
)
def test_rule_validation(kwargs, field):
    base = {
        "id": "acme.x",
        "title": "X",
        "severity": everywhere(Severity.INFO),
        "hint": "Do y.",
        "check": lambda s: [],
    }
    with pytest.raises(ConfigurationError) as info:
        Rule(**{**base, **kwargs})
    assert info.value.field == field


def test_registry_rejects_duplicates_and_non_rules():
    registry = RuleRegistry()
    registry.register("acme.one", title="One", severity=everywhere(Severity.INFO), hint="Fix.")(lambda s: [])
    with pytest.raises(ConfigurationError):
        registry.register("acme.one", title="Again", severity=everywhere(Severity.INFO), hint="Fix.")(
            lambda s: []
        )
    with pytest.raises(ConfigurationError):
        registry.add("acme.two")  # type: ignore[arg-type]
    assert [r.id for r in registry] == ["acme.one"] and "acme.one" in registry and len(registry) == 1


def test_test_env_follows_development_by_default():
    mapping = levels(Severity.WARNING, Severity.ERROR, Severity.ERROR)
    assert mapping["test"] == Severity.WARNING
    assert levels(None, None, Severity.INFO, test=Severity.ERROR)["test"] == Severity.ERROR
    r = Rule("acme.t", "T", {"development": "warning", "production": "error"}, "Fix.", lambda s: [])
    assert (
        r.level("test") == Severity.WARNING
        and r.level("staging") is None
        and r.level("production") == Severity.ERROR
    )


def test_builtin_registry_is_built_once_and_covers_the_spec_table():
    assert builtin_registry() is builtin_registry()
    spec = {
        "secret_key.empty": "-,E,E", "secret_key.weak": "W,W,E", "secret_key.hardcoded": "-,W,W",
        "allowed_hosts.wildcard": "-,W,E", "allowed_hosts.empty": "E,E,E", "security_stack.missing": "-,W,E",
        "security_stack.headers_missing": "W,W,E", "security_stack.order": "E,E,E", "csp_nonce.missing": "-,W,E",
        "csp_nonce.unsafe_inline": "-,W,E", "hsts.missing": "-,-,W", "cookie.insecure": "-,W,E",
        "deploy_health.collision": "E,E,E", "deploy_health.same_path": "E,E,E", "deploy_debug.enabled": "-,W,E",
        "deploy_metrics.collision": "E,E,E", "deploy_metrics.disabled": "-,-,I", "deploy_sentry.no_traces": "W,W,W",
        "worker_hooks.sync_mode": "W,E,E", "workers.single_with_state": "W,W,E", "trusted_proxies.wildcard": "W,W,E",
        "introspection.public": "W,E,E", "tls.files": "E,E,E",
    }  # fmt: skip
    names = {"E": Severity.ERROR, "W": Severity.WARNING, "I": Severity.INFO, "-": None}
    for rule_id, row in spec.items():
        item = builtin_registry().get(rule_id)
        assert item is not None, rule_id
        dev, stg, prod = (names[x] for x in row.split(","))
        assert (item.level("development"), item.level("test"), item.level("staging"), item.level("production")) == (
            dev, dev, stg, prod,
        ), rule_id  # fmt: skip


def test_select_and_ignore(load_app):
    mod = load_app("from chirp import App, AppConfig\napp = App(AppConfig(allowed_hosts=(), debug=True))\n")
    only_hosts = check_app(mod.app, env="production", select=["allowed_hosts"])
    assert ids(only_hosts) == {"allowed_hosts.empty"}
    assert "deploy_debug.enabled" not in only_hosts.rules_run
    ignored = check_app(mod.app, env="production", ignore=["allowed_hosts.empty", "secret_key"])
    assert "allowed_hosts.empty" not in ids(ignored) and "deploy_debug.enabled" in ids(ignored)
    with pytest.raises(ConfigurationError):
        check_app(mod.app, select=["allowed_host"])


def test_report_sorting_and_counts():
    findings = [
        Finding("b", rule_id="b.x", severity=Severity.INFO),
        Finding("a", rule_id="z.x", severity=Severity.ERROR),
        Finding("c", rule_id="a.x", severity=Severity.ERROR),
        Finding("d", rule_id="c.x", severity=Severity.WARNING),
    ]
    report = Report(findings=tuple(findings))
    assert [f.rule_id for f in report.findings] == ["a.x", "z.x", "c.x", "b.x"]
    assert report.counts == {"error": 2, "warning": 1, "info": 1, "suppressed": 0}
    assert not report.ok
    assert Severity.INFO < Severity.WARNING < Severity.ERROR


def test_check_freezes_the_app(load_app):
    mod = load_app("from chirp import App\napp = App()\n")
    mod.app.check()
    with pytest.raises(RuntimeError):
        mod.app.route("/late")(lambda: "x")


def test_app_is_unchanged_type_and_no_heavy_imports():
    code = (
        "import sys, chirp\n"
        "assert 'chirp.contracts' not in sys.modules, 'import chirp loaded the contract engine'\n"
        "app = chirp.App(chirp.AppConfig())\n"
        "app.check(deploy=True)\n"
        "heavy = [m for m in ('h2', 'wsproto', 'prometheus_client', 'opentelemetry', 'sentry_sdk', 'cryptography', 'httpx', 'chirp.testing') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_finding_fingerprint_ignores_line_moves():
    from chirp.contracts.model import Location

    a = Finding("m", Location("/x/app.py", 3), "secret_key", rule_id="secret_key.weak")
    b = Finding("m", Location("/x/app.py", 30), "secret_key", rule_id="secret_key.weak")
    c = Finding("m", Location("/x/app.py", 3), "secret_key", rule_id="secret_key.empty")
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_suppression_today_boundary():
    s = Suppression.create("hsts.missing", reason="x", until=dt.date.today(), env=None, site=None)
    assert not s.expired(dt.date.today())
    assert s.expired(dt.date.today() + dt.timedelta(days=1))


def test_app_config_is_a_plain_appconfig_after_check(load_app):
    mod = load_app(READY.format(env="production"))
    mod.app.check(deploy=True)
    assert isinstance(mod.app.config, AppConfig) and isinstance(mod.app, App)
