"""HTTP/1.1 as a sans-IO state machine on top of h11, with pounce's limits applied.

The connection driver feeds received bytes in with `feed()`, pulls events with
`next_event()` and asks for the bytes of a response with the `response_*` methods.
Nothing here knows about sockets, timeouts or the ASGI app.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

import h11
from h11._receivebuffer import ReceiveBuffer

from pounce.protocols.headers import FIELD_VALUE, date_header, date_line, token_lower, valid_host

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Limits:
    max_header_size: int = 64 * 1024
    max_header_count: int = 100
    max_url_length: int = 8192
    max_body_size: int = 16 * 1024 * 1024


# Events are plain slotted dataclasses (not frozen): one is made per request, and a frozen
# dataclass pays for `object.__setattr__` on every field.
@dataclass(slots=True)
class RequestHead:
    method: bytes
    target: bytes  # path and query (an absolute-form target is reduced to them), or b"*"
    headers: Headers
    http_version: bytes
    expects_continue: bool = False
    content_length: int | None = None
    chunked: bool = False
    websocket_upgrade: bool = False


@dataclass(slots=True)
class HeadFacts:
    """What one pass over the request headers tells the driver (besides the limits)."""

    content_length: int | None
    chunked: bool
    expects_continue: bool
    websocket_upgrade: bool
    close: bool = False


@dataclass(slots=True)
class Body:
    data: bytes


@dataclass(frozen=True, slots=True)
class Rejected:
    """The peer broke the protocol or a limit: answer `status` (if possible) and close."""

    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class HandOver:
    """The request at the front of the buffer is for `protocol` to parse: the driver serves
    the rest of the connection with it."""

    protocol: HTTP11Protocol


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NEED_DATA = _Marker("NEED_DATA")
PAUSED = _Marker("PAUSED")
END_OF_BODY = _Marker("END_OF_BODY")
PEER_CLOSED = _Marker("PEER_CLOSED")

Event = RequestHead | Body | Rejected | HandOver | _Marker


def inspect_head(limits: Limits, target: bytes, headers: Headers) -> HeadFacts | Rejected:
    """Check the request-head limits every HTTP version enforces (with the status each
    breaks) and collect the framing facts, in one pass over the headers."""
    if len(target) > limits.max_url_length:
        return Rejected(414, "request target exceeds max_url_length")
    if len(headers) > limits.max_header_count:
        return Rejected(431, "too many request header fields")
    size = 0
    content_length: int | None = None
    chunked = expects_continue = upgrade = connection_upgrade = close = has_length = bad_host = False
    for name, value in headers:
        size += len(name) + len(value) + 4
        if name == b"host":
            bad_host = not valid_host(value)
        elif name == b"content-length":
            has_length = True
            content_length = int(value) if value.isdigit() else None
        elif name == b"transfer-encoding":
            chunked = True
        elif name == b"expect":
            expects_continue = value.lower() == b"100-continue"
        elif name == b"upgrade":
            upgrade = value.lower() == b"websocket"
        elif name == b"connection":
            tokens = [token.strip() for token in value.lower().split(b",")]
            connection_upgrade = connection_upgrade or b"upgrade" in tokens
            close = close or b"close" in tokens
    if size > limits.max_header_size:
        return Rejected(431, "request header fields too large")
    if bad_host:  # RFC 9110, section 7.2: an invalid Host value is a 400
        return Rejected(400, "the Host header is not a valid host and port")
    if chunked and has_length:  # two framings: the way requests are smuggled past a proxy
        return Rejected(400, "request has both Content-Length and Transfer-Encoding")
    if content_length is not None and content_length > limits.max_body_size:
        return Rejected(413, "declared Content-Length exceeds max_body_size")
    return HeadFacts(content_length, chunked, expects_continue, upgrade and connection_upgrade, close)


def origin_form(method: bytes, target: bytes, headers: Headers) -> bytes | Rejected:
    """The path and query the app sees for a target in a form other than origin-form
    (RFC 9112, section 3.2), or why it is refused.

    absolute-form (`http://host/path?query`): path and query come from the target, and its
    authority takes the place of the Host header in `headers` (section 3.2.2), so what the app
    checks is the host the client asked for. asterisk-form (`*`) is for OPTIONS only, and reaches
    the app as the path `*`. authority-form is for CONNECT only: pounce tunnels nothing (501).
    """
    if method == b"CONNECT":
        return Rejected(501, "CONNECT is not supported")
    if target == b"*":
        return target if method == b"OPTIONS" else Rejected(400, "the target * is for OPTIONS only")
    scheme, sep, rest = target.partition(b"://")
    if not sep or scheme.lower() not in (b"http", b"https"):
        return Rejected(400, "the request target is neither a path nor an http or https URL")
    end = min(i for i in (rest.find(b"/"), rest.find(b"?"), len(rest)) if i >= 0)
    authority, path = rest[:end], rest[end:]
    if authority[:1] in (b"", b":") or not valid_host(authority):  # no empty host, no userinfo
        return Rejected(400, "the request target's authority is not a valid host and port")
    for i, (name, _) in enumerate(headers):
        if name == b"host":  # h11 let through at most one
            headers[i] = (b"host", authority)
            break
    else:
        headers.insert(0, (b"host", authority))  # HTTP/1.0 needs no Host header
    return path if path[:1] == b"/" else b"/" + path


# Chunk-size lines carry extensions pounce ignores (RFC 9112, section 7.1.1); 4 KiB leaves room
# for the signatures some upload clients put there and bounds what an endless line buffers.
CHUNK_LINE_LIMIT = 4096


_extract_lines = ReceiveBuffer.maybe_extract_lines


class _Lines(ReceiveBuffer):
    """h11's receive buffer, holding the lines it reads to RFC 9112 where h11 is lenient.

    h11 reads a request head and a trailer section with `maybe_extract_lines` and a chunk-size
    line with `maybe_extract_next_line`; the checks here see each of them once, as h11 cuts
    them out, so no byte is scanned twice. This buffer is the one internal of h11 that pounce
    relies on; tests/server/test_http11.py holds every check to its behaviour.
    """

    def __init__(self, max_chunk_line: int) -> None:
        super().__init__()
        self.max_chunk_line = max_chunk_line
        self.before_request_line = True  # set again for each request on the connection
        self.head: list[bytearray] = []  # the last head's lines: a refused one's tell its status

    def maybe_extract_lines(self) -> list[bytearray] | None:
        data = self._data  # one bytearray, which h11 cuts each head from the front of
        size = len(data)
        if not size:  # the common wait for a request
            return None
        lines = _extract_lines(self)
        if lines is None:
            return None
        taken = size - len(data)
        if self.before_request_line:
            self.before_request_line = False
            if not lines and taken == 2:  # one CRLF before a request line is ignored (section 2.2)
                return self.maybe_extract_lines()
        if lines:
            joined = b"\r\n".join(lines)
            # h11 also ends a line at a bare LF, where a CRLF-only parser in front of pounce would
            # not: the two would disagree on where a field or the message ends (sections 2.2, 11.2).
            if taken != len(joined) + 4:
                raise h11.LocalProtocolError("a line ends in a bare LF")
            # A line that starts with whitespace continues the one before it (obs-fold), which
            # h11 would join to it: refused instead (section 5.2).
            if joined.find(b"\n ") >= 0 or joined.find(b"\n\t") >= 0:
                raise h11.LocalProtocolError("a field line is folded (obs-fold)")
        elif taken != 2:
            raise h11.LocalProtocolError("a line ends in a bare LF")
        self.head = lines
        return lines

    def maybe_extract_next_line(self) -> bytearray | None:
        line = super().maybe_extract_next_line()
        if line is None:
            if len(self) > self.max_chunk_line:  # all that is buffered is one unfinished chunk line
                raise h11.LocalProtocolError("chunk line too long")
            return None
        # h11 skips everything after the ";" up to the CRLF, a bare CR or NUL included
        if len(line) > self.max_chunk_line or line.translate(None, FIELD_VALUE) != b"\r\n":
            raise h11.LocalProtocolError("chunk line too long or with a control character")
        return line

    def is_next_line_obviously_invalid_request_line(self) -> bool:
        # what h11 checks (a request line starts with a visible character), except that a CR
        # whose LF is still on its way may be the empty line ignored before a request line
        data = self._data
        return bool(data) and data[0] < 0x21 and not (self.before_request_line and data == b"\r")


def transfer_coding_status(lines: list[bytearray]) -> int:
    """The status for a request whose Transfer-Encoding h11 refused (it takes `chunked` alone).

    501 for a coding pounce does not know ahead of a final `chunked` (RFC 9112, section 6.1);
    400 when `chunked` is not the last coding, so the body's length cannot be known, or comes
    twice (section 6.3).
    """
    codings: list[bytes] = []
    for line in lines[1:]:
        name, _, value = bytes(line).partition(b":")
        if name.lower() == b"transfer-encoding":
            codings += [coding.strip().lower() for coding in value.split(b",") if coding.strip()]
    unknown_then_chunked = len(codings) > 1 and codings[-1] == b"chunked" and codings.count(b"chunked") == 1
    return 501 if unknown_then_chunked else 400


_PHRASES = {status.value: status.phrase.encode() for status in HTTPStatus}


def reason_phrase(status: int) -> bytes:
    return _PHRASES.get(status, b"")


_STATUS_LINES: dict[int, bytes] = {}
# Response fields found valid, as their lower-cased name and the line they are sent as. Apps send
# the same few fields with every response, so each is checked and formatted once; the table is
# emptied when it fills (an app whose values change with every response).
_FIELD_LINES: dict[tuple[bytes, bytes], tuple[bytes, bytes]] = {}
_FIELD_LINES_LIMIT = 2048
# The fields of plain responses as the app gave them, and their lines joined with the
# Content-Length among them (None: not given): an app sends the same fields with most of its
# responses, so their block is checked and joined once. Emptied when it fills.
_BLOCKS: dict[tuple[tuple[bytes, bytes], ...], tuple[bytes, bytes | None]] = {}
_BLOCKS_LIMIT = 256
# Final statuses whose response carries the body as given (a set: one test a response).
_PLAIN_STATUSES = frozenset(range(200, 1000)) - {204, 304}
# Fields that say something about framing or that the server adds itself.
_NOT_PLAIN = frozenset((b"content-length", b"connection", b"transfer-encoding", b"server", b"date"))


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        line = _STATUS_LINES[status] = b"HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status))
    return line


def _field_line(field: tuple[bytes, bytes]) -> tuple[bytes, bytes] | None:
    """The lower-cased name and the line of a valid response field, remembered; None if invalid.

    Raises TypeError for a field that is not a pair of bytes (a list cannot be remembered)."""
    entry = _FIELD_LINES.get(field)
    if entry is None:
        raw_name, value = field
        name = token_lower(bytes(raw_name))
        if name is None or value.translate(None, FIELD_VALUE):
            return None
        entry = (name, b"%s: %s\r\n" % (name, value))
        if len(_FIELD_LINES) >= _FIELD_LINES_LIMIT:
            _FIELD_LINES.clear()
        _FIELD_LINES[field] = entry
    return entry


def _plain_block(fields: tuple[tuple[bytes, bytes], ...]) -> tuple[bytes, bytes | None] | None:
    """The lines of `fields` joined and the Content-Length among them, remembered, when every
    field is valid and none is about framing but at most one Content-Length; otherwise None.

    Raises TypeError for a field that is not a pair of bytes (a list cannot be remembered)."""
    lines = []
    length: bytes | None = None
    for field in fields:
        entry = _FIELD_LINES.get(field) or _field_line(field)  # (a call only the first time)
        if entry is None:
            return None
        name, line = entry
        if name in _NOT_PLAIN:
            if name != b"content-length" or length is not None:
                return None
            length = field[1]
        lines.append(line)
    block = (b"".join(lines), length)
    if len(_BLOCKS) >= _BLOCKS_LIMIT:
        _BLOCKS.clear()
    _BLOCKS[fields] = block
    return block


class HTTP11Protocol:
    """One HTTP/1.1 connection, server side.

    h11 parses every request and frames every streamed response. A response the app
    hands over whole, with nothing about its framing left to decide (no
    Transfer-Encoding or Connection header, a Content-Length that matches the body or
    none), is written here in one step: it is the common case, and h11's general
    writer costs more than the rest of the request. Each request cycle gets a fresh
    parser, fed with whatever the client pipelined after the previous request.
    """

    def __init__(self, limits: Limits, server_header: bytes = b"pounce") -> None:
        self._limits = limits
        self._server_header = server_header
        self._server_line = b"server: %s\r\n" % server_header if server_header else b""
        self._body_received = 0
        self._head_request = False
        self._client_keep_alive = True  # HTTP/1.1 without `Connection: close`
        self._written_whole: bool | None = None  # set once a whole response is written: keep-alive
        self._start_parsing()

    def _start_parsing(self) -> None:
        """The parser's state: h11, reading from this connection's line buffer."""
        self._lines = _Lines(min(CHUNK_LINE_LIMIT, self._limits.max_header_size))
        self._conn = self._parser()

    def _parser(self) -> h11.Connection:
        """A fresh h11 parser that reads from this connection's `_Lines` buffer, taking over
        whatever it holds."""
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self._limits.max_header_size)
        conn._receive_buffer = self._lines
        return conn

    # -- input -----------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Hand received bytes to the parser; `b""` means the peer closed its side."""
        self._conn.receive_data(data)

    @property
    def trailing_data(self) -> bytes:
        """Bytes received after the request head (the start of an upgraded protocol)."""
        return bytes(self._conn.trailing_data[0])

    @property
    def has_buffered_data(self) -> bool:
        return bool(self._conn.trailing_data[0])

    def next_event(self) -> Event:
        try:
            event = self._conn.next_event()
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint
            if status == 501:  # the one status h11 gives a Transfer-Encoding other than chunked
                status = transfer_coding_status(self._lines.head)
            reason = "request header fields too large" if status == 431 else "malformed request"
            return Rejected(status, reason)
        if event is h11.NEED_DATA:
            return NEED_DATA
        if event is h11.PAUSED:
            return PAUSED
        if isinstance(event, h11.Request):
            return self._on_request(event)
        if isinstance(event, h11.Data):
            self._body_received += len(event.data)
            if self._body_received > self._limits.max_body_size:
                return Rejected(413, "request body exceeds max_body_size")
            return Body(bytes(event.data))
        if isinstance(event, h11.EndOfMessage):
            return END_OF_BODY
        return PEER_CLOSED

    def _on_request(self, event: h11.Request) -> Event:
        http_version = bytes(event.http_version)
        if http_version != b"1.1" and http_version != b"1.0":  # h11 parses any HTTP/<digit>.<digit>
            return Rejected(505, f"HTTP/{http_version.decode()} is not supported; use HTTP/1.1")
        headers = list(event.headers)
        target = bytes(event.target)
        method = bytes(event.method)
        facts = inspect_head(self._limits, target, headers)
        if isinstance(facts, Rejected):
            return facts
        if facts.chunked and http_version == b"1.0":  # framing an HTTP/1.0 peer cannot mean (section 6.1)
            return Rejected(400, "Transfer-Encoding in an HTTP/1.0 request")
        if target[:1] != b"/" or method == b"CONNECT":
            path = origin_form(method, target, headers)
            if isinstance(path, Rejected):
                return path
            target = path
        self._head_request = method == b"HEAD"
        self._client_keep_alive = http_version == b"1.1" and not facts.close
        return RequestHead(
            method,
            target,
            headers,
            http_version,
            facts.expects_continue and http_version == b"1.1",  # HTTP/1.0 has no 100 (RFC 9110, 10.1.1)
            facts.content_length,
            facts.chunked,
            facts.websocket_upgrade and method == b"GET",
        )

    # -- output ----------------------------------------------------------------------------
    def _output(self) -> h11.Connection:
        """The h11 state machine that frames a response h11 writes."""
        return self._conn

    def _response_pending(self) -> bool:
        """No byte of the response to the current request has been written."""
        return self._conn.our_state is h11.SEND_RESPONSE

    @property
    def response_started(self) -> bool:
        if self._written_whole is not None:
            return True
        return self._conn.our_state is not h11.IDLE and self._conn.our_state is not h11.SEND_RESPONSE

    @property
    def request_complete(self) -> bool:
        return self._conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED)

    def continue_100(self) -> bytes:
        """Bytes of `100 Continue`, or nothing once a final response has begun."""
        if self._conn.their_state is not h11.SEND_BODY or self.response_started:
            return b""
        return (
            self._conn.send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")) or b""
        )

    def _headers_out(self, headers: Headers, close: bool) -> tuple[Headers, _Framing]:
        """The response headers to send, with `Date`, `Server` and `Connection` added, and
        what they say about framing.

        Raises `h11.LocalProtocolError` for headers that must not be sent (for example a CR
        or LF inside a value); the driver turns that into a 500.
        """
        out: Headers = []
        has_server = has_date = False
        framing = _Framing()
        for raw_name, value in headers:
            name = token_lower(bytes(raw_name))
            if name is None or value.translate(None, FIELD_VALUE):  # what h11 checks, without a regex
                raise h11.LocalProtocolError(f"illegal response header {raw_name!r}")
            if name == b"server":
                has_server = True
            elif name == b"date":
                has_date = True
            elif name == b"connection":
                framing.connection = True
            elif name == b"content-length":
                framing.repeated_length = framing.content_length is not None
                framing.content_length = bytes(value)
            elif name == b"transfer-encoding":
                framing.transfer_encoding = True
            out.append((name, value))
        if not has_server and self._server_header:
            out.append((b"server", self._server_header))
        if not has_date:
            out.append((b"date", date_header()))
        if close and not framing.connection:
            out.append((b"connection", b"close"))
        return out, framing

    def response_head(self, status: int, headers: Headers, *, close: bool = False) -> bytes:
        """Bytes of the status line and headers, framed by h11 for a streamed body."""
        out, _ = self._headers_out(headers, close)
        return self._send_head(status, out)

    def _send_head(self, status: int, out: Headers) -> bytes:
        if not 100 <= status <= 999:
            raise h11.LocalProtocolError(f"status code {status} is out of range")
        response = h11.Response(status_code=status, headers=out, reason=reason_phrase(status), _parsed=True)
        return self._output().send(response) or b""

    def response(self, status: int, headers: Headers, body: bytes, *, close: bool = False) -> bytes:
        """A whole response in one go: head, body (none for HEAD) and end."""
        keep_alive = self._client_keep_alive and not close
        # A final status whose body is sent as given (not HEAD, 204 or 304), with no response
        # under way: the common case, written here from remembered field lines.
        plain = status in _PLAIN_STATUSES and not self._head_request and self._response_pending()
        if plain:
            try:
                whole = self._plain_response(status, headers, body, keep_alive)
            except (TypeError, ValueError):  # a field that is not a pair of bytes
                whole = None
            if whole is not None:
                return whole
        out, framing = self._headers_out(headers, not keep_alive)
        if plain:
            whole = self._whole_response(status, out, framing, body, keep_alive)
            if whole is not None:
                return whole
        data = self._send_head(status, out)  # h11 frames it (and refuses what it must)
        if body and not self._head_request:
            data += self._output().send(h11.Data(data=body)) or b""
        return data + (self._output().send(h11.EndOfMessage()) or b"")

    def _plain_response(self, status: int, headers: Headers, body: bytes, keep_alive: bool) -> bytes | None:
        """The common whole response, from a remembered block of field lines: valid fields, none
        of them about framing but at most one Content-Length that matches the body. The same
        bytes as `_whole_response`; None for anything else, which takes the general path."""
        fields = tuple(headers)
        block = _BLOCKS.get(fields) or _plain_block(fields)  # (a call only the first time)
        if block is None:
            return None
        lines, given = block
        if given is None:
            length = b"content-length: %d\r\n" % len(body)
        elif given == b"%d" % len(body):
            length = b""
        else:
            return None
        self._written_whole = keep_alive
        return b"".join((  # (cheaper than `%`, which asks every part for its buffer)
            _STATUS_LINES.get(status) or _status_line(status),
            lines,
            self._server_line,
            date_line(),
            b"" if keep_alive else b"connection: close\r\n",
            length,
            b"\r\n",
            body,
        ))  # fmt: skip

    def _whole_response(
        self, status: int, out: Headers, framing: _Framing, body: bytes, keep_alive: bool
    ) -> bytes | None:
        """The response's bytes written here, or None when its framing is h11's to decide."""
        if framing.connection or framing.transfer_encoding:
            return None
        length = b"%d" % len(body)
        if framing.content_length is None:
            out.append((b"content-length", length))
        elif framing.content_length != length or framing.repeated_length:
            return None  # h11 settles (or rejects, with its own message) anything unusual
        self._written_whole = keep_alive
        parts = [_status_line(status)]
        for name, value in out:
            parts += (name, b": ", value, b"\r\n")
        parts += (b"\r\n", body)
        return b"".join(parts)

    def response_body(self, data: bytes) -> bytes:
        if not data or self._head_request:
            return b""
        return self._output().send(h11.Data(data=data)) or b""

    def response_end(self) -> bytes:
        return self._output().send(h11.EndOfMessage()) or b""

    def error_response(self, status: int, reason: str) -> bytes:
        """A complete plain-text error response that closes the connection."""
        body = f"{status} {reason_phrase(status).decode()}\n{reason}\n".encode()
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        try:
            data = self.response_head(status, headers) + self.response_body(body) + self.response_end()
        except h11.LocalProtocolError:
            # h11 refuses to answer (for example the request line never parsed as HTTP):
            # write a minimal response by hand; the connection closes right after it.
            data = (
                b"HTTP/1.1 %d %s\r\nserver: %s\r\ndate: %s\r\n"
                % (status, reason_phrase(status), self._server_header, date_header())
                + b"".join(k + b": " + v + b"\r\n" for k, v in headers)
                + b"\r\n"
                + body
            )
        return data

    @property
    def keep_alive(self) -> bool:
        if self._written_whole is not None:
            return self._written_whole and self._conn.their_state is h11.DONE
        return self._conn.our_state is h11.DONE and self._conn.their_state is h11.DONE

    def start_next_cycle(self) -> None:
        if self._written_whole is None:
            self._conn.start_next_cycle()
        else:  # h11 never saw the response: a fresh parser takes over the pipelined bytes
            closed = self._conn.trailing_data[1]
            self._conn = self._parser()
            if closed:
                self._conn.receive_data(b"")
            self._written_whole = None
        self._lines.before_request_line = True
        self._body_received = 0
        self._head_request = False
        self._client_keep_alive = True


@dataclass(slots=True)
class _Framing:
    """What a response's own headers say about its framing."""

    connection: bool = False
    transfer_encoding: bool = False
    content_length: bytes | None = None
    repeated_length: bool = False
