"""Throwaway PostgreSQL databases for the benches and the tests: created, dropped afterwards.

One home for both (tests/conftest.py's fixtures and every bench that needs PostgreSQL use it).
The server is ``INSTRUCTFORGE_TEST_PG_DSN`` (default: the local one, user ``postgres``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

PG_ADMIN_DSN = os.environ.get(
    "INSTRUCTFORGE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def pg_url(name: str) -> str:
    """The SQLAlchemy URL (psycopg 3 driver) of database ``name`` on the admin DSN's server."""
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


def pg_admin(sql: str) -> None:
    """Run one statement on the admin database (autocommit: CREATE/DROP DATABASE need it)."""
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@contextmanager
def pg_database(
    prefix: str = "if_bench", *, template: str | None = None, migrate: bool = True
) -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards (even with sessions still open).

    Args:
        prefix: the name's start; a random suffix makes it unique (``{prefix}_{12 hex}``).
        template: clone this database (it must have no open connection) instead of
            creating an empty one.
        migrate: run the Alembic migrations to the head.

    Yields:
        Its SQLAlchemy URL; the database's name is the URL's last part.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    pg_admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        url = pg_url(name)
        if migrate:
            from service.storage.migrate import upgrade

            upgrade(url)
        yield url
    finally:
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
