"""FastAPI dependencies, as Annotated aliases so route signatures read as prose.

Every dependency here is `async def` and does no blocking work on the event loop: a sync
dependency would cost each request one more hop through the thread pool.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

import anyio.to_thread
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError

from service.api.auth import KeyVerifier, Principal
from service.api.schemas import MAX_ID
from service.errors import Forbidden, Unauthorized
from service.settings import Settings
from service.storage.db import AsyncEngine, AsyncEngines, Database, Session
from service.storage.keys import has_scope

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
_BEARER_DOC = "An API key: `instructforge keys create`."
_bearer = HTTPBearer(auto_error=False, description=_BEARER_DOC)


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


@dataclass(frozen=True)
class Caller:
    """Who called, their key checked, and the event loop's engine for the route's reads."""

    principal: Principal
    engine: AsyncEngine


class KeyCheck(HTTPBearer):
    """The API key check as the bearer security scheme itself: parse `Authorization: Bearer`,
    verify the key (KeyVerifier), require `scope`, and hand the route the caller and the
    event loop's read engine.

    One dependency where there were three (the scheme, the key check, the engine lookup):
    FastAPI solves every dependency of every request in Python, about 10 µs each, and on the
    hot reads that was a tenth of a request's CPU (bench/read_cpu.py). OpenAPI shows the same
    `HTTPBearer` scheme.

    Raises:
        Unauthorized: no key, or an unknown or revoked one.
        Forbidden: the key lacks `scope`.
        DatabaseUnavailable: the key could not be checked.
    """

    def __init__(self, scope: str) -> None:
        super().__init__(auto_error=False, scheme_name="HTTPBearer", description=_BEARER_DOC)
        self.scope = scope

    async def __call__(self, request: Request) -> Caller:  # type: ignore[override]
        credentials = await super().__call__(request)
        if credentials is None:
            raise Unauthorized("missing API key: send `Authorization: Bearer <key>`")
        verifier: KeyVerifier = request.app.state.keys
        engine = await get_read_engine(request)
        principal = await verifier.verify(engine, credentials.credentials)
        if principal is None:
            raise Unauthorized("unknown or revoked API key")
        if not has_scope(principal.scopes, self.scope):
            raise Forbidden(f"this key lacks the {self.scope!r} scope")
        return Caller(principal, engine)


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


ReadKey = Annotated[Caller, Depends(KeyCheck("read"))]
WriteKey = Annotated[Caller, Depends(KeyCheck("write"))]
IsAdmin = Annotated[bool, Depends(_is_admin)]


class QueryModel(Generic[M]):
    """A list route's query string read into `model` in one pydantic validation: what
    `Annotated[model, Query()]` does, for a fifth of its CPU.

    FastAPI reads a query model field by field in Python on every request, asking of each
    field's annotation whether it is a sequence: about 10 µs a field, 0.12 ms of the 0.3 ms a
    task list cost (bench/read_cpu.py). Here the parameters are one dict and one validation.
    Its errors are FastAPI's (RequestValidationError, `loc` ["query", field], answered 422).
    The route documents the parameters with `openapi_extra=query.openapi`: exactly those
    FastAPI writes for `Annotated[model, Query()]` (a test compares them).
    """

    def __init__(self, model: type[M]) -> None:
        self.model = model
        self.openapi: dict[str, Any] = {"parameters": query_parameters(model)}

    async def __call__(self, request: Request) -> M:
        # Like FastAPI, a repeated parameter's last value counts.
        try:
            return self.model.model_validate(dict(request.query_params))
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            located = [{**e, "loc": ("query", *e["loc"])} for e in errors]
            raise RequestValidationError(located) from None


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The OpenAPI parameters FastAPI documents for a route taking `Annotated[model, Query()]`
    (its own generator, on a one-route app: the same names, schemas and `$ref`s)."""

    async def documented(**_: Any) -> None: ...

    query = inspect.Parameter(
        "query", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[model, Query()]
    )
    documented.__signature__ = inspect.Signature([query])  # type: ignore[attr-defined]
    probe = FastAPI()
    probe.get("/")(documented)
    parameters: list[dict[str, Any]] = probe.openapi()["paths"]["/"]["get"]["parameters"]
    return parameters


RunId = Annotated[int, Path(ge=1, le=MAX_ID)]
TaskId = Annotated[int, Path(ge=1, le=MAX_ID)]
TrainingRunId = Annotated[int, Path(ge=1, le=MAX_ID)]
