"""A misconfigured chirp app: `chirp check misconfigured:app --deploy` fails.

Expected findings: secret_key.weak, secret_key.hardcoded, deploy_debug.enabled,
allowed_hosts.wildcard, security_stack.missing, security_stack.headers_missing,
csp_nonce.missing and deploy_metrics.disabled.
"""

from chirp import App, AppConfig

app = App(AppConfig(env="staging", debug=True, secret_key="changeme"))


@app.route("/")
def index() -> str:
    return "<p>Hello</p>"


@app.route("/comments", methods=("POST",))
def comment() -> str:
    return "saved"
