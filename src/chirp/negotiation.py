"""Negotiation: whatever a handler returns becomes a `Response`; errors answer in the client's format.

- `None` means there is nothing: for GET and HEAD nothing to show (`404 Not Found`), for any
  other method nothing to say (`204 No Content`, without a body or a Content-Type).
- An error (an `HTTPError` raised by a handler, a refusal from a middleware, a crash) answers
  `application/problem+json` (RFC 9457) to a client whose `Accept` ranks JSON above text, and
  one line of plain text to everyone else.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from chirp.errors import NotFound
from chirp.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

if TYPE_CHECKING:
    from chirp.request import Request

PROBLEM_JSON = "application/problem+json"
_BODYLESS_METHODS = ("GET", "HEAD")


def to_response(value: Any, method: str = "GET") -> Response:
    """str → HTML, dict/list → JSON, bytes → octet-stream, None (see the module docs),
    `(body, status[, headers])` tuples."""
    if isinstance(value, str):  # first: the most common return value
        return HTMLResponse(value)
    if isinstance(value, Response):
        return value
    if isinstance(value, (dict, list)):
        return JSONResponse(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return Response(bytes(value), media_type="application/octet-stream")
    if isinstance(value, tuple) and 2 <= len(value) <= 3 and isinstance(value[1], int):
        response = empty_response(value[1]) if value[0] is None else to_response(value[0], method)
        response.status = value[1]
        if len(value) == 3:
            for key, val in dict(value[2]).items():
                response.headers[key] = val
        return response
    if value is None:
        if method in _BODYLESS_METHODS:
            raise NotFound()
        return empty_response(204)
    stream = _event_stream(value)
    if stream is not None:
        return stream
    raise TypeError(
        f"a handler returned {type(value).__name__}; return str, dict, list, bytes, None, a Response, "
        "an EventStream or a (body, status[, headers]) tuple"
    )


def empty_response(status: int) -> Response:
    """A response without a body or a Content-Type."""
    response = Response(b"", status)
    response.media_type = None
    return response


def _event_stream(value: Any) -> Response | None:
    to_response_method = getattr(value, "__chirp_response__", None)
    return to_response_method() if to_response_method is not None else None


def status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def prefers_json(accept: str | None) -> bool:
    """Whether an `Accept` header ranks a JSON type above every text type.

    JSON types are `application/json` and `application/*+json`; text types are `text/*` and
    `*/*` (what a client that states no preference gets). Equal quality goes to the type
    listed first, so `application/json, text/plain, */*` is JSON and `*/*` alone is text.
    """
    if not accept:
        return False
    best_json = best_text = (0.0, 0)
    for position, item in enumerate(accept.split(",")):
        media, *params = item.split(";")
        media = media.strip().lower()
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        rank = (quality, -position)
        if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
            best_json = max(best_json, rank)
        elif media.startswith("text/") or media == "*/*":
            best_text = max(best_text, rank)
    return best_json[0] > 0 and best_json > best_text


def error_response(
    request: Request | None, status: int, detail: str | None = None, headers: Mapping[str, str] | None = None
) -> Response:
    """The error page for `status`: problem+json for a client that prefers JSON, else one line
    of text (`404 Not Found`, or `403 Forbidden: <detail>` when there is a detail)."""
    phrase = status_phrase(status)
    shown = detail if detail and detail != phrase else None
    response: Response
    if request is not None and prefers_json(request.headers.get("accept")):
        problem: dict[str, Any] = {"type": "about:blank", "title": phrase, "status": status}
        if shown is not None:
            problem["detail"] = shown
        response = JSONResponse(problem, status)
        response.media_type = PROBLEM_JSON
    else:
        response = PlainTextResponse(f"{status} {phrase}" + (f": {shown}" if shown else "") + "\n", status)
    response.headers.add_vary("Accept")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response
