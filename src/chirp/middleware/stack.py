"""`secure_stack(config)`: the three secure-by-default middleware, built and ordered."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chirp.middleware.csrf import CSRFMiddleware
from chirp.middleware.security_headers import SecurityHeadersMiddleware
from chirp.middleware.sessions import SessionMiddleware

if TYPE_CHECKING:
    from chirp.config import AppConfig

SecureMiddleware = SessionMiddleware | CSRFMiddleware | SecurityHeadersMiddleware


def secure_stack(config: AppConfig) -> list[SecureMiddleware]:
    """`[SessionMiddleware, CSRFMiddleware, SecurityHeadersMiddleware]` built from `config`.

    Register them in this order (the session must exist before CSRF reads its token)::

        for middleware in secure_stack(config):
            app.add_middleware(middleware)
    """
    return [
        SessionMiddleware.from_config(config),
        CSRFMiddleware.from_config(config),
        SecurityHeadersMiddleware.from_config(config),
    ]
