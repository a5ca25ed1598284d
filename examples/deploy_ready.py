"""A deploy-ready chirp app: `chirp check deploy_ready:app --deploy` passes.

Configuration comes from the environment (CHIRP_SECRET_KEY, CHIRP_ALLOWED_HOSTS, ...);
the secure stack is wired in the required order, pages use the CSP nonce and every note is
HTML-escaped before it is shown (the CSP is the second line of defence, not the first).
"""

import html

from chirp import App, AppConfig, Request, csrf_token, secure_stack

config = AppConfig.from_env(
    csp_nonce_enabled=True,
    strict_transport_security="max-age=63072000; includeSubDomains",
    metrics_enabled=True,
)
app = App(config)
for middleware in secure_stack(config):
    app.add_middleware(middleware)

NOTES: list[str] = []


@app.route("/")
def index(request: Request) -> str:
    items = "".join(f"<li>{html.escape(note)}</li>" for note in NOTES)
    return (
        f"<!doctype html><title>Notes</title><ul>{items}</ul>"
        f'<form method="post" action="/notes">'
        f'<input type="hidden" name="csrf_token" value="{csrf_token(request)}">'
        f'<input name="note"><button>Add</button></form>'
        f'<script nonce="{request.csp_nonce}">document.querySelector("input[name=note]").focus()</script>'
    )


@app.route("/notes", methods=("POST",))
async def add_note(request: Request) -> tuple[str, int, dict[str, str]]:
    form = await request.form()
    NOTES.append(form.get("note", "")[:200])
    return "", 303, {"location": "/"}
