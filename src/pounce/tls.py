"""TLS for pounce: the certificate and key checked once, and the server's SSL context.

`diagnose` is the one judgement of the files: `pounce serve` refuses to start on a fatal
problem it finds (before it listens, as one line naming the setting), and the `tls.files`
rule of `pounce check` / `chirp check` reports the same problems as findings.
"""

from __future__ import annotations

import datetime as dt
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pounce.config import ServerConfig

EXPIRY_WARNING = dt.timedelta(days=14)


@dataclass(frozen=True)
class TLSProblem:
    """One thing wrong with the TLS files; `fatal` ones stop the server from starting."""

    setting: str
    message: str
    fatal: bool = True


class TLSFileError(OSError):
    """The TLS files cannot serve: the message names the setting, the file and the fix."""


def _read(path: str, setting: str) -> tuple[bytes | None, TLSProblem | None]:
    try:
        with open(path, "rb") as fh:
            return fh.read(), None
    except FileNotFoundError:
        return None, TLSProblem(setting, f"{setting} {path!r} does not exist")
    except OSError as exc:
        return None, TLSProblem(setting, f"{setting} {path!r} cannot be read: {exc.strerror or exc}")


def load_pair(certfile: str | None, keyfile: str | None) -> tuple[Any, Any, list[TLSProblem]]:
    """(leaf certificate, private key, problems) of the files; None where one cannot be loaded."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if not certfile or not keyfile:
        missing = "ssl_keyfile" if certfile else "ssl_certfile"
        return None, None, [TLSProblem(missing, "set ssl_certfile and ssl_keyfile together")]
    problems: list[TLSProblem] = []
    cert = key = None
    cert_bytes, problem = _read(certfile, "ssl_certfile")
    problems += [problem] if problem else []
    key_bytes, problem = _read(keyfile, "ssl_keyfile")
    problems += [problem] if problem else []
    if cert_bytes is not None:
        try:
            cert = x509.load_pem_x509_certificates(cert_bytes)[0]
        except ValueError as exc:
            problems.append(
                TLSProblem("ssl_certfile", f"ssl_certfile {certfile!r} is not a PEM certificate: {exc}")
            )
    if key_bytes is not None:
        try:
            key = serialization.load_pem_private_key(key_bytes, password=None)
        except TypeError:
            problems.append(
                TLSProblem(
                    "ssl_keyfile", f"ssl_keyfile {keyfile!r} is encrypted; pounce needs an unencrypted key"
                )
            )
        except Exception as exc:
            problems.append(
                TLSProblem("ssl_keyfile", f"ssl_keyfile {keyfile!r} is not a PEM private key: {exc}")
            )
    return cert, key, problems


def _spki(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(
        public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def diagnose(certfile: str | None, keyfile: str | None, now: dt.datetime | None = None) -> list[TLSProblem]:
    """Everything wrong with the pair: unreadable, not PEM, not matching, out of date.

    A certificate that expires within `EXPIRY_WARNING` is a problem that is not fatal.
    """
    cert, key, problems = load_pair(certfile, keyfile)
    if cert is None:
        return problems
    if key is not None and _spki(cert.public_key()) != _spki(key.public_key()):
        problems.append(
            TLSProblem(
                "ssl_keyfile", f"ssl_keyfile {keyfile!r} does not match the certificate in {certfile!r}"
            )
        )
    now = now or dt.datetime.now(dt.UTC)
    not_after = cert.not_valid_after_utc
    if not_after <= now:
        problems.append(
            TLSProblem("ssl_certfile", f"the certificate in {certfile!r} expired on {not_after:%Y-%m-%d}")
        )
    elif not_after - now < EXPIRY_WARNING:
        days = (not_after - now).days
        problems.append(
            TLSProblem(
                "ssl_certfile",
                f"the certificate in {certfile!r} expires in {days} day(s), on {not_after:%Y-%m-%d}",
                fatal=False,
            )
        )
    if cert.not_valid_before_utc > now:
        problems.append(
            TLSProblem(
                "ssl_certfile",
                f"the certificate in {certfile!r} is not valid before {cert.not_valid_before_utc:%Y-%m-%d}",
            )
        )
    return problems


def check_files(config: ServerConfig) -> None:
    """Raise `TLSFileError` for the first fatal problem of the configured files (none: no TLS)."""
    if not config.ssl_certfile and not config.ssl_keyfile:
        return
    fatal = [p for p in diagnose(config.ssl_certfile, config.ssl_keyfile) if p.fatal]
    if fatal:
        raise TLSFileError(f"{fatal[0].message}; point {fatal[0].setting} at a readable PEM file that fits")


def create_ssl_context(config: ServerConfig, alpn: tuple[str, ...] = ("http/1.1",)) -> ssl.SSLContext:
    """The server side of TLS: TLS 1.2 at least, the configured pair, ALPN."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    assert config.ssl_certfile and config.ssl_keyfile
    ctx.load_cert_chain(config.ssl_certfile, config.ssl_keyfile)
    ctx.set_alpn_protocols(list(alpn))
    return ctx
