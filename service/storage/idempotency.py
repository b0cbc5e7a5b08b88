"""Idempotency-Key records: claimed in the same transaction as the work they guard.

The rule follows Stripe's: the first request with a key does the work and its answer is kept;
a retry with the same key and the same request gets that answer, a retry with another request
is refused. The claim is an ``INSERT ... ON CONFLICT DO NOTHING`` made first in the work's own
transaction, so of concurrent requests exactly one creates anything: on PostgreSQL a rival's
insert waits on the unique index until the claimer commits or rolls back; on SQLite the insert
takes the database's write lock for the rest of the transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.storage.db import insert_or_ignore
from service.storage.models import IdempotencyRecord, utcnow

# The status stored while the claimer's answer is not known yet (it is building it).
PENDING = 0


def claim(session: Session, *, api_key_id: int, route: str, key: str, request_hash: str) -> bool:
    """Claim a key for this request, first thing in the caller's transaction.

    Returns:
        True when this transaction now owns the key (the record is pending until `store`);
        False when another request holds it (read it with `find`).
    """
    values = {
        "api_key_id": api_key_id,
        "route": route,
        "key": key,
        "request_hash": request_hash,
        "status_code": PENDING,
        "response": {},
        "created_at": utcnow(),
    }
    return insert_or_ignore(session, IdempotencyRecord, values, ["api_key_id", "route", "key"])


def find(session: Session, *, api_key_id: int, route: str, key: str) -> IdempotencyRecord | None:
    """The record of a key, pending or answered, or None."""
    return session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.api_key_id == api_key_id,
            IdempotencyRecord.route == route,
            IdempotencyRecord.key == key,
        )
    )


def store(
    session: Session,
    *,
    api_key_id: int,
    route: str,
    key: str,
    status_code: int,
    response: dict[str, Any],
) -> None:
    """Keep the claimer's answer, to be replayed to every retry."""
    session.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.api_key_id == api_key_id,
            IdempotencyRecord.route == route,
            IdempotencyRecord.key == key,
        )
        .values(status_code=status_code, response=response)
    )
