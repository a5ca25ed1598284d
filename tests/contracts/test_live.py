"""`chirp check --live`: real apps booted under pounce in a subprocess and probed over HTTP.

Each bad app breaks exactly one live expectation while passing the static production check
(otherwise it would not boot), so the test shows the live rule catching what only a running
server reveals. Every run goes through the real CLI.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jsonschema
import pytest

from chirp.contracts import builtin_registry

ROOT = Path(__file__).resolve().parents[2]
REPORT_SCHEMA = json.loads((ROOT / "docs/reference/check-report.schema.json").read_text())
SECRET = secrets.token_urlsafe(48)

HEADER = """\
from chirp import App, AppConfig, HealthCheck
from chirp.middleware import CSRFMiddleware, SecurityHeadersMiddleware, SessionMiddleware, csrf_token, secure_stack
from chirp.responses import Response

config = AppConfig.from_env(allowed_hosts=("example.com", ".example.com"), metrics_enabled=True, csp_nonce_enabled=True)
app = App(config)
"""

STACK = """\
for middleware in secure_stack(config):
    app.add_middleware(middleware)
"""

PAGES = """\
@app.route("/")
def index(request):
    token = csrf_token(request)
    return (
        f'<form method="post" action="/submit"><input type="hidden" name="csrf_token" value="{token}"></form>'
        f'<script nonce="{request.csp_nonce}">document.title = "hi"</script>'
    )


@app.route("/submit", methods=("POST",))
def submit():
    return "saved"
"""

GOOD = HEADER + STACK + PAGES


def write_app(tmp_path: Path, body: str, name: str = "liveapp") -> str:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    return f"{name}:app"


def check(
    tmp_path: Path, target: str, *args: str, env: dict[str, str] | None = None
) -> tuple[int, dict, float]:
    full_env = dict(os.environ, CHIRP_SECRET_KEY=SECRET, CHIRP_ENV="production", NO_COLOR="1")
    full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    full_env.update(env or {})
    began = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "chirp", "check", target, "--live", "--format", "json", *args],
        cwd=tmp_path,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - began
    assert proc.stdout, proc.stderr
    report = json.loads(proc.stdout)
    jsonschema.validate(report, REPORT_SCHEMA)
    return proc.returncode, report, elapsed


def active(report: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for finding in report["findings"]:
        if finding["suppressed"] is None:
            out.setdefault(finding["rule_id"], []).append(finding)
    return out


def live_ids(report: dict) -> set[str]:
    return {rule_id for rule_id in active(report) if rule_id.startswith("live.")}


def test_a_secure_app_passes_the_deploy_live_check_quickly(tmp_path):
    code, report, elapsed = check(tmp_path, write_app(tmp_path, GOOD), "--deploy")
    assert code == 0, report["findings"]
    assert report["ok"] is True and report["findings"] == []
    live = report["live"]
    assert live["booted"] and live["ready"] and live["posture"] == "production"
    assert live["url"].startswith("http://127.0.0.1:")
    assert live["shutdown"] == {"returncode": 0, "seconds": live["shutdown"]["seconds"], "killed": False}
    assert {
        "health.get",
        "health.head",
        "ready.head",
        "page /",
        "page2 /",
        "csrf /submit",
        "foreign_host",
    } <= set(live["probes"])
    assert {"error", "sse /_chirp/live"} <= set(live["probes"])
    assert {r.id for r in builtin_registry().with_tag("live")} <= set(report["rules_run"])
    assert elapsed < 3.0, f"--deploy --live took {elapsed:.2f}s"


def test_live_without_deploy_runs_the_apps_own_env(tmp_path):
    code, report, _ = check(tmp_path, write_app(tmp_path, GOOD), env={"CHIRP_ENV": "staging"})
    assert code == 0, report["findings"]
    assert report["env"] == "staging" and report["deploy"] is False
    assert report["live"]["posture"] == "staging"


def test_text_output_names_the_server_it_probed(tmp_path):
    target = write_app(tmp_path, GOOD)
    env = dict(os.environ, CHIRP_SECRET_KEY=SECRET, CHIRP_ENV="production", NO_COLOR="1")
    proc = subprocess.run(
        [sys.executable, "-m", "chirp", "check", target, "--deploy", "--live"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "live: served on http://127.0.0.1:" in proc.stdout and "(production posture)" in proc.stdout


def test_a_startup_hook_that_raises_is_a_boot_finding_with_the_log(tmp_path):
    body = GOOD + textwrap.dedent(
        """
        @app.on_startup
        def connect():
            raise ConnectionError("database at db.internal:5432 refused the connection")
        """
    )
    code, report, elapsed = check(tmp_path, write_app(tmp_path, body), "--deploy")
    assert code == 1
    assert live_ids(report) == {"live.boot"}
    (finding,) = active(report)["live.boot"]
    assert finding["severity"] == "error"
    assert "refused the connection" in finding["message"]
    assert finding["location"]["file"] == "liveapp.py"
    assert report["live"]["booted"] is False and report["live"]["url"] is None
    assert elapsed < 10


def test_an_import_error_inside_the_server_is_a_boot_finding(tmp_path):
    # The module imports in the checking process but fails in the server's environment.
    body = (
        "import os\nif os.environ.get('CHIRP_LIVE_TARGET'):\n    raise ImportError('no module named psycopg')\n"
        + GOOD
    )
    code, report, _ = check(tmp_path, write_app(tmp_path, body), "--deploy")
    assert code == 1
    (finding,) = active(report)["live.boot"]
    assert "psycopg" in finding["message"]


def test_an_app_failing_its_own_freeze_check_cannot_boot(tmp_path):
    body = HEADER.replace('allowed_hosts=("example.com", ".example.com"), ', "") + STACK + PAGES
    code, report, _ = check(tmp_path, write_app(tmp_path, body), "--deploy")
    assert code == 1
    ids = set(active(report))
    assert "allowed_hosts.wildcard" in ids and "live.boot" in ids
    assert "contract check" in active(report)["live.boot"][0]["message"]


def test_readiness_that_never_passes_is_reported_within_the_timeout(tmp_path):
    body = GOOD + textwrap.dedent(
        """
        def cache():
            raise ConnectionError("cache unreachable")

        app.add_health_check(HealthCheck("cache", cache))
        """
    )
    code, report, elapsed = check(tmp_path, write_app(tmp_path, body), "--deploy", "--live-timeout", "1.5")
    assert code == 1
    assert live_ids(report) == {"live.ready"}
    (finding,) = active(report)["live.ready"]
    assert "503" in finding["message"] and "cache" in finding["message"]
    assert report["live"]["ready"] is False
    assert elapsed < 8


def test_a_route_shadowing_the_liveness_probe_is_caught_live(tmp_path):
    body = GOOD + textwrap.dedent(
        """
        app.suppress("deploy_health.collision", reason="legacy load balancer expects our own page")


        @app.route("/health")
        def my_health(request):
            request.session["seen"] = True
            return "<p>fine</p>"
        """
    )
    code, report, _ = check(tmp_path, write_app(tmp_path, body), "--deploy")
    assert code == 1
    (finding,) = active(report)["live.health"]
    assert "set a cookie" in finding["message"] and "text/html" in finding["message"]


def test_missing_security_headers_are_caught_live(tmp_path):
    body = (
        HEADER
        + textwrap.dedent(
            """
        app.add_middleware(SessionMiddleware.from_config(config))
        app.add_middleware(CSRFMiddleware.from_config(config))
        app.suppress("csp_nonce.missing", reason="CSP is added by the CDN")
        app.suppress("security_stack.headers_missing", reason="headers are added by the CDN")
        """
        )
        + PAGES.replace('<script nonce="{request.csp_nonce}">', "<script>")
    )
    code, report, _ = check(tmp_path, write_app(tmp_path, body), "--deploy")
    assert code == 1
    assert "live.security_headers" in live_ids(report)
    (finding,) = active(report)["live.security_headers"]
    assert "Content-Security-Policy" in finding["message"] and "nosniff" in finding["message"]
    assert finding["subject"] == "/"


def test_a_nonce_in_the_page_that_is_not_in_the_header_is_caught(tmp_path):
    body = GOOD.replace('nonce="{request.csp_nonce}"', 'nonce="c3RhdGljLW5vbmNlLXZhbHVlLTEyMw"')
    code, report, _ = check(tmp_path, write_app(tmp_path, body), "--deploy")
    assert code == 1
    assert live_ids(report) == {"live.csp_nonce"}
    assert "not in its CSP header" in active(report)["live.csp_nonce"][0]["message"]


def test_a_session_cookie_built_for_development_is_caught_in_production(tmp_path):
    # The middleware is built by hand for development, so in production its cookie goes out
    # without Secure. The static rule says so and the launch refuses; suppressed (so the app
    # serves), the wire shows it too.
    body = GOOD.replace(
        STACK,
        'app.add_middleware(SessionMiddleware(config.secret_key, env="development"))\n'
        "app.add_middleware(CSRFMiddleware.from_config(config))\n"
        "app.add_middleware(SecurityHeadersMiddleware.from_config(config))\n"
        'app.suppress("cookie.built_for_development", reason="let the wire show it")\n',
    )
    code, report, _ = check(tmp_path, write_app(tmp_path, body), "--deploy", env={"CHIRP_ENV": "development"})
    assert code == 1
    assert live_ids(report) == {"live.session_cookie"}
    (finding,) = active(report)["live.session_cookie"]
    assert "no Secure" in finding["message"] and finding["subject"] == "chirp_session"


def test_a_mutating_route_exempt_from_csrf_is_caught(tmp_path):
    body = GOOD.replace(
        "for middleware in secure_stack(config):\n    app.add_middleware(middleware)\n",
        "app.add_middleware(SessionMiddleware.from_config(config))\n"
        "app.add_middleware(CSRFMiddleware.from_config(config, exempt_paths=['/submit']))\n"
        "app.add_middleware(SecurityHeadersMiddleware.from_config(config))\n",
    )
    code, report, _ = check(tmp_path, write_app(tmp_path, body), "--deploy")
    assert code == 1
    assert live_ids(report) == {"live.csrf"}
    (finding,) = active(report)["live.csrf"]
    assert finding["message"] == "POST /submit without a CSRF token was accepted (200)"
    assert finding["location"]["file"] == "liveapp.py"


WEBSOCKET = """\

@app.websocket("/ws/{room}")
async def chat(websocket, room):
    await websocket.accept()
    await websocket.send_text(room)
"""


def test_origin_mode_routes_and_websocket_routes_pass_when_they_refuse_other_sites(tmp_path):
    body = GOOD.replace('methods=("POST",))', 'methods=("POST",), csrf="origin")') + WEBSOCKET
    code, report, _ = check(tmp_path, write_app(tmp_path, body), "--deploy")
    assert code == 0, report["findings"]
    assert {"csrf /submit", "websocket /ws/{room}"} <= set(report["live"]["probes"])


def test_an_exempt_route_is_reported_statically_and_not_probed(tmp_path):
    body = GOOD.replace('methods=("POST",))', 'methods=("POST",), csrf="exempt")')
    code, report, _ = check(tmp_path, write_app(tmp_path, body), "--deploy")
    assert code == 1
    assert set(active(report)) == {"csrf.exempt"}
    assert (
        report["live"]["skipped"]["csrf"] == 'every mutating route is csrf="exempt" (reported by csrf.exempt)'
    )


def test_a_websocket_route_accepting_other_sites_is_caught(tmp_path):
    body = (
        HEADER
        + "app.add_middleware(SessionMiddleware.from_config(config))\n"
        + "app.add_middleware(SecurityHeadersMiddleware.from_config(config))\n"
        + 'app.suppress("websocket.origin_unchecked", reason="the socket carries no user data")\n'
        + PAGES.split("\n\n\n@app.route")[0]
        + WEBSOCKET
    )
    code, report, _ = check(tmp_path, write_app(tmp_path, body), "--deploy")
    assert code == 1
    assert live_ids(report) == {"live.websocket_origin"}
    (finding,) = active(report)["live.websocket_origin"]
    assert (
        finding["message"]
        == "GET /ws/live-check (a WebSocket handshake) from another site's Origin was accepted (101)"
    )
    assert finding["subject"] == "/ws/{room}" and finding["location"]["file"] == "liveapp.py"


def test_a_foreign_host_being_served_is_caught(tmp_path):
    body = GOOD.replace('allowed_hosts=("example.com", ".example.com"), ', "") + (
        'app.suppress("allowed_hosts.wildcard", reason="host routing happens at the ingress")\n'
    )
    code, report, _ = check(tmp_path, write_app(tmp_path, body), "--deploy")
    assert code == 1
    assert live_ids(report) == {"live.allowed_hosts"}
    assert (
        "Host: chirp-live-check.invalid was answered 200"
        in active(report)["live.allowed_hosts"][0]["message"]
    )


def test_version_revealing_headers_are_caught(tmp_path):
    body = GOOD + textwrap.dedent(
        """
        async def powered_by(request, call_next):
            response = await call_next(request)
            response.headers["x-powered-by"] = "chirp/0.1.0 CPython/3.11"
            return response

        app.add_middleware(powered_by)
        """
    )
    code, report, _ = check(tmp_path, write_app(tmp_path, body), "--deploy")
    assert code == 1
    assert live_ids(report) == {"live.server_header"}
    assert active(report)["live.server_header"][0]["subject"] == "X-Powered-By"


def test_a_compressed_event_stream_is_caught(tmp_path):
    body = GOOD + textwrap.dedent(
        """
        import gzip

        @app.route("/events")
        def events():
            # a pre-compressed event feed: the client gets nothing until the whole window arrives
            body = gzip.compress(b"data: tick\\n\\n" * 50)
            return Response(body, headers={"content-encoding": "gzip"}, media_type="text/event-stream")
        """
    )
    code, report, _ = check(tmp_path, write_app(tmp_path, body), "--deploy")
    assert code == 1
    assert live_ids(report) == {"live.sse_compression"}
    assert active(report)["live.sse_compression"][0]["subject"] == "/events"


def test_debug_pages_are_caught_when_the_app_runs_its_own_staging_config(tmp_path):
    body = GOOD.replace("csp_nonce_enabled=True)", "csp_nonce_enabled=True, debug=True)")
    code, report, _ = check(tmp_path, write_app(tmp_path, body), env={"CHIRP_ENV": "staging"})
    assert code == 0  # a WARNING in staging does not fail without --warnings-as-errors
    (finding,) = active(report)["live.debug_page"]
    assert finding["severity"] == "warning"
    assert "traceback" in finding["message"] and "exception message" in finding["message"]
    code, report, _ = check(tmp_path, "liveapp:app", "--warnings-as-errors", env={"CHIRP_ENV": "staging"})
    assert code == 1


def test_a_failing_shutdown_hook_is_caught(tmp_path):
    body = GOOD + textwrap.dedent(
        """
        @app.on_shutdown
        def flush():
            raise RuntimeError("could not flush the audit log")
        """
    )
    code, report, _ = check(tmp_path, write_app(tmp_path, body), "--deploy")
    assert code == 1
    assert live_ids(report) == {"live.shutdown"}
    assert "could not flush the audit log" in active(report)["live.shutdown"][0]["message"]


def test_live_findings_can_be_suppressed_and_ignored_like_any_other(tmp_path):
    body = GOOD.replace('nonce="{request.csp_nonce}"', 'nonce="c3RhdGljLW5vbmNlLXZhbHVlLTEyMw"')
    target = write_app(
        tmp_path, body + 'app.suppress("live.csp_nonce", reason="inline script is a static asset")\n'
    )
    code, report, _ = check(tmp_path, target, "--deploy")
    assert code == 0
    (finding,) = [f for f in report["findings"] if f["rule_id"] == "live.csp_nonce"]
    assert finding["suppressed"]["reason"] == "inline script is a static asset"


def test_ignoring_every_live_rule_skips_the_boot(tmp_path):
    code, report, _ = check(tmp_path, write_app(tmp_path, GOOD), "--deploy", "--ignore", "live")
    assert code == 0
    assert "live" not in report
    assert not any(r.startswith("live.") for r in report["rules_run"])


@pytest.mark.parametrize("fmt", ["sarif", "github", "junit", "markdown", "text"])
def test_live_findings_render_in_every_format_with_the_same_exit_code(tmp_path, fmt):
    body = GOOD.replace('nonce="{request.csp_nonce}"', 'nonce="c3RhdGljLW5vbmNlLXZhbHVlLTEyMw"')
    target = write_app(tmp_path, body)
    env = dict(os.environ, CHIRP_SECRET_KEY=SECRET, CHIRP_ENV="production", NO_COLOR="1")
    env.pop("GITHUB_STEP_SUMMARY", None)
    proc = subprocess.run(
        [sys.executable, "-m", "chirp", "check", target, "--deploy", "--live", "--format", fmt],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert "live.csp_nonce" in proc.stdout


def tls_env(tmp_path: Path, **more: str) -> dict[str, str]:
    from helpers.certs import Authority

    cert, key = Authority().issue(tmp_path, "live", hosts=("example.com", "*.example.com", "127.0.0.1"))
    hsts = "max-age=63072000; includeSubDomains"
    return {
        "CHIRP_SSL_CERTFILE": str(cert),
        "CHIRP_SSL_KEYFILE": str(key),
        "CHIRP_STRICT_TRANSPORT_SECURITY": hsts,
        **more,
    }


def test_tls_within_the_profile_passes_the_live_tls_check(tmp_path):
    code, report, _ = check(tmp_path, write_app(tmp_path, GOOD), "--deploy", env=tls_env(tmp_path))
    assert report["live"]["url"].startswith("https://")
    assert code == 0 and live_ids(report) == set(), active(report)


def test_a_cbc_suite_served_over_tls_is_caught_live(tmp_path):
    body = GOOD + 'app.suppress("tls.profile", reason="a legacy client still needs CBC")\n'
    env = tls_env(tmp_path, CHIRP_SSL_CIPHERS="ECDHE+AESGCM:ECDHE+AES+SHA256")
    code, report, _ = check(tmp_path, write_app(tmp_path, body), "--deploy", env=env)
    assert code == 1 and live_ids(report) == {"live.tls"}
    (finding,) = active(report)["live.tls"]
    assert finding["severity"] == "error" and finding["subject"] == "ssl_ciphers"
    assert "tls1.2-legacy client was served TLSv1.2 with ECDHE-ECDSA-AES" in finding["message"]
