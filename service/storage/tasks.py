"""Reading tasks: filtered, cursor-paginated lists and one task with its whole provenance."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import Session

from service.errors import InvalidInput, NotFound
from service.storage.models import Generation, Instance, Score, Task


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Raises InvalidInput for a cursor we did not hand out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, value = raw.split(":", 1)
        if kind != "id":
            raise ValueError(kind)
        last_id = int(value)
        if not 0 <= last_id < 2**31:
            raise ValueError(value)
        return last_id
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("cursor: not a cursor this API handed out") from None


def page_by_id(
    session: Session, stmt: Select[Any], id_column: Any, *, limit: int, cursor: str | None
) -> tuple[list[Any], str | None]:
    """One page of `stmt` in id order, and the cursor of the next page (None at the end)."""
    stmt = stmt.order_by(id_column).limit(limit + 1)
    if cursor:
        stmt = stmt.where(id_column > decode_cursor(cursor))
    rows = list(session.scalars(stmt))
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


@dataclass(frozen=True)
class TaskFilter:
    run_id: int | None = None
    seed_set_id: int | None = None
    status: str | None = None
    reject_rule: str | None = None
    origin: str | None = None
    is_classification: bool | None = None
    scorer: str | None = None
    min_score: float | None = None


def list_tasks(
    session: Session, flt: TaskFilter, *, limit: int, cursor: str | None
) -> tuple[list[Task], str | None]:
    """One page of tasks in id order, and the cursor of the next page (None at the end)."""
    stmt = select(Task)
    for column, value in (
        (Task.run_id, flt.run_id),
        (Task.seed_set_id, flt.seed_set_id),
        (Task.status, flt.status),
        (Task.reject_rule, flt.reject_rule),
        (Task.origin, flt.origin),
        (Task.is_classification, flt.is_classification),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if flt.min_score is not None:
        if not flt.scorer:
            raise InvalidInput("min_score needs scorer: which score to compare")
        stmt = stmt.where(
            exists().where(
                Score.task_id == Task.id, Score.scorer == flt.scorer, Score.value >= flt.min_score
            )
        )
    return page_by_id(session, stmt, Task.id, limit=limit, cursor=cursor)


@dataclass
class TaskProvenance:
    task: Task
    instances: list[Instance]
    scores: list[Score]
    generation: Generation | None
    classification_generation: Generation | None
    instances_generation: Generation | None
    nearest: Task | None


def task_provenance(session: Session, task_id: int) -> TaskProvenance:
    """Raises NotFound."""
    task = session.get(Task, task_id)
    if task is None:
        raise NotFound(f"no task {task_id}")
    return provenance_of(session, task)


def provenance_of(session: Session, task: Task) -> TaskProvenance:
    def gen(gid: str | None) -> Generation | None:
        return session.get(Generation, gid) if gid else None

    return TaskProvenance(
        task=task,
        instances=list(
            session.scalars(
                select(Instance).where(Instance.task_id == task.id).order_by(Instance.idx)
            )
        ),
        scores=list(
            session.scalars(select(Score).where(Score.task_id == task.id).order_by(Score.id))
        ),
        generation=gen(task.generation_id),
        classification_generation=gen(task.classification_generation_id),
        instances_generation=gen(task.instances_generation_id),
        nearest=session.get(Task, task.nearest_task_id) if task.nearest_task_id else None,
    )
