"""Idempotency-Key on POSTs that create work: a retry gets the first answer, not a second job.

Stripe's rules: the first request with a key does the work and its answer (success or error)
is kept; a retry with the same key and the same request gets that answer byte for byte, also
while the first is still in flight (it waits for it, up to `WAIT_SECONDS`); a retry with another
request is refused with 422 `idempotency_key_reused`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Header
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTasks

from service.api.errors import error_body
from service.errors import Conflict, InvalidInput, ServiceError
from service.storage import idempotency as records
from service.storage.db import Database, Session

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=200, description="Retry-safe creation."),
]

Answer = tuple[dict[str, Any], int]
# Does the route's database work in the given transaction (the key's own) and returns what
# answers the request once that transaction has committed (a build may run there).
Create = Callable[[Session], Callable[[], Answer]]

# How long a retry waits for the answer of a first request still in flight.
WAIT_SECONDS = 300.0
_POLL_SECONDS = 0.05


class IdempotencyKeyReused(InvalidInput):
    code = "idempotency_key_reused"


def idempotent(
    database: Database,
    *,
    api_key_id: int,
    route: str,
    key: str | None,
    request_hash: str,
    create: Create,
    background: BackgroundTasks | None = None,
) -> JSONResponse:
    """Do `create` once per key and answer every request with the first answer.

    Raises:
        IdempotencyKeyReused: the key was used before with a different request (422).
        Conflict: the first request with this key is still in flight after `WAIT_SECONDS`.
        ServiceError: whatever `create` raised (then nothing was created or kept).
    """
    if not key:
        with database.transaction() as session:
            respond = create(session)
        body, status = respond()
        return JSONResponse(body, status_code=status, background=background)
    where: dict[str, Any] = {"api_key_id": api_key_id, "route": route, "key": key}
    with database.transaction() as session:
        owner = records.claim(session, request_hash=request_hash, **where)
        claimed = create(session) if owner else None
    if claimed is None:
        body, status = _await_first(database, request_hash, where)
        return JSONResponse(body, status_code=status)
    try:
        body, status = claimed()
    except ServiceError as exc:
        _keep(database, where, error_body(exc.code, exc.message), exc.status_code)
        raise
    except BaseException:
        _keep(database, where, error_body("internal", "internal error"), 500)
        raise
    body, status = _keep(database, where, body, status)
    return JSONResponse(body, status_code=status, background=background)


def _keep(database: Database, where: dict[str, Any], body: dict[str, Any], status: int) -> Answer:
    """Store the answer and return it as stored, so the first answer and every replay match
    byte for byte (PostgreSQL's jsonb, for one, orders keys its own way)."""
    with database.transaction() as session:
        records.store(session, status_code=status, response=body, **where)
        stored = records.find(session, **where)
        assert stored is not None
        return stored.response, stored.status_code


def _await_first(database: Database, request_hash: str, where: dict[str, Any]) -> Answer:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        with database.sessions() as session:
            record = records.find(session, **where)
            if record is None:  # the claimer rolled back: nothing was created
                raise Conflict("the first request with this Idempotency-Key failed; send it again")
            if record.request_hash != request_hash:
                raise IdempotencyKeyReused(
                    "Idempotency-Key was already used with a different request"
                )
            if record.status_code != records.PENDING:
                return record.response, record.status_code
        if time.monotonic() > deadline:
            raise Conflict("the first request with this Idempotency-Key is still in progress")
        time.sleep(_POLL_SECONDS)
