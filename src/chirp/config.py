"""`AppConfig`: the one object that differs between development and production."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any

from pounce.errors import ConfigurationError, did_you_mean
from pounce.tls_settings import validate_settings
from pounce.validation import check_networks, check_ops_paths, field_type

ENVIRONMENTS = ("development", "test", "staging", "production")
WORKER_MODES = ("auto", "sync", "async")
LOG_FORMATS = ("auto", "text", "json")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
EMBEDDER_POLICIES = ("require-corp", "credentialless")
SECRET_FIELDS = frozenset(
    {"secret_key", "secret_key_fallbacks", "sentry_dsn", "redis_url", "database_url", "ssl_keyfile_password"}
)


@dataclass(frozen=True)
class SourceSite:
    """Where something was declared in user code (for contract findings)."""

    file: str
    line: int


def caller_site(depth: int = 2) -> SourceSite | None:
    """The first frame outside chirp, at least `depth` frames up; cheap enough for every call."""
    try:
        frame = sys._getframe(depth)
    except ValueError:
        return None
    while frame is not None:
        filename = frame.f_code.co_filename
        if not _is_internal(filename):
            return SourceSite(filename, frame.f_lineno)
        frame = frame.f_back  # type: ignore[assignment]
    return None


_PKG_DIR = os.path.dirname(os.path.abspath(__file__))


def _is_internal(filename: str) -> bool:
    return filename.startswith(_PKG_DIR) or filename.startswith("<")


@dataclass(frozen=True, repr=False)
class AppConfig:
    """Everything an app needs to know about where it runs. Frozen; secrets hidden in repr."""

    env: str = "development"
    debug: bool = False
    secret_key: str = ""
    secret_key_fallbacks: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ("*",)
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 0
    worker_mode: str = "auto"
    metrics_enabled: bool = False
    metrics_path: str = "/metrics"
    rate_limit_enabled: bool = False
    rate_limit_requests_per_second: float = 100.0
    rate_limit_burst: int = 200
    request_queue_enabled: bool = False
    request_queue_max_depth: int = 1000
    sentry_dsn: str | None = None
    sentry_traces_sample_rate: float = 0.1
    otel_endpoint: str | None = None
    otel_service_name: str = "chirp-app"
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_keyfile_password: str | None = None
    ssl_ca_certs: str | None = None
    ssl_cert_reqs: str = "none"
    tls_profile: str = "intermediate"
    ssl_ciphers: str | None = None
    trusted_proxies: tuple[str, ...] = ()
    forwarded_for_trusted_hops: int = 1
    health_path: str = "/health"
    ready_path: str = "/ready"
    csp_nonce_enabled: bool = False
    content_security_policy: str | None = None
    strict_transport_security: str | None = None
    cross_origin_embedder_policy: str | None = None
    max_request_body_size: int = 16 * 1024 * 1024
    keep_alive_timeout: float = 5.0
    request_timeout: float = 30.0
    max_connections: int = 1000
    backlog: int = 2048
    log_level: str = "info"
    log_format: str = "auto"
    redis_url: str | None = None
    database_url: str | None = None
    # Where this config was built and whether it came from the environment: the
    # contract engine points findings at this line and judges hard-coded secrets by it.
    source: SourceSite | None = field(default=None, compare=False)
    from_environment: frozenset[str] = field(default=frozenset(), compare=False)

    def __post_init__(self) -> None:
        for name in ("allowed_hosts", "secret_key_fallbacks", "trusted_proxies"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, (value,))
            elif not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))
        if self.source is None:
            object.__setattr__(self, "source", caller_site(2))
        validate(self)

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            if f.name in ("source", "from_environment"):
                continue
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and value:
                value = "***"
            parts.append(f"{f.name}={value!r}")
        return f"AppConfig({', '.join(parts)})"

    def replace(self, **changes: Any) -> AppConfig:
        """A validated copy with `changes` applied."""
        return dataclasses.replace(self, **changes)

    def unchecked_replace(self, **changes: Any) -> AppConfig:
        """A copy with `changes` applied and no validation: for the deploy posture view,
        which must *report* an empty production secret rather than raise on it."""
        clone = object.__new__(AppConfig)
        for f in fields(self):
            object.__setattr__(clone, f.name, changes.get(f.name, getattr(self, f.name)))
        return clone

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name not in ("source", "from_environment")]

    @classmethod
    def from_env(cls, prefix: str = "CHIRP_", **overrides: Any) -> AppConfig:
        """Read `<prefix><FIELD>` for every field; keyword overrides win.

        Booleans accept 1/true/yes/on and 0/false/no/off, tuples are comma separated.
        An unknown `<prefix>*` variable warns; a malformed value raises naming the variable.
        """
        names = cls.field_names()
        values: dict[str, Any] = {}
        from_environment: set[str] = set()
        for name in names:
            var = prefix + name.upper()
            if var in os.environ:
                values[name] = parse_env_value(var, os.environ[var], field_type(cls, name))
                from_environment.add(name)
        known = {prefix + n.upper() for n in names}
        for var in os.environ:
            if var.startswith(prefix) and var not in known and var not in _IGNORED_ENV:
                hint = did_you_mean(var, known, prefix) or f"known: {prefix}<FIELD> for AppConfig fields"
                warnings.warn(f"unknown setting {var} ignored; {hint}", stacklevel=2)
        for name in overrides:
            if name not in names:
                fix = did_you_mean(name, names) or "not an AppConfig field; check the spelling"
                raise ConfigurationError(name, overrides[name], fix)
            from_environment.discard(name)
        values.update(overrides)
        return cls(**values, source=caller_site(2), from_environment=frozenset(from_environment))


# Variables under the prefix that are not AppConfig fields but are read elsewhere.
_IGNORED_ENV = frozenset({"CHIRP_CI", "CHIRP_APP", "CHIRP_DOCS_URL"})

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def parse_env_value(var: str, raw: str, hint: Any) -> Any:
    """Parse one environment variable into the field's type."""
    text = str(hint)
    value = raw.strip()
    try:
        if "tuple" in text:
            return tuple(p.strip() for p in value.split(",") if p.strip())
        if "None" in text and value == "":
            return None
        if text.startswith("bool") or "'bool'" in text:
            lowered = value.lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError
        if "float" in text:
            return float(value)
        if text.startswith("int") or "'int'" in text:
            return int(value)
        return raw
    except ValueError:
        raise ConfigurationError(var, raw, f"expected {_kind(text)}") from None


def _kind(hint: str) -> str:
    """What a field's type accepts, in words (an error names it, never a Python repr)."""
    if "bool" in hint:
        return "a boolean (1/true/yes/on or 0/false/no/off)"
    if "float" in hint:
        return "a number, such as 2.5"
    if "int" in hint:
        return "a whole number, such as 4"
    return f"a {hint}"


def production_posture(config: AppConfig, *, validated: bool = True) -> AppConfig:
    """`config` as a production launch runs it: `env="production"` and, when it has no secret key,
    the one in `CHIRP_SECRET_KEY`. Nothing else changes: what the app set (debug included) is
    judged, never patched, so `chirp run --production` serves what `chirp check --deploy` judged.
    `validated=False` builds it without validation, for a check that must report what is wrong."""
    changes: dict[str, Any] = {"env": "production"}
    secret = os.environ.get("CHIRP_SECRET_KEY", "")
    if not config.secret_key and secret:
        changes.update(secret_key=secret, from_environment=config.from_environment | {"secret_key"})
    return config.replace(**changes) if validated else config.unchecked_replace(**changes)


_SECRET_DEFERRED = contextvars.ContextVar("chirp_secret_deferred", default=False)


@contextlib.contextmanager
def missing_secret_reported() -> Iterator[None]:
    """While a check imports an app: build a production config (and session middleware) without
    a secret key instead of raising, so the check reports `secret_key.empty` like any finding."""
    token = _SECRET_DEFERRED.set(True)
    try:
        yield
    finally:
        _SECRET_DEFERRED.reset(token)


@contextlib.contextmanager
def launched_as(env: str | None, *, report_missing_secret: bool = False) -> Iterator[None]:
    """Import an app as a launch in `env` would: `CHIRP_ENV=env` while inside (when given).

    With `report_missing_secret`, a missing production secret is built rather than raised
    (see `missing_secret_reported`). The environment is restored on the way out.
    """
    saved = os.environ.get("CHIRP_ENV")
    if env is not None:
        os.environ["CHIRP_ENV"] = env
    try:
        with missing_secret_reported() if report_missing_secret else contextlib.nullcontext():
            yield
    finally:
        if saved is None:
            os.environ.pop("CHIRP_ENV", None)
        else:
            os.environ["CHIRP_ENV"] = saved


def secret_required(env: str) -> bool:
    """Whether a missing secret key must raise now: outside development, unless a check defers it."""
    return env != "development" and not _SECRET_DEFERRED.get()


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    """Raise `ConfigurationError` unless `value` is one of `choices`."""
    if value not in choices:
        raise ConfigurationError(name, value, f"use one of {', '.join(choices)}")


def check_numbers(cfg: AppConfig) -> None:
    """Raise `ConfigurationError` for a number setting given another type (`workers="2"`,
    `forwarded_for_trusted_hops=1.5`): the server would refuse it at launch, or fail on it."""
    for f in fields(cfg):
        if f.type not in ("int", "float"):
            continue
        value = getattr(cfg, f.name)
        kinds = (int,) if f.type == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            raise ConfigurationError(f.name, value, f"expected {_kind(f.type)}")


def validate(cfg: AppConfig) -> None:
    """Raise `ConfigurationError` for a setting that cannot work."""
    check_numbers(cfg)
    check_choice("env", cfg.env, ENVIRONMENTS)
    check_choice("worker_mode", cfg.worker_mode, WORKER_MODES)
    check_choice("log_format", cfg.log_format, LOG_FORMATS)
    if cfg.cross_origin_embedder_policy is not None:
        check_choice("cross_origin_embedder_policy", cfg.cross_origin_embedder_policy, EMBEDDER_POLICIES)
    if cfg.log_level.lower() not in LOG_LEVELS:
        raise ConfigurationError("log_level", cfg.log_level, f"use one of {', '.join(LOG_LEVELS)}")
    if cfg.forwarded_for_trusted_hops < 1:
        raise ConfigurationError(
            "forwarded_for_trusted_hops", cfg.forwarded_for_trusted_hops,
            "must be >= 1; to ignore X-Forwarded-For leave trusted_proxies empty",
        )  # fmt: skip
    check_networks("trusted_proxies", cfg.trusted_proxies)
    for name in (
        "rate_limit_requests_per_second", "rate_limit_burst", "request_queue_max_depth",
        "max_request_body_size", "keep_alive_timeout", "request_timeout", "max_connections", "backlog",
    ):  # fmt: skip
        value = getattr(cfg, name)
        if value <= 0:
            raise ConfigurationError(name, value, "must be greater than 0")
    if cfg.workers < 0:
        raise ConfigurationError("workers", cfg.workers, "use 0 (one per available CPU) or a positive count")
    if not 0 <= cfg.port <= 65535:
        raise ConfigurationError("port", cfg.port, "use a port between 0 and 65535")
    if not 0.0 <= cfg.sentry_traces_sample_rate <= 1.0:
        raise ConfigurationError(
            "sentry_traces_sample_rate", cfg.sentry_traces_sample_rate, "use a rate between 0.0 and 1.0"
        )
    if cfg.ssl_certfile and not cfg.ssl_keyfile:
        raise ConfigurationError("ssl_keyfile", cfg.ssl_keyfile, "set ssl_keyfile together with ssl_certfile")
    if cfg.ssl_keyfile and not cfg.ssl_certfile:
        raise ConfigurationError(
            "ssl_certfile", cfg.ssl_certfile, "set ssl_certfile together with ssl_keyfile"
        )
    validate_settings(cfg)
    check_ops_paths(cfg)
    if cfg.env == "production" and not cfg.secret_key and secret_required(cfg.env):
        raise ConfigurationError(
            "secret_key", "", "production needs a secret key: export CHIRP_SECRET_KEY (32+ random characters)"
        )
