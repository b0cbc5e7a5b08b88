"""/v1/eval-sets: held-out evaluation sets, for decontamination at export."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.api.deps import DatabaseDep, ReadKey, WriteKey, read
from service.api.errors import KEYED, error_responses
from service.api.schemas import EvalSetOut
from service.api.uploads import SET_NAME, SET_PATH_NAME, UPLOAD_BODY, read_upload
from service.eval_files import parse_eval_file
from service.storage.datasets import get_eval_set, import_eval_set, list_eval_sets

router = APIRouter(prefix="/v1/eval-sets", tags=["eval sets"], responses=error_responses(*KEYED))


@router.post(
    "",
    status_code=201,
    response_model=EvalSetOut,
    openapi_extra=UPLOAD_BODY,
    responses=error_responses(409, 413, 422),
)
async def upload_eval_set(
    request: Request, name: SET_NAME, database: DatabaseDep, _: WriteKey
) -> EvalSetOut:
    """Register an eval set (JSONL: id, instruction, instances); errors name the line."""
    items = parse_eval_file(await read_upload(request))
    with database.transaction() as session:
        return EvalSetOut.model_validate(import_eval_set(session, name=name, items=items))


@router.get("", response_model=list[EvalSetOut])
async def list_all(database: DatabaseDep, _: ReadKey) -> list[EvalSetOut]:
    return await read(
        database, lambda session: [EvalSetOut.model_validate(e) for e in list_eval_sets(session)]
    )


@router.get("/{name}", response_model=EvalSetOut, responses=error_responses(404, 422))
async def show(name: SET_PATH_NAME, database: DatabaseDep, _: ReadKey) -> EvalSetOut:
    return await read(
        database, lambda session: EvalSetOut.model_validate(get_eval_set(session, name))
    )
