"""The guestbook end to end: the form, the JSON API, SSE, the WebSocket route, readiness and the
deploy gate."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from app import TOPIC, app

from chirp.testing import AsyncTestClient, TestClient, WebSocketDisconnect, serve

HERE = Path(__file__).resolve().parent
JSON = {"accept": "application/json"}


def form_token(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def test_ready_once_postgresql_answers(client: TestClient) -> None:
    ready = client.get("/ready")
    assert (ready.status_code, ready.text) == (200, "ready\n")
    assert app.database is not None and app.database.backend == "postgresql"


def test_the_form_signs_the_book_and_the_page_escapes_it(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "nonce-" in page.headers["content-security-policy"]
    signed = client.post(
        "/entries", data={"csrf_token": form_token(page), "name": "Ann", "message": "<b>hi</b>"}
    )
    assert (signed.status_code, signed.headers["location"]) == (303, "/")
    listing = client.get("/").text
    assert "<li>Ann: &lt;b&gt;hi&lt;/b&gt;</li>" in listing
    assert 'value="Ann"' in listing  # remembered in the session


def test_the_form_needs_the_csrf_token(client: TestClient) -> None:
    refused = client.post("/entries", data={"name": "Eve", "message": "forged"})
    assert refused.status_code == 403 and "CSRF check failed" in refused.text


def test_the_json_api(client: TestClient) -> None:
    created = client.post("/api/entries", json={"name": "Bob", "message": "hello"})
    assert created.status_code == 201
    entry = created.json()
    assert entry == {"id": entry["id"], "name": "Bob", "message": "hello"}
    assert client.get(f"/api/entries/{entry['id']}").json() == entry
    assert entry in client.get("/api/entries").json()

    invalid = client.post("/api/entries", json={"name": "Bob"}, headers=JSON)
    assert invalid.status_code == 422
    assert invalid.headers["content-type"] == "application/problem+json"
    assert invalid.json()["detail"] == "message must be text of 1 to 500 characters"

    cross_site = client.post(
        "/api/entries",
        json={"name": "Mallory", "message": "forged"},
        headers={"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
    )
    assert cross_site.status_code == 403

    deleted = client.delete(f"/api/entries/{entry['id']}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert "content-type" not in deleted.headers
    missing = client.get(f"/api/entries/{entry['id']}", headers=JSON)
    assert missing.status_code == 404
    assert missing.json() == {"type": "about:blank", "title": "Not Found", "status": 404}
    assert client.get("/api/entries/not-a-number").status_code == 404


def test_new_entries_stream_to_open_pages(client: TestClient) -> None:
    with client.stream("GET", f"/_chirp/live?topics={TOPIC}") as events:
        created = client.post("/api/entries", json={"name": "Cy", "message": "live"}).json()
        lines = events.iter_lines()
        assert next(line for line in lines if line.startswith("event:")) == f"event: {TOPIC}"
        assert next(lines) == f'data: {{"id":{created["id"]},"name":"Cy","message":"live"}}'


def test_the_websocket_route_signs_with_the_session_name(client: TestClient) -> None:
    page = client.get("/")
    client.post("/entries", data={"csrf_token": form_token(page), "name": "Dee", "message": "first"})
    with client.websocket_connect("/ws/entries") as ws:
        assert ws.receive_json() == {"hello": "Dee"}
        ws.send_json({"message": "over the socket"})
        stored = ws.receive_json()["stored"]
        ws.send_text("not json")
        assert ws.receive_json() == {"error": 'send {"message": "..."} as JSON'}
    assert client.get(f"/api/entries/{stored}").json()["name"] == "Dee"
    hijack = client.websocket_connect("/ws/entries", headers={"origin": "https://evil.example"})
    with pytest.raises(WebSocketDisconnect) as refused, hijack:  # cross-site WebSocket hijacking
        pass
    assert refused.value.code == 1008


@pytest.mark.asyncio
async def test_the_async_client_shares_the_pool_with_the_test() -> None:
    async with AsyncTestClient(app) as client:
        assert app.database is not None
        row = await app.database.fetch_one(
            "INSERT INTO guestbook_entries (name, message) VALUES ('Eli', 'from the test') RETURNING id"
        )
        assert row is not None
        response = await client.get(f"/api/entries/{row['id']}")
        assert response.json()["message"] == "from the test"


def test_pounce_serves_it() -> None:
    with serve(app) as server:
        ready = httpx.get(server.url + "/ready")
        page = httpx.get(server.url + "/")
    assert (ready.status_code, page.status_code) == (200, 200)
    assert page.headers["server"] == "pounce"


def test_the_deploy_gate_passes_live() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chirp", "check", "app:app", "--deploy", "--live"],
        cwd=HERE,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
