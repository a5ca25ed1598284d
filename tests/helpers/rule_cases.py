"""Misconfigured apps, one per built-in app rule, each with its correctly configured twin.

Shared by the per-rule tests and by the generated matrix that runs every entry point.
"""

from __future__ import annotations

HEAD = """\
import secrets
from chirp import App, AppConfig
from chirp.middleware import secure_stack, SessionMiddleware, CSRFMiddleware, SecurityHeadersMiddleware
KEY = secrets.token_urlsafe(48)
"""

GOOD_CONFIG = 'config = AppConfig(secret_key=KEY, allowed_hosts=("example.com",), metrics_enabled=True, worker_mode="async")'
STACK = """\
app = App(config)
for mw in secure_stack(config):
    app.add_middleware(mw)
"""

# rule id, severities dev/test/staging/production, misconfigured app, correct twin
CASES = [
    (
        "secret_key.empty",
        "-,-,E,E",
        'config = AppConfig(secret_key="")  # here\napp = App(config)\n',
        "config = AppConfig(secret_key=KEY)\napp = App(config)\n",
    ),
    (
        "secret_key.weak",
        "W,W,W,E",
        'config = AppConfig(secret_key="hunter2")  # here\napp = App(config)\n',
        "config = AppConfig(secret_key=KEY)\napp = App(config)\n",
    ),
    (
        "secret_key.weak",
        "W,W,W,E",
        'config = AppConfig(secret_key="changeme-changeme-changeme-changeme-0123456789")  # here\napp = App(config)\n',
        "config = AppConfig(secret_key=KEY)\napp = App(config)\n",
    ),
    (
        "secret_key.hardcoded",
        "-,-,W,W",
        'config = AppConfig(\n    secret_key="q8Vd2kPz7LmX4sRt9WbY1nHc6JfA3eUg",  # here\n)\napp = App(config)\n',
        "config = AppConfig(secret_key=KEY)\napp = App(config)\n",
    ),
    (
        "secret_key.fallback_weak",
        "W,W,W,E",
        'config = AppConfig(secret_key=KEY, secret_key_fallbacks=("old",))  # here\napp = App(config)\n',
        "config = AppConfig(secret_key=KEY, secret_key_fallbacks=(secrets.token_urlsafe(48),))\napp = App(config)\n",
    ),
    (
        "allowed_hosts.wildcard",
        "-,-,W,E",
        "config = AppConfig(secret_key=KEY)  # here\napp = App(config)\n",
        'config = AppConfig(secret_key=KEY, allowed_hosts=("example.com", ".example.com"))\napp = App(config)\n',
    ),
    (
        "allowed_hosts.empty",
        "E,E,E,E",
        "config = AppConfig(secret_key=KEY, allowed_hosts=())  # here\napp = App(config)\n",
        'config = AppConfig(secret_key=KEY, allowed_hosts=("localhost",))\napp = App(config)\n',
    ),
    (
        "security_stack.missing",
        "-,-,W,E",
        GOOD_CONFIG + "\napp = App(config)\napp.add_middleware(SecurityHeadersMiddleware())\n"
        '@app.route("/login", methods=["POST"])  # here\ndef login():\n    return "ok"\n',
        GOOD_CONFIG
        + "\n"
        + STACK
        + '@app.route("/login", methods=["POST"])\ndef login():\n    return "ok"\n',
    ),
    (
        "security_stack.headers_missing",
        "W,W,W,E",
        GOOD_CONFIG + "\napp = App(config)\napp.add_middleware(SessionMiddleware.from_config(config))\n"
        "app.add_middleware(CSRFMiddleware.from_config(config))\n"
        '@app.route("/items/{id:int}", methods=["DELETE"])  # here\ndef remove(id):\n    return "ok"\n',
        GOOD_CONFIG
        + "\n"
        + STACK
        + '@app.route("/items/{id:int}", methods=["DELETE"])\ndef remove(id):\n    return "ok"\n',
    ),
    (
        "security_stack.order",
        "E,E,E,E",
        GOOD_CONFIG + "\napp = App(config)\n"
        "app.add_middleware(CSRFMiddleware.from_config(config))  # here\n"
        "app.add_middleware(SessionMiddleware.from_config(config))\n"
        "app.add_middleware(SecurityHeadersMiddleware.from_config(config))\n",
        GOOD_CONFIG + "\n" + STACK,
    ),
    (
        "csrf.exempt",
        "I,I,W,W",
        GOOD_CONFIG
        + "\n"
        + STACK
        + '@app.route("/hooks/pay", methods=["POST"], csrf="exempt")  # here\ndef paid():\n    return "ok"\n',
        GOOD_CONFIG
        + "\n"
        + STACK
        + '@app.route("/hooks/pay", methods=["POST"], csrf="origin")\ndef paid():\n    return "ok"\n',
    ),
    (
        "csrf.exempt",
        "I,I,W,W",
        GOOD_CONFIG + "\napp = App(config)\napp.add_middleware(SessionMiddleware.from_config(config))\n"
        'app.add_middleware(CSRFMiddleware.from_config(config, exempt_paths=["/hooks/pay"]))  # here\n'
        "app.add_middleware(SecurityHeadersMiddleware.from_config(config))\n",
        GOOD_CONFIG + "\n" + STACK,
    ),
    (
        "websocket.origin_unchecked",
        "-,-,W,E",
        GOOD_CONFIG + "\napp = App(config)\n"
        '@app.websocket("/ws/{room}")  # here\nasync def chat(websocket, room):\n    await websocket.accept()\n',
        GOOD_CONFIG
        + "\n"
        + STACK
        + '@app.websocket("/ws/{room}")\nasync def chat(websocket, room):\n    await websocket.accept()\n',
    ),
    (
        "websocket.origin_unchecked",
        "-,-,W,E",
        GOOD_CONFIG
        + "\n"
        + STACK
        + '@app.websocket("/ticker", check_origin=False)  # here\nasync def ticker(websocket):\n    await websocket.accept()\n',
        GOOD_CONFIG
        + "\n"
        + STACK
        + '@app.websocket("/ticker")\nasync def ticker(websocket):\n    await websocket.accept()\n',
    ),
    (
        "csp_nonce.missing",
        "-,-,-,E",
        'config = AppConfig(secret_key=KEY, allowed_hosts=("example.com",))  # here\napp = App(config)\n',
        GOOD_CONFIG + "\n" + STACK,
    ),
    (
        "csp_nonce.missing",
        "-,-,W,E",
        GOOD_CONFIG + "\napp = App(config)\napp.contract_features = {'inline_scripts'}\n"
        "app.add_middleware(SecurityHeadersMiddleware())  # here\n",
        GOOD_CONFIG + "\napp = App(config)\napp.contract_features = {'inline_scripts'}\n"
        "app.add_middleware(SecurityHeadersMiddleware(csp_nonce=True))\n",
    ),
    (
        "csp_nonce.unsafe_inline",
        "-,-,W,E",
        GOOD_CONFIG + "\napp = App(config)\n"
        "app.add_middleware(SecurityHeadersMiddleware(\"default-src 'self'; script-src 'self' 'unsafe-inline'\"))  # here\n",
        GOOD_CONFIG + "\napp = App(config)\n"
        "app.add_middleware(SecurityHeadersMiddleware(\"default-src 'self'; script-src 'self' 'unsafe-inline'\", csp_nonce=True))\n",
    ),
    (
        "hsts.missing",
        "-,-,-,W",
        'config = AppConfig(secret_key=KEY, allowed_hosts=("example.com",), trusted_proxies=("10.0.0.1",))\n'
        "app = App(config)\napp.add_middleware(SecurityHeadersMiddleware.from_config(config))  # here\n",
        'config = AppConfig(secret_key=KEY, trusted_proxies=("10.0.0.1",), strict_transport_security="max-age=31536000")\n'
        "app = App(config)\napp.add_middleware(SecurityHeadersMiddleware.from_config(config))\n",
    ),
    (
        "hsts.short_max_age",
        "-,-,I,W",
        'config = AppConfig(secret_key=KEY, strict_transport_security="max-age=300")\n'
        "app = App(config)\napp.add_middleware(SecurityHeadersMiddleware.from_config(config))  # here\n",
        'config = AppConfig(secret_key=KEY, strict_transport_security="max-age=63072000; includeSubDomains")\n'
        "app = App(config)\napp.add_middleware(SecurityHeadersMiddleware.from_config(config))\n",
    ),
    (
        "cookie.insecure",
        "-,-,W,E",
        GOOD_CONFIG
        + '\napp = App(config)\napp.add_middleware(SessionMiddleware(KEY, secure=False, env="staging"))  # here\n',
        GOOD_CONFIG + '\napp = App(config)\napp.add_middleware(SessionMiddleware(KEY, env="staging"))\n',
    ),
    (
        "cookie.built_for_development",
        "-,-,W,E",
        GOOD_CONFIG
        + "\napp = App(config)\napp.add_middleware(SessionMiddleware(KEY))  # here\n"
        + 'app.config = config.replace(env="production")  # as `chirp run --production` does\n',
        GOOD_CONFIG
        + '\napp = App(config)\napp.config = config.replace(env="production")\n'
        + "app.add_middleware(SessionMiddleware.from_config(app.config))\n",
    ),
    (
        "deploy_health.collision",
        "E,E,E,E",
        'config = AppConfig(secret_key=KEY)\napp = App(config)\n@app.route("/ready")  # here\ndef ready():\n    return "yes"\n',
        'config = AppConfig(secret_key=KEY)\napp = App(config)\n@app.route("/status")\ndef ready():\n    return "yes"\n',
    ),
    (
        "deploy_health.collision",
        "E,E,E,E",
        'config = AppConfig(secret_key=KEY, health_path="/livez", ready_path="/_/readyz")\napp = App(config)\n'
        '@app.route("/{page}")  # here\ndef page(page):\n    return page\n',
        'config = AppConfig(secret_key=KEY, health_path="/_/livez", ready_path="/_/readyz")\napp = App(config)\n'
        '@app.route("/{page}")\ndef page(page):\n    return page\n',
    ),
    (
        "deploy_health.same_path",
        "E,E,E,E",
        'config = AppConfig(secret_key=KEY).unchecked_replace(ready_path="/health")  # here\napp = App(config)\n',
        "config = AppConfig(secret_key=KEY)\napp = App(config)\n",
    ),
    (
        "deploy_debug.enabled",
        "-,-,W,E",
        "config = AppConfig(secret_key=KEY, debug=True)  # here\napp = App(config)\n",
        "config = AppConfig(secret_key=KEY)\napp = App(config)\n",
    ),
    (
        "deploy_debug.log_level",
        "-,-,I,W",
        'config = AppConfig(secret_key=KEY, log_level="debug")  # here\napp = App(config)\n',
        'config = AppConfig(secret_key=KEY, log_level="info")\napp = App(config)\n',
    ),
    (
        "deploy_metrics.collision",
        "E,E,E,E",
        "config = AppConfig(secret_key=KEY, metrics_enabled=True)\napp = App(config)\n"
        '@app.route("/metrics")  # here\ndef metrics():\n    return "mine"\n',
        'config = AppConfig(secret_key=KEY, metrics_enabled=True, metrics_path="/_metrics")\napp = App(config)\n'
        '@app.route("/metrics")\ndef metrics():\n    return "mine"\n',
    ),
    (
        "deploy_metrics.disabled",
        "-,-,-,I",
        "config = AppConfig(secret_key=KEY)  # here\napp = App(config)\n",
        "config = AppConfig(secret_key=KEY, metrics_enabled=True)\napp = App(config)\n",
    ),
    (
        "deploy_sentry.no_traces",
        "W,W,W,W",
        'config = AppConfig(secret_key=KEY, sentry_dsn="https://k@o1.ingest.example/2", sentry_traces_sample_rate=0.0)  # here\n'
        "app = App(config)\n",
        'config = AppConfig(secret_key=KEY, sentry_dsn="https://k@o1.ingest.example/2", sentry_traces_sample_rate=0.05)\n'
        "app = App(config)\n",
    ),
    (
        "worker_hooks.sync_mode",
        "W,W,E,E",
        'config = AppConfig(secret_key=KEY, worker_mode="sync")\napp = App(config)\n'
        "@app.on_worker_startup  # here\nasync def make_client():\n    pass\n",
        'config = AppConfig(secret_key=KEY, worker_mode="async")\napp = App(config)\n'
        "@app.on_worker_startup\nasync def make_client():\n    pass\n",
    ),
    (
        "trusted_proxies.wildcard",
        "W,W,W,E",
        'config = AppConfig(secret_key=KEY, trusted_proxies=("10.0.0.1", "0.0.0.0/0"))  # here\napp = App(config)\n',
        'config = AppConfig(secret_key=KEY, trusted_proxies=("10.0.0.0/8",))\napp = App(config)\n',
    ),
]
