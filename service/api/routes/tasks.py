"""/v1/tasks: filtered lists with cursor pagination, and one task with its whole provenance."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from service.api import reads
from service.api.deps import QueryModel, ReadKey, TaskId
from service.api.errors import KEYED, error_responses
from service.api.reads import TASK_COLUMNS, json_response, row_of, task_detail_document
from service.api.schemas import (
    GenerationOut,
    InstanceOut,
    Page,
    ScoreOut,
    TaskDetail,
    TaskOut,
    TaskQuery,
)
from service.storage.db import Session
from service.storage.tasks import GENERATION_IDS, TaskProvenance, task_provenance

router = APIRouter(prefix="/v1/tasks", tags=["tasks"], responses=error_responses(*KEYED))


def task_detail(p: TaskProvenance) -> TaskDetail:
    """The detail document of a task held as ORM rows (routes that just wrote it)."""
    generations = {
        g.id: row_of(g, GenerationOut)
        for g in (p.generation, p.classification_generation, p.instances_generation)
        if g is not None
    }
    columns = (*TASK_COLUMNS, *GENERATION_IDS)
    document = task_detail_document(
        row_of(p.task, columns),
        [row_of(i, InstanceOut) for i in p.instances],
        [row_of(s, ScoreOut) for s in p.scores],
        generations,
        p.nearest.instruction if p.nearest is not None else None,
    )
    return TaskDetail.model_validate(document)


TASK_QUERY = QueryModel(TaskQuery)


@router.get(
    "",
    response_model=Page[TaskOut],
    responses=error_responses(422),
    openapi_extra=TASK_QUERY.openapi,
)
async def list_(caller: ReadKey, query: Annotated[TaskQuery, Depends(TASK_QUERY)]) -> Response:
    """Tasks in id order; pass `next_cursor` back as `cursor` for the next page."""
    return json_response(await reads.tasks(caller.engine, query))


@router.get("/{task_id}", response_model=TaskDetail, responses=error_responses(404, 422))
async def show(task_id: TaskId, caller: ReadKey) -> Response:
    """One task: instances, scores, the generation calls that made it, its nearest duplicate.

    Read statement by statement without a snapshot: a task and its rows never change once the
    iteration that wrote them commits.
    """
    return json_response(await reads.task(caller.engine, task_id))


def details_for(session: Session, task_ids: list[int]) -> list[TaskDetail]:
    return [task_detail(task_provenance(session, t)) for t in task_ids]
