"""`ServerConfig`: every pounce setting in one frozen, validated dataclass.

Values come from defaults, then a `pounce.toml` (or `[tool.pounce]` in pyproject.toml),
then CLI flags; `ServerConfig.load()` applies that order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pounce import implementations
from pounce.errors import ConfigurationError, did_you_mean
from pounce.tls_settings import validate_settings
from pounce.validation import check_networks, check_ops_paths, field_type

LIFESPAN_MODES = ("auto", "on", "off")
WORKER_MODES = ("auto", "sync", "async")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
ACCESS_LOG_FORMATS = ("text", "json")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Settings of one pounce server; see `pounce config schema` for every field."""

    app: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    uds: str | None = None
    workers: int = 1
    worker_mode: str = "auto"
    max_requests: int = 0
    max_requests_jitter: int = 0
    backlog: int = 2048
    max_connections: int | None = None
    reuse_port: bool = False
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_keyfile_password: str | None = None
    ssl_ca_certs: str | None = None
    ssl_cert_reqs: str = "none"
    tls_profile: str = "intermediate"
    ssl_ciphers: str | None = None
    keep_alive_timeout: float = 5.0
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    min_body_rate: float = 240.0
    min_body_rate_grace: float = 5.0
    write_timeout: float = 30.0
    startup_timeout: float = 30.0
    shutdown_timeout: float = 30.0
    max_header_size: int = 64 * 1024
    max_header_count: int = 100
    max_url_length: int = 8192
    max_body_size: int = 16 * 1024 * 1024
    lifespan: str = "auto"
    server_header: str = "pounce"
    root_path: str = ""
    trusted_hosts: tuple[str, ...] = ()
    forwarded_for_trusted_hops: int = 1
    log_level: str = "info"
    access_log: bool = True
    access_log_format: str = "text"
    reload: bool = False
    info_endpoint: bool = False
    ws_max_message_size: int = 16 * 1024 * 1024
    h2_max_concurrent_streams: int = 100
    h2c: bool = True
    loop: str = "auto"
    http: str = "auto"
    health_path: str = "/health"
    ready_path: str = "/ready"
    metrics_enabled: bool = False
    metrics_path: str = "/metrics"
    rate_limit_enabled: bool = False
    rate_limit_requests_per_second: float = 100.0
    rate_limit_burst: int = 200
    rate_limit_max_clients: int = 10_000
    request_queue_enabled: bool = False
    request_queue_max_concurrency: int = 100
    request_queue_max_depth: int = 1000
    request_queue_timeout: float = 10.0
    compression: bool = True
    compression_min_size: int = 500
    compression_level: int = 6
    otel_endpoint: str | None = None
    otel_service_name: str = "pounce"
    sentry_dsn: str | None = None
    sentry_traces_sample_rate: float = 0.1
    sentry_data_collection: Mapping[str, Any] | None = field(default=None, hash=False)
    redis_url: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        _validate(self)

    def replace(self, **changes: Any) -> ServerConfig:
        return dataclasses.replace(self, **changes)

    @property
    def bind_description(self) -> str:
        if self.uds:
            return f"unix:{self.uds}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.ssl_certfile else "http"
        return f"{scheme}://{host}:{self.port}"

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name != "extra"]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "config") -> ServerConfig:
        """Build from a mapping (a TOML table or CLI flags), coercing and checking keys."""
        known = cls.field_names()
        values: dict[str, Any] = {}
        for key, raw in data.items():
            name = key.replace("-", "_")
            if name not in known:
                fix = did_you_mean(name, known) or "remove it; see `pounce config schema`"
                raise ConfigurationError(f"{source}: {key}", raw, f"unknown setting, {fix}")
            values[name] = _coerce(name, raw, field_type(cls, name), source)
        return cls(**values)

    @classmethod
    def load(
        cls, path: str | Path | None = None, *, base: Mapping[str, Any] | None = None, **overrides: Any
    ) -> ServerConfig:
        """Defaults < `base` (what the app implies) < file (`pounce.toml` or `[tool.pounce]`)
        < overrides (CLI flags)."""
        data: dict[str, Any] = dict(base or {})
        source = "config"
        if path is not None:
            source = str(path)
            data.update(read_config_file(Path(path)))
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_mapping(data, source)


def app_defaults(app: Any) -> dict[str, Any]:
    """The server settings an app implies through the optional `pounce_defaults()` hook
    (layered under the settings file and the flags)."""
    from pounce.wrapped import app_attribute

    hook = app_attribute(app, "pounce_defaults")
    return dict(hook()) if callable(hook) else {}


def read_config_file(path: Path) -> dict[str, Any]:
    """Read pounce settings from `pounce.toml` (top level) or pyproject's `[tool.pounce]`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError("--config", str(path), f"cannot read the file ({exc.strerror})") from exc
    import tomllib  # loaded with a config file, not with every ServerConfig

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError("--config", str(path), f"fix the TOML syntax: {exc}") from exc
    if path.name == "pyproject.toml":
        table = doc.get("tool", {}).get("pounce", {})
        return dict(table)
    return doc


def _coerce(name: str, raw: Any, hint: Any, source: str) -> Any:
    text = str(hint)
    try:
        if raw is None:
            return None
        if "tuple" in text:
            if isinstance(raw, str):
                return tuple(p.strip() for p in raw.split(",") if p.strip())
            return tuple(str(v) for v in raw)
        if "bool" in text:
            if isinstance(raw, bool):
                return raw
            lowered = str(raw).strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if "float" in text:
            return float(raw)
        if "int" in text:
            if isinstance(raw, float) or (isinstance(raw, str) and not raw.strip().lstrip("-").isdigit()):
                raise ValueError(raw)
            return int(raw)
        if "Mapping" in text:
            return dict(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{source}: {name}", raw, f"expected {_kind(text)}") from None


def _kind(type_text: str) -> str:
    """A field's type in words, for an error message."""
    for marker, words in (
        ("tuple", "a list of strings"),
        ("bool", "true or false"),
        ("float", "a number"),
        ("int", "an integer"),
        ("Mapping", "a table"),
    ):
        if marker in type_text:
            return words
    return "a string"


def _validate(cfg: ServerConfig) -> None:
    def positive(name: str) -> None:
        value = getattr(cfg, name)
        if value is not None and value <= 0:
            raise ConfigurationError(name, value, "must be greater than 0")

    for name in (
        "keep_alive_timeout", "header_timeout", "body_timeout", "write_timeout",
        "startup_timeout", "shutdown_timeout", "max_header_size", "max_header_count",
        "max_url_length", "max_body_size", "backlog", "max_connections", "ws_max_message_size",
        "h2_max_concurrent_streams",
    ):  # fmt: skip
        positive(name)
    if not 0 <= cfg.port <= 65535:
        raise ConfigurationError("port", cfg.port, "use a port between 0 and 65535 (0 = any free port)")
    if cfg.workers < 0:
        raise ConfigurationError("workers", cfg.workers, "use 0 (one per available CPU) or a positive count")
    if cfg.min_body_rate < 0 or cfg.min_body_rate_grace < 0:
        name = "min_body_rate" if cfg.min_body_rate < 0 else "min_body_rate_grace"
        raise ConfigurationError(name, getattr(cfg, name), "use 0 (off) or a positive number")
    for name in ("max_requests", "max_requests_jitter"):
        if getattr(cfg, name) < 0:
            raise ConfigurationError(name, getattr(cfg, name), "use 0 (off) or a positive count")
    if cfg.worker_mode not in WORKER_MODES:
        raise ConfigurationError("worker_mode", cfg.worker_mode, f"use one of {', '.join(WORKER_MODES)}")
    if cfg.lifespan not in LIFESPAN_MODES:
        raise ConfigurationError("lifespan", cfg.lifespan, f"use one of {', '.join(LIFESPAN_MODES)}")
    implementations.check("loop", cfg.loop)
    implementations.check("http", cfg.http)
    if cfg.log_level.lower() not in LOG_LEVELS:
        raise ConfigurationError("log_level", cfg.log_level, f"use one of {', '.join(LOG_LEVELS)}")
    if cfg.access_log_format not in ACCESS_LOG_FORMATS:
        raise ConfigurationError(
            "access_log_format", cfg.access_log_format, f"use one of {', '.join(ACCESS_LOG_FORMATS)}"
        )
    if bool(cfg.ssl_certfile) != bool(cfg.ssl_keyfile):
        missing = "ssl_keyfile" if cfg.ssl_certfile else "ssl_certfile"
        raise ConfigurationError(missing, None, "set ssl_certfile and ssl_keyfile together")
    validate_settings(cfg)
    if cfg.forwarded_for_trusted_hops < 1:
        raise ConfigurationError(
            "forwarded_for_trusted_hops",
            cfg.forwarded_for_trusted_hops,
            "must be >= 1; to ignore X-Forwarded-For leave trusted_hosts empty",
        )
    check_networks("trusted_hosts", cfg.trusted_hosts)
    _validate_features(cfg)
    if any(c in cfg.server_header for c in "\r\n"):
        raise ConfigurationError("server_header", cfg.server_header, "remove CR/LF characters")


INFO_PATH = "/_pounce/info"


def _validate_features(cfg: ServerConfig) -> None:
    """The operations features: probes, metrics, rate limit, queue, compression, telemetry."""
    check_ops_paths(cfg)
    if cfg.metrics_enabled:
        for name in ("health_path", "ready_path"):
            if cfg.metrics_path == getattr(cfg, name):
                raise ConfigurationError(
                    "metrics_path", cfg.metrics_path, f"it collides with {name}; use e.g. /metrics"
                )
        if cfg.metrics_path == INFO_PATH:
            raise ConfigurationError(
                "metrics_path", cfg.metrics_path, f"{INFO_PATH} is the info endpoint; use e.g. /metrics"
            )
    for name in ("rate_limit_requests_per_second", "request_queue_timeout"):
        value = getattr(cfg, name)
        if not value > 0:
            raise ConfigurationError(name, value, "must be greater than 0")
    for name in ("rate_limit_burst", "rate_limit_max_clients", "request_queue_max_concurrency"):
        value = getattr(cfg, name)
        if value < 1:
            raise ConfigurationError(name, value, "must be at least 1")
    if cfg.request_queue_max_depth < 0:
        raise ConfigurationError(
            "request_queue_max_depth",
            cfg.request_queue_max_depth,
            "use 0 (shed as soon as all slots are busy) or more",
        )
    if cfg.compression_min_size < 0:
        raise ConfigurationError(
            "compression_min_size", cfg.compression_min_size, "use 0 or a positive byte count"
        )
    if not 1 <= cfg.compression_level <= 9:
        raise ConfigurationError(
            "compression_level", cfg.compression_level, "use a level from 1 (fastest) to 9 (smallest)"
        )
    if not 0.0 <= cfg.sentry_traces_sample_rate <= 1.0:
        raise ConfigurationError(
            "sentry_traces_sample_rate", cfg.sentry_traces_sample_rate, "use a rate between 0.0 and 1.0"
        )
    if cfg.sentry_dsn is not None and not cfg.sentry_dsn.startswith(("https://", "http://")):
        raise ConfigurationError(
            "sentry_dsn", "***", "use the DSN from your Sentry project, https://<key>@<host>/<id>"
        )
    if cfg.otel_endpoint is not None and not cfg.otel_endpoint.startswith(("https://", "http://")):
        raise ConfigurationError(
            "otel_endpoint",
            cfg.otel_endpoint,
            "use the collector's OTLP/HTTP URL, e.g. http://localhost:4318/v1/traces",
        )
    if cfg.redis_url is not None and not cfg.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError("redis_url", "***", "use a redis://, rediss:// or unix:// URL")
    if not cfg.otel_service_name:
        raise ConfigurationError(
            "otel_service_name", cfg.otel_service_name, "name the service, e.g. 'shop-api'"
        )
