"""pounce: the production ASGI server for chirp apps."""

from __future__ import annotations

from pounce.config import ServerConfig
from pounce.errors import ConfigurationError

__version__ = "0.1.0"
__all__ = ["ConfigurationError", "ServerConfig", "__version__"]
