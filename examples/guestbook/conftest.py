"""The guestbook as production runs it, against a real PostgreSQL.

Each test run gets a schema of its own in the database at GUESTBOOK_TEST_DATABASE (default:
postgresql://postgres@127.0.0.1:5432/test), dropped when the run ends, so runs never see
each other's rows.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from urllib.parse import quote

import psycopg
import pytest

DATABASE = os.environ.get("GUESTBOOK_TEST_DATABASE", "postgresql://postgres@127.0.0.1:5432/test")
SCHEMA = f"guestbook_{secrets.token_hex(6)}"


def admin(sql: str) -> None:
    with psycopg.connect(DATABASE, autocommit=True) as connection:
        connection.execute(sql)


admin(f"CREATE SCHEMA {SCHEMA}")
# app.py reads its CHIRP_* settings when it is imported: set the production ones first.
os.environ.update(
    CHIRP_ENV="production",
    CHIRP_SECRET_KEY=os.environ.get("CHIRP_SECRET_KEY") or secrets.token_urlsafe(48),
    CHIRP_ALLOWED_HOSTS="guestbook.example.com,127.0.0.1",
    CHIRP_DATABASE_URL=f"{DATABASE}?options={quote(f'-csearch_path={SCHEMA}')}",
)

from app import app  # noqa: E402

from chirp.testing import TestClient  # noqa: E402


def pytest_sessionfinish() -> None:
    admin(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


@pytest.fixture
def client() -> Iterator[TestClient]:
    """The app in this process with its lifespan (PostgreSQL connected), as a browser on
    https://guestbook.example.com sees it."""
    with TestClient(app) as client:
        yield client
