"""Throwaway PostgreSQL databases for the benches: created, migrated, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from service.storage.migrate import upgrade

PG_ADMIN_DSN = os.environ.get(
    "INSTRUCTFORGE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def pg_database(prefix: str = "if_bench") -> Iterator[str]:
    """A fresh PostgreSQL database, migrated, dropped afterwards; yields its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = f"{base}/{name}"
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
