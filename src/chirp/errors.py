"""HTTP errors that handlers raise, and the configuration error."""

from __future__ import annotations

from pounce.errors import ConfigurationError

__all__ = ["ConfigurationError", "HTTPError", "MethodNotAllowed", "NotFound", "PayloadTooLarge"]


class HTTPError(Exception):
    """Raise from a handler to answer with `status`; `detail` is shown to the client."""

    def __init__(self, status: int, detail: str | None = None, headers: dict[str, str] | None = None) -> None:
        self.status = status
        if detail is None:
            from http import HTTPStatus  # the phrase table loads with the first error without a detail

            detail = HTTPStatus(status).phrase
        self.detail = detail
        self.headers = dict(headers or {})
        super().__init__(f"{status}: {self.detail}")


class NotFound(HTTPError):
    def __init__(self, detail: str | None = None) -> None:
        super().__init__(404, detail)


class MethodNotAllowed(HTTPError):
    def __init__(self, allowed: list[str] | tuple[str, ...], detail: str | None = None) -> None:
        self.allowed = tuple(allowed)
        super().__init__(405, detail, {"allow": ", ".join(self.allowed)})


class PayloadTooLarge(HTTPError):
    def __init__(self, detail: str | None = None) -> None:
        super().__init__(413, detail)
