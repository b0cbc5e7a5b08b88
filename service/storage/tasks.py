"""Reading tasks: filtered pages, and one task with its whole provenance.

The API reads on the asyncio engine, as plain rows of the columns it serves (`read_tasks`,
`read_task_details`); code holding a sync Session reads ORM rows (`task_provenance`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    Float,
    Select,
    bindparam,
    case,
    exists,
    func,
    literal_column,
    null,
    select,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.selectable import ScalarSelect

from service.errors import InvalidInput, NotFound
from service.storage.models import Generation, Instance, ParseFailure, Score, Task
from service.storage.pages import Row, columns_of, dicts_of, id_in, paged, read_page, where_equal
from service.storage.search import instruction_contains, search_kind, search_values

GENERATION_IDS = ("generation_id", "classification_generation_id", "instances_generation_id")


@lru_cache(maxsize=256)
def _task_page(
    columns: tuple[str, ...],
    equal: tuple[str, ...],
    score_bounds: tuple[bool, bool],
    search: str | None,
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
    if search is not None:
        stmt = stmt.where(instruction_contains(search, Task.instruction, Task.id))
    return paged(stmt, Task.id, after)


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
            substring, not words: it finds text in any script, spaces or none; every
            character literal), looked up in the search index (`service.storage.search`).

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
    search = None
    if contains:
        search = search_kind(contains, conn.dialect.name)
        values.update(search_values(contains, search))
    stmt = _task_page(
        columns,
        tuple(equal),
        (min_score is not None, max_score is not None),
        search,
        cursor is not None,
    )
    return read_page(conn, stmt, values, cursor, limit)


def read_tasks_by_id(conn: Connection, ids: list[int], *, columns: tuple[str, ...]) -> list[Row]:
    """The rows (`columns`) of the tasks `ids` that exist, in id order."""
    if not ids:
        return []
    stmt = (
        select(*columns_of(Task, columns))
        .where(id_in(Task.id, conn.dialect.name))
        .order_by(Task.id)
    )
    return dicts_of(conn.execute(stmt, {"ids": ids}))


def _json_value(column: Any, dialect: str) -> Any:
    """`column` as its JSON value inside a SQLite json_object (PostgreSQL maps types itself)."""
    if dialect == "postgresql":
        return column
    value: Any
    if isinstance(column.type, Boolean):
        value = case((column, func.json("true")), else_=func.json("false"))
    elif isinstance(column.type, Float):
        # SQLite's JSON writes a REAL with 15 significant digits; 17 give back the same double.
        value = func.json(func.printf("%!.17g", column))
    elif isinstance(column.type, JSON):
        value = func.json(column)  # stored as JSON text: nest it, not a string of it
    else:
        return column
    return case((column.is_(None), null()), else_=value)


def _json_rows(
    model: Any, names: Sequence[str], where: Any, order_by: Any, dialect: str
) -> ScalarSelect[Any]:
    """The rows of `model` matching `where` (which may name the enclosing statement's tables)
    as one JSON array of objects keyed by column name, in `order_by` order; `[]` when none."""
    # Keys as SQL literals, not bound values: they are our column names, and ~40 bound keys
    # would cost the server a parameter each.
    pairs: list[Any] = []
    for c in columns_of(model, names):
        pairs += (literal_column(f"'{c.key}'"), _json_value(c, dialect))
    if dialect == "postgresql":
        agg = func.json_agg(aggregate_order_by(func.json_build_object(*pairs), order_by))
        rows = select(func.coalesce(agg, func.json_build_array(), type_=JSON)).where(where)
    else:
        # SQLite before 3.44 has no ORDER BY inside an aggregate: it aggregates a subquery's
        # rows in the subquery's order.
        ordered = (
            select(func.json_object(*pairs).label("o"))
            .where(where)
            .order_by(order_by)
            .correlate(Task)
        )
        o = ordered.subquery().c.o
        rows = select(func.coalesce(func.json_group_array(func.json(o)), "[]", type_=JSON))
    return rows.scalar_subquery()


@lru_cache(maxsize=16)
def _task_details(
    columns: tuple[str, ...],
    instance_columns: tuple[str, ...],
    score_columns: tuple[str, ...],
    generation_columns: tuple[str, ...],
    dialect: str,
) -> Select[Any]:
    nearest = aliased(Task)
    generation_ids = [Task.__table__.c[c] for c in GENERATION_IDS]
    # A subquery, not an outer join: PostgreSQL hashed the join, scanning every task for each
    # batch (the scan grows with the table); this is a primary-key lookup per task with a
    # nearest one. A batch of 50 at 5k tasks: 2.2 ms of execution before, 1.1 ms now.
    nearest_instruction = (
        select(nearest.instruction).where(nearest.id == Task.nearest_task_id).scalar_subquery()
    )
    return select(
        *columns_of(Task, columns),
        *columns_of(Task, [c for c in GENERATION_IDS if c not in columns]),
        nearest_instruction.label("nearest_instruction"),
        _json_rows(
            Instance, instance_columns, Instance.task_id == Task.id, Instance.idx, dialect
        ).label("instances"),
        _json_rows(Score, score_columns, Score.task_id == Task.id, Score.id, dialect).label(
            "scores"
        ),
        _json_rows(
            Generation,
            generation_columns,
            Generation.id.in_(generation_ids),
            Generation.id,
            dialect,
        ).label("generations"),
    ).where(id_in(Task.id, dialect))


def read_task_details(
    conn: Connection,
    ids: list[int],
    *,
    columns: tuple[str, ...],
    instance_columns: tuple[str, ...],
    score_columns: tuple[str, ...],
    generation_columns: tuple[str, ...],
) -> dict[int, Row]:
    """The tasks whose id is in `ids`, each with its whole provenance, in one statement for
    any number of ids: id -> the task's `columns` (which must include `id`), its
    GENERATION_IDS, `nearest_instruction` (None without a nearest task) and its `instances`
    (by idx), `scores` (by id) and `generations` (the calls it names) as lists of rows of the
    columns asked for, built by the database as JSON arrays. Ids with no task are absent.
    """
    stmt = _task_details(
        columns, instance_columns, score_columns, generation_columns, conn.dialect.name
    )
    return {row["id"]: row for row in dicts_of(conn.execute(stmt, {"ids": ids}))}


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
