"""Settings of the operations features: validation, pounce/chirp CLI flags, AppConfig mapping."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from chirp import AppConfig
from chirp.serving import server_config
from helpers.process import spawn
from pounce.config import ServerConfig
from pounce.errors import ConfigurationError

BAD = [
    ({"health_path": "health"}, "health_path", "start the path with '/'"),
    ({"ready_path": "ready"}, "ready_path", "start the path with '/'"),
    ({"metrics_path": "metrics"}, "metrics_path", "start the path with '/'"),
    ({"ready_path": "/health"}, "ready_path", "different paths"),
    ({"metrics_enabled": True, "metrics_path": "/ready"}, "metrics_path", "collides with ready_path"),
    ({"metrics_enabled": True, "metrics_path": "/_pounce/info"}, "metrics_path", "info endpoint"),
    ({"rate_limit_requests_per_second": 0.0}, "rate_limit_requests_per_second", "greater than 0"),
    ({"request_queue_timeout": -1.0}, "request_queue_timeout", "greater than 0"),
    ({"rate_limit_burst": 0}, "rate_limit_burst", "at least 1"),
    ({"rate_limit_max_clients": 0}, "rate_limit_max_clients", "at least 1"),
    ({"request_queue_max_concurrency": 0}, "request_queue_max_concurrency", "at least 1"),
    ({"request_queue_max_depth": -1}, "request_queue_max_depth", "use 0"),
    ({"compression_min_size": -1}, "compression_min_size", "use 0 or a positive"),
    ({"compression_level": 0}, "compression_level", "from 1"),
    ({"compression_level": 10}, "compression_level", "from 1"),
    ({"sentry_traces_sample_rate": 1.5}, "sentry_traces_sample_rate", "between 0.0 and 1.0"),
    ({"sentry_dsn": "not-a-dsn"}, "sentry_dsn", "DSN"),
    ({"otel_endpoint": "localhost:4318"}, "otel_endpoint", "OTLP/HTTP URL"),
    ({"redis_url": "127.0.0.1:6379"}, "redis_url", "redis://"),
    ({"otel_service_name": ""}, "otel_service_name", "name the service"),
]


@pytest.mark.parametrize("settings, field, fix", BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)])
def test_invalid_feature_settings_name_field_value_and_fix(
    settings: dict[str, Any], field: str, fix: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ServerConfig(**settings)
    assert caught.value.field == field
    assert fix in str(caught.value)
    assert str(caught.value).startswith(f"{field}=")


def test_secrets_are_not_echoed_in_errors() -> None:
    with pytest.raises(ConfigurationError) as caught:
        ServerConfig(redis_url="tcp://user:hunter2@cache")
    assert "hunter2" not in str(caught.value)


def test_feature_settings_load_from_pounce_toml(tmp_path: Path) -> None:
    path = tmp_path / "pounce.toml"
    path.write_text(
        "metrics_enabled = true\nrate_limit_burst = 7\nrequest_queue_timeout = 2\nrate_limit_bust = 1\n"
    )
    with pytest.raises(ConfigurationError, match="did you mean 'rate_limit_burst'"):
        ServerConfig.load(path)
    path.write_text("metrics_enabled = true\nrate_limit_burst = 7\nrequest_queue_timeout = 2\n")
    cfg = ServerConfig.load(path, rate_limit_burst=9)
    assert (cfg.metrics_enabled, cfg.rate_limit_burst, cfg.request_queue_timeout) == (True, 9, 2.0)


def test_app_config_maps_onto_the_server_features() -> None:
    app_config = AppConfig(
        env="staging", secret_key="s" * 40, metrics_enabled=True, metrics_path="/_m", rate_limit_enabled=True,
        rate_limit_requests_per_second=3.0, rate_limit_burst=4, request_queue_enabled=True,
        request_queue_max_depth=12, sentry_dsn="https://k@sentry.example/1", sentry_traces_sample_rate=0.5,
        otel_endpoint="http://collector:4318/v1/traces", otel_service_name="shop", redis_url="redis://cache:6379/1",
        health_path="/livez", ready_path="/readyz",
    )  # fmt: skip
    cfg = server_config(app_config, "shop:app")
    assert cfg.metrics_enabled and cfg.metrics_path == "/_m"
    assert (cfg.rate_limit_enabled, cfg.rate_limit_requests_per_second, cfg.rate_limit_burst) == (
        True,
        3.0,
        4,
    )
    assert (cfg.request_queue_enabled, cfg.request_queue_max_depth) == (True, 12)
    assert (cfg.sentry_dsn, cfg.sentry_traces_sample_rate) == ("https://k@sentry.example/1", 0.5)
    assert (cfg.otel_endpoint, cfg.otel_service_name) == ("http://collector:4318/v1/traces", "shop")
    assert cfg.redis_url == "redis://cache:6379/1"
    assert (cfg.health_path, cfg.ready_path) == ("/livez", "/readyz")


CHIRP_APP = textwrap.dedent(
    """
    from chirp import App, AppConfig

    app = App(AppConfig(env="test", rate_limit_requests_per_second=0.01, rate_limit_burst=2))

    @app.route("/hello/{name}")
    def hello(name: str) -> str:
        return f"hello {name}"
    """
)


def test_chirp_run_flags_turn_the_features_on(tmp_path: Path) -> None:
    (tmp_path / "shop.py").write_text(CHIRP_APP)
    server = spawn(["chirp", "run", "shop:app", "--port", "0", "--no-reload", "--metrics", "--rate-limit",
                    "--queue"], tmp_path)  # fmt: skip
    try:
        assert any("features: metrics, rate-limit, queue" in line for line in server.log)
        with httpx.Client(base_url=server.url) as client:
            assert [client.get("/hello/a").status_code for _ in range(3)] == [200, 200, 429]
            assert client.get("/health").status_code == 200
            text = client.get("/metrics").text
        assert 'route="/hello/{name}"' in text
        assert "pounce_rate_limited_total 1.0" in text
    finally:
        server.stop()
