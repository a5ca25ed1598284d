"""`Database` on a real SQLite file and a real PostgreSQL server, and its readiness check."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest

from chirp import App, AppConfig, ConfigurationError
from chirp.db import Database, DatabaseNotConnected
from helpers.asgi_apps import plain_asgi
from helpers.server import serve
from helpers.services import (
    POSTGRES_PORT,
    POSTGRES_URL,
    free_port,
    postgres_restarts,
    require,
    start_postgres,
    stop_postgres,
    wait_for,
)

# -- configuration errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "fix"),
    [
        ("", "use sqlite:///"),
        ("mysql://u@h/db", "use sqlite:///"),
        ("app.db", "use sqlite:///"),
        ("sqlite://relative.db", "write sqlite:///relative/app.db"),
        ("postgresql:///only-a-db", "name the server"),
    ],
)
def test_bad_urls_name_field_value_and_fix(url: str, fix: str) -> None:
    with pytest.raises(ConfigurationError, match=r"Database.url") as info:
        Database(url)
    assert fix in str(info.value) and info.value.field == "Database.url"


def test_config_url_errors_name_database_url_and_hide_the_password() -> None:
    with pytest.raises(ConfigurationError, match=r"database_url='mysql://u:\*\*\*@h/db'") as info:
        App(AppConfig(database_url="mysql://u:hunter2@h/db"))
    assert "hunter2" not in str(info.value)


def test_other_argument_errors() -> None:
    with pytest.raises(ConfigurationError, match=r"Database.min_size"):
        Database("sqlite:///:memory:", min_size=5, max_size=2)
    with pytest.raises(ConfigurationError, match=r"Database.probe_timeout"):
        Database("sqlite:///:memory:", probe_timeout=0)
    with pytest.raises(TypeError, match=r"chirp.db.Database"):
        App(database="sqlite:///x.db")  # type: ignore[arg-type]


async def test_missing_directory_is_a_configuration_error(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/missing/app.db")
    with pytest.raises(ConfigurationError, match=r"does not exist; create it first"):
        await db.connect()


async def test_queries_need_a_connection(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/app.db")
    with pytest.raises(DatabaseNotConnected, match=r"not connected"):
        await db.fetch("SELECT 1")
    with pytest.raises(DatabaseNotConnected):
        await db.probe()
    with pytest.raises(DatabaseNotConnected):
        async with db.transaction():
            pass


# -- the same behaviour on both backends ------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path}/app.db")
        table = "items"
    else:
        require("PostgreSQL", POSTGRES_PORT)
        database = Database(POSTGRES_URL, max_size=3)
        table = f"items_{uuid.uuid4().hex[:8]}"
    async with database:
        await database.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        database.table = table  # type: ignore[attr-defined]
        try:
            yield database
        finally:
            if database.backend == "postgresql":
                await database.execute(f"DROP TABLE {table}")


def q(db: Database, sql: str) -> str:
    """The per-test table name; the SQL itself is the same on both backends."""
    return sql.replace("items", db.table)  # type: ignore[attr-defined]


async def test_fetch_fetch_one_execute(db: Database) -> None:
    assert await db.execute(q(db, "INSERT INTO items (id, name) VALUES (?, ?)"), (1, "one")) == 1
    assert await db.execute(q(db, "INSERT INTO items (id, name) VALUES (?, ?)"), (2, "two")) == 1
    assert await db.fetch(q(db, "SELECT id, name FROM items ORDER BY id")) == [
        {"id": 1, "name": "one"},
        {"id": 2, "name": "two"},
    ]
    assert await db.fetch_one(q(db, "SELECT name FROM items WHERE id = ?"), (2,)) == {"name": "two"}
    assert await db.fetch_one(q(db, "SELECT name FROM items WHERE id = ?"), (99,)) is None
    assert await db.execute(q(db, "UPDATE items SET name = ? WHERE id > ?"), ("x", 0)) == 2
    assert await db.fetch(q(db, "UPDATE items SET name = 'y' WHERE id = 1")) == []
    await db.probe()


async def test_sql_errors_surface(db: Database) -> None:
    with pytest.raises(Exception, match=r"(?i)no such table|does not exist"):
        await db.fetch("SELECT * FROM no_such_table")
    await db.probe()  # the database stays usable
    assert await db.fetch_one(q(db, "SELECT COUNT(*) AS n FROM items")) == {"n": 0}


async def test_transaction_commits_and_rolls_back(db: Database) -> None:
    async with db.transaction() as tx:
        await tx.execute(q(db, "INSERT INTO items (id, name) VALUES (?, ?)"), (1, "kept"))
        assert await tx.fetch_one(q(db, "SELECT name FROM items WHERE id = ?"), (1,)) == {"name": "kept"}
    with pytest.raises(RuntimeError, match=r"has ended"):
        await tx.fetch("SELECT 1")
    with pytest.raises(ZeroDivisionError):
        async with db.transaction() as tx:
            await tx.execute(q(db, "INSERT INTO items (id, name) VALUES (?, ?)"), (2, "lost"))
            await db.execute(q(db, "INSERT INTO items (id, name) VALUES (?, ?)"), (3, "lost too"))  # same tx
            1 / 0  # noqa: B018
    assert await db.fetch(q(db, "SELECT id FROM items ORDER BY id")) == [{"id": 1}]


async def test_nested_transaction_is_a_savepoint(db: Database) -> None:
    async with db.transaction():
        await db.execute(q(db, "INSERT INTO items (id, name) VALUES (?, ?)"), (1, "outer"))
        with pytest.raises(ValueError, match=r"inner failed"):
            async with db.transaction() as inner:
                await inner.execute(q(db, "INSERT INTO items (id, name) VALUES (?, ?)"), (2, "inner"))
                raise ValueError("inner failed")
        async with db.transaction():
            await db.execute(q(db, "INSERT INTO items (id, name) VALUES (?, ?)"), (3, "inner ok"))
    assert [r["id"] for r in await db.fetch(q(db, "SELECT id FROM items ORDER BY id"))] == [1, 3]


async def test_cancelled_transaction_rolls_back(db: Database) -> None:
    with anyio.move_on_after(0.2):
        async with db.transaction():
            await db.execute(q(db, "INSERT INTO items (id, name) VALUES (?, ?)"), (1, "cancelled"))
            await anyio.sleep(5)
    assert await db.fetch(q(db, "SELECT id FROM items")) == []
    assert await db.execute(q(db, "INSERT INTO items (id, name) VALUES (?, ?)"), (1, "after")) == 1


async def test_concurrent_transactions_do_not_interleave(db: Database) -> None:
    await db.execute(q(db, "INSERT INTO items (id, name) VALUES (?, ?)"), (1, "0"))

    async def increment() -> None:
        async with db.transaction() as tx:
            row = await tx.fetch_one(
                q(db, "SELECT name FROM items WHERE id = ?")
                + (" FOR UPDATE" if db.backend == "postgresql" else ""),
                (1,),
            )
            assert row is not None
            await anyio.sleep(0)
            await tx.execute(q(db, "UPDATE items SET name = ? WHERE id = ?"), (str(int(row["name"]) + 1), 1))

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(increment)
    assert await db.fetch_one(q(db, "SELECT name FROM items WHERE id = ?"), (1,)) == {"name": "20"}


async def test_probe_uses_a_fresh_connection_not_the_transactions(db: Database) -> None:
    async with db.transaction():
        await db.execute(q(db, "INSERT INTO items (id, name) VALUES (?, ?)"), (1, "pending"))
        await db.probe()  # while the transaction holds its connection (and SQLite's write lock)
        assert await db.fetch(q(db, "SELECT name FROM items")) == [{"name": "pending"}]
    assert await db.fetch(q(db, "SELECT name FROM items")) == [{"name": "pending"}]  # committed, undisturbed


# -- SQLite specifics -------------------------------------------------------------------------


async def test_sqlite_file_is_shared_and_probe_notices_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    async with Database(f"sqlite:///{path}") as a, Database(f"sqlite:///{path}") as b:
        await a.execute("CREATE TABLE t (v TEXT)")
        async with a.transaction():
            await a.execute("INSERT INTO t VALUES ('x')")
            assert await b.fetch("SELECT v FROM t") == []  # not committed yet
        assert await b.fetch("SELECT v FROM t") == [{"v": "x"}]
        for leftover in tmp_path.glob("shared.db*"):
            os.remove(leftover)
        with pytest.raises(Exception, match=r"unable to open database file"):
            await a.probe()


async def test_one_placeholder_style_on_both_backends(db: Database) -> None:
    await db.execute(q(db, "INSERT INTO items (id, name) VALUES (:id, :name)"), {"id": 7, "name": "50% off?"})
    await db.execute(q(db, "INSERT INTO items (id, name) VALUES (?, ?)"), (8, "a:b"))
    rows = await db.fetch(
        q(db, "SELECT id, name, '?:x 100%' AS lit FROM items -- a ? in a comment\n"
              "WHERE name LIKE '%off%' OR name = :other /* :not_a_param */ ORDER BY id"),
        {"other": "a:b"},
    )  # fmt: skip
    assert rows == [
        {"id": 7, "name": "50% off?", "lit": "?:x 100%"},
        {"id": 8, "name": "a:b", "lit": "?:x 100%"},
    ]
    like = await db.fetch_one(
        q(db, "SELECT count(*) AS n FROM items WHERE name LIKE '%' || ? || '%'"), ("off",)
    )
    assert like == {"n": 1}
    if db.backend == "postgresql":  # casts and dollar-quoted bodies keep their colons and ?s
        row = await db.fetch_one("SELECT :v::int + 1 AS n, $$what? :no$$ AS body", {"v": "41"})
        assert row == {"n": 42, "body": "what? :no"}
    with pytest.raises(ValueError, match="mixes \\? and :name"):
        await db.fetch(q(db, "SELECT * FROM items WHERE id = ? AND name = :name"), (1,))


async def test_sqlite_memory_and_named_parameters() -> None:
    async with Database("sqlite:///:memory:") as db:
        await db.execute("CREATE TABLE t (k TEXT, v INTEGER)")
        await db.execute("INSERT INTO t VALUES (:k, :v)", {"k": "a", "v": 1})
        assert await db.fetch_one("SELECT v FROM t WHERE k = :k", {"k": "a"}) == {"v": 1}
        await db.probe()
    assert not db.connected


# -- wired into an app ------------------------------------------------------------------------


def test_app_connects_before_startup_hooks_serves_queries_and_reports_readiness(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    app = App(AppConfig(database_url=f"sqlite:///{path}"))
    seen: list[bool] = []

    @app.on_startup
    async def migrate() -> None:
        assert app.database is not None
        seen.append(app.database.connected)
        await app.database.execute("CREATE TABLE IF NOT EXISTS notes (body TEXT)")

    @app.route("/notes", methods=["GET", "POST"])
    async def notes(request) -> object:  # type: ignore[no-untyped-def]
        assert app.database is not None
        if request.method == "POST":
            await app.database.execute("INSERT INTO notes VALUES (?)", (await request.text(),))
        return await app.database.fetch("SELECT body FROM notes")

    app.suppress("security_stack.headers_missing", reason="test app without the secure stack")
    with serve(app) as srv, httpx.Client(base_url=srv.url) as c:
        assert seen == [True]
        assert [hc.name for hc in app.health_checks] == ["database"]
        assert c.post("/notes", content="hi").json() == [{"body": "hi"}]
        assert (c.get("/ready").status_code, c.get("/ready").text) == (200, "ready\n")
        for leftover in tmp_path.glob("app.db*"):
            os.remove(leftover)
        r = c.get("/ready")
        assert r.status_code == 503 and r.text.startswith("database: OperationalError: unable to open")
    assert app.database is not None and not app.database.connected  # closed on shutdown


def test_ready_is_503_until_the_database_connects(tmp_path: Path) -> None:
    app = App(database=Database(f"sqlite:///{tmp_path}/x.db"))
    with serve(plain_asgi(app), lifespan="off") as srv:
        r = httpx.get(srv.url + "/ready")
        assert (r.status_code, r.text) == (503, "starting\n")


def test_unreachable_postgres_fails_startup_with_a_clear_message() -> None:
    port = free_port()
    app = App(database=Database(f"postgresql://postgres:pw@127.0.0.1:{port}/test", connect_timeout=1))
    with (
        pytest.raises(
            Exception,
            match=rf"could not connect to PostgreSQL at postgresql://postgres:\*\*\*@127.0.0.1:{port}/test",
        ),
        serve(app),
    ):
        pass


def test_ready_follows_postgres_going_down_and_coming_back() -> None:
    require("PostgreSQL", POSTGRES_PORT)
    app = App(database=Database(POSTGRES_URL, probe_timeout=2))
    with postgres_restarts(), serve(app) as srv, httpx.Client(base_url=srv.url, timeout=15) as c:
        assert c.get("/ready").status_code == 200
        stop_postgres()
        r = c.get("/ready")
        assert r.status_code == 503 and r.text.startswith("database: "), r.text
        assert c.get("/health").status_code == 200  # liveness is not readiness
        start_postgres()
        wait_for(lambda: c.get("/ready").status_code == 200, timeout=45, interval=0.5)
        assert c.get("/ready").text == "ready\n"
