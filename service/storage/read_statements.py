"""The SELECTs of the API's hot reads, for service.storage.readers.

Each is built from the models' tables with named bind parameters and compiled once per dialect
and shape (which filters, whether a cursor), then reused. Callers name the columns they want:
the API asks for exactly the fields of its response schemas.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Column, Dialect, Integer, Select, bindparam, exists, select, union_all
from sqlalchemy.orm import aliased

from service.storage.models import Generation, Instance, Run, Score, Task
from service.storage.readers import CompiledQuery

GENERATION_IDS = ("generation_id", "classification_generation_id", "instances_generation_id")


def _columns(model: Any, names: Sequence[str]) -> list[Column[Any]]:
    return [model.__table__.c[name] for name in names]


def _equal_to_params(stmt: Select[Any], model: Any, filters: Sequence[str]) -> Select[Any]:
    for name in filters:
        stmt = stmt.where(model.__table__.c[name] == bindparam(name))
    return stmt


def _paged(stmt: Select[Any], id_column: Any, after: bool) -> Select[Any]:
    """In id order after `:after` (when given), at most `:limit` rows."""
    if after:
        stmt = stmt.where(id_column > bindparam("after"))
    return stmt.order_by(id_column).limit(bindparam("limit", type_=Integer))


class ReadStatements:
    """The statements, compiled for one dialect on first use.

    Parameters: `run_id`, `task_id`; list pages take `limit`, `after` (an id) and one parameter
    per filter, named as its column (`min_score` with `scorer` for the score filter).
    """

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._compiled: dict[Any, CompiledQuery] = {}

    def _get(self, key: Any, build: Callable[[], Select[Any]]) -> CompiledQuery:
        query = self._compiled.get(key)
        if query is None:
            query = self._compiled[key] = CompiledQuery.of(build(), self.dialect)
        return query

    def run(self, columns: tuple[str, ...]) -> CompiledQuery:
        return self._get(
            ("run", columns),
            lambda: select(*_columns(Run, columns)).where(Run.id == bindparam("run_id")),
        )

    def run_page(
        self, columns: tuple[str, ...], filters: tuple[str, ...], after: bool
    ) -> CompiledQuery:
        return self._get(
            ("runs", columns, filters, after),
            lambda: _paged(
                _equal_to_params(select(*_columns(Run, columns)), Run, filters), Run.id, after
            ),
        )

    def task_page(
        self, columns: tuple[str, ...], filters: tuple[str, ...], min_score: bool, after: bool
    ) -> CompiledQuery:
        def build() -> Select[Any]:
            stmt = _equal_to_params(select(*_columns(Task, columns)), Task, filters)
            if min_score:
                stmt = stmt.where(
                    exists().where(
                        Score.task_id == Task.id,
                        Score.scorer == bindparam("scorer"),
                        Score.value >= bindparam("min_score"),
                    )
                )
            return _paged(stmt, Task.id, after)

        return self._get(("tasks", columns, filters, min_score, after), build)

    def task(self, columns: tuple[str, ...]) -> CompiledQuery:
        """The task's `columns`, its GENERATION_IDS and its nearest task's instruction (as
        `nearest_instruction`, None when it has none)."""

        def build() -> Select[Any]:
            nearest = aliased(Task)
            return (
                select(
                    *_columns(Task, columns),
                    *_columns(Task, [c for c in GENERATION_IDS if c not in columns]),
                    nearest.instruction.label("nearest_instruction"),
                )
                .outerjoin(nearest, nearest.id == Task.nearest_task_id)
                .where(Task.id == bindparam("task_id"))
            )

        return self._get(("task", columns), build)

    def _of_task(self, model: Any, columns: tuple[str, ...], order: Any) -> CompiledQuery:
        """The rows of `model` that belong to the task `task_id`, in `order`."""
        return self._get(
            (model.__tablename__, columns),
            lambda: (
                select(*_columns(model, columns))
                .where(model.task_id == bindparam("task_id"))
                .order_by(order)
            ),
        )

    def instances(self, columns: tuple[str, ...]) -> CompiledQuery:
        return self._of_task(Instance, columns, Instance.idx)

    def scores(self, columns: tuple[str, ...]) -> CompiledQuery:
        return self._of_task(Score, columns, Score.id)

    def generations(self, columns: tuple[str, ...]) -> CompiledQuery:
        """The generation calls the task `task_id` names (up to three)."""

        def build() -> Select[Any]:
            ids = union_all(
                *(
                    select(Task.__table__.c[name]).where(Task.id == bindparam("task_id"))
                    for name in GENERATION_IDS
                )
            )
            return select(*_columns(Generation, columns)).where(Generation.id.in_(ids))

        return self._get(("generations", columns), build)
