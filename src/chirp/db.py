"""`Database`: a small async SQL API over SQLite (embedded default) and PostgreSQL.

    db = Database("sqlite:///app.db")            # stdlib sqlite3, run in a dedicated thread
    db = Database("postgresql://app@db/app")     # psycopg 3 AsyncConnectionPool
    app = App(config, database=db)               # or AppConfig(database_url=...)

    rows = await db.fetch("SELECT id, name FROM users WHERE team = ?", (team,))
    async with db.transaction():
        await db.execute("UPDATE accounts SET balance = balance - ? WHERE id = ?", (10, a))
        await db.execute("UPDATE accounts SET balance = balance + ? WHERE id = ?", (10, b))

Parameters are written the same way on both backends: `?` with a sequence, or `:name` with
a mapping (for PostgreSQL they are rewritten to its driver's style; see `chirp.sql_params`).
Rows are plain dicts. Inside `transaction()` every call made
by the same task (through the transaction object or the database) runs on the
transaction's connection; a nested `transaction()` is a savepoint. The block commits
when it ends and rolls back when it raises (or is cancelled).

Wired into an app, the database connects during lifespan startup (`/ready` answers 503
until it has), closes on shutdown, and `/ready` includes a `database` check running
`SELECT 1` on a fresh connection — never one a request is using.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio

from chirp.errors import ConfigurationError
from chirp.sql_params import to_pyformat

Params = Sequence[Any] | Mapping[str, Any]
Row = dict[str, Any]
T = TypeVar("T")

URL_FIX = "use sqlite:///path/to/app.db (embedded SQLite) or postgresql://user:password@host:5432/dbname"
_SAVEPOINTS = itertools.count(1)


class DatabaseNotConnected(RuntimeError):
    """A query ran before `connect()` (apps connect during lifespan startup) or after `close()`."""


def mask_url(url: str) -> str:
    """`url` with its password hidden, for messages and logs."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:
        return "<unparseable URL>"
    host = parts.netloc.rsplit("@", 1)[-1]
    return parts._replace(netloc=f"{parts.username or ''}:***@{host}").geturl()


class Database:
    """An async database handle; see the module docs. `probe()` backs the readiness check."""

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 10.0,
        probe_timeout: float = 3.0,
        field: str = "Database.url",
    ) -> None:
        if not isinstance(url, str) or not url.strip():
            raise ConfigurationError(field, url, URL_FIX)
        self.url = url
        self.field = field
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme == "sqlite":
            self.backend = "sqlite"
            self._impl: _Backend = _SQLite(url, field)
        elif scheme in ("postgresql", "postgres"):
            self.backend = "postgresql"
            self._impl = _Postgres(url, field, min_size, max_size, connect_timeout)
        else:
            raise ConfigurationError(field, mask_url(url), URL_FIX)
        for name, value in (("connect_timeout", connect_timeout), ("probe_timeout", probe_timeout)):
            if not value > 0:
                raise ConfigurationError(f"Database.{name}", value, "must be greater than 0")
        if not 1 <= min_size <= max_size:
            raise ConfigurationError(
                "Database.min_size", min_size, f"use 1 <= min_size <= max_size ({max_size})"
            )
        self.probe_timeout = probe_timeout
        self._current: contextvars.ContextVar[_Tx | None] = contextvars.ContextVar(
            f"chirp-db-{id(self)}", default=None
        )

    def __repr__(self) -> str:
        return f"Database({mask_url(self.url)!r})"

    @property
    def connected(self) -> bool:
        return self._impl.connected

    async def connect(self) -> None:
        """Open the connection (SQLite) or the pool (PostgreSQL); idempotent."""
        if not self._impl.connected:
            await self._impl.connect()

    async def close(self) -> None:
        if self._impl.connected:
            await self._impl.close()

    async def __aenter__(self) -> Database:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- queries ---------------------------------------------------------------------------
    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        """Every row of a query, as dicts."""
        tx = self._current.get()
        if tx is not None:
            return await tx.fetch(sql, params)
        self._require()
        rows: list[dict[str, Any]] = await self._impl.run(lambda c: c.fetch(sql, params))
        return rows

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        """The first row of a query, or None."""
        rows = await self.fetch(sql, params)
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run a statement; returns the number of rows it changed (-1 when not applicable)."""
        tx = self._current.get()
        if tx is not None:
            return await tx.execute(sql, params)
        self._require()
        changed: int = await self._impl.run(lambda c: c.execute(sql, params))
        return changed

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """`async with db.transaction() as tx:` — commit on success, roll back on error."""
        outer = self._current.get()
        if outer is not None:
            async with outer.conn.savepoint():
                yield outer.public
            return
        self._require()
        async with self._impl.transaction() as conn:
            tx = _Tx(conn)
            token = self._current.set(tx)
            try:
                yield tx.public
            finally:
                self._current.reset(token)
                tx.public._closed = True

    async def probe(self) -> None:
        """`SELECT 1` on a fresh connection; raises when the database is unreachable."""
        self._require()
        with anyio.fail_after(self.probe_timeout):
            await self._impl.probe(self.probe_timeout)

    def _require(self) -> None:
        if not self._impl.connected:
            raise DatabaseNotConnected(
                f"{self!r} is not connected: apps connect it during lifespan startup; "
                "in scripts use `async with Database(url) as db:` or `await db.connect()`"
            )


class Transaction:
    """The handle `transaction()` yields: the same queries, on the transaction's connection."""

    def __init__(self, tx: _Tx) -> None:
        self._tx = tx
        self._closed = False

    def _check(self) -> _Tx:
        if self._closed:
            raise RuntimeError("this transaction has ended; run queries inside its `async with` block")
        return self._tx

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        return await self._check().fetch(sql, params)

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetch(sql, params)
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Params = ()) -> int:
        return await self._check().execute(sql, params)


class _Tx:
    def __init__(self, conn: _TxConn) -> None:
        self.conn = conn
        self.public = Transaction(self)

    async def fetch(self, sql: str, params: Params) -> list[Row]:
        return await self.conn.fetch(sql, params)

    async def execute(self, sql: str, params: Params) -> int:
        return await self.conn.execute(sql, params)


# -- backends --------------------------------------------------------------------------------
class _TxConn:
    async def fetch(self, sql: str, params: Params) -> list[Row]:
        raise NotImplementedError

    async def execute(self, sql: str, params: Params) -> int:
        raise NotImplementedError

    def savepoint(self) -> contextlib.AbstractAsyncContextManager[None]:
        raise NotImplementedError


class _Backend:
    connected = False

    async def connect(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def run(self, op: Callable[[Any], Any]) -> Any:
        raise NotImplementedError

    def transaction(self) -> contextlib.AbstractAsyncContextManager[_TxConn]:
        raise NotImplementedError

    async def probe(self, timeout: float) -> None:
        raise NotImplementedError


class _SQLiteOps:
    """Blocking helpers, always called on the database's own thread."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def fetch(self, sql: str, params: Params) -> list[Row]:
        cursor = self._execute(sql, params)
        try:
            names = [d[0] for d in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def execute(self, sql: str, params: Params) -> int:
        cursor = self._execute(sql, params)
        try:
            return cursor.rowcount
        finally:
            cursor.close()

    def _execute(self, sql: str, params: Params) -> sqlite3.Cursor:
        if params:
            to_pyformat(sql)  # SQLite reads ? and :name itself; refuse what PostgreSQL would refuse
        return self.conn.execute(sql, params)


class _SQLite(_Backend):
    """One sqlite3 connection, used only from one dedicated thread; a lock keeps
    transactions of different tasks apart."""

    def __init__(self, url: str, field: str) -> None:
        rest = url.split(":", 1)[1]
        if rest in ("", "//", "///:memory:", "//:memory:"):
            self.path = ":memory:"
        elif rest.startswith("///") and len(rest) > 3:
            self.path = rest[3:].split("?", 1)[0]
        else:
            raise ConfigurationError(
                field,
                url,
                "write sqlite:///relative/app.db, sqlite:////absolute/app.db or sqlite:///:memory:",
            )
        self.url = url
        self.field = field
        self._conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._lock: anyio.Lock | None = None

    async def _call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the database thread. Calls run one at a time, in submission order,
        so a rollback queued after a cancelled statement runs after it."""
        assert self._executor is not None
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def connect(self) -> None:
        if self.path != ":memory:":
            parent = os.path.dirname(os.path.abspath(self.path))
            if not os.path.isdir(parent):
                raise ConfigurationError(
                    self.field, self.url, f"the directory {parent} does not exist; create it first"
                )
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chirp-sqlite")
        self._lock = anyio.Lock()

        def open_connection() -> sqlite3.Connection:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA busy_timeout = 5000")
            if self.path != ":memory:":
                conn.execute("PRAGMA journal_mode = WAL")  # readers never block the writer
            return conn

        try:
            self._conn = await self._call(open_connection)
        except sqlite3.Error as exc:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise ConnectionError(f"could not open SQLite database {self.path}: {exc}") from exc
        self.connected = True

    async def close(self) -> None:
        self.connected = False
        conn, self._conn = self._conn, None
        if conn is not None:
            with anyio.CancelScope(shield=True):
                await self._call(conn.close)
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    async def run(self, op: Callable[[Any], Any]) -> Any:
        assert self._lock is not None and self._conn is not None
        ops = _SQLiteOps(self._conn)
        async with self._lock:
            return await self._call(lambda: op(ops))

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[_TxConn]:
        assert self._lock is not None and self._conn is not None
        conn = self._conn

        def rollback() -> None:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

        async with self._lock:
            try:
                await self._call(lambda: conn.execute("BEGIN IMMEDIATE"))
                yield _SQLiteTx(self, _SQLiteOps(conn))
                await self._call(lambda: conn.execute("COMMIT"))
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self._call(rollback)
                raise

    async def probe(self, timeout: float) -> None:
        path = self.path

        def select_one() -> None:
            if path == ":memory:":
                conn = sqlite3.connect(":memory:")
            else:  # mode=rw: a missing file is an error, not a new empty database
                conn = sqlite3.connect(f"file:{os.path.abspath(path)}?mode=rw", uri=True, timeout=timeout)
            try:
                conn.execute("SELECT 1").fetchone()
            finally:
                conn.close()

        await anyio.to_thread.run_sync(select_one, abandon_on_cancel=True)


class _SQLiteTx(_TxConn):
    def __init__(self, backend: _SQLite, ops: _SQLiteOps) -> None:
        self.backend = backend
        self.ops = ops

    async def fetch(self, sql: str, params: Params) -> list[Row]:
        return await self.backend._call(lambda: self.ops.fetch(sql, params))

    async def execute(self, sql: str, params: Params) -> int:
        return await self.backend._call(lambda: self.ops.execute(sql, params))

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        name = f"chirp_sp_{next(_SAVEPOINTS)}"
        conn = self.ops.conn
        await self.backend._call(lambda: conn.execute(f"SAVEPOINT {name}"))
        try:
            yield
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.backend._call(lambda: conn.execute(f"ROLLBACK TO {name}"))
                await self.backend._call(lambda: conn.execute(f"RELEASE {name}"))
            raise
        await self.backend._call(lambda: conn.execute(f"RELEASE {name}"))


class _Postgres(_Backend):
    """A psycopg 3 `AsyncConnectionPool` of autocommit connections returning dict rows."""

    def __init__(self, url: str, field: str, min_size: int, max_size: int, connect_timeout: float) -> None:
        try:
            import psycopg  # noqa: F401
            import psycopg_pool  # noqa: F401
        except ImportError:
            raise ConfigurationError(
                field,
                mask_url(url),
                "PostgreSQL needs psycopg 3 and psycopg-pool: pip install 'chirp-pounce[postgres]'",
            ) from None
        if not urlsplit(url).hostname and "host=" not in url:
            raise ConfigurationError(
                field, mask_url(url), "name the server: postgresql://user@host:5432/dbname"
            )
        self.url = url
        self.min_size = min_size
        self.max_size = max_size
        self.connect_timeout = connect_timeout
        self.pool: Any = None

    async def connect(self) -> None:
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool, PoolTimeout

        pool = AsyncConnectionPool(
            self.url,
            min_size=self.min_size,
            max_size=self.max_size,
            open=False,
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "connect_timeout": max(1, int(self.connect_timeout)),
            },
            check=AsyncConnectionPool.check_connection,
            name="chirp",
        )
        try:
            await pool.open(wait=True, timeout=self.connect_timeout)
        except PoolTimeout as exc:
            await pool.close()
            raise ConnectionError(
                f"could not connect to PostgreSQL at {mask_url(self.url)} within {self.connect_timeout}s ({exc}); "
                "check that the server runs and the URL's host, port, user and database are right"
            ) from None
        self.pool = pool
        self.connected = True

    async def close(self) -> None:
        self.connected = False
        pool, self.pool = self.pool, None
        if pool is not None:
            await pool.close()

    async def run(self, op: Callable[[Any], Any]) -> Any:
        async with self.pool.connection() as conn:
            return await op(_PgOps(conn))

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[_TxConn]:
        async with self.pool.connection() as conn, conn.transaction():
            yield _PgTx(conn)

    async def probe(self, timeout: float) -> None:
        async with self.pool.connection(timeout=timeout) as conn:
            await conn.execute("SELECT 1")


class _PgOps:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def fetch(self, sql: str, params: Params) -> list[Row]:
        cursor = await self._execute(sql, params)
        if cursor.description is None:
            return []
        return list(await cursor.fetchall())

    async def execute(self, sql: str, params: Params) -> int:
        cursor = await self._execute(sql, params)
        return int(cursor.rowcount)

    async def _execute(self, sql: str, params: Params) -> Any:
        """Run `sql` written with chirp's `?` / `:name`; without parameters psycopg sends it as is."""
        if not params:
            return await self.conn.execute(sql)
        return await self.conn.execute(to_pyformat(sql), params)


class _PgTx(_TxConn):
    def __init__(self, conn: Any) -> None:
        self.ops = _PgOps(conn)

    async def fetch(self, sql: str, params: Params) -> list[Row]:
        return await self.ops.fetch(sql, params)

    async def execute(self, sql: str, params: Params) -> int:
        return await self.ops.execute(sql, params)

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        async with self.ops.conn.transaction():
            yield
