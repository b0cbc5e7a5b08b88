"""The candidate tasks of an export spec: counted, or streamed out of the database with
instances and scores attached.

Everything is read with `yield_per` (server-side cursors on PostgreSQL), so memory stays flat in
the number of tasks. Tasks and their scores come from two ordered streams merged by task id.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Result, and_, false, func, or_, select
from sqlalchemy.orm import Session

from service.errors import NotFound
from service.statuses import TaskStatus
from service.storage.models import Instance, Run, Score, SeedSet, Task

if TYPE_CHECKING:  # the spec is read, never imported: storage does not depend on the export
    from service.export.spec import ExportSpec

BATCH_ROWS = 5000


@dataclass(slots=True)
class InstanceRow:
    """An accepted instance of a selected task."""

    id: int
    idx: int
    input: str
    output: str


@dataclass(slots=True)
class TaskRow:
    """A candidate task with its accepted instances and its scores, as read from the database."""

    id: int
    origin: str
    run_id: int | None
    seed_set_id: int
    instruction: str
    is_classification: bool | None
    turns: list[dict[str, Any]] | None
    instances: list[InstanceRow] = field(default_factory=list)
    # (instance_id or None for a task-level score, scorer, scorer_version, value), oldest first.
    scores: list[tuple[int | None, str, str, float | None]] = field(default_factory=list)

    @property
    def task_type(self) -> str:
        return "classification" if self.is_classification else "generation"


def resolve_seed_sets(session: Session, names: list[str] | None) -> list[int] | None:
    """Seed set ids for names (None stays None).

    Raises:
        NotFound: a name is not a seed set.
    """
    if names is None:
        return None
    rows = session.execute(select(SeedSet.name, SeedSet.id).where(SeedSet.name.in_(names)))
    found = {name: id_ for name, id_ in rows}
    missing = sorted(set(names) - set(found))
    if missing:
        raise NotFound(f"no seed set {', '.join(map(repr, missing))}")
    return sorted(found[n] for n in set(names))


def check_runs(session: Session, runs: list[int] | None) -> None:
    """Raises NotFound when a run id of the spec does not exist."""
    if not runs:
        return
    found = set(session.scalars(select(Run.id).where(Run.id.in_(runs))))
    missing = sorted(set(runs) - found)
    if missing:
        raise NotFound(f"no run {', '.join(map(str, missing))}")


def task_condition(session: Session, spec: ExportSpec) -> ColumnElement[bool]:
    """The WHERE clause picking a spec's candidate tasks (sources and statuses)."""
    seed_set_ids = resolve_seed_sets(session, spec.seed_sets)
    machine: list[ColumnElement[bool]] = [Task.origin == "machine"]
    if spec.runs is not None:
        machine.append(Task.run_id.in_(spec.runs) if spec.runs else false())
    if seed_set_ids is not None:
        machine.append(Task.seed_set_id.in_(seed_set_ids))
    sources: list[ColumnElement[bool]] = [and_(*machine)]
    if spec.include_seeds:
        seeds: list[ColumnElement[bool]] = [Task.origin == "seed"]
        if seed_set_ids is not None:
            seeds.append(Task.seed_set_id.in_(seed_set_ids))
        elif spec.runs is not None:
            run_sets = select(Run.seed_set_id).where(Run.id.in_(spec.runs))
            seeds.append(Task.seed_set_id.in_(run_sets))
        sources.append(and_(*seeds))
    return and_(Task.status.in_(spec.statuses), or_(*sources))


def count_candidates(session: Session, spec: ExportSpec) -> int:
    """How many tasks the spec's filters let through (before decontamination and scores)."""
    stmt = select(func.count()).select_from(Task).where(task_condition(session, spec))
    return session.scalar(stmt) or 0


def _task_rows(session: Session, where: ColumnElement[bool]) -> Result[Any]:
    stmt = (
        select(
            Task.id,
            Task.origin,
            Task.run_id,
            Task.seed_set_id,
            Task.instruction,
            Task.is_classification,
            Task.turns,
            Instance.id,
            Instance.idx,
            Instance.input,
            Instance.output,
        )
        .outerjoin(
            Instance, and_(Instance.task_id == Task.id, Instance.status == TaskStatus.ACCEPTED)
        )
        .where(where)
        .order_by(Task.id, Instance.idx)
        .execution_options(yield_per=BATCH_ROWS)
    )
    # Core execution: rows skip the ORM's loading machinery, the hot path of an export.
    return session.connection().execute(stmt)


def _score_rows(session: Session, where: ColumnElement[bool]) -> Result[Any]:
    stmt = (
        select(Score.task_id, Score.instance_id, Score.scorer, Score.scorer_version, Score.value)
        .where(Score.task_id.in_(select(Task.id).where(where)))
        .order_by(Score.task_id, Score.id)
        .execution_options(yield_per=BATCH_ROWS)
    )
    return session.connection().execute(stmt)


def _grouped_tasks(rows: Iterable[Any]) -> Iterator[TaskRow]:
    current: TaskRow | None = None
    for tid, origin, run_id, ss_id, instr, is_cls, turns, iid, idx, inp, out in rows:
        if current is None or current.id != tid:
            if current is not None:
                yield current
            current = TaskRow(tid, origin, run_id, ss_id, instr, is_cls, turns)
        if iid is not None:
            current.instances.append(InstanceRow(iid, idx, inp, out))
    if current is not None:
        yield current


@contextmanager
def stream_tasks(session: Session, spec: ExportSpec) -> Iterator[Iterator[TaskRow]]:
    """Open the spec's candidate tasks as a stream, in id order, with instances and scores.

    A context manager, so the database cursors (server-side on PostgreSQL) are closed even
    when the consumer stops early or fails.

    Args:
        session: An open session; the caller's transaction gives one consistent snapshot.
        spec: The export spec.

    Raises:
        NotFound: the spec names an unknown seed set.
    """
    where = task_condition(session, spec)
    scores = _score_rows(session, where)
    try:
        tasks = _task_rows(session, where)
        try:
            yield _merge_scores(_grouped_tasks(tasks), iter(scores))
        finally:
            tasks.close()
    finally:
        scores.close()


def _merge_scores(tasks: Iterator[TaskRow], scores: Iterator[Any]) -> Iterator[TaskRow]:
    pending = next(scores, None)
    for task in tasks:
        while pending is not None and pending[0] < task.id:
            pending = next(scores, None)
        while pending is not None and pending[0] == task.id:
            task.scores.append((pending[1], pending[2], pending[3], pending[4]))
            pending = next(scores, None)
        yield task
