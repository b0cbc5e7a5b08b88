"""FastAPI dependencies, as Annotated aliases so route signatures read as prose.

Every dependency here is `async def` and does no blocking work on the event loop: a sync
dependency would cost each request one more hop through the thread pool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import anyio.to_thread
from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.api.auth import KeyVerifier, Principal
from service.api.schemas import MAX_ID
from service.errors import Forbidden, Unauthorized
from service.settings import Settings
from service.storage.db import AsyncEngine, AsyncEngines, Database, Session
from service.storage.keys import has_scope

T = TypeVar("T")
_bearer = HTTPBearer(auto_error=False, description="An API key: `instructforge keys create`.")


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_read_engine(request: Request) -> AsyncEngine:
    engines: AsyncEngines = request.app.state.read_engines
    return engines.here()


# Routes open their sessions themselves rather than take a session dependency: a dependency's
# session lives until after the response is serialised, and under 100 concurrent clients that
# deadlocked the connection pool against the thread pool (bench/service.py found it).
DatabaseDep = Annotated[Database, Depends(get_database)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
# The asyncio engine of the serving event loop: reads on it need no thread-pool hop.
ReadEngine = Annotated[AsyncEngine, Depends(get_read_engine)]


async def read(database: Database, query: Callable[[Session], T]) -> T:
    """Run `query` on a worker thread with a read session (autocommit: no BEGIN/ROLLBACK).

    For reads whose rows do not change once written, or that read a single row: each statement
    sees the latest committed data. One thread-pool hop for the whole request.
    """

    def call() -> T:
        with database.reads() as session:
            return query(session)

    return await anyio.to_thread.run_sync(call)


def _require(scope: str):  # type: ignore[no-untyped-def]
    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if credentials is None or not credentials.credentials:
            raise Unauthorized("missing API key: send `Authorization: Bearer <key>`")
        verifier: KeyVerifier = request.app.state.keys
        engine = await get_read_engine(request)
        principal = await verifier.verify(engine, credentials.credentials)
        if principal is None:
            raise Unauthorized("unknown or revoked API key")
        if not has_scope(principal.scopes, scope):
            raise Forbidden(f"this key lacks the {scope!r} scope")
        return principal

    return check


async def _is_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> bool:
    """Whether the request carries a valid admin key; never raises (for routes open to all)."""
    if credentials is None or not credentials.credentials:
        return False
    verifier: KeyVerifier = request.app.state.keys
    try:
        principal = await verifier.verify(await get_read_engine(request), credentials.credentials)
    except Exception:  # the database may be what is down: then no key can be checked
        return False
    return principal is not None and has_scope(principal.scopes, "admin")


ReadKey = Annotated[Principal, Depends(_require("read"))]
WriteKey = Annotated[Principal, Depends(_require("write"))]
IsAdmin = Annotated[bool, Depends(_is_admin)]

RunId = Annotated[int, Path(ge=1, le=MAX_ID)]
TaskId = Annotated[int, Path(ge=1, le=MAX_ID)]
