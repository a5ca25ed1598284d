"""HTTP/1.1 requests parsed by llhttp (httptools), behind the interface of `HTTP11Protocol`.

Only the common request takes this path: a head in plain CRLF-delimited lines, an
origin-form target, HTTP/1.0 or 1.1, and a body framed by one Content-Length or none.
Anything else (chunked, Expect, Upgrade, a duplicate Host, obs-text, a head over a limit
or one llhttp refuses, ...) is handed over, with the bytes still unparsed, to the h11 protocol,
which serves the rest of the connection: the verdict on an unusual request is always
h11's, so this path is never laxer than it.

Responses are written as `HTTP11Protocol` writes them; the h11 state machine that
frames a streamed or unusual response is made only when one is needed.
"""

from __future__ import annotations

import re

import h11
import httptools

from pounce.protocols.headers import valid_host
from pounce.protocols.http11 import (
    END_OF_BODY,
    NEED_DATA,
    PAUSED,
    PEER_CLOSED,
    Body,
    Event,
    HandOver,
    Headers,
    HTTP11Protocol,
    Limits,
    RequestHead,
)

# A head on this path: a request line of a visible method, an origin-form target of visible
# characters and HTTP/1.0 or 1.1, single spaces between them; then field lines that start with a
# visible character (so none is folded), hold nothing but HTAB, space and visible ASCII, and end in
# CRLF; then the empty line. A bare CR or LF, a NUL, another control character, obs-text or any
# other request line is for h11 to judge. One match gives the method, target and version.
_PLAIN_HEAD = re.compile(rb"([!-~]+) (/[!-~]*) HTTP/(1\.[01])\r\n(?:[!-~][\t -~]*\r\n)*\r\n")
_HANDED_OVER = frozenset((b"transfer-encoding", b"expect", b"upgrade"))


class FastHTTP11Protocol(HTTP11Protocol):
    """One HTTP/1.1 connection whose common requests llhttp parses."""

    def _start_parsing(self) -> None:
        """llhttp's state, in place of h11's: h11 is made only to frame an unusual response,
        or to take over the connection at an unusual request."""
        self._buffer = bytearray()
        self._eof = False
        self._head: RequestHead | None = None
        self._remaining = 0  # body bytes of the current request still to come
        self._body_ended = False
        self._scanned = 0  # where the search for the end of the head resumes
        self._shadow: h11.Connection | None = None  # frames a response h11 writes
        self._fields = _Fields()
        # llhttp's parser, kept from one request to the next while each ends with its head
        # (no body, keep-alive): llhttp then waits for the next head as a new parser would.
        self._llhttp: httptools.HttpRequestParser | None = None

    # -- input -----------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if data:
            self._buffer += data
        else:
            self._eof = True

    @property
    def trailing_data(self) -> bytes:
        return bytes(self._buffer)

    @property
    def has_buffered_data(self) -> bool:
        return bool(self._buffer)

    def next_event(self) -> Event:
        buffer = self._buffer
        if self._head is None:
            if not buffer:  # (here, not in `_next_head`: between requests it is the usual answer)
                return PEER_CLOSED if self._eof else NEED_DATA
            return self._next_head()
        if self._remaining:
            if not buffer:
                return PEER_CLOSED if self._eof else NEED_DATA
            size = min(self._remaining, len(buffer))
            data = bytes(buffer[:size])
            del buffer[:size]
            self._remaining -= size
            return Body(data)
        if not self._body_ended:
            self._body_ended = True
            return END_OF_BODY
        return PAUSED

    def _next_head(self) -> Event:
        """The head at the front of the buffer, which holds at least one byte."""
        buffer = self._buffer
        limits = self._limits
        end = buffer.find(b"\r\n\r\n", self._scanned)
        if end < 0:
            if self._eof or len(buffer) > limits.max_header_size or buffer[0] < 0x21:
                return self._hand_over()
            self._scanned = max(0, len(buffer) - 3)  # a head sent a byte at a time is scanned once
            return NEED_DATA
        self._scanned = 0
        size = end + 4
        head = bytes(buffer[:size])
        plain = _PLAIN_HEAD.fullmatch(head)
        if plain is None or size > limits.max_header_size:
            return self._hand_over()
        method, target, http_version = plain.groups()
        fields: Headers = []
        self._fields.fields = fields
        parser = self._llhttp or httptools.HttpRequestParser(self._fields)
        try:
            parser.feed_data(head)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            return self._hand_over()
        framing = _plain_fields(fields, http_version, limits)
        if framing is None or len(target) > limits.max_url_length:
            return self._hand_over()
        content_length, close = framing
        keep_alive = http_version == b"1.1" and not close
        # A body (which llhttp is not fed) or the end of the connection leaves it mid-message.
        self._llhttp = parser if keep_alive and not content_length else None
        if size == len(buffer):
            buffer.clear()
        else:
            del buffer[:size]
        self._head_request = method == b"HEAD"
        self._client_keep_alive = keep_alive
        self._remaining = content_length or 0
        self._head = RequestHead(method, target, fields, http_version, content_length=content_length)
        return self._head

    def _hand_over(self) -> HandOver:
        """The h11 protocol, holding every byte not yet parsed, for the rest of the connection."""
        successor = HTTP11Protocol(self._limits, self._server_header)
        if self._buffer:
            successor.feed(bytes(self._buffer))
            self._buffer.clear()
        if self._eof:
            successor.feed(b"")
        return HandOver(successor)

    @property
    def request_complete(self) -> bool:
        return self._head is not None and not self._remaining

    def continue_100(self) -> bytes:
        return b""  # a request that expects 100-continue is served by the h11 protocol

    # -- output ----------------------------------------------------------------------------
    def _output(self) -> h11.Connection:
        """h11, told of a request like the current one (method, version, Connection: close),
        so it frames the response exactly as it would on the h11 path."""
        if self._shadow is None:
            head = self._head
            if head is None:
                raise h11.LocalProtocolError("no request to answer")
            close = b"" if self._client_keep_alive else b"connection: close\r\n"
            shadow = h11.Connection(h11.SERVER)
            shadow.receive_data(
                b"%s / HTTP/%s\r\nhost: x\r\n%s\r\n" % (head.method, head.http_version, close)
            )
            shadow.next_event()  # the request
            shadow.next_event()  # its (empty) end
            self._shadow = shadow
        return self._shadow

    def _response_pending(self) -> bool:
        return self._shadow is None or self._shadow.our_state is h11.SEND_RESPONSE

    @property
    def response_started(self) -> bool:
        if self._written_whole is not None:
            return True
        return self._shadow is not None and self._shadow.our_state not in (h11.IDLE, h11.SEND_RESPONSE)

    @property
    def keep_alive(self) -> bool:
        if not self.request_complete:
            return False
        if self._written_whole is not None:
            return self._written_whole
        return self._shadow is not None and self._shadow.our_state is h11.DONE

    def start_next_cycle(self) -> None:
        self._head = None
        self._shadow = None
        self._written_whole = None
        self._remaining = 0
        self._body_ended = False
        self._head_request = False
        self._client_keep_alive = True


class _Fields:
    """Collects the header fields llhttp parses (its callbacks' target: not the protocol, which
    would then hold its parser in a reference cycle)."""

    __slots__ = ("fields",)

    def __init__(self) -> None:
        self.fields: Headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields.append((name.lower(), value))


def _plain_fields(fields: Headers, http_version: bytes, limits: Limits) -> tuple[int | None, bool] | None:
    """The Content-Length and whether the client asked to close, for fields that keep to every
    limit (the head's size is checked whole) with one valid Host (at most one on HTTP/1.0), at
    most one Content-Length of digits, no framing or protocol switch left to h11 and no value
    h11 would trim; otherwise None."""
    if len(fields) > limits.max_header_count:
        return None
    hosts = 0
    length: int | None = None
    close = False
    for name, value in fields:
        if value[-1:] in (b" ", b"\t"):
            return None
        if name == b"host":
            hosts += 1
            if not valid_host(value):
                return None
        elif name == b"content-length":
            if length is not None or not value.isdigit():
                return None
            length = int(value)
            if length > limits.max_body_size:
                return None
        elif name == b"connection":
            close = close or b"close" in [token.strip() for token in value.lower().split(b",")]
        elif name in _HANDED_OVER:
            return None
    if hosts == 1 or (hosts == 0 and http_version == b"1.0"):
        return length, close
    return None
