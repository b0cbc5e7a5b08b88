"""/v1/seed-sets: upload, list, show."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from service.api.deps import DatabaseDep, ReadKey, WriteKey, read
from service.api.errors import KEYED, error_responses
from service.api.schemas import SeedSetCreated, SeedSetOut
from service.api.uploads import SET_NAME, SET_PATH_NAME, UPLOAD_BODY, read_upload
from service.seed_files import parse_seed_file
from service.storage.seeds import get_seed_set, import_seed_set, list_seed_sets

router = APIRouter(prefix="/v1/seed-sets", tags=["seed sets"], responses=error_responses(*KEYED))


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
    request: Request, response: Response, name: SET_NAME, database: DatabaseDep, _: WriteKey
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
async def show(name: SET_PATH_NAME, database: DatabaseDep, _: ReadKey) -> SeedSetOut:
    return await read(
        database, lambda session: SeedSetOut.model_validate(get_seed_set(session, name=name))
    )
