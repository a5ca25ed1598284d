"""TLS profiles, cipher overrides, mutual TLS and the ASGI `tls` extension, with real clients."""

from __future__ import annotations

import json
import logging
import socket
import ssl
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from helpers.asgi_apps import lifespan_ok
from helpers.certs import Authority, make_key
from helpers.server import serve
from pounce.config import ServerConfig
from pounce.errors import ConfigurationError
from pounce.tls import PROFILES


async def tls_echo(scope: Any, receive: Any, send: Any) -> None:
    """Answers with the scope's `tls` extension as JSON (HTTP and WebSocket)."""
    if scope["type"] == "lifespan":
        await lifespan_ok(receive, send)
        return
    tls = scope["extensions"].get("tls")
    body = json.dumps({"type": scope["type"], "http_version": scope.get("http_version"), "tls": tls})
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": body})
        await send({"type": "websocket.close"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body.encode()})


class PKI:
    """A CA with a server certificate for 127.0.0.1, and a client certificate of its own."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca = Authority()
        self.ca_file = self.ca.write(directory)
        self.cert, self.key = self.ca.issue(directory, "server")
        self.client_cert, self.client_key = self.ca.issue(directory, "client", hosts=(), client=True)

    def settings(self, **more: Any) -> dict[str, Any]:
        return {"ssl_certfile": str(self.cert), "ssl_keyfile": str(self.key), **more}

    def client(self, *, cert: bool = False, **options: Any) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        if cert:
            ctx.load_cert_chain(str(self.client_cert), str(self.client_key))
        for name, value in options.items():
            setattr(ctx, name, value)
        return ctx


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return PKI(tmp_path_factory.mktemp("pki"))


def handshake(port: int, ctx: ssl.SSLContext) -> tuple[str | None, tuple[str, str, int] | None, str | None]:
    """(version, cipher, ALPN) of a handshake that completed; raises when it was refused.

    A request is sent, so that a TLS 1.3 server's refusal of the client's certificate (which
    arrives after the client's side of the handshake is done) shows as an error here too."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        if not tls.recv(1024):
            raise ConnectionError("closed without an answer")
        return tls.version(), tls.cipher(), tls.selected_alpn_protocol()


def tls12_only(pki: PKI, ciphers: str) -> ssl.SSLContext:
    ctx = pki.client(maximum_version=ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers(ciphers)
    return ctx


def test_intermediate_by_default_refuses_cbc_and_offers_tls13(pki: PKI) -> None:
    with serve(tls_echo, **pki.settings()) as srv:
        version, _, alpn = handshake(srv.port, pki.client())
        assert version == "TLSv1.3" and alpn is None
        version, cipher, _ = handshake(srv.port, tls12_only(pki, "ECDHE+AESGCM"))
        assert version == "TLSv1.2" and cipher is not None and "GCM" in cipher[0]
        for suites in ("ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384", "ECDHE+AES+SHA"):
            with pytest.raises(ssl.SSLError):
                handshake(srv.port, tls12_only(pki, suites))


def test_modern_refuses_tls12(pki: PKI) -> None:
    with serve(tls_echo, **pki.settings(tls_profile="modern")) as srv:
        assert handshake(srv.port, pki.client())[0] == "TLSv1.3"
        with pytest.raises(ssl.SSLError):
            handshake(srv.port, tls12_only(pki, "ECDHE+AESGCM"))


@pytest.mark.parametrize("profile", ["intermediate", "modern"])
def test_only_the_profiles_groups_are_offered(pki: PKI, profile: str) -> None:
    with serve(tls_echo, **pki.settings(tls_profile=profile)) as srv:
        for group in ("secp521r1", "X448"):
            ctx = pki.client()
            ctx.set_ecdh_curve(group)
            with pytest.raises(ssl.SSLError):
                handshake(srv.port, ctx)
        ctx = pki.client()
        ctx.set_ecdh_curve(PROFILES[profile].single_group)
        assert handshake(srv.port, ctx)[0] == "TLSv1.3"


def test_h2_is_offered_over_the_profile(pki: PKI) -> None:
    with serve(tls_echo, **pki.settings()) as srv:
        ctx = tls12_only(pki, "ECDHE+AESGCM")
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with (
            socket.create_connection(("127.0.0.1", srv.port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            assert tls.selected_alpn_protocol() == "h2"


def test_a_cipher_override_on_the_h2_blocklist_turns_h2_off(
    pki: PKI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "pounce.error")
    suites = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA256"
    with serve(tls_echo, **pki.settings(ssl_ciphers=suites)) as srv:
        with httpx.Client(http2=True, verify=pki.client()) as client:
            response = client.get(f"https://127.0.0.1:{srv.port}/")
        assert response.http_version == "HTTP/1.1"
        ctx = tls12_only(pki, "ECDHE-ECDSA-AES128-SHA256")
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        _, cipher, alpn = handshake(srv.port, ctx)
        assert cipher is not None and cipher[0] == "ECDHE-ECDSA-AES128-SHA256" and alpn == "http/1.1"
    assert "HTTP/2 is not offered" in caplog.text and "ECDHE-ECDSA-AES128-SHA256" in caplog.text


@pytest.mark.parametrize(
    ("settings", "field", "fix"),
    [
        ({"ssl_ciphers": "NOTHING-LIKE-THIS"}, "ssl_ciphers", "selects no TLS 1.2 suite"),
        ({"ssl_ciphers": "TLS_AES_128_GCM_SHA256"}, "ssl_ciphers", "selects no TLS 1.2 suite"),
        ({"ssl_ciphers": "ECDHE+AESGCM", "tls_profile": "modern"}, "ssl_ciphers", "TLS 1.3 only"),
        ({"tls_profile": "old"}, "tls_profile", "use one of intermediate, modern"),
        ({"ssl_cert_reqs": "yes"}, "ssl_cert_reqs", "use one of none, optional, required"),
    ],
)
def test_invalid_tls_settings_are_refused(pki: PKI, settings: dict[str, Any], field: str, fix: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ServerConfig(**pki.settings(**settings))
    assert caught.value.field == field and fix in caught.value.fix
    assert repr(settings[field]) in str(caught.value)


@pytest.mark.parametrize("name", ["ssl_ca_certs", "ssl_ciphers", "ssl_keyfile_password", "ssl_cert_reqs"])
def test_tls_settings_without_tls_are_refused(name: str) -> None:
    value = "required" if name == "ssl_cert_reqs" else "x"
    with pytest.raises(ConfigurationError, match="it needs TLS: set ssl_certfile and ssl_keyfile") as caught:
        ServerConfig(**{name: value})
    assert caught.value.field == name


def test_mutual_tls_required_refuses_clients_without_a_certificate_from_the_ca(
    pki: PKI, tmp_path: Path
) -> None:
    stranger = Authority("another CA")
    foreign_cert, foreign_key = stranger.issue(tmp_path, "foreign", hosts=(), client=True)
    with serve(tls_echo, **pki.settings(ssl_ca_certs=str(pki.ca_file), ssl_cert_reqs="required")) as srv:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            handshake(srv.port, pki.client())
        foreign = pki.client()
        foreign.load_cert_chain(str(foreign_cert), str(foreign_key))
        with pytest.raises((ssl.SSLError, ConnectionError)):
            handshake(srv.port, foreign)
        with httpx.Client(verify=pki.client(cert=True)) as client:
            tls = client.get(f"https://127.0.0.1:{srv.port}/").json()["tls"]
    assert tls["client_cert_name"] == "CN=client" and tls["client_cert_error"] is None
    leaf = ssl.PEM_cert_to_DER_cert(tls["client_cert_chain"][0])
    assert leaf == ssl.PEM_cert_to_DER_cert(pki.client_cert.read_text())
    if sys.version_info >= (3, 13):  # the verified chain, up to the CA
        assert len(tls["client_cert_chain"]) == 2
        assert ssl.PEM_cert_to_DER_cert(tls["client_cert_chain"][1]) == ssl.PEM_cert_to_DER_cert(pki.ca_file.read_text())  # fmt: skip
    else:
        assert len(tls["client_cert_chain"]) == 1


def test_mutual_tls_optional_serves_clients_without_a_certificate(pki: PKI) -> None:
    with serve(tls_echo, **pki.settings(ssl_ca_certs=str(pki.ca_file), ssl_cert_reqs="optional")) as srv:
        with httpx.Client(verify=pki.client()) as client:
            tls = client.get(f"https://127.0.0.1:{srv.port}/").json()["tls"]
        assert tls["client_cert_chain"] == [] and tls["client_cert_name"] is None
        with httpx.Client(verify=pki.client(cert=True)) as client:
            assert (
                client.get(f"https://127.0.0.1:{srv.port}/").json()["tls"]["client_cert_name"] == "CN=client"
            )


def test_tls_extension_over_http1_http2_and_websocket(pki: PKI) -> None:
    settings = pki.settings(ssl_ca_certs=str(pki.ca_file), ssl_cert_reqs="required")
    server_cert = pki.cert.read_text()
    with serve(tls_echo, **settings) as srv:
        url = f"https://127.0.0.1:{srv.port}/"
        seen = {}
        for http2 in (False, True):
            with httpx.Client(http2=http2, verify=pki.client(cert=True)) as client:
                answer = client.get(url).json()
                seen[answer["http_version"]] = answer["tls"]
        tls12 = pki.client(cert=True, maximum_version=ssl.TLSVersion.TLSv1_2)
        tls12.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384")
        with httpx.Client(verify=tls12) as client:
            old = client.get(url).json()["tls"]

        async def over_websocket() -> Any:
            async with connect(f"wss://127.0.0.1:{srv.port}/ws", ssl=pki.client(cert=True)) as ws:
                return json.loads(await ws.recv())

        import asyncio

        answer = asyncio.run(over_websocket())
        assert answer["type"] == "websocket"
        seen["websocket"] = answer["tls"]
    assert set(seen) == {"1.1", "2", "websocket"}
    for tls in seen.values():
        assert tls["server_cert"] == server_cert
        assert tls["tls_version"] == 0x0304 and tls["cipher_suite"] in (0x1301, 0x1302, 0x1303)
        assert tls["client_cert_name"] == "CN=client"
    assert old["tls_version"] == 0x0303 and old["cipher_suite"] == 0xC02C


def test_the_extension_is_absent_without_tls() -> None:
    with serve(tls_echo) as srv:
        assert httpx.get(srv.url).json()["tls"] is None


def test_chirp_request_client_cert(pki: PKI) -> None:
    from chirp import App, AppConfig

    app = App(AppConfig(allowed_hosts=("127.0.0.1",)))

    @app.route("/who")
    def who(request: Any) -> str:
        cert = request.client_cert
        return "anonymous" if cert is None else cert.subject.rfc4514_string()

    with serve(app, **pki.settings(ssl_ca_certs=str(pki.ca_file), ssl_cert_reqs="optional")) as srv:
        url = f"https://127.0.0.1:{srv.port}/who"
        with httpx.Client(verify=pki.client(cert=True)) as client:
            assert client.get(url).text == "CN=client"
        with httpx.Client(verify=pki.client()) as client:
            assert client.get(url).text == "anonymous"


def test_an_encrypted_key_is_served_with_its_password(tmp_path: Path, pki: PKI) -> None:
    cert, key = pki.ca.issue(tmp_path, "locked", password="s3cret", key=make_key("rsa"))
    assert b"ENCRYPTED" in key.read_bytes()
    with serve(tls_echo, ssl_certfile=str(cert), ssl_keyfile=str(key), ssl_keyfile_password="s3cret") as srv:
        assert handshake(srv.port, pki.client())[0] == "TLSv1.3"


def test_appconfig_carries_the_tls_settings_to_the_server(pki: PKI, monkeypatch: pytest.MonkeyPatch) -> None:
    from chirp.config import AppConfig
    from chirp.serving import server_config

    monkeypatch.setenv("CHIRP_TLS_PROFILE", "modern")
    monkeypatch.setenv("CHIRP_SSL_CERT_REQS", "required")
    monkeypatch.setenv("CHIRP_SSL_CA_CERTS", str(pki.ca_file))
    monkeypatch.setenv("CHIRP_SSL_KEYFILE_PASSWORD", "s3cret")
    config = AppConfig.from_env(ssl_certfile=str(pki.cert), ssl_keyfile=str(pki.key))
    assert "s3cret" not in repr(config)
    served = server_config(config)
    assert (served.tls_profile, served.ssl_cert_reqs, served.ssl_ca_certs) == (
        "modern",
        "required",
        str(pki.ca_file),
    )
    assert served.ssl_keyfile_password == "s3cret"
    monkeypatch.setenv("CHIRP_TLS_PROFILE", "old")
    with pytest.raises(ConfigurationError) as caught:
        AppConfig.from_env(ssl_certfile=str(pki.cert), ssl_keyfile=str(pki.key))
    assert caught.value.field == "tls_profile" and "use one of intermediate, modern" in caught.value.fix
