"""Reading tasks: filtered pages, and one task with its whole provenance.

The API reads on the asyncio engine, as plain rows of the columns it serves (`read_tasks`,
`read_task_detail`); code holding a sync Session reads ORM rows (`task_provenance`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Select, bindparam, exists, select
from sqlalchemy.orm import Session, aliased

from service.errors import InvalidInput, NotFound
from service.storage.models import Generation, Instance, ParseFailure, Score, Task
from service.storage.pages import Row, columns_of, dicts_of, paged, read_page, where_equal

GENERATION_IDS = ("generation_id", "classification_generation_id", "instances_generation_id")


@lru_cache(maxsize=256)
def _task_page(
    columns: tuple[str, ...],
    equal: tuple[str, ...],
    score_bounds: tuple[bool, bool],
    contains: bool,
    after: bool,
) -> Select[Any]:
    stmt = where_equal(select(*columns_of(Task, columns)), Task, equal)
    low, high = score_bounds
    if low or high:
        score = [Score.task_id == Task.id, Score.scorer == bindparam("scorer")]
        if low:
            score.append(Score.value >= bindparam("min_score"))
        if high:
            score.append(Score.value <= bindparam("max_score"))
        stmt = stmt.where(exists().where(*score))
    if contains:
        # ILIKE on PostgreSQL, lower() LIKE lower() on SQLite: case-insensitive substring.
        stmt = stmt.where(Task.instruction.ilike(bindparam("contains"), escape="\\"))
    return paged(stmt, Task.id, after)


def like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own `%`, `_` and backslashes literal."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def read_tasks(
    conn: Connection,
    *,
    columns: tuple[str, ...],
    equal: dict[str, Any],
    min_score: tuple[str, float] | None,
    cursor: str | None,
    limit: int,
    max_score: tuple[str, float] | None = None,
    contains: str | None = None,
) -> tuple[list[Row], str | None]:
    """A page of tasks in id order: rows of `columns` and the next page's cursor (or None).

    Args:
        equal: column name -> the value it must equal.
        min_score: (scorer, value): only tasks with a score of that scorer at least `value`.
        max_score: (scorer, value): ... at most `value` (with `min_score`, the same scorer
            and the same score row: a range).
        contains: only tasks whose instruction contains this text, ignoring case (a
            substring, not words: it finds text in any script, spaces or none).

    Raises:
        InvalidInput: a cursor this API did not hand out, or two scorers for one range.
    """
    values = dict(equal)
    if min_score is not None:
        values["scorer"], values["min_score"] = min_score
    if max_score is not None:
        if min_score is not None and min_score[0] != max_score[0]:
            raise InvalidInput("min_score and max_score compare one scorer's score")
        values["scorer"], values["max_score"] = max_score
    if contains:
        values["contains"] = like_pattern(contains)
    stmt = _task_page(
        columns,
        tuple(equal),
        (min_score is not None, max_score is not None),
        bool(contains),
        cursor is not None,
    )
    return read_page(conn, stmt, values, cursor, limit)


def read_tasks_by_id(conn: Connection, ids: list[int], *, columns: tuple[str, ...]) -> list[Row]:
    """The rows (`columns`) of the tasks `ids` that exist, in id order."""
    if not ids:
        return []
    stmt = (
        select(*columns_of(Task, columns))
        .where(Task.id.in_(bindparam("ids", expanding=True)))
        .order_by(Task.id)
    )
    return dicts_of(conn.execute(stmt, {"ids": ids}))


@dataclass
class TaskDetailRows:
    """A task's row (its columns asked for, GENERATION_IDS, `nearest_instruction`) and the
    rows of its instances (by idx), scores (by id) and generation calls (by id)."""

    task: Row
    instances: list[Row]
    scores: list[Row]
    generations: dict[str, Row]


@lru_cache(maxsize=16)
def _task_with_nearest(columns: tuple[str, ...]) -> Select[Any]:
    nearest = aliased(Task)
    return (
        select(
            *columns_of(Task, columns),
            *columns_of(Task, [c for c in GENERATION_IDS if c not in columns]),
            nearest.instruction.label("nearest_instruction"),
        )
        .outerjoin(nearest, nearest.id == Task.nearest_task_id)
        .where(Task.id == bindparam("task_id"))
    )


@lru_cache(maxsize=16)
def _of_task(model: Any, columns: tuple[str, ...], order: str) -> Select[Any]:
    return (
        select(*columns_of(model, columns))
        .where(model.task_id == bindparam("task_id"))
        .order_by(model.__table__.c[order])
    )


@lru_cache(maxsize=16)
def _generations(columns: tuple[str, ...]) -> Select[Any]:
    return select(*columns_of(Generation, columns)).where(
        Generation.id.in_(bindparam("ids", expanding=True))
    )


def read_task_detail(
    conn: Connection,
    task_id: int,
    *,
    columns: tuple[str, ...],
    instance_columns: tuple[str, ...],
    score_columns: tuple[str, ...],
    generation_columns: tuple[str, ...],
) -> TaskDetailRows:
    """One task and its provenance, read statement by statement without a snapshot: a task
    and its rows are written in the one transaction that makes the task visible and never
    change afterwards.

    Raises:
        NotFound: no task `task_id`.
    """
    key = {"task_id": task_id}
    task = conn.execute(_task_with_nearest(columns), key).mappings().first()
    if task is None:
        raise NotFound(f"no task {task_id}")
    instances = conn.execute(_of_task(Instance, instance_columns, "idx"), key)
    scores = conn.execute(_of_task(Score, score_columns, "id"), key)
    ids = [task[c] for c in GENERATION_IDS if task[c]]
    generations = (
        conn.execute(_generations(generation_columns), {"ids": ids}).mappings() if ids else ()
    )
    return TaskDetailRows(
        task=dict(task),
        instances=dicts_of(instances),
        scores=dicts_of(scores),
        generations={g["id"]: dict(g) for g in generations},
    )


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


@dataclass(frozen=True)
class BatchResult:
    """What a finished batch run produced: its tasks' ids and its parse failures, in order."""

    task_ids: list[int]
    parse_failures: list[dict[str, Any]]


def batch_result(session: Session, run_id: int, *, excerpt_chars: int = 500) -> BatchResult:
    """The tasks (id order) and parse failures of a run, as `/v1/generate` answers them."""
    task_ids = session.scalars(select(Task.id).where(Task.run_id == run_id).order_by(Task.id))
    failures = session.execute(
        select(ParseFailure.generation_id, ParseFailure.stage, ParseFailure.reason)
        .add_columns(ParseFailure.excerpt)
        .where(ParseFailure.run_id == run_id)
        .order_by(ParseFailure.id)
    )
    return BatchResult(
        list(task_ids),
        [
            {"generation_id": g, "stage": st, "reason": r, "excerpt": e[:excerpt_chars]}
            for g, st, r, e in failures
        ],
    )
