"""`tls.*`: certificate and key files the server can load, that belong together and are in date."""

from __future__ import annotations

from collections.abc import Iterator

from chirp.contracts.model import Finding, Severity, everywhere, levels, rule
from chirp.contracts.snapshot import Snapshot

E, W = Severity.ERROR, Severity.WARNING


@rule(
    "tls.files",
    title="TLS certificate or key unusable",
    severity=everywhere(E),
    hint="Point ssl_certfile/ssl_keyfile at a readable PEM certificate chain and its matching, unexpired key.",
    tags=("app", "server"),
)
def files(snap: Snapshot) -> Iterator[Finding]:
    """A bad certificate stops the server from starting (`pounce serve` refuses on the same
    judgement), or browsers from connecting to it."""
    from pounce.tls import diagnose

    certfile, keyfile, where = snap.tls_setting()
    if not certfile and not keyfile:
        return
    for problem in diagnose(certfile, keyfile):
        yield Finding(problem.message, where, problem.setting, severity=None if problem.fatal else W)


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

    from pounce.tls import load_pair

    cert, _, _ = load_pair(certfile, keyfile)
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
