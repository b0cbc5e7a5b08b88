"""The SELECTs of the API's hot reads, for service.storage.readers.

Each is built from the models' tables with named bind parameters and compiled once per dialect
and shape (which filters, whether a cursor), then reused. Callers name the columns they want:
the API asks for exactly the fields of its response schemas.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Dialect,
    Integer,
    Select,
    any_,
    bindparam,
    exists,
    func,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.selectable import ScalarSelect

from service.storage.models import ApiKey, Generation, Instance, Run, Score, Task
from service.storage.readers import CompiledQuery

GENERATION_IDS = ("generation_id", "classification_generation_id", "instances_generation_id")


def _columns(model: Any, names: Sequence[str]) -> list[Column[Any]]:
    return [model.__table__.c[name] for name in names]


def _equal_to_params(stmt: Select[Any], model: Any, filters: Sequence[str]) -> Select[Any]:
    for name in filters:
        stmt = stmt.where(model.__table__.c[name] == bindparam(name))
    return stmt


def _ids() -> BindParameter[Any]:
    return bindparam("ids", type_=ARRAY(Integer))


def _json_rows(
    model: Any, names: Sequence[str], where: Any, order_by: Any = None
) -> ScalarSelect[Any]:
    """PostgreSQL: the rows of `model` matching `where` (which may name the enclosing
    statement's tables) as one JSON array of objects keyed by column name, `[]` when none."""
    # Keys as SQL literals, not bound values: they are our column names, and a statement with
    # ~40 bound keys costs the server a parameter each.
    pairs = (x for c in _columns(model, names) for x in (literal_column(f"'{c.key}'"), c))
    obj = func.json_build_object(*pairs)
    agg = func.json_agg(aggregate_order_by(obj, order_by) if order_by is not None else obj)
    return (
        select(func.coalesce(agg, func.json_build_array(type_=JSON))).where(where).scalar_subquery()
    )


def _paged(stmt: Select[Any], id_column: Any, after: bool) -> Select[Any]:
    """In id order after `:after` (when given), at most `:limit` rows."""
    if after:
        stmt = stmt.where(id_column > bindparam("after"))
    return stmt.order_by(id_column).limit(bindparam("limit", type_=Integer))


class ReadStatements:
    """The statements, compiled for one dialect on first use.

    Parameters: `run_id`, `task_id`, `key_hash`; list pages take `limit`, `after` (an id) and
    one parameter per filter, named as its column (`min_score` with `scorer` for the score
    filter).
    """

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._compiled: dict[Any, CompiledQuery] = {}

    def _get(self, key: Any, build: Callable[[], Select[Any]]) -> CompiledQuery:
        query = self._compiled.get(key)
        if query is None:
            query = self._compiled[key] = CompiledQuery.of(build(), self.dialect)
        return query

    def api_key(self, columns: tuple[str, ...]) -> CompiledQuery:
        """The API key whose hash is `key_hash`, revoked or not."""
        return self._get(
            ("api_key", columns),
            lambda: select(*_columns(ApiKey, columns)).where(
                ApiKey.key_hash == bindparam("key_hash")
            ),
        )

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

    @property
    def reads_many_at_once(self) -> bool:
        """Whether `runs_by_id` and `task_details_by_id` exist (PostgreSQL): one statement for
        any number of ids. Elsewhere, read each id with `run` or the four task statements."""
        return self.dialect.name == "postgresql"

    def _task(self, columns: tuple[str, ...]) -> Select[Any]:
        nearest = aliased(Task)
        return select(
            *_columns(Task, columns),
            *_columns(Task, [c for c in GENERATION_IDS if c not in columns]),
            nearest.instruction.label("nearest_instruction"),
        ).outerjoin(nearest, nearest.id == Task.nearest_task_id)

    def task(self, columns: tuple[str, ...]) -> CompiledQuery:
        """The task's `columns`, its GENERATION_IDS and its nearest task's instruction (as
        `nearest_instruction`, None when it has none)."""
        return self._get(
            ("task", columns),
            lambda: self._task(columns).where(Task.id == bindparam("task_id")),
        )

    def runs_by_id(self, columns: tuple[str, ...]) -> CompiledQuery:
        """PostgreSQL: the runs whose id is in the array `ids`."""
        return self._get(
            ("runs_by_id", columns),
            lambda: select(*_columns(Run, columns)).where(Run.id == any_(_ids())),
        )

    def task_details_by_id(
        self,
        columns: tuple[str, ...],
        instance_columns: tuple[str, ...],
        score_columns: tuple[str, ...],
        generation_columns: tuple[str, ...],
    ) -> CompiledQuery:
        """PostgreSQL: `task` for every id in the array `ids`, plus `instances`, `scores` and
        `generations`: the rows of the three statements below as JSON arrays of objects,
        built by the server in the same statement."""

        def build() -> Select[Any]:
            generation_ids = [Task.__table__.c[c] for c in GENERATION_IDS]
            return (
                self._task(columns)
                .add_columns(
                    _json_rows(
                        Instance, instance_columns, Instance.task_id == Task.id, Instance.idx
                    ).label("instances"),
                    _json_rows(Score, score_columns, Score.task_id == Task.id, Score.id).label(
                        "scores"
                    ),
                    _json_rows(
                        Generation, generation_columns, Generation.id.in_(generation_ids)
                    ).label("generations"),
                )
                .where(Task.id == any_(_ids()))
            )

        key = ("task_details_by_id", columns, instance_columns, score_columns, generation_columns)
        return self._get(key, build)

    @staticmethod
    def _of_task_select(model: Any, columns: tuple[str, ...], order: str) -> Select[Any]:
        """The rows of `model` that belong to the task `task_id`, in `order`."""
        return (
            select(*_columns(model, columns))
            .where(model.task_id == bindparam("task_id"))
            .order_by(model.__table__.c[order])
        )

    @staticmethod
    def _generation_ids() -> Any:
        """The ids of the generation calls the task `task_id` names (up to three)."""
        return union_all(
            *(
                select(Task.__table__.c[name]).where(Task.id == bindparam("task_id"))
                for name in GENERATION_IDS
            )
        )

    def instances(self, columns: tuple[str, ...]) -> CompiledQuery:
        return self._get(
            ("instances", columns), lambda: self._of_task_select(Instance, columns, "idx")
        )

    def scores(self, columns: tuple[str, ...]) -> CompiledQuery:
        return self._get(("scores", columns), lambda: self._of_task_select(Score, columns, "id"))

    def generations(self, columns: tuple[str, ...]) -> CompiledQuery:
        return self._get(
            ("generations", columns),
            lambda: select(*_columns(Generation, columns)).where(
                Generation.id.in_(self._generation_ids())
            ),
        )
