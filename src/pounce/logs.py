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
_Record = tuple[int, str, Text, Text, Text, int, int]  # time (ms), peer, request line, status, duration (ns)


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
        self.lines: list[_Record] = []
        self._second = -1
        self._prefix = ""
        self._prefix_bytes = b""

    def request(
        self, peer: str, method: Text, path: Text, http_version: Text, status: int, duration_ns: int
    ) -> None:
        """Record a request; `duration_ns` from `time.perf_counter_ns()` (integers: no float
        arithmetic or float formatting on the request's path)."""
        self.lines.append(
            (time.time_ns() // 1_000_000, peer, method, path, http_version, status, duration_ns)
        )
        if len(self.lines) >= self.max_lines:
            self.flush()

    def _second_of(self, second: int) -> int:
        """Format `second`'s date and time into the prefixes, once a second."""
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._prefix_bytes = self._prefix.encode()
        return second

    def _timestamp(self, now_ms: int) -> str:
        self._second_of(now_ms // 1000)
        return f"{self._prefix}.{now_ms % 1000:03d}Z"

    def _encoded(self, records: list[_Record]) -> bytes:
        """The lines of `records`, each with its newline. Text lines from the parser's bytes are
        joined as bytes (no decoding and encoding again) from ready-made parts, their numbers
        looked up in tables; a line with a number outside them goes through `_line`, and so do
        every JSON line and a whole batch with a field given as text or a byte outside ASCII
        (read as Latin-1, written as UTF-8)."""
        if not self.json:
            pieces: list[bytes] = []
            second, prefix = self._second, self._prefix_bytes
            millis, statuses, numbers, fractions = _MILLIS, _STATUSES, _NUMBERS, _FRACTIONS
            last_peer, peer_bytes = "", b""
            for record in records:
                now_ms, peer, method, path, version, status, duration_ns = record
                if now_ms // 1000 != second:
                    second = self._second_of(now_ms // 1000)
                    prefix = self._prefix_bytes
                if peer != last_peer:  # (lines in a row often come from one peer)
                    last_peer, peer_bytes = peer, peer.encode()
                micros = (duration_ns + 500) // 1000
                try:
                    pieces += (  # type: ignore[arg-type]
                        prefix, millis[now_ms % 1000], peer_bytes, b' - "', method, b" ", path, b" HTTP/",
                        version, b'" ', statuses[status], b" ", numbers[micros // 1000], fractions[micros % 1000],
                        b"ms\n",
                    )  # fmt: skip
                except (IndexError, KeyError):  # a request of a second or more, a status outside
                    pieces.append(self._line(record))  # 100-999
            try:
                data = b"".join(pieces)  # (one join a batch: cheaper than `%` or a join a line)
            except TypeError:  # a field given as text
                pass
            else:
                if data.isascii():
                    return data
        return b"".join([self._line(record) for record in records])

    def _line(self, record: _Record) -> bytes:
        now_ms, peer, method, path, version, status, duration_ns = record
        if isinstance(method, bytes):
            method = method.decode("ascii", "replace")
        if isinstance(path, bytes):
            path = path.decode("latin-1")
        if isinstance(version, bytes):
            version = version.decode("ascii", "replace")
        ts = self._timestamp(now_ms)
        duration = _milliseconds(duration_ns).decode()
        if self.json:
            line = (
                f'{{"ts": "{ts}", "peer": {_json(peer)}, "method": {_json(method)}, "path": {_json(path)}, '
                f'"http_version": {_json(version)}, "status": {status}, "duration_ms": {duration}}}\n'
            )
        else:
            line = f'{ts} {peer} - "{method} {path} HTTP/{version}" {status} {duration}ms\n'
        return line.encode("utf-8", "replace")

    def flush(self) -> None:
        """Build and write what is waiting, in chunks of whole lines of at most `_PIPE_BUF` bytes
        (a longer line goes alone)."""
        if not self.lines:
            return
        records, self.lines = self.lines, []
        data = self._encoded(records)
        start = 0
        while len(data) - start > _PIPE_BUF:
            cut = data.rfind(b"\n", start, start + _PIPE_BUF) + 1 or data.index(b"\n", start) + 1
            self._write(data[start:cut])
            start = cut
        self._write(data[start:])

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


def _milliseconds(duration_ns: int) -> bytes:
    """`duration_ns` in milliseconds to the microsecond, as `repr(round(ms, 3))` writes it (`12.0`,
    `1.2`, `0.045`), from integers: the whole milliseconds, then the trimmed fraction's text."""
    micros = (duration_ns + 500) // 1000
    return b"%d%s" % (micros // 1000, _FRACTIONS[micros % 1000])


# ".0", ".001", ..., ".2", ...: the fraction of a millisecond as `repr()` of a rounded float ends
_FRACTIONS = tuple((b".%03d" % i).rstrip(b"0") if i else b".0" for i in range(1000))
_MILLIS = tuple(b".%03dZ " % i for i in range(1000))  # a timestamp's milliseconds
_NUMBERS = tuple(b"%d" % i for i in range(1000))  # a duration's whole milliseconds
_STATUSES = {status: b"%d" % status for status in range(100, 1000)}  # (a dict: no negative index)


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
