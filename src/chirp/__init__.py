"""chirp: a web framework whose deploy contract engine gates every release."""

from __future__ import annotations

from chirp.app import App, ContractViolation
from chirp.config import AppConfig
from chirp.errors import ConfigurationError, HTTPError, MethodNotAllowed, NotFound, PayloadTooLarge
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
    "WebSocket",
    "WebSocketDisconnect",
    "__version__",
    "csrf_token",
    "secure_stack",
]
