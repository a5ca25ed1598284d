"""The `chirp.security` logger, fetched when something is logged.

`logging` costs milliseconds to import; an app that is only built (or checked, as pre-commit
does on every commit) never logs a refusal, so the middleware do not import it up front.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging


def security_log() -> logging.Logger:
    """The logger refusals and misconfigurations are reported on."""
    import logging

    return logging.getLogger("chirp.security")
