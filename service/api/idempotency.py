"""Idempotency-Key on POSTs that create work: a retry gets the first answer, not a second job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Header
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTasks

from service.storage.db import Database
from service.storage.idempotency import remember, replay

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=200, description="Retry-safe creation."),
]


def idempotent(
    database: Database,
    *,
    api_key_id: int,
    route: str,
    key: str | None,
    request_hash: str,
    produce: Callable[[], tuple[dict[str, Any], int]],
    background: BackgroundTasks | None = None,
) -> JSONResponse:
    """Answer from the stored first response for `key`, or produce, store and answer.

    Raises:
        Conflict: the key was used before with a different request.
    """
    if key:
        with database.sessions() as session:
            seen = replay(
                session, api_key_id=api_key_id, route=route, key=key, request_hash=request_hash
            )
        if seen is not None:
            return JSONResponse(seen.response, status_code=seen.status_code)
    body, status = produce()
    if key:
        stored = remember(
            database,
            api_key_id=api_key_id,
            route=route,
            key=key,
            request_hash=request_hash,
            status_code=status,
            response=body,
        )
        body, status = stored.response, stored.status_code
    return JSONResponse(body, status_code=status, background=background)
