"""Idempotency-Key support: the first response to a keyed POST is replayed on retries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.errors import Conflict
from service.storage.db import Database
from service.storage.models import IdempotencyRecord


def replay(
    session: Session, *, api_key_id: int, route: str, key: str, request_hash: str
) -> IdempotencyRecord | None:
    """The stored response for this key, or None.

    Raises:
        Conflict: the key was used before with a different request body.
    """
    record = session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.api_key_id == api_key_id,
            IdempotencyRecord.route == route,
            IdempotencyRecord.key == key,
        )
    )
    if record is not None and record.request_hash != request_hash:
        raise Conflict("Idempotency-Key was already used with a different request")
    return record


def remember(
    database: Database,
    *,
    api_key_id: int,
    route: str,
    key: str,
    request_hash: str,
    status_code: int,
    response: dict[str, Any],
) -> IdempotencyRecord:
    """Store the response; if a concurrent retry stored one first, return that one."""
    try:
        with database.transaction() as session:
            record = IdempotencyRecord(
                api_key_id=api_key_id,
                route=route,
                key=key,
                request_hash=request_hash,
                status_code=status_code,
                response=response,
            )
            session.add(record)
        return record
    except IntegrityError:
        with database.sessions() as session:
            existing = replay(
                session, api_key_id=api_key_id, route=route, key=key, request_hash=request_hash
            )
            assert existing is not None
            return existing
