"""The sans-IO HTTP/1.1 protocol on its own: pipelined requests cut at any byte, answered
whole or streamed, and every response read back by h11's own client parser."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pounce.protocols import http11
from pounce.protocols.http11 import HTTP11Protocol, Limits
from pounce.protocols.httptools11 import FastHTTP11Protocol

# the h11 protocol and the httptools one: the same interface, the same answers
PROTOCOLS = pytest.mark.parametrize(
    "protocol", [HTTP11Protocol, FastHTTP11Protocol], ids=["h11", "httptools"]
)


@dataclass
class Exchange:
    method: str
    path: str
    body: bytes
    style: str  # how the server answers: "whole", "whole-no-length", "streamed"


exchanges = st.lists(
    st.builds(
        Exchange,
        method=st.sampled_from(["GET", "POST", "HEAD"]),
        path=st.from_regex(r"/[a-z]{0,8}", fullmatch=True),
        body=st.binary(max_size=40),
        style=st.sampled_from(["whole", "whole-no-length", "streamed"]),
    ),
    min_size=1,
    max_size=6,
)


def request_bytes(exchange: Exchange, last: bool) -> bytes:
    body = exchange.body if exchange.method == "POST" else b""
    head = f"{exchange.method} {exchange.path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n"
    if last:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + body


def serve(proto: HTTP11Protocol, chunks: list[bytes], plan: list[Exchange]) -> tuple[bytes, int]:
    """Drive the protocol the way the connection driver does; return the bytes written and
    how many requests were answered."""
    out = b""
    answered = 0
    chunks = list(chunks)

    def event() -> http11.Event:
        while (ev := proto.next_event()) is http11.NEED_DATA:
            proto.feed(chunks.pop(0) if chunks else b"")
        return ev

    while True:
        head = event()
        if not isinstance(head, http11.RequestHead):
            assert head in (http11.PEER_CLOSED, http11.PAUSED), head
            return out, answered
        body = b""
        while (part := event()) is not http11.END_OF_BODY:
            assert isinstance(part, http11.Body), part
            body += part.data
        exchange = plan[answered]
        assert (head.method.decode(), head.target.decode(), body) == (
            exchange.method,
            exchange.path,
            exchange.body if exchange.method == "POST" else b"",
        )
        payload = b"%s %s %s" % (head.method, head.target, body)
        if exchange.style == "streamed":
            out += proto.response_head(200, [(b"content-type", b"text/plain")])
            out += proto.response_body(payload[:3]) + proto.response_body(payload[3:]) + proto.response_end()
        else:
            headers = [(b"content-type", b"text/plain")]
            if exchange.style == "whole":
                headers.append((b"content-length", b"%d" % len(payload)))
            out += proto.response(200, headers, payload)
        answered += 1
        if not proto.keep_alive:
            return out, answered
        proto.start_next_cycle()


@PROTOCOLS
@settings(max_examples=150, deadline=None)
@given(plan=exchanges, cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=8))
def test_pipelined_requests_cut_anywhere_get_well_formed_responses(
    protocol: type[HTTP11Protocol], plan: list[Exchange], cuts: list[int]
) -> None:
    stream = b"".join(request_bytes(e, i == len(plan) - 1) for i, e in enumerate(plan))
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    chunks = [stream[a:b] for a, b in itertools.pairwise(points) if b > a]

    out, answered = serve(protocol(Limits()), chunks, plan)
    assert answered == len(plan)  # every request answered, and only the last one closes

    client = h11.Connection(h11.CLIENT)
    client.receive_data(out)
    for i, exchange in enumerate(plan):
        last = i == len(plan) - 1
        client.send(
            h11.Request(method=exchange.method, target=exchange.path,
                        headers=[("Host", "t")] + ([("Connection", "close")] if last else []))
        )  # fmt: skip
        client.send(h11.EndOfMessage())
        response = client.next_event()
        assert isinstance(response, h11.Response) and response.status_code == 200
        headers = dict(response.headers)
        assert b"date" in headers and headers[b"server"] == b"pounce"
        assert (headers.get(b"connection") == b"close") == last
        body = b""
        while isinstance(ev := client.next_event(), h11.Data):
            body += ev.data
        assert isinstance(ev, h11.EndOfMessage)
        sent = exchange.body if exchange.method == "POST" else b""
        expected = (
            b""
            if exchange.method == "HEAD"
            else b"%s %s %s" % (exchange.method.encode(), exchange.path.encode(), sent)
        )
        assert body == expected
        if exchange.style != "streamed" and exchange.method != "HEAD":
            assert headers[b"content-length"] == b"%d" % len(expected)  # a whole body is never chunked
        if not last:
            client.start_next_cycle()
    assert client.next_event() is h11.NEED_DATA  # nothing after the last response


@PROTOCOLS
def test_a_mismatched_length_is_left_to_h11_which_refuses_it(protocol: type[HTTP11Protocol]) -> None:
    """Also when the same fields were just answered with a body of that length (their block of
    lines is remembered, its Content-Length checked again)."""
    fields = [(b"content-type", b"text/plain"), (b"content-length", b"9")]
    proto = protocol(Limits())
    proto.feed(b"GET / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
    assert isinstance(proto.next_event(), http11.RequestHead)
    answered = proto.response(200, fields, b"nine byte")
    assert b"\r\ncontent-length: 9\r\n" in answered and answered.endswith(b"\r\n\r\nnine byte")
    proto.start_next_cycle()
    assert isinstance(proto.next_event(), http11.RequestHead)
    try:
        proto.response(200, list(fields), b"short")
    except h11.LocalProtocolError as exc:
        assert "Content-Length" in str(exc)
    else:
        raise AssertionError("a body shorter than its Content-Length was sent")


def test_a_crlf_before_a_request_line_is_ignored_wherever_the_bytes_are_cut() -> None:
    stream = (
        b"POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n"
    )
    for cut in range(len(stream) + 1):
        for streamed in (False, True):  # after a streamed response h11 keeps its parser
            proto = HTTP11Protocol(Limits())
            chunks = [part for part in (stream[:cut], stream[cut:]) if part]
            targets = []
            while len(targets) < 2:
                event = proto.next_event()
                if event is http11.NEED_DATA:
                    proto.feed(chunks.pop(0))
                elif isinstance(event, http11.RequestHead):
                    targets.append(event.target)
                elif event is http11.END_OF_BODY:
                    if streamed:
                        proto.response_head(200, [])
                        proto.response_end()
                    else:
                        proto.response(200, [], b"")
                    proto.start_next_cycle()
                else:
                    assert isinstance(event, http11.Body), (cut, event)
            assert targets == [b"/a", b"/b"], cut


def test_a_second_empty_line_or_a_bare_lf_is_refused() -> None:
    for stream in (b"\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n", b"GET / HTTP/1.1\r\nHost: t\n\n"):
        proto = HTTP11Protocol(Limits())
        proto.feed(stream)
        assert proto.next_event() == http11.Rejected(400, "malformed request")


def test_an_unfinished_chunk_line_is_refused_past_its_limit() -> None:
    for max_header_size, limit in ((64 * 1024, http11.CHUNK_LINE_LIMIT), (1024, 1024)):
        proto = HTTP11Protocol(Limits(max_header_size=max_header_size))
        proto.feed(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3;")
        assert isinstance(proto.next_event(), http11.RequestHead)
        fed = 2
        while (event := proto.next_event()) is http11.NEED_DATA:
            assert fed <= limit
            proto.feed(b"x" * 100)
            fed += 100
        assert event == http11.Rejected(400, "malformed request")
        assert fed <= limit + 100


def test_a_trailer_section_unfinished_past_max_header_size_is_431() -> None:
    proto = HTTP11Protocol(Limits(max_header_size=1024))
    proto.feed(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: ")
    assert isinstance(proto.next_event(), http11.RequestHead)
    while (event := proto.next_event()) is http11.NEED_DATA:
        proto.feed(b"x" * 100)
    assert event == http11.Rejected(431, "request header fields too large")


# Response fields as apps send them: ordinary ones, framing ones the server must judge, names in
# any case, values that repeat from one response to the next and values no field may hold.
response_fields = st.lists(
    st.tuples(
        st.sampled_from(
            [b"content-type", b"Content-Type", b"x-a", b"content-length", b"Content-Length", b"server",
             b"date", b"connection", b"transfer-encoding", b"bad name", b""]
        ),
        st.sampled_from([b"text/plain", b"0", b"5", b"close", b"chunked", b"v\r\nx: y", b" ", b"\xe9"]),
    ),
    max_size=5,
)  # fmt: skip


@PROTOCOLS
@settings(max_examples=300, deadline=None)
@given(
    fields=response_fields,
    body=st.sampled_from([b"", b"hello"]),
    close=st.booleans(),
    repeat=st.integers(min_value=1, max_value=2),
)
def test_a_whole_response_is_written_as_the_general_path_writes_it(
    protocol: type[HTTP11Protocol], fields: list[tuple[bytes, bytes]], body: bytes, close: bool, repeat: int
) -> None:
    """The whole responses written from remembered field lines (a second time from the table)
    are byte for byte what h11 and the general writer make of the same fields, and what either
    refuses is refused."""

    def answer(proto: HTTP11Protocol, general: bool) -> bytes | str:
        proto.feed(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert isinstance(proto.next_event(), http11.RequestHead)
        try:
            if not general:
                return proto.response(200, list(fields), body, close=close)
            keep_alive = not close
            out, framing = proto._headers_out(list(fields), not keep_alive)
            whole = proto._whole_response(200, out, framing, body, keep_alive)
            if whole is not None:
                return whole
            return (
                proto._send_head(200, out)
                + (proto._output().send(h11.Data(data=body)) or b"")
                + (proto._output().send(h11.EndOfMessage()) or b"")
            )
        except h11.LocalProtocolError:
            return "refused"

    def undated(answer: bytes | str) -> bytes | str:  # the second may tick between the two
        return re.sub(rb"\r\ndate: [^\r]*", b"\r\ndate: -", answer) if isinstance(answer, bytes) else answer

    for _ in range(repeat):
        expected = undated(answer(protocol(Limits()), general=True))
        assert undated(answer(protocol(Limits()), general=False)) == expected


def test_the_date_line_follows_the_clock_also_when_it_is_set_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """The date is formatted once a second; a clock set back (by NTP, say) is not ignored
    until it catches up with the second last formatted. (The clock is faked: a test cannot
    set the machine's back.)"""
    from email.utils import formatdate

    from pounce.protocols import headers

    start = 1_800_000_000.25
    now = start
    monkeypatch.setattr(headers, "time", lambda: now)
    for now in (start, start + 0.5, start + 1, start - 3600, start - 3599.5):  # (the fake reads `now`)
        expected = formatdate(int(now), usegmt=True).encode()
        assert headers.date_line() == b"date: %s\r\n" % expected
        assert headers.date_header() == expected
