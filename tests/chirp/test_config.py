"""AppConfig: defaults, validation errors that name field, value and fix, from_env."""

from __future__ import annotations

import warnings

import pytest

from chirp import AppConfig, ConfigurationError


def test_defaults_match_the_spec() -> None:
    cfg = AppConfig()
    assert cfg.env == "development" and cfg.debug is False and cfg.secret_key == ""
    assert cfg.allowed_hosts == ("*",) and cfg.workers == 0 and cfg.worker_mode == "auto"
    assert (cfg.health_path, cfg.ready_path, cfg.metrics_path) == ("/health", "/ready", "/metrics")
    assert cfg.max_request_body_size == 16 * 1024 * 1024
    assert cfg.forwarded_for_trusted_hops == 1 and cfg.trusted_proxies == ()


def test_frozen_and_repr_hides_secrets() -> None:
    cfg = AppConfig(secret_key="s3cr3t-value-that-is-long-enough!", database_url="postgresql://u:pw@h/db")
    with pytest.raises(AttributeError):
        cfg.debug = True  # type: ignore[misc]
    text = repr(cfg)
    assert "s3cr3t" not in text and "pw@" not in text and "***" in text


def test_construction_site_is_recorded() -> None:
    cfg = AppConfig()
    assert cfg.source is not None and cfg.source.file == __file__


@pytest.mark.parametrize(
    ("kwargs", "field", "fix"),
    [
        ({"env": "prod"}, "env", "development, test, staging, production"),
        ({"forwarded_for_trusted_hops": 0}, "forwarded_for_trusted_hops", "leave trusted_proxies empty"),
        ({"max_request_body_size": 0}, "max_request_body_size", "greater than 0"),
        ({"request_timeout": -1.0}, "request_timeout", "greater than 0"),
        ({"keep_alive_timeout": 0}, "keep_alive_timeout", "greater than 0"),
        ({"rate_limit_burst": 0}, "rate_limit_burst", "greater than 0"),
        ({"ssl_certfile": "cert.pem"}, "ssl_keyfile", "together"),
        ({"ssl_keyfile": "key.pem"}, "ssl_certfile", "together"),
        ({"health_path": "health"}, "health_path", "start the path with '/'"),
        ({"ready_path": "/health"}, "ready_path", "different paths"),
        ({"env": "production"}, "secret_key", "CHIRP_SECRET_KEY"),
        ({"worker_mode": "threads"}, "worker_mode", "auto, sync, async"),
        ({"workers": -2}, "workers", "positive"),
        ({"port": 70000}, "port", "between 0 and 65535"),
        ({"log_format": "xml"}, "log_format", "auto, text, json"),
        ({"sentry_traces_sample_rate": 2.0}, "sentry_traces_sample_rate", "between 0.0 and 1.0"),
        ({"cross_origin_embedder_policy": "corp"}, "cross_origin_embedder_policy", "credentialless"),
    ],
)
def test_invalid_settings_raise_with_field_value_and_fix(kwargs: dict, field: str, fix: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        AppConfig(**kwargs)
    assert isinstance(info.value, ValueError)
    assert info.value.field == field
    message = str(info.value)
    assert message.startswith(f"{field}=") and fix in message


def test_from_env_reads_every_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHIRP_ENV", "staging")
    monkeypatch.setenv("CHIRP_DEBUG", "yes")
    monkeypatch.setenv("CHIRP_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("CHIRP_ALLOWED_HOSTS", "example.com, .example.org")
    monkeypatch.setenv("CHIRP_PORT", "9000")
    monkeypatch.setenv("CHIRP_RATE_LIMIT_REQUESTS_PER_SECOND", "2.5")
    monkeypatch.setenv("CHIRP_METRICS_ENABLED", "off")
    monkeypatch.setenv("CHIRP_HEALTH_PATH", "/livez")
    monkeypatch.setenv("CHIRP_SENTRY_DSN", "")
    monkeypatch.setenv("CHIRP_CROSS_ORIGIN_EMBEDDER_POLICY", "require-corp")
    cfg = AppConfig.from_env(worker_mode="async")
    assert cfg.env == "staging" and cfg.debug is True and cfg.port == 9000
    assert cfg.allowed_hosts == ("example.com", ".example.org")
    assert cfg.rate_limit_requests_per_second == 2.5 and cfg.metrics_enabled is False
    assert cfg.health_path == "/livez" and cfg.sentry_dsn is None and cfg.worker_mode == "async"
    assert cfg.cross_origin_embedder_policy == "require-corp"
    assert "secret_key" in cfg.from_environment and "worker_mode" not in cfg.from_environment


def test_from_env_overrides_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHIRP_ENV", "staging")
    assert AppConfig.from_env(env="test").env == "test"


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("CHIRP_PORT", "eighty", "expected a whole number, such as 4"),
        ("CHIRP_WORKERS", "four", "expected a whole number, such as 4"),
        ("CHIRP_DEBUG", "maybe", "expected a boolean (1/true/yes/on or 0/false/no/off)"),
        ("CHIRP_RATE_LIMIT_BURST", "1.5", "expected a whole number, such as 4"),
        ("CHIRP_RATE_LIMIT_REQUESTS_PER_SECOND", "fast", "expected a number, such as 2.5"),
    ],
)
def test_from_env_malformed_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigurationError) as info:
        AppConfig.from_env()
    assert info.value.field == var and value in str(info.value)
    assert expected in str(info.value) and "class" not in str(info.value)


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ("forwarded_for_trusted_hops", 1.5, "expected a whole number, such as 4"),
        ("forwarded_for_trusted_hops", True, "expected a whole number, such as 4"),
        ("forwarded_for_trusted_hops", "2", "expected a whole number, such as 4"),
        ("workers", "2", "expected a whole number, such as 4"),
        ("keep_alive_timeout", "5", "expected a number, such as 2.5"),
    ],
)
def test_a_number_setting_of_another_type_is_refused_when_built(
    setting: str, value: object, expected: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        AppConfig(**{setting: value})  # type: ignore[arg-type]
    assert info.value.field == setting and expected in str(info.value)
    AppConfig(keep_alive_timeout=5)  # an int is a fine float


def test_a_trusted_proxy_must_be_an_address_or_network_as_the_server_requires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hostname passed `chirp check` and was refused by every launch; now the config refuses it."""
    with pytest.raises(ConfigurationError) as info:
        AppConfig(trusted_proxies=("10.0.0.1", "localhost"))
    assert info.value.field == "trusted_proxies" and "'localhost'" in str(info.value)
    assert "use IP addresses or CIDR networks such as 10.0.0.0/8" in str(info.value)
    monkeypatch.setenv("CHIRP_TRUSTED_PROXIES", "proxy.internal")
    with pytest.raises(ConfigurationError, match=r"trusted_proxies='proxy\.internal' is invalid"):
        AppConfig.from_env()
    monkeypatch.setenv("CHIRP_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7, ::1")
    assert AppConfig.from_env().trusted_proxies == ("10.0.0.0/8", "192.0.2.7", "::1")


def test_from_env_unknown_variable_warns_with_the_nearest_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHIRP_SECRET_KEYS", "typo")
    with pytest.warns(UserWarning, match="CHIRP_SECRET_KEYS ignored; did you mean 'CHIRP_SECRET_KEY'"):
        AppConfig.from_env()
    monkeypatch.delenv("CHIRP_SECRET_KEYS")
    monkeypatch.setenv("CHIRP_ZZZ", "far from everything")
    with pytest.warns(UserWarning, match="known: CHIRP_<FIELD>"):
        AppConfig.from_env()


def test_from_env_unknown_override_raises() -> None:
    with pytest.raises(ConfigurationError, match="did you mean 'secret_key'"):
        AppConfig.from_env(secret="x")
    with pytest.raises(ConfigurationError, match="not an AppConfig field"):
        AppConfig.from_env(zzz="x")


def test_from_env_custom_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYAPP_PORT", "1234")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert AppConfig.from_env(prefix="MYAPP_").port == 1234


def test_unchecked_replace_skips_validation_without_mutation() -> None:
    cfg = AppConfig()
    view = cfg.unchecked_replace(env="production")
    assert view.env == "production" and view.secret_key == "" and cfg.env == "development"
