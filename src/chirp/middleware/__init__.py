"""The secure-by-default middleware: sessions, CSRF, security headers and allowed hosts."""

from __future__ import annotations

from chirp.middleware.allowed_hosts import AllowedHostsMiddleware
from chirp.middleware.csrf import CSRFMiddleware, csrf_token
from chirp.middleware.security_headers import SecurityHeadersMiddleware
from chirp.middleware.sessions import Session, SessionMiddleware
from chirp.middleware.stack import secure_stack

__all__ = [
    "AllowedHostsMiddleware",
    "CSRFMiddleware",
    "SecurityHeadersMiddleware",
    "Session",
    "SessionMiddleware",
    "csrf_token",
    "secure_stack",
]
