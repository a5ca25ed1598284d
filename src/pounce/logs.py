"""Logging setup for the server process: text or JSON lines."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data)


ACCESS_FIELDS = ("ts", "peer", "method", "path", "http_version", "status", "duration_ms")


def access_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The access-log field set of a `pounce.access` record.

    Taken from `extra={"access": {...}}` when the connection supplies it, else from the
    record's positional arguments (peer, method, target, HTTP version, status, milliseconds).
    """
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
    given = getattr(record, "access", None)
    if isinstance(given, dict):
        data = {"ts": ts, **given}
    else:
        args = record.args if isinstance(record.args, tuple) else ()
        values = list(args) + [None] * (6 - len(args))
        data = dict(zip(ACCESS_FIELDS, [ts, *values[:6]], strict=True))
    for name in ACCESS_FIELDS:
        data.setdefault(name, None)
    if isinstance(data["duration_ms"], float):
        data["duration_ms"] = round(data["duration_ms"], 3)
    return data


class AccessFormatter(logging.Formatter):
    """One line per request, the same fields in both formats.

    text: `2024-05-01T12:00:00.000Z 10.0.0.1 - "GET /path HTTP/1.1" 200 1.2ms`
    json: `{"ts": ..., "peer": ..., "method": ..., "path": ..., "http_version": ..., "status": ..., "duration_ms": ...}`
    `peer` is the raw socket peer, not the proxy-resolved client.
    """

    def __init__(self, fmt: str = "text") -> None:
        super().__init__()
        self.json = fmt == "json"

    def format(self, record: logging.LogRecord) -> str:
        data = access_fields(record)
        if self.json:
            return json.dumps(data)
        return '{ts} {peer} - "{method} {path} HTTP/{http_version}" {status} {duration_ms}ms'.format(
            **{k: "-" if v is None else v for k, v in data.items()}
        )


def configure_logging(level: str = "info", fmt: str = "text", access_format: str | None = None) -> None:
    """Send pounce's and chirp's logs to stderr once, at `level`.

    Access lines (`pounce.access`) use `access_format` (default: `fmt`).
    """
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    numeric = logging.DEBUG if level.lower() == "trace" else getattr(logging, level.upper(), logging.INFO)
    for name in ("pounce", "chirp"):
        log = logging.getLogger(name)
        log.handlers[:] = [handler]
        log.setLevel(numeric)
        log.propagate = False
    access_handler = logging.StreamHandler(sys.stderr)
    access_handler.setFormatter(AccessFormatter(access_format or fmt))
    access = logging.getLogger("pounce.access")
    access.handlers[:] = [access_handler]
    access.propagate = False
