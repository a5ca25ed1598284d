"""MDN HTTP Observatory grade of a freshly generated `chirp new` project, served by pounce over TLS.

Run (as a user that may bind ports 443 and 80):
    python benchmarks/observatory.py [--minimal] [--no-redirect] [--json OUT] [--keep]

1. writes the full scaffold (or with --minimal the one-file one) into a temporary directory,
2. makes a throwaway CA and a certificate for localhost / 127.0.0.1 signed by it,
3. serves the project with `chirp run app:app --production` on https://127.0.0.1:443
   (CHIRP_SSL_CERTFILE / CHIRP_SSL_KEYFILE, CHIRP_ALLOWED_HOSTS=localhost),
4. unless --no-redirect, serves a bare ASGI app on http://127.0.0.1:80 with a second pounce
   that answers every request with a 301 to the same path on https://,
5. runs /work/shared/tools/observatory-scan (override with $OBSERVATORY_SCAN) against
   localhost, then prints the grade, the score and each failing test with its reason.

Exits 0 when the grade is A+, 1 otherwise, 2 when the scan could not run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import os
import re
import secrets
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = Path(__file__).resolve().parent
SCANNER = os.environ.get("OBSERVATORY_SCAN", "/work/shared/tools/observatory-scan")
SERVING_ON = re.compile(r"serving on (https?)://(\S+)")


# -- certificates -------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """`(ca.pem, localhost.pem, localhost.key)`: a one-day CA and a server certificate it signed."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("observatory benchmark CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = (
        directory / "ca.pem",
        directory / "localhost.pem",
        directory / "localhost.key",
    )
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(_pem_key(key))
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


# -- the port-80 redirect -----------------------------------------------------------------


async def redirect_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Plain HTTP → the same path on https://localhost (a fixed host: never echo Host)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    target = "https://localhost" + (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    query = scope.get("query_string", b"")
    if query:
        target += "?" + query.decode("latin-1")
    body = b"moved to https\n"
    await send(
        {
            "type": "http.response.start",
            "status": 301,
            "headers": [
                (b"location", target.encode("latin-1")),
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# -- processes ----------------------------------------------------------------------------


def start(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 30) -> subprocess.Popen[str]:
    """Start a server and wait for its `serving on` line; stderr stays readable for diagnostics."""
    proc = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stderr, selectors.EVENT_READ)
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
            continue
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if SERVING_ON.search(line):
            return proc
    proc.kill()
    raise SystemExit(f"observatory: server did not start: {' '.join(command)}\n{''.join(seen)}")


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the scan -----------------------------------------------------------------------------


def report(result_path: Path) -> int:
    data = json.loads(result_path.read_text())
    if "error" in data:
        print(f"scan failed: {data['error']}")
        return 2
    scan = data["scan"]
    print(
        f"grade {scan['grade']}, score {scan['score']}, {scan['testsPassed']}/{scan['testsQuantity']} tests passed"
    )
    for name, test in sorted(data["tests"].items()):
        mark = "pass" if test["pass"] else "FAIL"
        print(f"  {mark} {name}: {test['result']} ({test.get('scoreModifier', 0):+d})")
    failing = [name for name, test in data["tests"].items() if not test["pass"]]
    if failing:
        print("failing: " + ", ".join(sorted(failing)))
    return 0 if scan["grade"] == "A+" else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-redirect", action="store_true", help="Leave port 80 closed.")
    parser.add_argument("--minimal", action="store_true", help="Scan the `--minimal` scaffold instead.")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary directory (printed).")
    parser.add_argument("--json", type=Path, help="Also write the scanner's JSON here.")
    args = parser.parse_args()

    sys.path.insert(0, str(HERE.parent / "src"))
    from chirp.cli_new import create_project

    work = Path(tempfile.mkdtemp(prefix="chirp-observatory-"))
    project = work / "observatory_site"
    create_project("observatory_site", project, minimal=args.minimal)
    ca, cert, key = make_certificates(work)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("CHIRP_")}
    app_env = dict(
        base_env,
        PYTHONUNBUFFERED="1",
        CHIRP_ENV="production",
        CHIRP_SECRET_KEY=secrets.token_urlsafe(48),
        CHIRP_ALLOWED_HOSTS="localhost",
        CHIRP_SSL_CERTFILE=str(cert),
        CHIRP_SSL_KEYFILE=str(key),
    )
    servers = []
    try:
        servers.append(
            start(
                [
                    sys.executable,
                    "-m",
                    "chirp",
                    "run",
                    "app:app",
                    "--production",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "443",
                    "--workers",
                    "1",
                    "--no-reload",
                ],
                project,
                app_env,
            )
        )
        if not args.no_redirect:
            servers.append(
                start(
                    [
                        sys.executable,
                        "-m",
                        "pounce",
                        "serve",
                        "--app",
                        "observatory:redirect_app",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        "80",
                        "--workers",
                        "1",
                        "--no-access-log",
                    ],
                    HERE,
                    dict(base_env, PYTHONUNBUFFERED="1", PYTHONPATH=str(HERE)),
                )
            )
        out = args.json or work / "observatory.json"
        scan = subprocess.run([SCANNER, str(ca), "localhost", str(out)], capture_output=True, text=True)
        if not out.exists() or not out.read_text().strip():
            print(scan.stdout + scan.stderr)
            return 2
        return report(out)
    finally:
        for proc in reversed(servers):
            stop(proc)
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
