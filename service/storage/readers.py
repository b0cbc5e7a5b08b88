"""The API's hot reads, run on the database driver itself.

A one-row read through SQLAlchemy (session, pool checkout with a ping, execution context, ORM
identity map) plus the thread-pool hop it needs cost ~1.3 ms of CPU where the driver alone
costs ~0.3 ms (profiled on a slow 2-vCPU VM). So the few routes every dashboard polls
(runs and tasks, list and show) read here instead:

- PostgreSQL: psycopg's async connections in psycopg_pool's pool, on the event loop: no
  thread hop, no ping round trip, statements prepared by the server after a few uses, several
  statements of one call sent in one pipeline. The pool hands connections out in arrival
  order, so 100 concurrent requests queue fairly.
- SQLite: the stdlib driver on a worker thread (one hop for all of a request's statements),
  one read-only connection per thread.

The statements are still SQLAlchemy Core, built from the models' tables and compiled once per
dialect, and each column's value goes through its SQLAlchemy type's own result processing
(SQLite's datetime strings, JSON text, 0/1 booleans; UTC timestamps), so a row reads the same
here as through the ORM. Parameters must be plain values (ints, strings, floats): no bind
processing is applied.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio.to_thread
import orjson
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import Dialect, Select
from sqlalchemy.engine import make_url

from service.errors import DatabaseUnavailable

Row = dict[str, Any]
OPEN_TIMEOUT_S = 10.0
CONNECTION_WAIT_S = 10.0  # a request waits this long for a connection, then gets a 503
log = logging.getLogger(__name__)


@dataclass
class CompiledQuery:
    """One SELECT as its dialect's SQL text, with the conversion of each result column."""

    sql: str
    positional: tuple[str, ...] | None  # parameter names in order, for `?` dialects
    defaults: dict[str, Any]  # literal values the statement binds itself
    columns: list[tuple[str, Any]]  # (result key, SQLAlchemy type)
    dialect: Dialect
    _processors: list[tuple[str, Callable[[Any], Any]]] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, stmt: Select[Any], dialect: Dialect) -> CompiledQuery:
        compiled = stmt.compile(dialect=dialect)
        return cls(
            sql=compiled.string,
            positional=tuple(compiled.positiontup) if compiled.positional else None,  # type: ignore[arg-type]
            defaults={n: b.effective_value for n, b in compiled.binds.items() if not b.required},
            columns=[(c.key, c.type) for c in stmt.selected_columns],
            dialect=dialect,
        )

    def params(self, values: Mapping[str, Any]) -> dict[str, Any] | tuple[Any, ...]:
        merged = {**self.defaults, **values}
        if self.positional is None:
            return merged
        return tuple(merged[name] for name in self.positional)

    def convert(self, rows: list[Row], type_codes: Callable[[], Sequence[Any]]) -> list[Row]:
        """Apply each column's result processing to `rows` in place.

        `type_codes` gives the driver's type code of each column; it is asked once, at the
        first result, since PostgreSQL's processors depend on them.
        """
        if self._processors is None:
            processors = []
            for (key, type_), code in zip(self.columns, type_codes(), strict=True):
                impl = type_.dialect_impl(self.dialect)
                process = impl.result_processor(self.dialect, code)
                if process is not None:
                    processors.append((key, process))
            self._processors = processors
        for row in rows:
            for key, process in self._processors:
                row[key] = process(row[key])
        return rows


Statement = tuple[CompiledQuery, Mapping[str, Any]]


class Reader(Protocol):
    dialect: Dialect

    async def open(self) -> None: ...

    async def fetch(self, *statements: Statement) -> list[list[Row]]:
        """Every statement's rows, in order; all of them in one round trip where the database
        allows it."""
        ...

    async def close(self) -> None: ...


class PostgresReader:
    """psycopg async connections from psycopg_pool, autocommit, sessions in UTC.

    A pool belongs to the event loop that opened it, so each loop the app's lifespan runs on
    (one under uvicorn; a test client and schemathesis may each bring their own) gets its own.
    """

    def __init__(self, url: str, dialect: Dialect, max_connections: int) -> None:
        self.dialect = dialect
        sa_url = make_url(url)
        self.conninfo = sa_url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.max_connections = max_connections
        self._pools: dict[asyncio.AbstractEventLoop, AsyncConnectionPool[Any]] = {}

    @staticmethod
    async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
        set_json_loads(orjson.loads, conn)

    async def open(self) -> None:
        # A fixed size, all opened before the first request: the pool never grows in the middle
        # of serving (connecting costs a PostgreSQL backend start, milliseconds of CPU).
        pool = AsyncConnectionPool(
            self.conninfo,
            min_size=self.max_connections,
            timeout=CONNECTION_WAIT_S,
            open=False,
            name="api-reads",
            kwargs={"autocommit": True, "row_factory": dict_row, "options": "-c TimeZone=UTC"},
            configure=self._configure,
        )
        self._pools[asyncio.get_running_loop()] = pool
        try:
            await pool.open(wait=True, timeout=OPEN_TIMEOUT_S)
        except PoolTimeout:
            # An API whose database is down still starts (the pool keeps trying), and /readyz
            # says what is wrong.
            log.warning("PostgreSQL unreachable at start-up; reads will wait for it")

    async def fetch(self, *statements: Statement) -> list[list[Row]]:
        pool = self._pools.get(asyncio.get_running_loop())
        if pool is None:
            raise RuntimeError("the API's reader is not open on this event loop: run its lifespan")
        try:
            try:
                return await self._fetch(pool, statements)
            except PoolTimeout:
                raise
            except psycopg.OperationalError:
                # The server closed a pooled connection (a restart, an idle timeout): then it
                # likely closed them all. Test every idle one, replace the dead, read again
                # (reads are safe to repeat).
                await pool.check()
                return await self._fetch(pool, statements)
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(f"the database is unreachable: {exc}"[:300]) from exc

    async def _fetch(
        self, pool: AsyncConnectionPool[Any], statements: Sequence[Statement]
    ) -> list[list[Row]]:
        async with pool.connection() as conn:
            if len(statements) == 1:
                query, values = statements[0]
                cur = await conn.execute(query.sql, query.params(values))  # type: ignore[arg-type]
                return [await self._rows(query, cur)]
            async with conn.pipeline():
                cursors = [
                    await conn.execute(query.sql, query.params(values))  # type: ignore[arg-type]
                    for query, values in statements
                ]
            return [
                await self._rows(query, cur)
                for (query, _), cur in zip(statements, cursors, strict=True)
            ]

    @staticmethod
    async def _rows(query: CompiledQuery, cur: psycopg.AsyncCursor[Any]) -> list[Row]:
        rows = await cur.fetchall()
        return query.convert(rows, lambda: [d.type_code for d in cur.description or ()])

    async def close(self) -> None:
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.close()


class SqliteReader:
    """The stdlib driver on worker threads; one connection per thread, opened on first use."""

    def __init__(self, url: str, dialect: Dialect) -> None:
        self.dialect = dialect
        self.path = make_url(url).database or ":memory:"
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self.path == ":memory:":
                # Each connection would see its own empty database.
                raise RuntimeError("the API reads a SQLite file, not an in-memory database")
            # timeout=30 is SQLite's busy timeout: wait out a writer's lock, as the engine does.
            conn = sqlite3.connect(self.path, timeout=30)
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
        return conn

    async def open(self) -> None:
        return None

    async def fetch(self, *statements: Statement) -> list[list[Row]]:
        return await anyio.to_thread.run_sync(self._fetch, statements)

    def _fetch(self, statements: Sequence[Statement]) -> list[list[Row]]:
        conn = self._connection()
        out = []
        for query, values in statements:
            cur = conn.execute(query.sql, query.params(values))
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
            out.append(query.convert(rows, lambda n=len(names): [None] * n))
        return out

    async def close(self) -> None:
        return None


def make_reader(url: str, dialect: Dialect, *, max_connections: int) -> Reader:
    if dialect.name == "sqlite":
        return SqliteReader(url, dialect)
    if dialect.name == "postgresql":
        return PostgresReader(url, dialect, max_connections)
    raise ValueError(f"no API reader for {dialect.name}")
