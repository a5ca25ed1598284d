"""The built-in rules, one module per category; each module exports `RULES`."""

from __future__ import annotations

import importlib

from chirp.contracts.model import Rule

CATEGORY_MODULES = (
    "secret_key",
    "allowed_hosts",
    "security_stack",
    "csrf",
    "websocket",
    "csp_nonce",
    "hsts",
    "cookie",
    "deploy_health",
    "deploy_debug",
    "deploy_metrics",
    "deploy_sentry",
    "worker_hooks",
    "workers",
    "trusted_proxies",
    "introspection",
    "tls",
    "bind",
    "asgi",
    "artefacts",
    "probes",
    "shutdown",
    "capacity",
    "secrets",
    "container",
    "live",
    "live_edge",
    "suppression",
    "contracts",
)


def builtin_rules() -> list[Rule]:
    """Every built-in rule, in category order."""
    out: list[Rule] = []
    for name in CATEGORY_MODULES:
        out.extend(importlib.import_module(f"chirp.contracts.rules.{name}").RULES)
    return out
