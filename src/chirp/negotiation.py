"""Return-type negotiation: whatever a handler returns becomes a `Response`."""

from __future__ import annotations

from typing import Any

from chirp.responses import HTMLResponse, JSONResponse, Response


def to_response(value: Any) -> Response:
    """str → HTML, dict/list → JSON, bytes → octet-stream, `(body, status[, headers])` tuples."""
    if isinstance(value, Response):
        return value
    if isinstance(value, str):
        return HTMLResponse(value)
    if isinstance(value, (dict, list)):
        return JSONResponse(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return Response(bytes(value), media_type="application/octet-stream")
    if isinstance(value, tuple) and 2 <= len(value) <= 3 and isinstance(value[1], int):
        response = to_response(value[0])
        response.status = value[1]
        if len(value) == 3:
            for key, val in dict(value[2]).items():
                response.headers[key] = val
        return response
    if value is None:
        return Response(b"", 204, media_type=None)
    stream = _event_stream(value)
    if stream is not None:
        return stream
    raise TypeError(
        f"a handler returned {type(value).__name__}; return str, dict, list, bytes, a Response, "
        "an EventStream or a (body, status[, headers]) tuple"
    )


def _event_stream(value: Any) -> Response | None:
    to_response_method = getattr(value, "__chirp_response__", None)
    return to_response_method() if to_response_method is not None else None
