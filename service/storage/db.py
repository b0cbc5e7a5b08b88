"""Engines and sessions."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine; on SQLite make sure the file's folder exists and turn on FKs and WAL."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            # WAL lets the API read while a worker writes; busy_timeout waits instead of failing.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=20, max_overflow=10)


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


class Database:
    """An engine and its session factory, built from a URL (one per process)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = make_sessionmaker(self.engine)
        # Reads that need no multi-statement snapshot skip BEGIN and ROLLBACK: two round trips
        # of the three a small API read used to make. Same pool, connections reset on return.
        self.reads = make_sessionmaker(self.engine.execution_options(isolation_level="AUTOCOMMIT"))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def transaction(self) -> contextlib.AbstractContextManager[Session]:
        return transaction(self.sessions)

    def dispose(self) -> None:
        self.engine.dispose()
