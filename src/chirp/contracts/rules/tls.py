"""`tls.*`: certificate and key files the server can load, in date, for the right names, served
with a profile that holds, and client certificates that can be verified."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from chirp.contracts.model import Finding, Severity, everywhere, levels, rule
from chirp.contracts.snapshot import Snapshot

E, W = Severity.ERROR, Severity.WARNING


def _problems(snap: Snapshot, kind: str) -> Iterator[Finding]:
    """The findings of `pounce.tls.diagnose` that belong to the rule `tls.<kind>`: the same
    judgement `pounce serve` refuses to start on (its fatal problems)."""
    settings, where = snap.tls_config()
    if settings is None or not (settings.ssl_certfile or settings.ssl_keyfile):
        return
    from pounce.tls import diagnose  # loads ssl: only for an app that serves TLS

    for problem in diagnose(settings):
        if problem.rule == kind:
            yield Finding(problem.message, where, problem.setting, severity=None if problem.fatal else W)


@rule(
    "tls.files",
    title="TLS certificate or key unusable",
    severity=everywhere(E),
    hint="Point ssl_certfile/ssl_keyfile at a readable PEM certificate chain and its matching, unexpired key.",
    tags=("app", "server"),
)
def files(snap: Snapshot) -> Iterator[Finding]:
    """A bad certificate stops the server from starting (`pounce serve` refuses on the same
    judgement), or browsers from connecting to it. Every certificate of the chain counts: an
    expired intermediate breaks verification as surely as an expired leaf."""
    yield from _problems(snap, "files")


@rule(
    "tls.client_auth",
    title="Client certificates cannot be verified",
    severity=everywhere(E),
    hint="Set ssl_ca_certs to the PEM file of the CA that issues your clients' certificates, with ssl_cert_reqs=required.",
    tags=("app", "server"),
)
def client_auth(snap: Snapshot) -> Iterator[Finding]:
    """Mutual TLS asks each client for a certificate and verifies it against `ssl_ca_certs`:
    without that file no client can be verified (`pounce serve` refuses to start), and a CA
    file with `ssl_cert_reqs=none` suggests a mutual TLS that is not enforced."""
    yield from _problems(snap, "client_auth")


@rule(
    "tls.profile",
    title="TLS below the chosen profile",
    severity=levels(W, W, E),
    hint="Remove ssl_ciphers (the profile's suites are the safe default) and use a P-256/P-384 ECDSA or 2048-bit+ RSA certificate the profile accepts.",
    tags=("app", "server"),
)
def profile(snap: Snapshot) -> Iterator[Finding]:
    """The profile (`tls_profile`, Mozilla's intermediate or modern) is what clients may expect:
    an `ssl_ciphers` override that admits CBC, static-RSA or other suites outside it weakens
    every connection, and one on HTTP/2's blocklist turns HTTP/2 off; a certificate key the
    profile does not list (RSA under modern, P-521) fails clients it targets."""
    settings, where = snap.tls_config()
    if settings is None or not settings.ssl_certfile:
        return
    from pounce.tls import PROFILES, below_profile, cipher_context, h2_blocklisted, key_kind, load_pair

    chosen = PROFILES[settings.tls_profile]
    if settings.ssl_ciphers:
        extra = below_profile(settings)
        if extra:
            yield Finding(
                f"ssl_ciphers admits {', '.join(extra)}, outside the {chosen.name} profile",
                where,
                "ssl_ciphers",
            )
        blocked = h2_blocklisted(cipher_context(settings))
        if blocked:
            yield Finding(
                f"ssl_ciphers admits {', '.join(blocked)}, on HTTP/2's blocklist (RFC 9113 §9.2.2): "
                "HTTP/2 is not offered",
                where,
                "ssl_ciphers",
            )
    cert, _, _ = load_pair(settings.ssl_certfile, settings.ssl_keyfile, settings.ssl_keyfile_password)
    if cert is not None:
        kind = key_kind(cert.public_key())
        if kind not in chosen.certificate_keys:
            yield Finding(
                f"the certificate's {kind} key is not one the {chosen.name} profile accepts "
                f"({', '.join(chosen.certificate_keys)})",
                where,
                "ssl_certfile",
            )


@rule(
    "tls.hostname",
    title="Certificate does not cover the host names",
    severity=levels(W, W, E),
    hint="Issue the certificate with a subjectAltName for every name in allowed_hosts (and the bind host name).",
    tags=("app", "server"),
)
def hostname(snap: Snapshot) -> Iterator[Finding]:
    """A browser refuses a certificate whose subjectAltName does not name the host it asked
    for (the subject's CN no longer counts). The names are the app's `allowed_hosts` and a
    bind `host` given as a name."""
    settings, where = snap.tls_config()
    if settings is None or not settings.ssl_certfile:
        return
    from pounce.tls import load_pair, uncovered_hosts

    hosts = list(snap.config.allowed_hosts) if snap.config is not None else []
    bind = snap.server.host if snap.server is not None else None
    if bind and bind != "localhost" and not _is_address(bind):
        hosts.append(bind)
    if not hosts:
        return
    cert, _, _ = load_pair(settings.ssl_certfile, settings.ssl_keyfile, settings.ssl_keyfile_password)
    if cert is None:
        return
    missing = uncovered_hosts(cert, hosts)
    if missing:
        yield Finding(
            f"the certificate in {settings.ssl_certfile!r} does not cover {', '.join(missing)}",
            where,
            "ssl_certfile",
        )


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@rule(
    "tls.weak_key",
    title="Weak TLS key or signature",
    severity=levels(W, W, E),
    hint="Issue a new certificate with an RSA key of 2048+ bits or an EC P-256+ key, signed with SHA-256 or better.",
    tags=("app", "server"),
)
def weak_key(snap: Snapshot) -> Iterator[Finding]:
    """Short keys and SHA-1/MD5 signatures can be broken or are rejected by current browsers."""
    settings, where = snap.tls_config()
    if settings is None or not settings.ssl_certfile or not settings.ssl_keyfile:
        return
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

    from pounce.tls import load_pair

    cert, _, _ = load_pair(settings.ssl_certfile, settings.ssl_keyfile, settings.ssl_keyfile_password)
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


RULES = (files, client_auth, profile, hostname, weak_key)
