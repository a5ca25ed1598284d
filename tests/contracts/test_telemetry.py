"""Posture as telemetry: the freeze-time report as Prometheus gauges on pounce's `/metrics`
and as one JSON log line."""

from __future__ import annotations

import json
import logging
import secrets
import textwrap
import urllib.request
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from chirp import App, AppConfig
from chirp.contracts import telemetry
from helpers.process import spawn

LITERAL_SECRET = "k3y-" + "x7Qm" * 10  # a literal in the source: secret_key.hardcoded (WARNING in production)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_freeze_publishes_gauges_and_a_json_log_line(caplog):
    app = App(
        AppConfig(
            env="staging", secret_key=secrets.token_urlsafe(48), debug=True, allowed_hosts=("a.example",)
        )
    )

    @app.route("/")
    def index() -> str:
        return "hi"

    with caplog.at_level(logging.INFO, logger="chirp.contracts"):
        app.freeze()
    assert app.freeze_report is not None
    registry = CollectorRegistry()
    registry.register(telemetry.COLLECTOR)
    values = samples(generate_latest(registry).decode())
    assert (
        values[("chirp_contract_findings", (("rule", "deploy_debug.enabled"), ("severity", "warning")))] == 1
    )
    stamp = values[("chirp_contract_check_timestamp_seconds", ())]
    lines = [r.getMessage() for r in caplog.records if r.name == "chirp.contracts"]
    assert len(lines) == 1 and "\n" not in lines[0]
    record = json.loads(lines[0])
    assert record["event"] == "chirp.contract_check" and record["env"] == "staging" and record["ok"] is True
    assert record["timestamp"] == round(stamp, 3)
    assert {
        "rule": "deploy_debug.enabled",
        "severity": "warning",
        "subject": "debug",
        "suppressed": False,
    } in record["findings"]
    assert record["counts"]["warning"] == len(
        [f for f in app.freeze_report.active if f.severity.label == "warning"]
    )


def test_suppressed_findings_are_not_counted_as_gauges():
    app = App(
        AppConfig(
            env="staging", secret_key=secrets.token_urlsafe(48), debug=True, allowed_hosts=("a.example",)
        )
    )
    app.suppress("deploy_debug.enabled", reason="staging shows tracebacks to the team")
    app.freeze()
    counts, stamp = telemetry.COLLECTOR.samples()
    assert stamp is not None
    assert not any(rule == "deploy_debug.enabled" for rule, _ in counts)


def test_register_puts_the_gauges_on_another_registry():
    registry = CollectorRegistry()
    assert telemetry.register(registry) is telemetry.COLLECTOR
    App(AppConfig(secret_key=secrets.token_urlsafe(48))).freeze()
    assert "chirp_contract_check_timestamp_seconds" in generate_latest(registry).decode()


def test_the_gauges_appear_on_pounces_metrics_endpoint(tmp_path: Path):
    (tmp_path / "postureapp.py").write_text(
        textwrap.dedent(
            f"""
            from chirp import App, AppConfig
            from chirp.middleware import secure_stack

            config = AppConfig(env="production", secret_key="{LITERAL_SECRET}", allowed_hosts=("example.com",),
                               metrics_enabled=True)
            app = App(config)
            for middleware in secure_stack(config):
                app.add_middleware(middleware)


            @app.route("/")
            def index():
                return "hello"
            """
        )
    )
    server = spawn(
        ["chirp", "run", "postureapp:app", "--port", "0", "--no-reload", "--workers", "1"],
        cwd=tmp_path,
        env={"PROMETHEUS_MULTIPROC_DIR": ""},
    )
    try:
        with urllib.request.urlopen(f"{server.url}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        server.stop()
    values = samples(text)
    assert (
        values[("chirp_contract_findings", (("rule", "secret_key.hardcoded"), ("severity", "warning")))] == 1
    )
    assert values[("chirp_contract_check_timestamp_seconds", ())] > 1_600_000_000
    assert any(name.startswith("pounce_") for name, _ in values)  # the server's own series are still there


def test_the_example_grafana_dashboard_reads_the_published_gauges():
    root = Path(__file__).resolve().parents[2]
    dashboard = json.loads((root / "docs/grafana-chirp-contract.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert exprs and all(telemetry.FINDINGS in e or telemetry.TIMESTAMP in e for e in exprs)
    assert any(telemetry.FINDINGS in e and 'severity="error"' in e for e in exprs)
    assert any(telemetry.TIMESTAMP in e for e in exprs)
    assert "chirp_contract_findings{rule, severity}" in (root / "docs/dashboards.md").read_text()
