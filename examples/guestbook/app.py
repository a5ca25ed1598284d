"""A guestbook: a CSRF-protected form, a JSON API, live updates over SSE, a WebSocket route,
and PostgreSQL behind the readiness probe.

    export CHIRP_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/guestbook
    chirp run app:app                                   # development: http://127.0.0.1:8000
    CHIRP_SECRET_KEY=... CHIRP_ALLOWED_HOSTS=guestbook.example.com \\
        chirp check app:app --deploy --live             # the deploy gate, static and over HTTP

Every setting comes from CHIRP_* variables. /ready answers 200 once PostgreSQL is connected and
`SELECT 1` passes on a fresh pooled connection (the check chirp adds for a wired database).
"""

from __future__ import annotations

import html
import json
from typing import Any

from chirp import App, AppConfig, HTTPError, Redirect, Request, WebSocket, csrf_token, secure_stack

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
STRICT_TRANSPORT_SECURITY = "max-age=63072000; includeSubDomains"
DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/guestbook"
TOPIC = "guestbook"
MAX_NAME, MAX_MESSAGE = 40, 500


def load_config() -> AppConfig:
    """CHIRP_* variables first; these defaults fill in what they leave unset."""
    config = AppConfig.from_env(csp_nonce_enabled=True)
    defaults: dict[str, Any] = {}
    if config.content_security_policy is None:
        defaults["content_security_policy"] = CONTENT_SECURITY_POLICY
    if config.env != "development" and config.strict_transport_security is None:
        defaults["strict_transport_security"] = STRICT_TRANSPORT_SECURITY
    if config.database_url is None:
        defaults["database_url"] = DEFAULT_DATABASE
    if config.redis_url is None and config.workers != 1:
        # Live updates fan out in-process: one worker sees every event. Set CHIRP_REDIS_URL
        # (a Redis backplane) to run more.
        defaults["workers"] = 1
    return config.replace(**defaults) if defaults else config


config = load_config()
app = App(config)  # config.database_url wires app.database and its readiness check
for middleware in secure_stack(config):
    app.add_middleware(middleware)


@app.on_startup
async def create_table() -> None:
    assert app.database is not None
    await app.database.execute(
        "CREATE TABLE IF NOT EXISTS guestbook_entries ("
        " id serial PRIMARY KEY, name text NOT NULL, message text NOT NULL,"
        " created timestamptz NOT NULL DEFAULT now())"
    )


def checked(name: Any, message: Any) -> tuple[str, str]:
    """Trimmed name and message, or a 422 naming the field and its limit."""
    fields = {"name": (name, MAX_NAME), "message": (message, MAX_MESSAGE)}
    for field, (value, limit) in fields.items():
        if not isinstance(value, str) or not value.strip() or len(value.strip()) > limit:
            raise HTTPError(422, f"{field} must be text of 1 to {limit} characters")
    return str(name).strip(), str(message).strip()


async def add_entry(name: str, message: str) -> dict[str, Any]:
    """Store an entry and tell every open page about it (SSE on the `guestbook` topic)."""
    assert app.database is not None
    row = await app.database.fetch_one(
        "INSERT INTO guestbook_entries (name, message) VALUES (?, ?) RETURNING id, name, message",
        (name, message),
    )
    assert row is not None
    app.emit(TOPIC, row)
    return row


async def entries() -> list[dict[str, Any]]:
    assert app.database is not None
    return await app.database.fetch(
        "SELECT id, name, message FROM guestbook_entries ORDER BY id DESC LIMIT 50"
    )


PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Guestbook</title></head>
<body>
<h1>Guestbook</h1>
<form method="post" action="/entries">
<input type="hidden" name="csrf_token" value="{token}">
<label>Name <input name="name" maxlength="{max_name}" value="{name}" required></label>
<label>Message <input name="message" maxlength="{max_message}" required></label>
<button type="submit">Sign</button>
</form>
<ul id="entries">{items}</ul>
<script nonce="{nonce}">
new EventSource("/_chirp/live?topics={topic}").addEventListener("{topic}", (event) => {{
  const entry = JSON.parse(event.data);
  const item = document.createElement("li");
  item.textContent = entry.name + ": " + entry.message;
  document.getElementById("entries").prepend(item);
}});
</script>
</body>
</html>
"""


@app.route("/")
async def index(request: Request) -> str:
    items = "".join(
        f"<li>{html.escape(row['name'])}: {html.escape(row['message'])}</li>" for row in await entries()
    )
    return PAGE.format(
        token=csrf_token(request),
        nonce=request.csp_nonce,
        name=html.escape(request.session.get("name", "")),
        items=items,
        topic=TOPIC,
        max_name=MAX_NAME,
        max_message=MAX_MESSAGE,
    )


@app.route("/entries", methods=["POST"])
async def sign(request: Request) -> Redirect:
    """The form: protected by the session's CSRF token."""
    form = await request.form()
    name, message = checked(form.get("name"), form.get("message"))
    await add_entry(name, message)
    request.session["name"] = name  # the page and the WebSocket greet the signer by name
    return Redirect("/")


@app.route("/api/entries")
async def list_entries() -> list[dict[str, Any]]:
    return await entries()


@app.route("/api/entries/{entry_id:int}", methods=["GET", "DELETE"], csrf="origin")
async def entry(request: Request, entry_id: int) -> dict[str, Any] | None:
    """One entry as JSON; a missing one is 404 (None from a GET). DELETE answers 204."""
    assert app.database is not None
    if request.method == "DELETE":
        deleted = await app.database.execute("DELETE FROM guestbook_entries WHERE id = ?", (entry_id,))
        if not deleted:
            raise HTTPError(404, f"no entry {entry_id}")
        return None
    return await app.database.fetch_one(
        "SELECT id, name, message FROM guestbook_entries WHERE id = ?", (entry_id,)
    )


@app.route("/api/entries", methods=["POST"], name="create_entry", csrf="origin")
async def create_entry(request: Request) -> tuple[dict[str, Any], int]:
    """The JSON API: no token; the browser's Sec-Fetch-Site/Origin must say same-origin."""
    body = await request.json()
    if not isinstance(body, dict):
        raise HTTPError(422, 'send a JSON object: {"name": "...", "message": "..."}')
    return await add_entry(*checked(body.get("name"), body.get("message"))), 201


@app.websocket("/ws/entries")
async def sign_over_websocket(websocket: WebSocket) -> None:
    """Sign over a WebSocket: each JSON message {"message": ...} is stored and acknowledged.

    The session is readable (the name given in the form); CSRFMiddleware has already refused a
    handshake from another site's page.
    """
    await websocket.accept()
    name = websocket.session.get("name")
    await websocket.send_json({"hello": name})
    async for raw in websocket:
        try:
            data = json.loads(raw)
            stored = await add_entry(*checked(data.get("name", name), data.get("message")))
        except (ValueError, AttributeError, HTTPError) as exc:
            detail = exc.detail if isinstance(exc, HTTPError) else 'send {"message": "..."} as JSON'
            await websocket.send_json({"error": detail})
            continue
        await websocket.send_json({"stored": stored["id"]})
