"""FastAPI dependencies, as Annotated aliases so route signatures read as prose."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.api.errors import Forbidden, Unauthorized
from service.settings import Settings
from service.storage.db import Database
from service.storage.keys import find_api_key, has_scope
from service.storage.models import ApiKey

_bearer = HTTPBearer(auto_error=False, description="An API key: `instructforge keys create`.")


def get_database(request: Request) -> Database:
    return request.app.state.database


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


# Routes open `with database.sessions() as session:` themselves rather than take a session
# dependency: a dependency's session lives until after the response is serialised, which for
# sync routes needs a worker thread, and 100 concurrent clients then deadlocked the connection
# pool against the thread pool (bench/service.py found it).
DatabaseDep = Annotated[Database, Depends(get_database)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def _require(scope: str):  # type: ignore[no-untyped-def]
    def check(
        database: DatabaseDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> ApiKey:
        if credentials is None or not credentials.credentials:
            raise Unauthorized("missing API key: send `Authorization: Bearer <key>`")
        with database.sessions() as session:
            key = find_api_key(session, credentials.credentials)
        if key is None:
            raise Unauthorized("unknown or revoked API key")
        if not has_scope(key, scope):
            raise Forbidden(f"this key lacks the {scope!r} scope")
        return key

    return check


ReadKey = Annotated[ApiKey, Depends(_require("read"))]
WriteKey = Annotated[ApiKey, Depends(_require("write"))]
AdminKey = Annotated[ApiKey, Depends(_require("admin"))]

# Ids are bounded so an absurd value is a 422, never a database overflow.
MAX_ID = 2_147_483_647
RunId = Annotated[int, Path(ge=1, le=MAX_ID)]
TaskId = Annotated[int, Path(ge=1, le=MAX_ID)]
