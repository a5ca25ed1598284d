"""TLS for pounce: the settings checked once, the server's SSL context, the ASGI `tls` extension.

Every judgement here is made once and used twice: `diagnose` decides what is wrong with the
files and the client-certificate settings (`pounce serve` refuses to start on a fatal problem,
before it listens; the `tls.files` and `tls.client_auth` rules report the same problems),
`cipher_context` decides which suites a profile admits (the server's context is built on it,
the `tls.profile` rule judges it), and `h2_blocklisted` decides whether HTTP/2 may be offered.

Profiles follow Mozilla's server-side TLS configurations (version 5.7):

- `intermediate` (the default): TLS 1.2 with ECDHE and AEAD suites only, and TLS 1.3. The
  profile's DHE suites are left out: they need DH parameters pounce does not load.
- `modern`: TLS 1.3 only.

Key-exchange groups: Python's `ssl` sets exactly one group (`set_ecdh_curve`) before 3.15,
which adds `set_groups`. Where it is there, both profiles offer X25519, P-256 and P-384. Where
it is not, `intermediate` offers P-256, the one curve every client the profile targets shares
(a TLS 1.3 client that leads with an X25519 key share pays one extra round trip), and
`modern` offers X25519, which every client that profile targets supports.
"""

from __future__ import annotations

import datetime as dt
import logging
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pounce.tls_settings import TLSSettings

if TYPE_CHECKING:
    from pounce.config import ServerConfig

logger = logging.getLogger("pounce.error")

EXPIRY_WARNING = dt.timedelta(days=14)
CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}  # the wire values of the ASGI extension


@dataclass(frozen=True)
class Profile:
    """What one TLS profile admits."""

    name: str
    minimum_version: ssl.TLSVersion
    tls12_suites: tuple[str, ...]  # OpenSSL names; empty: TLS 1.3 only
    groups: str  # key-exchange groups, for `set_groups` (Python 3.15+)
    single_group: str  # the one group of a Python without `set_groups`
    certificate_keys: tuple[str, ...]  # "rsa", "P-256", "P-384"


_ECDHE_AEAD = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
)
# The DHE suites of the intermediate profile: not offered (no DH parameters), but an
# `ssl_ciphers` override that names them stays within the profile.
_DHE_AEAD = ("DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305")
PROFILES = {
    "intermediate": Profile(
        "intermediate", ssl.TLSVersion.TLSv1_2, _ECDHE_AEAD, "X25519:P-256:P-384", "prime256v1",
        ("rsa", "P-256", "P-384"),
    ),
    "modern": Profile(
        "modern", ssl.TLSVersion.TLSv1_3, (), "X25519:P-256:P-384", "X25519", ("P-256", "P-384")
    ),
}  # fmt: skip
_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


@dataclass(frozen=True)
class TLSProblem:
    """One thing wrong with the TLS settings; `fatal` ones stop the server from starting.

    `rule` names the contract rule that reports it (`tls.<rule>`); `fix` is the one-line fix.
    """

    setting: str
    message: str
    fatal: bool = True
    rule: str = "files"
    fix: str = ""


class TLSFileError(OSError):
    """The TLS settings cannot serve: the message names the setting, the file and the fix."""


def cipher_context(cfg: TLSSettings) -> ssl.SSLContext:
    """A server context with the profile's versions, suites and groups (and any `ssl_ciphers`
    override) applied, without certificates: the server's context starts from it."""
    profile = PROFILES[cfg.tls_profile]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = profile.minimum_version
    ctx.options |= ssl.OP_NO_RENEGOTIATION
    if cfg.ssl_ciphers:
        ctx.set_ciphers(cfg.ssl_ciphers)  # the operator's order counts: the server's preference
    else:
        if profile.tls12_suites:
            ctx.set_ciphers(":".join(profile.tls12_suites))
        # every suite of the profile is strong: let the client pick (ChaCha20 on phones)
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    set_groups = getattr(ctx, "set_groups", None)
    if set_groups is not None:
        set_groups(profile.groups)
    else:
        ctx.set_ecdh_curve(profile.single_group)
    return ctx


def tls12_suites(ctx: ssl.SSLContext) -> list[Any]:
    """The TLS 1.2 suites a context admits (TLS 1.3's are fixed), as `get_ciphers()` describes them."""
    if ctx.minimum_version >= ssl.TLSVersion.TLSv1_3:
        return []
    return [c for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3"]


def h2_blocklisted(ctx: ssl.SSLContext) -> list[str]:
    """The admitted suites HTTP/2 must not run over (RFC 9113 §9.2.2): every TLS 1.2 suite
    but an ephemeral (EC)DHE key exchange with an AEAD cipher."""
    return [c["name"] for c in tls12_suites(ctx) if not c["aead"] or c["kea"] not in ("kx-ecdhe", "kx-dhe")]


def within_profile(profile: str, version: str, suite: str) -> bool:
    """Whether a protocol version and suite (OpenSSL names) are ones the profile admits."""
    chosen = PROFILES[profile]
    if version == "TLSv1.3":
        return True  # its suites are fixed, and all AEAD
    if version != "TLSv1.2" or not chosen.tls12_suites:
        return False
    return suite in chosen.tls12_suites or suite in _DHE_AEAD


def below_profile(cfg: TLSSettings) -> list[str]:
    """The admitted TLS 1.2 suites the chosen profile does not list (only an override has any)."""
    ctx = cipher_context(cfg)
    return [c["name"] for c in tls12_suites(ctx) if not within_profile(cfg.tls_profile, "TLSv1.2", c["name"])]


# -- files ----------------------------------------------------------------------------------
def _read(path: str, setting: str) -> tuple[bytes | None, TLSProblem | None]:
    try:
        with open(path, "rb") as fh:
            return fh.read(), None
    except FileNotFoundError:
        return None, TLSProblem(setting, f"{setting} {path!r} does not exist")
    except OSError as exc:
        return None, TLSProblem(setting, f"{setting} {path!r} cannot be read: {exc.strerror or exc}")


def load_chain(certfile: str | None, keyfile: str | None, password: str | None = None) -> tuple[list[Any], Any, list[TLSProblem]]:  # fmt: skip
    """(certificates of the chain file, private key, problems); empty/None where one cannot be loaded."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if not certfile or not keyfile:
        missing = "ssl_keyfile" if certfile else "ssl_certfile"
        return [], None, [TLSProblem(missing, "set ssl_certfile and ssl_keyfile together")]
    problems: list[TLSProblem] = []
    chain: list[Any] = []
    key = None
    cert_bytes, problem = _read(certfile, "ssl_certfile")
    problems += [problem] if problem else []
    key_bytes, problem = _read(keyfile, "ssl_keyfile")
    problems += [problem] if problem else []
    if cert_bytes is not None:
        try:
            chain = x509.load_pem_x509_certificates(cert_bytes)
        except ValueError as exc:
            problems.append(
                TLSProblem("ssl_certfile", f"ssl_certfile {certfile!r} is not a PEM certificate: {exc}")
            )
    if key_bytes is not None:
        secret = password.encode() if password else None
        try:
            try:
                key = serialization.load_pem_private_key(key_bytes, password=secret)
            except TypeError:
                if secret is None:
                    raise
                key = serialization.load_pem_private_key(key_bytes, password=None)  # not encrypted
        except TypeError:
            problems.append(
                TLSProblem(
                    "ssl_keyfile_password",
                    f"ssl_keyfile {keyfile!r} is encrypted and no ssl_keyfile_password is set",
                    fix="set ssl_keyfile_password to the key's passphrase",
                )
            )
        except Exception as exc:
            if secret is not None and b"ENCRYPTED" in key_bytes:
                problems.append(
                    TLSProblem(
                        "ssl_keyfile_password",
                        f"ssl_keyfile_password does not decrypt ssl_keyfile {keyfile!r}",
                        fix="set ssl_keyfile_password to the key's passphrase",
                    )
                )
            else:
                problems.append(
                    TLSProblem("ssl_keyfile", f"ssl_keyfile {keyfile!r} is not a PEM private key: {exc}")
                )
    return chain, key, problems


def load_pair(certfile: str | None, keyfile: str | None, password: str | None = None) -> tuple[Any, Any, list[TLSProblem]]:  # fmt: skip
    """(leaf certificate, private key, problems) of the files; None where one cannot be loaded."""
    chain, key, problems = load_chain(certfile, keyfile, password)
    return (chain[0] if chain else None), key, problems


def _spki(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(
        public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _dates(cert: Any, what: str, now: dt.datetime) -> list[TLSProblem]:
    """The validity period of one certificate of the chain, judged at `now`."""
    problems = []
    not_after = cert.not_valid_after_utc
    if not_after <= now:
        problems.append(TLSProblem("ssl_certfile", f"{what} expired on {not_after:%Y-%m-%d}"))
    elif not_after - now < EXPIRY_WARNING:
        days = (not_after - now).days
        problems.append(
            TLSProblem(
                "ssl_certfile", f"{what} expires in {days} day(s), on {not_after:%Y-%m-%d}", fatal=False
            )
        )
    if cert.not_valid_before_utc > now:
        problems.append(
            TLSProblem("ssl_certfile", f"{what} is not valid before {cert.not_valid_before_utc:%Y-%m-%d}")
        )
    return problems


def diagnose(cfg: TLSSettings, now: dt.datetime | None = None) -> list[TLSProblem]:
    """Everything wrong with the TLS files and client-certificate settings.

    Files: unreadable, not PEM, key not matching or not decrypted, any certificate of the chain
    out of date (within `EXPIRY_WARNING` of expiry: a problem that is not fatal). Client
    certificates: asked for without a CA file to verify them (fatal), or a CA file unused.
    """
    certfile, keyfile = cfg.ssl_certfile, cfg.ssl_keyfile
    chain, key, problems = load_chain(certfile, keyfile, cfg.ssl_keyfile_password)
    now = now or dt.datetime.now(dt.UTC)
    if chain:
        if key is not None and _spki(chain[0].public_key()) != _spki(key.public_key()):
            problems.append(
                TLSProblem(
                    "ssl_keyfile", f"ssl_keyfile {keyfile!r} does not match the certificate in {certfile!r}"
                )
            )
        problems += _dates(chain[0], f"the certificate in {certfile!r}", now)
        for cert in chain[1:]:
            problems += _dates(cert, f"the chain certificate {cert.subject.rfc4514_string()!r} in {certfile!r}", now)  # fmt: skip
    return problems + _client_auth(cfg)


def _client_auth(cfg: TLSSettings) -> list[TLSProblem]:
    from cryptography import x509

    fix = "set ssl_ca_certs to the PEM file of the CA that issues your clients' certificates"
    if cfg.ssl_cert_reqs != "none" and not cfg.ssl_ca_certs:
        message = f"ssl_cert_reqs={cfg.ssl_cert_reqs} asks clients for a certificate, but no ssl_ca_certs can verify it"  # fmt: skip
        return [TLSProblem("ssl_ca_certs", message, rule="client_auth", fix=fix)]
    if not cfg.ssl_ca_certs:
        return []
    data, problem = _read(cfg.ssl_ca_certs, "ssl_ca_certs")
    if problem is not None:
        return [TLSProblem(problem.setting, problem.message, rule="client_auth", fix=fix)]
    try:
        x509.load_pem_x509_certificates(data or b"")
    except ValueError as exc:
        message = f"ssl_ca_certs {cfg.ssl_ca_certs!r} is not a PEM certificate: {exc}"
        return [TLSProblem("ssl_ca_certs", message, rule="client_auth", fix=fix)]
    if cfg.ssl_cert_reqs == "none":
        message = f"ssl_ca_certs {cfg.ssl_ca_certs!r} is set but ssl_cert_reqs=none: clients are never asked for a certificate"  # fmt: skip
        fix = "set ssl_cert_reqs to required (or optional), or remove ssl_ca_certs"
        return [TLSProblem("ssl_cert_reqs", message, fatal=False, rule="client_auth", fix=fix)]
    return []


def check_files(config: ServerConfig) -> None:
    """Raise `TLSFileError` for the first fatal problem of the TLS settings (none: no TLS)."""
    if not config.ssl_certfile and not config.ssl_keyfile:
        return
    fatal = [p for p in diagnose(config) if p.fatal]
    if fatal:
        first = fatal[0]
        raise TLSFileError(f"{first.message}; {first.fix or f'point {first.setting} at a readable PEM file that fits'}")  # fmt: skip


# -- judgements of the certificate ----------------------------------------------------------
def key_kind(public_key: Any) -> str:
    """ "rsa", "P-256", "P-384", "P-521", or the key's class name."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(public_key, rsa.RSAPublicKey):
        return "rsa"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return _CURVES.get(public_key.curve.name, public_key.curve.name)
    return type(public_key).__name__


def uncovered_hosts(cert: Any, hosts: list[str]) -> list[str]:
    """The `hosts` (names or IP addresses) the certificate's subjectAltName does not cover.

    Browsers ignore the subject's CN, so only the subjectAltName counts; a wildcard covers
    exactly one leftmost label. A pattern `.example.com` needs example.com and its subdomains.
    """
    import ipaddress

    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [n.lower() for n in san.get_values_for_type(x509.DNSName)]
        addresses = set(san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        names, addresses = [], set()

    def covered(host: str) -> bool:
        try:
            return ipaddress.ip_address(host) in addresses
        except ValueError:
            pass
        return any(_name_matches(name, host) for name in names)

    out = []
    for host in hosts:
        host = host.strip().lower().rstrip(".")
        if not host or host == "*":
            continue
        if host.startswith("."):  # chirp's allowed_hosts pattern: the domain and every subdomain
            apex = host[1:]
            if not (covered(apex) and covered(f"any.{apex}")):
                out.append(host)
        elif not covered(host):
            out.append(host)
    return out


def _name_matches(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        first, _, rest = host.partition(".")
        return bool(first) and rest == pattern[2:]
    return pattern == host


# -- the server's context -------------------------------------------------------------------
class ServerTLS:
    """The server's SSL context and what every connection's ASGI `tls` extension shares.

    One is built at startup and another on a reload (SIGUSR1/SIGHUP): a new handshake takes
    the newest, an open connection keeps the one it started with.
    """

    def __init__(self, config: ServerConfig, alpn: tuple[str, ...] = ("http/1.1",)) -> None:
        self.context = create_ssl_context(config, alpn)
        assert config.ssl_certfile is not None
        with open(config.ssl_certfile, "rb") as fh:
            from cryptography import x509
            from cryptography.hazmat.primitives import serialization

            leaf = x509.load_pem_x509_certificates(fh.read())[0]
        self.server_cert = leaf.public_bytes(serialization.Encoding.PEM).decode("ascii")
        self._suites = {c["name"]: c["id"] & 0xFFFF for c in self.context.get_ciphers()}

    def extension(self, tls: ssl.SSLObject) -> dict[str, Any]:
        """`scope["extensions"]["tls"]` of a connection, made once after its handshake.

        `client_cert_chain` is the verified chain, leaf first, on Python 3.13+ (which has
        `get_verified_chain`); before 3.13 it is the client's certificate alone. A client
        certificate that fails verification fails the handshake, so `client_cert_error` is
        always None.
        """
        chain: tuple[str, ...] = ()
        name = None
        leaf = tls.getpeercert(binary_form=True)
        if leaf:
            from cryptography import x509

            name = x509.load_der_x509_certificate(leaf).subject.rfc4514_string()
            verified = getattr(tls, "get_verified_chain", None)
            if verified is not None:
                chain = tuple(ssl.DER_cert_to_PEM_cert(der) for der in verified())  # DER, leaf first
            else:
                chain = (ssl.DER_cert_to_PEM_cert(leaf),)
        cipher = tls.cipher()
        return {
            "server_cert": self.server_cert,
            "client_cert_chain": chain,
            "client_cert_name": name,
            "client_cert_error": None,
            "tls_version": TLS_VERSIONS.get(tls.version() or ""),
            "cipher_suite": self._suites.get(cipher[0]) if cipher else None,
        }


def create_ssl_context(config: ServerConfig, alpn: tuple[str, ...] = ("http/1.1",)) -> ssl.SSLContext:
    """The server side of TLS: the profile (or the `ssl_ciphers` override), the configured pair,
    client certificates as asked, and ALPN without h2 when a suite on its blocklist is admitted."""
    ctx = cipher_context(config)
    assert config.ssl_certfile and config.ssl_keyfile
    ctx.load_cert_chain(config.ssl_certfile, config.ssl_keyfile, password=config.ssl_keyfile_password)
    if config.ssl_ca_certs:
        ctx.load_verify_locations(cafile=config.ssl_ca_certs)
    ctx.verify_mode = CERT_REQS[config.ssl_cert_reqs]
    blocked = h2_blocklisted(ctx) if "h2" in alpn else []
    if blocked:
        logger.warning(
            "HTTP/2 is not offered: ssl_ciphers admits %s, which HTTP/2 forbids (RFC 9113 §9.2.2)",
            ", ".join(blocked),
        )
        alpn = tuple(p for p in alpn if p != "h2")
    ctx.set_alpn_protocols(list(alpn))
    return ctx
