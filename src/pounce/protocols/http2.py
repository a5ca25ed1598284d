"""HTTP/2 as a sans-IO state machine on top of h2, with the same limits as HTTP/1.1.

The driver feeds bytes with `feed()` and gets back stream events; it asks for frames
with the `send_*` methods and collects the bytes to write with `data_to_send()`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from hpack import NeverIndexedHeaderTuple

from pounce.protocols.headers import date_header, illegal_field
from pounce.protocols.http11 import Headers, Limits, Rejected, inspect_head

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_CONNECTION_SPECIFIC = frozenset(
    (b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"proxy-connection")
)
# Credentials an attacker could recover from the compressed size if HPACK indexed them.
_NEVER_INDEXED = frozenset((b"authorization", b"proxy-authorization"))


def declared_length(headers: Headers) -> int | None:
    """The body length a response's own `content-length` headers declare, or None.

    h2 sends whatever it is given; a length the body then does not match makes the response
    malformed (RFC 9113, section 8.1.1), so the driver holds the app to it.
    """
    values = {value.strip() for name, value in headers if name == b"content-length"}
    if not values:
        return None
    if len(values) > 1 or not next(iter(values)).isdigit():
        raise ValueError(f"invalid content-length in the response: {sorted(values)!r}")
    return int(next(iter(values)))


@dataclass(frozen=True, slots=True)
class StreamRequest:
    stream_id: int
    method: bytes
    target: bytes
    authority: bytes
    headers: Headers
    end_stream: bool


@dataclass(frozen=True, slots=True)
class StreamRejected:
    """A request that broke a limit: answer `status` on the stream."""

    stream_id: int
    rejected: Rejected


@dataclass(frozen=True, slots=True)
class StreamData:
    stream_id: int
    data: bytes
    flow_length: int


@dataclass(frozen=True, slots=True)
class StreamEnded:
    stream_id: int


@dataclass(frozen=True, slots=True)
class StreamReset:
    stream_id: int


@dataclass(frozen=True, slots=True)
class WindowOpened:
    stream_id: int  # 0: the whole connection


@dataclass(frozen=True, slots=True)
class Terminated:
    reason: str


Event = StreamRequest | StreamRejected | StreamData | StreamEnded | StreamReset | WindowOpened | Terminated


class HTTP2Protocol:
    """Server side of one HTTP/2 connection."""

    def __init__(
        self, limits: Limits, server_header: bytes = b"pounce", max_concurrent_streams: int = 100
    ) -> None:
        self._limits = limits
        self._server_header = server_header
        # Response headers are checked and normalised in `send_headers`, once: h2 would do it again.
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self._conn = h2.connection.H2Connection(config=config)
        self._conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: max_concurrent_streams,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: limits.max_header_size,
                h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 0,
            },
        )
        self._conn.initiate_connection()
        self.last_stream_id = 0
        self.goaway_stream_id: int | None = None

    def feed(self, data: bytes) -> list[Event]:
        try:
            events = self._conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._conn.close_connection(error_code=h2.errors.ErrorCodes.PROTOCOL_ERROR)
            return [Terminated(f"protocol error: {exc}")]
        out: list[Event] = []
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                out.append(self._on_request(event))
                if event.stream_ended is not None:
                    out.append(StreamEnded(event.stream_id))
            elif isinstance(event, h2.events.DataReceived):
                out.append(StreamData(event.stream_id, bytes(event.data), event.flow_controlled_length))
                if event.stream_ended is not None:
                    out.append(StreamEnded(event.stream_id))
            elif isinstance(event, h2.events.StreamEnded):
                out.append(StreamEnded(event.stream_id))
            elif isinstance(event, h2.events.StreamReset):
                out.append(StreamReset(event.stream_id))
            elif isinstance(event, h2.events.WindowUpdated):
                out.append(WindowOpened(event.stream_id))
            elif isinstance(event, h2.events.RemoteSettingsChanged):
                out.append(WindowOpened(0))  # the initial window may have grown
            elif isinstance(event, h2.events.ConnectionTerminated):
                out.append(Terminated(f"peer sent GOAWAY ({event.error_code!r})"))
        return out

    def _on_request(self, event: h2.events.RequestReceived) -> Event:
        self.last_stream_id = max(self.last_stream_id, event.stream_id)
        method = target = authority = b""
        headers: Headers = []
        for name, value in event.headers or ():
            if name == b":method":
                method = value
            elif name == b":path":
                target = value
            elif name == b":authority":
                authority = value
            elif not name.startswith(b":"):
                headers.append((name, value))
        if authority and not any(n == b"host" for n, _ in headers):
            headers.insert(0, (b"host", authority))
        facts = inspect_head(self._limits, target, headers)
        if isinstance(facts, Rejected):
            return StreamRejected(event.stream_id, facts)
        return StreamRequest(
            event.stream_id, method, target, authority, headers, event.stream_ended is not None
        )

    # -- output ----------------------------------------------------------------------------
    def data_to_send(self) -> bytes:
        return self._conn.data_to_send()

    def send_headers(self, stream_id: int, status: int, headers: Headers, end_stream: bool = False) -> None:
        if not 200 <= status <= 999:  # h2 would send any number, 42 or a 1xx as the final answer
            raise ValueError(f"status code {status} cannot answer an HTTP/2 request")
        out: Headers = [(b":status", str(status).encode())]
        names = set()
        for name, value in headers:
            name = name.lower()
            if illegal_field(name, value):  # h2 itself would send a CR or LF in a value
                raise ValueError(f"illegal response header {name!r}")
            if name in _CONNECTION_SPECIFIC:
                continue  # not allowed in HTTP/2 (RFC 9113, section 8.2.2)
            value = value.strip()  # no field value starts or ends with whitespace (section 8.2.1)
            if name == b"te" and value.lower() != b"trailers":
                raise ValueError(f"illegal response header b'te': {value!r}")
            names.add(name)
            if name in _NEVER_INDEXED or (name == b"cookie" and len(value) < 20):
                out.append(NeverIndexedHeaderTuple(name, value))  # kept out of HPACK's tables
            else:
                out.append((name, value))
        if b"server" not in names and self._server_header:
            out.append((b"server", self._server_header))
        if b"date" not in names:
            out.append((b"date", date_header()))
        self._conn.send_headers(stream_id, out, end_stream=end_stream)

    def window(self, stream_id: int) -> int:
        """How many body bytes may be sent on the stream now (flow control and frame size)."""
        try:
            window = self._conn.local_flow_control_window(stream_id)
        except (h2.exceptions.StreamClosedError, KeyError):
            return -1
        return min(window, self._conn.max_outbound_frame_size)

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        self._conn.send_data(stream_id, data, end_stream=end_stream)

    def end_stream(self, stream_id: int) -> None:
        self._conn.end_stream(stream_id)

    def acknowledge(self, stream_id: int, flow_length: int) -> None:
        """The app consumed `flow_length` bytes: let the peer send more."""
        with contextlib.suppress(h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            self._conn.acknowledge_received_data(flow_length, stream_id)

    def reset(self, stream_id: int, code: h2.errors.ErrorCodes = h2.errors.ErrorCodes.INTERNAL_ERROR) -> None:
        with contextlib.suppress(h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            self._conn.reset_stream(stream_id, error_code=code)

    def stop_new_streams(self) -> None:
        """Graceful shutdown begins: streams opened from now on are refused."""
        self.goaway_stream_id = self.last_stream_id

    def goaway(self) -> None:
        """Graceful shutdown ends: GOAWAY once the streams in flight have finished.

        Sent last because common h2 clients stop reading a connection's frames as soon
        as they see a GOAWAY, which would lose the responses still in flight.
        """
        self._conn.close_connection(last_stream_id=self.last_stream_id)

    def refuse(self, stream_id: int) -> None:
        """A stream opened after our GOAWAY: the peer may retry it elsewhere."""
        self.reset(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)

    def stream_open(self, stream_id: int) -> bool:
        stream = self._conn.streams.get(stream_id)
        return stream is not None and not stream.closed
