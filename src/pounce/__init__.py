"""pounce: the production ASGI server for chirp apps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pounce.errors import ConfigurationError

if TYPE_CHECKING:
    from pounce.config import ServerConfig

__version__ = "0.1.0"
__all__ = ["ConfigurationError", "ServerConfig", "__version__"]


def __getattr__(name: str) -> Any:
    # `ServerConfig` loads on first use: `import chirp` (and so `chirp check`) only needs
    # the errors, and the config module with its validation is a noticeable share of a
    # cold start.
    if name == "ServerConfig":
        from pounce.config import ServerConfig

        return ServerConfig
    raise AttributeError(f"module 'pounce' has no attribute {name!r}")
