"""/v1/seed-sets: upload, list, show."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam

from service.api.deps import DatabaseDep, ReadKey, WriteKey, read
from service.api.errors import KEYED, error_responses
from service.api.schemas import SeedSetCreated, SeedSetOut
from service.api.uploads import UPLOAD_BODY, read_upload
from service.seed_files import parse_seed_file
from service.storage.seeds import get_seed_set, import_seed_set, list_seed_sets

router = APIRouter(prefix="/v1/seed-sets", tags=["seed sets"], responses=error_responses(*KEYED))
NAME_PATTERN = r"^[A-Za-z0-9_.\-]+$"
NAME = Annotated[str, Query(min_length=1, max_length=200, pattern=NAME_PATTERN)]
# Looked up by the rule names are created with, so U+0000 or a 10 kB name is a 422 on every
# database (PostgreSQL refused NUL with its own error, SQLite answered 404).
PATH_NAME = Annotated[str, PathParam(min_length=1, max_length=200, pattern=NAME_PATTERN)]


@router.post(
    "",
    status_code=201,
    response_model=SeedSetCreated,
    openapi_extra=UPLOAD_BODY,
    responses={
        200: {"model": SeedSetCreated, "description": "Already imported"},
        **error_responses(413, 422),
    },
)
async def upload_seed_set(
    request: Request, response: Response, name: NAME, database: DatabaseDep, _: WriteKey
) -> SeedSetCreated:
    """Import a seed file (Self-Instruct or Alpaca JSONL), all or nothing; errors name the line."""
    seed_file = parse_seed_file(await read_upload(request))
    with database.transaction() as session:
        outcome = import_seed_set(session, name=name, seed_file=seed_file)
        out = SeedSetCreated.model_validate(
            {**SeedSetOut.model_validate(outcome.seed_set).model_dump(), "created": outcome.created}
        )
    if not outcome.created:
        response.status_code = 200
    return out


@router.get("", response_model=list[SeedSetOut])
async def list_all(database: DatabaseDep, _: ReadKey) -> list[SeedSetOut]:
    return await read(
        database, lambda session: [SeedSetOut.model_validate(s) for s in list_seed_sets(session)]
    )


@router.get("/{name}", response_model=SeedSetOut, responses=error_responses(404, 422))
async def show(name: PATH_NAME, database: DatabaseDep, _: ReadKey) -> SeedSetOut:
    return await read(
        database, lambda session: SeedSetOut.model_validate(get_seed_set(session, name=name))
    )
