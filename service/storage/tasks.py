"""Reading tasks: list cursors, and one task with its whole provenance as ORM rows."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from sqlalchemy import select
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
