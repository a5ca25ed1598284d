"""`tls.*`: certificate and key files the server can load, that belong together and are in date."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from chirp.contracts.model import Finding, Location, Severity, everywhere, levels, rule
from chirp.contracts.snapshot import Snapshot

E, W = Severity.ERROR, Severity.WARNING
EXPIRY_WARNING = dt.timedelta(days=14)


def _read(path: str, label: str, where: Location | None) -> tuple[bytes | None, Finding | None]:
    try:
        with open(path, "rb") as fh:
            return fh.read(), None
    except FileNotFoundError:
        return None, Finding(f"{label} {path!r} does not exist", where, label)
    except OSError as exc:
        return None, Finding(f"{label} {path!r} cannot be read: {exc.strerror or exc}", where, label)


def load_pair(snap: Snapshot) -> tuple[Any, Any, list[Finding]]:
    """(leaf certificate, private key, problems) for the configured files; None where unloadable."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    certfile, keyfile, where = snap.tls_setting()
    problems: list[Finding] = []
    cert = key = None
    if not certfile or not keyfile:
        problems.append(
            Finding(
                "set ssl_certfile and ssl_keyfile together",
                where,
                "ssl_keyfile" if certfile else "ssl_certfile",
            )
        )
        return None, None, problems
    cert_bytes, problem = _read(certfile, "ssl_certfile", where)
    if problem:
        problems.append(problem)
    key_bytes, problem = _read(keyfile, "ssl_keyfile", where)
    if problem:
        problems.append(problem)
    if cert_bytes is not None:
        try:
            cert = x509.load_pem_x509_certificates(cert_bytes)[0]
        except ValueError as exc:
            problems.append(
                Finding(f"ssl_certfile {certfile!r} is not a PEM certificate: {exc}", where, "ssl_certfile")
            )
    if key_bytes is not None:
        try:
            key = serialization.load_pem_private_key(key_bytes, password=None)
        except TypeError:
            problems.append(
                Finding(
                    f"ssl_keyfile {keyfile!r} is encrypted; pounce needs an unencrypted key",
                    where,
                    "ssl_keyfile",
                )
            )
        except (ValueError, Exception) as exc:
            problems.append(
                Finding(f"ssl_keyfile {keyfile!r} is not a PEM private key: {exc}", where, "ssl_keyfile")
            )
    return cert, key, problems


def _spki(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(
        public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


@rule(
    "tls.files",
    title="TLS certificate or key unusable",
    severity=everywhere(E),
    hint="Point ssl_certfile/ssl_keyfile at a readable PEM certificate chain and its matching, unexpired key.",
    tags=("app", "server"),
)
def files(snap: Snapshot) -> Iterator[Finding]:
    """A bad certificate stops the server from starting, or browsers from connecting to it."""
    certfile, keyfile, where = snap.tls_setting()
    if not certfile and not keyfile:
        return
    cert, key, problems = load_pair(snap)
    yield from problems
    if cert is None:
        return
    if key is not None and _spki(cert.public_key()) != _spki(key.public_key()):
        yield Finding(
            f"ssl_keyfile {keyfile!r} does not match the certificate in {certfile!r}", where, "ssl_keyfile"
        )
    now = dt.datetime.now(dt.UTC)
    not_after = cert.not_valid_after_utc
    if not_after <= now:
        yield Finding(
            f"the certificate in {certfile!r} expired on {not_after:%Y-%m-%d}", where, "ssl_certfile"
        )
    elif not_after - now < EXPIRY_WARNING:
        days = (not_after - now).days
        yield Finding(
            f"the certificate in {certfile!r} expires in {days} day(s), on {not_after:%Y-%m-%d}",
            where,
            "ssl_certfile",
            severity=W,
        )
    if cert.not_valid_before_utc > now:
        yield Finding(
            f"the certificate in {certfile!r} is not valid before {cert.not_valid_before_utc:%Y-%m-%d}",
            where,
            "ssl_certfile",
        )


@rule(
    "tls.weak_key",
    title="Weak TLS key or signature",
    severity=levels(W, W, E),
    hint="Issue a new certificate with an RSA key of 2048+ bits or an EC P-256+ key, signed with SHA-256 or better.",
    tags=("app", "server"),
)
def weak_key(snap: Snapshot) -> Iterator[Finding]:
    """Short keys and SHA-1/MD5 signatures can be broken or are rejected by current browsers."""
    certfile, keyfile, where = snap.tls_setting()
    if not certfile or not keyfile:
        return
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

    cert, _, _ = load_pair(snap)
    if cert is None:
        return
    public = cert.public_key()
    if isinstance(public, rsa.RSAPublicKey) and public.key_size < 2048:
        yield Finding(f"the certificate uses a {public.key_size}-bit RSA key", where, "ssl_certfile")
    elif isinstance(public, ec.EllipticCurvePublicKey) and public.curve.key_size < 256:
        yield Finding(f"the certificate uses a {public.curve.key_size}-bit EC key", where, "ssl_certfile")
    elif isinstance(public, dsa.DSAPublicKey):
        yield Finding("the certificate uses a DSA key", where, "ssl_certfile")
    algorithm = cert.signature_hash_algorithm
    if isinstance(algorithm, hashes.SHA1 | hashes.MD5):
        yield Finding(f"the certificate is signed with {algorithm.name.upper()}", where, "ssl_certfile")


RULES = (files, weak_key)
