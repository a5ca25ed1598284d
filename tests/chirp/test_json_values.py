"""One JSON encoding for responses, SSE, WebSocket messages and `app.emit`: common Python
values written the usual way, anything else refused instead of sent as its repr."""

from __future__ import annotations

import datetime
import decimal
import enum
import math
import uuid
from typing import Any

import pytest

from chirp import App, AppConfig, EventStream, WebSocket
from chirp.json_values import dumps
from chirp.testing import TestClient


class Colour(enum.Enum):
    RED = "red"


class Account:
    def __repr__(self) -> str:
        return "Account(password='hunter2')"


VALUES: dict[str, Any] = {
    "when": datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC),
    "day": datetime.date(2026, 11, 30),
    "time": datetime.time(9, 30),
    "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "price": decimal.Decimal("19.90"),
    "colour": Colour.RED,
    "tags": frozenset({"a"}),
}
WRITTEN = {
    "when": "2026-11-30T12:00:00+00:00", "day": "2026-11-30", "time": "09:30:00",
    "id": "12345678-1234-5678-1234-567812345678", "price": "19.90", "colour": "red", "tags": ["a"],
}  # fmt: skip


def test_common_values_are_written_the_usual_way() -> None:
    assert dumps(VALUES) == dumps(WRITTEN)


@pytest.mark.parametrize("value", [Account(), b"bytes", math.nan, math.inf])
def test_anything_else_is_refused_never_sent_as_its_repr(value: object) -> None:
    with pytest.raises((TypeError, ValueError)) as caught:
        dumps({"v": value})
    assert "hunter2" not in str(caught.value)


def app_with_every_channel() -> App:
    app = App(AppConfig())

    @app.route("/values")
    def values() -> dict[str, Any]:
        return VALUES

    @app.route("/account")
    def account() -> dict[str, Any]:
        return {"account": Account()}

    @app.route("/stream")
    def stream() -> EventStream:
        async def items() -> Any:
            yield VALUES

        return EventStream(items(), heartbeat=None)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(VALUES)
        await websocket.close()

    return app


def test_every_channel_writes_the_same_json() -> None:
    expected = dumps(WRITTEN)
    with TestClient(app_with_every_channel()) as client:
        assert client.get("/values").text == expected
        with client.stream("GET", "/stream") as events:
            assert (
                next(line for line in events.iter_lines() if line.startswith("data:")) == f"data: {expected}"
            )
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_text() == expected


def test_an_object_json_does_not_know_is_a_500_without_its_repr() -> None:
    with TestClient(app_with_every_channel(), raise_server_exceptions=False) as client:
        response = client.get("/account")
    assert response.status_code == 500 and "hunter2" not in response.text
