"""Engines and sessions: one sync engine for sessions on threads, one asyncio engine per event
loop for the API's reads.

A SQLite `:memory:` URL is served as a named shared-cache in-memory database, so the sync
engine's threads, the asyncio engine and Alembic all see one database (each plain `:memory:`
connection would see an empty database of its own). It lives as long as its Database.

Code outside `service/storage/` never imports SQLAlchemy (a test scans for it): it names the
session and engine types and the driver errors it must tell apart through this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast
from weakref import WeakKeyDictionary

import orjson
from sqlalchemy import Connection as Connection
from sqlalchemy import CursorResult, Engine, Update, create_engine, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError as DataError
from sqlalchemy.exc import DBAPIError as DBAPIError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine as AsyncEngine
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import Session as Session
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import AsyncAdaptedQueuePool, QueuePool
from sqlalchemy.util import greenlet_spawn

from service.errors import DatabaseUnavailable
from service.storage.search import register_sqlite_functions

T = TypeVar("T")
SQLITE_BUSY_TIMEOUT_S = 30  # wait out a writer's lock rather than fail
CONNECTION_WAIT_S = 10.0  # an async read waits this long for a pooled connection, then 503s


def safe_url(url: str) -> str:
    """The database URL with its password masked, for logs and the CLI."""
    return make_url(url).render_as_string(hide_password=True)


def is_connection_lost(exc: BaseException) -> bool:
    """A database error that says the connection broke (server restart, terminated backend,
    network), not that the job's data is wrong."""
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def _is_shared_memory(url: str) -> bool:
    return url.startswith("sqlite") and "mode=memory" in url


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _set(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        # WAL lets the API read while a worker writes; busy_timeout waits instead of failing.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cur.close()
        register_sqlite_functions(dbapi_conn)


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine; on SQLite make sure the file's folder exists and turn on FKs and WAL."""
    if not url.startswith("sqlite"):
        return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=20, max_overflow=10)
    path = url.split("///", 1)[-1]
    connect_args: dict[str, Any] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
    pool: dict[str, Any] = {}
    if _is_shared_memory(url):
        # One database for every thread (not one per thread), its connections pooled.
        pool = {"poolclass": QueuePool}
        connect_args["check_same_thread"] = False
    elif path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, echo=echo, connect_args=connect_args, **pool)
    _sqlite_pragmas(engine)
    return engine


def make_async_engine(url: str, *, connections: int) -> AsyncEngine:
    """An asyncio engine on the database at `url` (a sync URL), for reads on the event loop.

    psycopg's async mode on PostgreSQL, aiosqlite on SQLite; `connections` pooled, no
    overflow (a request waits CONNECTION_WAIT_S for one). Autocommit: a read of committed rows
    needs no BEGIN/ROLLBACK, two of the three round trips a one-statement read would make.
    Its connections belong to the event loop that opened them: see AsyncEngines.
    """
    sa_url = make_url(url)
    options: dict[str, Any] = {
        "isolation_level": "AUTOCOMMIT",
        "pool_size": connections,
        "max_overflow": 0,
        "pool_timeout": CONNECTION_WAIT_S,
    }
    # JSON columns and the JSON a read builds (a task's provenance): orjson reads it faster,
    # same values.
    options["json_deserializer"] = orjson.loads
    if sa_url.get_backend_name() == "sqlite":
        sa_url = sa_url.set(drivername="sqlite+aiosqlite")
        options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
        options["poolclass"] = AsyncAdaptedQueuePool
    elif sa_url.get_backend_name() == "postgresql":
        sa_url = sa_url.set(drivername="postgresql+psycopg")
    engine = create_async_engine(sa_url, **options)
    if engine.dialect.name == "sqlite":
        # A short instruction search calls it (service.storage.search).
        event.listen(engine.sync_engine, "connect", lambda conn, _: register_sqlite_functions(conn))
    return engine


class AsyncEngines:
    """The asyncio engine (`make_async_engine`) of each event loop that reads, made on its first
    read there: an engine's connections belong to the loop that opened them, and a process may
    serve on more than one loop (uvicorn has one; a test client and schemathesis bring theirs).
    """

    def __init__(self, url: str, *, connections: int) -> None:
        self.url = url
        self.connections = connections
        self._engines: WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncEngine] = (
            WeakKeyDictionary()
        )

    def here(self) -> AsyncEngine:
        """The running loop's engine."""
        loop = asyncio.get_running_loop()
        engine = self._engines.get(loop)
        if engine is None:
            engine = self._engines[loop] = make_async_engine(self.url, connections=self.connections)
        return engine

    async def dispose_here(self) -> None:
        """Close the running loop's engine and its connections, if it has one."""
        engine = self._engines.pop(asyncio.get_running_loop(), None)
        if engine is not None:
            await engine.dispose()


async def read_async(engine: AsyncEngine, query: Callable[[Connection], T]) -> T:
    """`query` on a pooled connection of `engine`; rows committed before it started are seen.

    `query` is written against SQLAlchemy's sync `Connection` API and runs, with the checkout
    and the return of its connection, in one greenlet: SQLAlchemy's own bridge between its
    sync core and an asyncio driver (what `AsyncConnection.run_sync` uses). The awaitable API
    spawns a greenlet per call instead (connect, each execute, close, plus a task to shield
    the close), about a third of a small read's CPU (bench/read_cpu.py).

    The server may have closed pooled connections (a restart, an idle timeout): SQLAlchemy
    then invalidates the pool, and the read runs once more on a fresh connection (reads are
    safe to repeat). Checking each connection before use instead (pool_pre_ping) would cost
    every request a round trip.

    Raises:
        DatabaseUnavailable: no connection within CONNECTION_WAIT_S, or the database
            unreachable.
    """

    def call() -> T:
        with engine.sync_engine.connect() as conn:
            return query(conn)

    for attempt in (1, 2):
        try:
            return await greenlet_spawn(call)
        except PoolTimeout as exc:
            raise DatabaseUnavailable("the database is busy: no connection free") from exc
        except DBAPIError as exc:
            if exc.connection_invalidated and attempt == 1:
                continue
            # On SQLite an OperationalError is a query's fault (no such table), not the network.
            lost = isinstance(exc, OperationalError) and engine.dialect.name != "sqlite"
            if exc.connection_invalidated or lost:
                message = f"the database is unreachable: {exc.orig}"[:300]
                raise DatabaseUnavailable(message) from exc
            raise
    raise AssertionError("unreachable")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    with factory() as session, session.begin():
        yield session


def insert_or_ignore(
    session: Session, model: type[Any], values: dict[str, Any], unique: list[str]
) -> bool:
    """INSERT one row unless a row with the same `unique` columns exists (one statement).

    Concurrent callers never fail on the unique constraint: on PostgreSQL a rival waits on the
    unique index for the first inserter's commit or rollback; on SQLite the statement holds the
    database's write lock until the caller's transaction ends.

    Returns:
        True when this call inserted the row.
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(model)
        .values(**values)
        .on_conflict_do_nothing(index_elements=unique)
        .returning(*model.__table__.primary_key.columns)
    )
    # RETURNING rather than rowcount: psycopg reports no rowcount for an ORM-enabled insert.
    return session.execute(stmt).first() is not None


def changed_rows(session: Session, statement: Update) -> int:
    """Execute an UPDATE and return how many rows it changed (the compare-and-set's answer)."""
    # An UPDATE without RETURNING gives a CursorResult, which alone carries the rowcount.
    return cast(CursorResult[Any], session.execute(statement)).rowcount


class Database:
    """An engine and its session factory, built from a URL (one per process)."""

    def __init__(self, url: str) -> None:
        sa_url = make_url(url)
        if sa_url.get_backend_name() == "sqlite" and sa_url.database in (None, "", ":memory:"):
            name = f"instructforge-{uuid.uuid4().hex}"
            url = f"sqlite:///file:{name}?mode=memory&cache=shared&uri=true"
        self.url = url
        self.engine = make_engine(url)
        # A shared in-memory database is dropped with its last connection: hold one.
        self._keeper = self.engine.raw_connection() if _is_shared_memory(url) else None
        self.sessions = make_sessionmaker(self.engine)
        # Reads that need no multi-statement snapshot skip BEGIN and ROLLBACK: two round trips
        # of the three a small API read used to make. Same pool, connections reset on return.
        self.reads = make_sessionmaker(self.engine.execution_options(isolation_level="AUTOCOMMIT"))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def identity(self) -> str:
        """Names this database for keys kept outside it: dialect, host, port, name (no password)."""
        u = make_url(self.url)
        return f"{u.get_backend_name()}/{u.host or ''}:{u.port or ''}/{u.database or ''}"

    def transaction(self) -> contextlib.AbstractContextManager[Session]:
        return transaction(self.sessions)

    def dispose(self) -> None:
        if self._keeper is not None:
            self._keeper.close()
            self._keeper = None
        self.engine.dispose()
