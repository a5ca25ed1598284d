"""Trusted proxies: X-Forwarded-For / X-Forwarded-Proto resolution, unit and over real sockets."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from chirp import App, AppConfig
from helpers.asgi_apps import lifespan_ok
from helpers.server import serve
from pounce.config import ServerConfig
from pounce.proxy import ProxyTrust, parse_ip, proxy_trust

PEER = ("10.0.0.1", 5555)


def resolve(trust: ProxyTrust, *headers: tuple[str, str], peer: Any = PEER, scheme: str = "http") -> Any:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers]
    return trust.resolve(peer, raw, scheme)


def test_no_trusted_hosts_ignores_forwarded_headers() -> None:
    trust = ProxyTrust()
    assert not trust.enabled
    assert resolve(trust, ("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-Proto", "https")) == (PEER, "http")


def test_untrusted_peer_cannot_spoof() -> None:
    trust = ProxyTrust(["192.168.0.0/16"])
    assert resolve(trust, ("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-Proto", "https")) == (PEER, "http")


def test_trusted_peer_rightmost_entry_with_one_hop() -> None:
    trust = ProxyTrust(["10.0.0.0/8"])
    client, scheme = resolve(trust, ("X-Forwarded-For", "6.6.6.6, 1.2.3.4"), ("X-Forwarded-Proto", "https"))
    assert client == ("1.2.3.4", 0)  # the spoofable left entry is not used
    assert scheme == "https"


def test_hops_count_from_the_right_and_clamp() -> None:
    chain = ("X-Forwarded-For", "7.7.7.7, 1.1.1.1, 2.2.2.2")
    assert resolve(ProxyTrust(["10.0.0.1"], hops=2), chain)[0] == ("1.1.1.1", 0)
    assert resolve(ProxyTrust(["10.0.0.1"], hops=3), chain)[0] == ("7.7.7.7", 0)
    assert resolve(ProxyTrust(["10.0.0.1"], hops=9), chain)[0] == ("7.7.7.7", 0)
    protos = ("X-Forwarded-Proto", "http, https")
    assert resolve(ProxyTrust(["10.0.0.1"], hops=1), protos)[1] == "https"
    assert resolve(ProxyTrust(["10.0.0.1"], hops=2), protos)[1] == "http"


def test_repeated_headers_are_one_list() -> None:
    trust = ProxyTrust(["10.0.0.1"], hops=2)
    client, _ = resolve(trust, ("X-Forwarded-For", "3.3.3.3"), ("X-Forwarded-For", "4.4.4.4"))
    assert client == ("3.3.3.3", 0)


@pytest.mark.parametrize("entry", ["unknown", "not-an-ip", "", "1.2.3.4.5", "_hidden"])
def test_invalid_entry_keeps_the_peer(entry: str) -> None:
    trust = ProxyTrust(["10.0.0.1"])
    assert resolve(trust, ("X-Forwarded-For", entry))[0] == PEER


def test_invalid_proto_keeps_the_scheme() -> None:
    trust = ProxyTrust(["10.0.0.1"])
    assert resolve(trust, ("X-Forwarded-Proto", "gopher"))[1] == "http"
    assert resolve(trust, ("X-Forwarded-Proto", "HTTPS"))[1] == "https"


def test_ipv6_and_port_suffixed_entries() -> None:
    trust = ProxyTrust(["fd00::/8", "10.0.0.1"])
    assert resolve(trust, ("X-Forwarded-For", "[2001:db8::7]:4711"), peer=("fd00::1", 1))[0] == (
        "2001:db8::7",
        0,
    )
    assert resolve(trust, ("X-Forwarded-For", "203.0.113.9:8080"))[0] == ("203.0.113.9", 0)
    assert resolve(trust, ("X-Forwarded-For", "2001:db8::8"))[0] == ("2001:db8::8", 0)
    # an IPv4 peer seen through a dual-stack socket still matches an IPv4 network
    assert ProxyTrust(["10.0.0.0/8"]).is_trusted("::ffff:10.0.0.9")
    assert parse_ip("[::1]") is not None and parse_ip("[::1") is None


def test_wildcard_trusts_every_peer() -> None:
    trust = ProxyTrust(["*"])
    assert resolve(trust, ("X-Forwarded-For", "1.2.3.4"), peer=("8.8.8.8", 1))[0] == ("1.2.3.4", 0)


def test_parsed_once_per_configuration() -> None:
    assert proxy_trust(("10.0.0.0/8",), 1) is proxy_trust(("10.0.0.0/8",), 1)
    with pytest.raises(ValueError):
        ProxyTrust(["10.0.0.0/8"], hops=0)
    with pytest.raises(ValueError):
        ServerConfig(trusted_hosts=("proxy.internal",))


async def scope_echo(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan_ok(receive, send)
        return
    body = json.dumps({"client": scope["client"], "scheme": scope["scheme"]}).encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


SPOOF = {"x-forwarded-for": "6.6.6.6", "x-forwarded-proto": "https"}


def test_real_server_ignores_spoofed_headers_from_an_untrusted_peer() -> None:
    for settings in ({}, {"trusted_hosts": ("10.0.0.0/8",)}):
        with serve(scope_echo, **settings) as srv, httpx.Client(base_url=srv.url) as client:
            seen = client.get("/", headers=SPOOF).json()
        assert seen["client"][0] == "127.0.0.1"
        assert seen["scheme"] == "http"


def test_real_server_honours_a_trusted_proxy(capfd: pytest.CaptureFixture[str]) -> None:
    settings = {"trusted_hosts": ("127.0.0.0/8",), "forwarded_for_trusted_hops": 1, "access_log": True}
    with serve(scope_echo, **settings) as srv, httpx.Client(base_url=srv.url) as client:
        seen = client.get(
            "/", headers={"x-forwarded-for": "6.6.6.6, 203.0.113.5", "x-forwarded-proto": "https"}
        ).json()
    assert seen == {"client": ["203.0.113.5", 0], "scheme": "https"}
    access = [line for line in capfd.readouterr().err.splitlines() if '"GET / HTTP/1.1" 200' in line]
    assert access, "no access log line"
    assert access[-1].split()[1] == "127.0.0.1"  # the raw peer, by design
    assert "203.0.113.5" not in access[-1]


def test_chirp_request_client_is_the_resolved_client() -> None:
    config = AppConfig(trusted_proxies=("127.0.0.1",), forwarded_for_trusted_hops=2)
    app = App(config)

    @app.route("/")
    def index(request: Any) -> dict[str, Any]:
        return {"client": request.client, "secure": request.is_secure}

    # AppConfig.trusted_proxies maps one-to-one onto ServerConfig.trusted_hosts
    settings = {
        "trusted_hosts": config.trusted_proxies,
        "forwarded_for_trusted_hops": config.forwarded_for_trusted_hops,
    }
    with serve(app, **settings) as srv, httpx.Client(base_url=srv.url) as client:
        proxied = client.get("/", headers={"x-forwarded-for": "9.9.9.9, 198.51.100.4, 10.0.0.2"}).json()
        direct = client.get("/").json()
    assert proxied == {"client": "198.51.100.4", "secure": False}
    assert direct == {"client": "127.0.0.1", "secure": False}
