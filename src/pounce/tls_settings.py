"""The TLS settings both `ServerConfig` and chirp's `AppConfig` carry, and the checks that
need no file. Kept apart from `pounce.tls` so that building a config never imports `ssl`."""

from __future__ import annotations

from typing import Protocol

from pounce.errors import ConfigurationError

TLS_PROFILES = ("intermediate", "modern")
CERT_REQ_NAMES = ("none", "optional", "required")


class TLSSettings(Protocol):
    """The TLS settings, as both `ServerConfig` and chirp's `AppConfig` carry them."""

    @property
    def ssl_certfile(self) -> str | None: ...
    @property
    def ssl_keyfile(self) -> str | None: ...
    @property
    def ssl_keyfile_password(self) -> str | None: ...
    @property
    def ssl_ca_certs(self) -> str | None: ...
    @property
    def ssl_cert_reqs(self) -> str: ...
    @property
    def tls_profile(self) -> str: ...
    @property
    def ssl_ciphers(self) -> str | None: ...


def validate_settings(cfg: TLSSettings) -> None:
    """The checks that need no file (shared by `ServerConfig` and `AppConfig`)."""
    if cfg.tls_profile not in TLS_PROFILES:
        raise ConfigurationError("tls_profile", cfg.tls_profile, f"use one of {', '.join(TLS_PROFILES)}")
    if cfg.ssl_cert_reqs not in CERT_REQ_NAMES:
        raise ConfigurationError(
            "ssl_cert_reqs", cfg.ssl_cert_reqs, f"use one of {', '.join(CERT_REQ_NAMES)}"
        )
    if not cfg.ssl_certfile:
        for name in ("ssl_keyfile_password", "ssl_ca_certs", "ssl_ciphers"):
            if getattr(cfg, name):
                shown = "***" if name == "ssl_keyfile_password" else getattr(cfg, name)
                raise ConfigurationError(name, shown, "it needs TLS: set ssl_certfile and ssl_keyfile too")
        if cfg.ssl_cert_reqs != "none":
            raise ConfigurationError(
                "ssl_cert_reqs", cfg.ssl_cert_reqs, "it needs TLS: set ssl_certfile and ssl_keyfile too"
            )
    if cfg.ssl_ciphers is not None:
        if cfg.tls_profile == "modern":
            raise ConfigurationError(
                "ssl_ciphers",
                cfg.ssl_ciphers,
                "tls_profile=modern is TLS 1.3 only, whose suites are fixed; remove ssl_ciphers "
                "or use tls_profile=intermediate",
            )
        import ssl  # only to try the string: the module stays cheap for the config classes

        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).set_ciphers(cfg.ssl_ciphers)
        except ssl.SSLError:
            raise ConfigurationError(
                "ssl_ciphers",
                cfg.ssl_ciphers,
                "the OpenSSL cipher string selects no TLS 1.2 suite; use a list such as "
                "'ECDHE+AESGCM:ECDHE+CHACHA20', or leave it unset for the profile's suites",
            ) from None
