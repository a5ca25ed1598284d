"""chirp: a web framework whose deploy contract engine gates every release.

Names load on first use (PEP 562): `import chirp` and `chirp check` pay only for what an app
actually touches, not for the request-time machinery behind `Request` or `EventStream`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from chirp.config import AppConfig
from chirp.errors import ConfigurationError, HTTPError, MethodNotAllowed, NotFound, PayloadTooLarge

if TYPE_CHECKING:
    from chirp.app import App, ContractViolation
    from chirp.datastructures import UploadFile
    from chirp.health import HealthCheck
    from chirp.middleware import (
        AllowedHostsMiddleware,
        CSRFMiddleware,
        SecurityHeadersMiddleware,
        Session,
        SessionMiddleware,
        csrf_token,
        secure_stack,
    )
    from chirp.realtime.sse import EventStream, SSEEvent
    from chirp.request import Request
    from chirp.responses import (
        FileResponse,
        HTMLResponse,
        JSONResponse,
        PlainTextResponse,
        Redirect,
        Response,
        StreamingResponse,
    )
    from chirp.websocket import WebSocket, WebSocketDisconnect

__version__ = "0.1.0"

_LAZY = {
    "App": "chirp.app",
    "ContractViolation": "chirp.app",
    "HealthCheck": "chirp.health",
    "AllowedHostsMiddleware": "chirp.middleware",
    "CSRFMiddleware": "chirp.middleware",
    "SecurityHeadersMiddleware": "chirp.middleware",
    "Session": "chirp.middleware",
    "SessionMiddleware": "chirp.middleware",
    "csrf_token": "chirp.middleware",
    "secure_stack": "chirp.middleware",
    "EventStream": "chirp.realtime.sse",
    "SSEEvent": "chirp.realtime.sse",
    "Request": "chirp.request",
    "FileResponse": "chirp.responses",
    "HTMLResponse": "chirp.responses",
    "JSONResponse": "chirp.responses",
    "PlainTextResponse": "chirp.responses",
    "Redirect": "chirp.responses",
    "Response": "chirp.responses",
    "StreamingResponse": "chirp.responses",
    "UploadFile": "chirp.datastructures",
    "WebSocket": "chirp.websocket",
    "WebSocketDisconnect": "chirp.websocket",
}

__all__ = [
    "AllowedHostsMiddleware",
    "App",
    "AppConfig",
    "CSRFMiddleware",
    "ConfigurationError",
    "ContractViolation",
    "EventStream",
    "FileResponse",
    "HTMLResponse",
    "HTTPError",
    "HealthCheck",
    "JSONResponse",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "PlainTextResponse",
    "Redirect",
    "Request",
    "Response",
    "SSEEvent",
    "SecurityHeadersMiddleware",
    "Session",
    "SessionMiddleware",
    "StreamingResponse",
    "UploadFile",
    "WebSocket",
    "WebSocketDisconnect",
    "__version__",
    "csrf_token",
    "secure_stack",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'chirp' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__
