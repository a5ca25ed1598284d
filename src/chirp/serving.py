"""Serving a chirp app with pounce: `AppConfig` → `ServerConfig`, and `app.run()`."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from chirp.config import AppConfig
from pounce.config import ServerConfig

if TYPE_CHECKING:
    from chirp.app import App


def server_settings(config: AppConfig) -> dict[str, Any]:
    """The pounce settings an `AppConfig` implies (the layer under pounce.toml and flags).

    In development that is one worker; elsewhere the configured workers (`debug` changes
    nothing here: outside development it is a contract error, not a reason to serve differently).
    """
    development = config.env == "development"
    return {
        "host": config.host,
        "port": config.port,
        "workers": 1 if development else config.workers,
        "worker_mode": config.worker_mode,
        "ssl_certfile": config.ssl_certfile,
        "ssl_keyfile": config.ssl_keyfile,
        "ssl_keyfile_password": config.ssl_keyfile_password,
        "ssl_ca_certs": config.ssl_ca_certs,
        "ssl_cert_reqs": config.ssl_cert_reqs,
        "tls_profile": config.tls_profile,
        "ssl_ciphers": config.ssl_ciphers,
        "trusted_hosts": config.trusted_proxies,
        "forwarded_for_trusted_hops": config.forwarded_for_trusted_hops,
        "keep_alive_timeout": config.keep_alive_timeout,
        "body_timeout": config.request_timeout,
        "max_body_size": config.max_request_body_size,
        "max_connections": config.max_connections,
        "backlog": config.backlog,
        "log_level": config.log_level,
        "access_log_format": "json" if config.log_format == "json" else "text",
        "health_path": config.health_path,
        "ready_path": config.ready_path,
        "metrics_enabled": config.metrics_enabled,
        "metrics_path": config.metrics_path,
        "rate_limit_enabled": config.rate_limit_enabled,
        "rate_limit_requests_per_second": config.rate_limit_requests_per_second,
        "rate_limit_burst": config.rate_limit_burst,
        "request_queue_enabled": config.request_queue_enabled,
        "request_queue_max_depth": config.request_queue_max_depth,
        "sentry_dsn": config.sentry_dsn,
        "sentry_traces_sample_rate": config.sentry_traces_sample_rate,
        "otel_endpoint": config.otel_endpoint,
        "otel_service_name": config.otel_service_name,
        "redis_url": config.redis_url,
    }


def server_config(config: AppConfig, app_path: str = "", **overrides: Any) -> ServerConfig:
    """What `chirp run` and `app.run()` serve with: the AppConfig's settings, CLI flags winning.

    Development reloads on source changes unless a flag says otherwise.
    """
    values: dict[str, Any] = {
        **server_settings(config),
        "app": app_path,
        "reload": config.env == "development",
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return ServerConfig(**values)


def run_app(app: App, host: str | None = None, port: int | None = None) -> None:
    """`app.run()`: development → one worker under the reloader; otherwise the configured workers."""
    from pounce.logs import configure_logging
    from pounce.runner import RELOAD_CHILD_ENV, reload_loop, serve_loaded

    cfg = server_config(app.config, host=host, port=port)
    configure_logging(cfg.log_level, "json" if app.config.log_format == "json" else "text")
    if cfg.reload and not os.environ.get(RELOAD_CHILD_ENV):
        sys.exit(reload_loop(cfg, [sys.executable, *sys.argv]))  # the child checks and serves
    sys.exit(serve_loaded(app, cfg.replace(reload=False)))
