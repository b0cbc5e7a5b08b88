"""/v1/tasks: filtered lists with cursor pagination, and one task with its whole provenance."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from service.api.deps import MAX_ID, DatabaseDep, ReadKey, TaskId, read
from service.api.schemas import (
    GenerationOut,
    InstanceOut,
    NearestOut,
    Page,
    ScoreOut,
    TaskDetail,
    TaskOut,
)
from service.storage.tasks import TaskFilter, TaskProvenance, list_tasks, task_provenance

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])
OptId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


def task_detail(p: TaskProvenance) -> TaskDetail:
    def gen(g: object) -> GenerationOut | None:
        return GenerationOut.model_validate(g) if g is not None else None

    nearest = (
        NearestOut(id=p.nearest.id, instruction=p.nearest.instruction, similarity=p.task.similarity)
        if p.nearest is not None
        else None
    )
    return TaskDetail(
        **TaskOut.model_validate(p.task).model_dump(),
        instances=[InstanceOut.model_validate(i) for i in p.instances],
        scores=[ScoreOut.model_validate(s) for s in p.scores],
        generation=gen(p.generation),
        classification_generation=gen(p.classification_generation),
        instances_generation=gen(p.instances_generation),
        nearest=nearest,
    )


@router.get("", response_model=Page[TaskOut])
async def list_(
    database: DatabaseDep,
    _: ReadKey,
    run_id: OptId = None,
    seed_set_id: OptId = None,
    status: Literal["accepted", "rejected"] | None = None,
    reject_rule: Annotated[str | None, Query(max_length=50, pattern=r"^[a-z_]+$")] = None,
    origin: Literal["seed", "machine"] | None = None,
    is_classification: bool | None = None,
    scorer: Annotated[str | None, Query(max_length=50, pattern=r"^[a-z_]+$")] = None,
    min_score: Annotated[float | None, Query(ge=-1e9, le=1e9)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[TaskOut]:
    """Tasks in id order; pass `next_cursor` back as `cursor` for the next page."""
    flt = TaskFilter(
        run_id=run_id,
        seed_set_id=seed_set_id,
        status=status,
        reject_rule=reject_rule,
        origin=origin,
        is_classification=is_classification,
        scorer=scorer,
        min_score=min_score,
    )

    def query(session: Session) -> Page[TaskOut]:
        rows, nxt = list_tasks(session, flt, limit=limit, cursor=cursor)
        return Page[TaskOut](items=[TaskOut.model_validate(t) for t in rows], next_cursor=nxt)

    return await read(database, query)


@router.get("/{task_id}", response_model=TaskDetail)
async def show(task_id: TaskId, database: DatabaseDep, _: ReadKey) -> TaskDetail:
    """One task: instances, scores, the generation calls that made it, its nearest duplicate.

    Read statement by statement without a snapshot: a task and its rows never change once the
    iteration that wrote them commits.
    """
    return await read(database, lambda session: task_detail(task_provenance(session, task_id)))


def details_for(session: Session, task_ids: list[int]) -> list[TaskDetail]:
    return [task_detail(task_provenance(session, t)) for t in task_ids]
