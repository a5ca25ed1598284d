"""Logging setup for the server process: text or JSON lines."""

from __future__ import annotations

import json
import logging
import os
import sys
import time


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


_PIPE_BUF = 4096  # a write up to this size reaches a shared pipe whole, never interleaved


Text = str | bytes  # a request's method, target and version, as the parser gave them


class AccessLog:
    """One line per request, built without `logging`'s records and written in batches.

    text: `2024-05-01T12:00:00.000Z 10.0.0.1 - "GET /path HTTP/1.1" 200 1.2ms`
    json: `{"ts": ..., "peer": ..., "method": ..., "path": ..., "http_version": ..., "status": ..., "duration_ms": ...}`

    `peer` is the raw socket peer, not the proxy-resolved client. The line is the same as it
    always was; what changed is the cost: a request only records its fields (the parser's bytes,
    undecoded) and the time, and the lines are built together when `max_lines` are waiting or
    on `flush()` (the server flushes a few times a second and when it stops), with the
    timestamp's date part formatted once a second, then written in chunks of whole lines no
    larger than a pipe writes atomically, so workers sharing stderr never split each other's
    lines.
    """

    def __init__(self, fmt: str = "text", fd: int | None = None, max_lines: int = 256) -> None:
        self.json = fmt == "json"
        self.fd = sys.stderr.fileno() if fd is None else fd
        self.max_lines = max_lines
        self.lines: list[tuple[float, str, Text, Text, Text, int, float]] = []
        self._second = -1
        self._prefix = ""
        self._prefix_bytes = b""

    def request(
        self, peer: str, method: Text, path: Text, http_version: Text, status: int, duration_ms: float
    ) -> None:
        self.lines.append((time.time(), peer, method, path, http_version, status, duration_ms))
        if len(self.lines) >= self.max_lines:
            self.flush()

    def _second_of(self, now: float) -> int:
        """`now`'s whole second, its date and time formatted once a second into the prefixes."""
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._prefix_bytes = self._prefix.encode()
        return second

    def _timestamp(self, now: float) -> str:
        millis = int((now - self._second_of(now)) * 1000)
        return f"{self._prefix}.{millis:03d}Z"

    def _encoded(self, record: tuple[float, str, Text, Text, Text, int, float]) -> bytes:
        """The line with its newline. A text line from the parser's ASCII bytes is formatted as
        bytes (no decoding and encoding again); anything else goes through `_line`."""
        now, peer, method, path, version, status, duration_ms = record
        if (
            not self.json
            and type(path) is bytes
            and type(method) is bytes
            and type(version) is bytes
            and path.isascii()
            and method.isascii()
            and version.isascii()
        ):
            second = int(now)
            if second != self._second:
                self._second_of(now)
            return b'%s.%03dZ %s - "%s %s HTTP/%s" %d %sms\n' % (
                self._prefix_bytes, int((now - second) * 1000), peer.encode(), method, path, version, status,
                _milliseconds(duration_ms),
            )  # fmt: skip
        return (self._line(record) + "\n").encode("utf-8", "replace")

    def _line(self, record: tuple[float, str, Text, Text, Text, int, float]) -> str:
        now, peer, method, path, version, status, duration_ms = record
        if isinstance(method, bytes):
            method = method.decode("ascii", "replace")
        if isinstance(path, bytes):
            path = path.decode("latin-1")
        if isinstance(version, bytes):
            version = version.decode("ascii", "replace")
        ts = self._timestamp(now)
        duration = _milliseconds(duration_ms).decode()
        if self.json:
            return (
                f'{{"ts": "{ts}", "peer": {_json(peer)}, "method": {_json(method)}, "path": {_json(path)}, '
                f'"http_version": {_json(version)}, "status": {status}, "duration_ms": {duration}}}'
            )
        return f'{ts} {peer} - "{method} {path} HTTP/{version}" {status} {duration}ms'

    def flush(self) -> None:
        """Build and write what is waiting, in chunks of whole lines of at most `_PIPE_BUF` bytes."""
        if not self.lines:
            return
        records, self.lines = self.lines, []
        chunk: list[bytes] = []
        size = 0
        for record in records:
            data = self._encoded(record)
            if chunk and size + len(data) > _PIPE_BUF:
                self._write(b"".join(chunk))
                chunk, size = [], 0
            chunk.append(data)
            size += len(data)
        self._write(b"".join(chunk))

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.fd, view)
            except InterruptedError:
                continue
            except OSError:
                return  # stderr closed or full for good: access lines are not worth a crash
            view = view[written:]


def _milliseconds(duration_ms: float) -> bytes:
    """`duration_ms` to the microsecond as `repr(round(duration_ms, 3))` writes it (`12.0`, `1.2`,
    `0.045`), at less than half its cost: fixed-point, then the trailing zeros dropped."""
    text = (b"%.3f" % duration_ms).rstrip(b"0")
    return text + b"0" if text[-1:] == b"." else text


_json = json.encoder.encode_basestring  # the C escaper json.dumps uses for a str


def configure_logging(level: str = "info", fmt: str = "text") -> None:
    """Send pounce's and chirp's logs to stderr once, at `level` (access lines: `AccessLog`)."""
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
