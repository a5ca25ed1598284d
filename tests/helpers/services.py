"""Real Redis and PostgreSQL for tests: reachability gates, restarts that always undo themselves.

With CHIRP_CI=1 an unreachable service fails the test; otherwise the test is skipped
with the reason shown in the summary.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REDIS_URL = os.environ.get("CHIRP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("CHIRP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_PORT = 6379
POSTGRES_PORT = 5432


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def require(service: str, port: int) -> None:
    if _reachable(port):
        return
    message = f"{service} is not reachable on 127.0.0.1:{port}"
    if os.environ.get("CHIRP_CI") == "1":
        pytest.fail(f"{message} (CHIRP_CI=1 requires it)")
    pytest.skip(f"{message}; start it or set CHIRP_CI=1 to make this a failure")


def wait_for(predicate, timeout: float = 30, interval: float = 0.1) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not reached within {timeout}s")


def _redis_ping() -> bool:
    result = subprocess.run(
        ["redis-cli", "-p", str(REDIS_PORT), "ping"], capture_output=True, text=True, timeout=5
    )
    return result.stdout.strip() == "PONG"


def stop_redis() -> None:
    subprocess.run(
        ["redis-cli", "-p", str(REDIS_PORT), "shutdown", "nosave"], capture_output=True, timeout=10
    )
    wait_for(lambda: not _reachable(REDIS_PORT), timeout=10)


def start_redis() -> None:
    if _reachable(REDIS_PORT) and _redis_ping():
        return
    subprocess.run(
        ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", str(REDIS_PORT),
         "--save", "", "--appendonly", "no"],
        check=True, capture_output=True, timeout=10,
    )  # fmt: skip
    wait_for(_redis_ping, timeout=15)


@contextlib.contextmanager
def redis_restarts() -> Iterator[None]:
    """Allow a test to stop Redis; it runs again afterwards, whatever happened."""
    try:
        yield
    finally:
        start_redis()


def _pg_cluster() -> tuple[str, str]:
    versions = sorted(os.listdir("/etc/postgresql"))
    return versions[-1], "main"


def _pg_ctl(action: str) -> None:
    version, cluster = _pg_cluster()
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, action],
                   check=True, capture_output=True, timeout=60)  # fmt: skip


def stop_postgres() -> None:
    _pg_ctl("stop")
    wait_for(lambda: not _reachable(POSTGRES_PORT), timeout=30)


def start_postgres() -> None:
    if not _reachable(POSTGRES_PORT):
        _pg_ctl("start")
    wait_for(lambda: _reachable(POSTGRES_PORT), timeout=30)


@contextlib.contextmanager
def postgres_restarts() -> Iterator[None]:
    """Allow a test to stop PostgreSQL; it runs again afterwards, whatever happened."""
    if not Path("/etc/postgresql").is_dir():
        pytest.skip("PostgreSQL cluster tools (pg_ctlcluster) are not available here")
    try:
        yield
    finally:
        start_postgres()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
