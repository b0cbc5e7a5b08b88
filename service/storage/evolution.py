"""Evolved tasks' lineage: each task's chain of parents, its depth, a run's depth histogram.

A seed task (or any task with no parent) has depth 0; a task evolved from a depth-d task has
depth d + 1. One recursive CTE walks the chain on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session, aliased

from service.errors import NotFound
from service.storage.models import Task


@dataclass(frozen=True)
class Ancestor:
    """One step of a lineage: the task, its operation (None at the root) and its distance."""

    task_id: int
    operation: str | None
    distance: int


def lineage(session: Session, task_id: int) -> list[Ancestor]:
    """The task and its ancestors, nearest first (distance 0 is the task itself).

    Raises:
        NotFound: no such task.
    """
    chain = (
        select(Task.id, Task.parent_task_id, Task.operation, literal(0).label("distance"))
        .where(Task.id == task_id)
        .cte("chain", recursive=True)
    )
    parent = aliased(Task)
    chain = chain.union_all(
        select(parent.id, parent.parent_task_id, parent.operation, chain.c.distance + 1).join(
            chain, parent.id == chain.c.parent_task_id
        )
    )
    rows = session.execute(
        select(chain.c.id, chain.c.operation, chain.c.distance).order_by(chain.c.distance)
    ).all()
    if not rows:
        raise NotFound(f"no task {task_id}")
    return [Ancestor(r.id, r.operation, r.distance) for r in rows]


def lineage_depth(session: Session, task_id: int) -> int:
    """How many evolutions separate the task from its root (0 for a seed task).

    Raises:
        NotFound: no such task.
    """
    return lineage(session, task_id)[-1].distance


def depth_histogram(session: Session, run_id: int, *, accepted_only: bool = True) -> dict[int, int]:
    """Depth -> number of the run's tasks at that depth (accepted ones unless told otherwise)."""
    start = select(Task.id.label("task_id"), Task.parent_task_id, literal(0).label("depth")).where(
        Task.run_id == run_id
    )
    if accepted_only:
        start = start.where(Task.status == "accepted")
    walk = start.cte("walk", recursive=True)
    parent = aliased(Task)
    walk = walk.union_all(
        select(walk.c.task_id, parent.parent_task_id, walk.c.depth + 1).join(
            parent, parent.id == walk.c.parent_task_id
        )
    )
    per_task = (
        select(walk.c.task_id, func.max(walk.c.depth).label("depth"))
        .group_by(walk.c.task_id)
        .subquery()
    )
    rows = session.execute(
        select(per_task.c.depth, func.count()).group_by(per_task.c.depth).order_by(per_task.c.depth)
    ).all()
    return {int(d): int(n) for d, n in rows}
