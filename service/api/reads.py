"""The hot read routes' documents: runs and tasks, list and show, read on the asyncio engine.

Each document is built as plain dicts from storage rows of exactly the columns the response
schema names and rendered by orjson in one call. The pydantic models in service.api.schemas
stay the contract (OpenAPI, and tests check every document against them); validating rows we
wrote ourselves again on every read cost more than the rest of a request.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Mapping
from typing import Any, cast
from weakref import WeakKeyDictionary

import orjson
from aiodataloader import DataLoader
from fastapi import Response
from pydantic import BaseModel

from service.api.schemas import (
    GenerationOut,
    InstanceOut,
    RunOut,
    RunQuery,
    ScoreOut,
    TaskOut,
    TaskQuery,
)
from service.errors import InvalidInput, NotFound
from service.statuses import TERMINAL_RUN_STATUSES, RunStatus
from service.storage import runs as run_store
from service.storage import tasks as task_store
from service.storage.db import AsyncEngine, Connection, read_async
from service.storage.pages import Row

_RUN_COUNTERS = (
    "generated_count",
    "accepted_count",
    "rejected_count",
    "parse_failure_count",
    "rejected_by_rule",
    "prompt_tokens",
    "completion_tokens",
    "inference_seconds",
    "wall_seconds",
)
RUN_COLUMNS = tuple(f for f in RunOut.model_fields if f != "progress") + _RUN_COUNTERS
TASK_COLUMNS = tuple(TaskOut.model_fields)
_INSTANCE_COLUMNS = tuple(InstanceOut.model_fields)
_SCORE_COLUMNS = tuple(ScoreOut.model_fields)
_GENERATION_COLUMNS = tuple(GenerationOut.model_fields)
# Task filters compared for equality.
_TASK_EQUALS = ("run_id", "seed_set_id", "status", "reject_rule", "origin", "is_classification")


def run_document(run: Mapping[str, Any]) -> dict[str, Any]:
    """A run with its progress figures, all from the run's own row (one consistent read)."""
    elapsed = run["wall_seconds"] or None
    accepted, target = run["accepted_count"], run["target_tasks"]
    tokens = run["prompt_tokens"] + run["completion_tokens"]
    per_min = accepted / elapsed * 60 if elapsed else None
    eta = max(target - accepted, 0) / per_min * 60 if per_min else None
    if run["status"] in TERMINAL_RUN_STATUSES:
        eta = 0.0 if run["status"] == RunStatus.COMPLETED else None
    doc = {k: run[k] for k in RUN_COLUMNS if k not in _RUN_COUNTERS}
    doc["progress"] = {
        "generated": run["generated_count"],
        "accepted": accepted,
        "rejected": run["rejected_count"],
        "parse_failures": run["parse_failure_count"],
        "rejected_by_rule": run["rejected_by_rule"],
        "prompt_tokens": run["prompt_tokens"],
        "completion_tokens": run["completion_tokens"],
        "tokens_per_s": tokens / run["inference_seconds"] if run["inference_seconds"] else None,
        "accepted_per_min": per_min,
        "eta_s": eta,
        "fraction_done": min(accepted / target, 1.0),
    }
    return doc


def task_detail_document(
    task: Mapping[str, Any],
    instances: list[Row],
    scores: list[Row],
    generations: Mapping[str, Row],
    nearest_instruction: str | None,
) -> dict[str, Any]:
    """One task with its whole provenance: instances, scores, generation calls, nearest task."""
    doc = {name: task[name] for name in TASK_COLUMNS}
    doc["instances"] = instances
    doc["scores"] = scores
    for column in task_store.GENERATION_IDS:
        doc[column.removesuffix("_id")] = generations.get(task[column]) if task[column] else None
    nearest = task["nearest_task_id"]
    doc["nearest"] = (
        {"id": nearest, "instruction": nearest_instruction, "similarity": task["similarity"]}
        if nearest is not None and nearest_instruction is not None
        else None
    )
    return doc


def row_of(obj: Any, names: tuple[str, ...] | type[BaseModel]) -> dict[str, Any]:
    """An ORM object's columns as the dict a read would give (for routes that hold ORM rows)."""
    fields = names if isinstance(names, tuple) else tuple(names.model_fields)
    return {name: getattr(obj, name) for name in fields}


def render(document: Any) -> bytes:
    """`document` as JSON, datetimes in UTC with a `Z`."""
    return orjson.dumps(document, option=orjson.OPT_UTC_Z)


def json_response(document: Any) -> Response:
    """`document` (or its bytes, already rendered) as an application/json response."""
    body = document if isinstance(document, bytes) else render(document)
    return Response(body, media_type="application/json")


# A page read's key: (equal-filters as (name, value) pairs, min_score, max_score, the text an
# instruction contains, cursor, limit).
_Bound = tuple[str, float] | None
_PageKey = tuple[tuple[tuple[str, Any], ...], _Bound, _Bound, str | None, str | None, int]
_Body = bytes | Exception  # a rendered document, or the error its requests get


class _Loaders:
    """One asyncio engine's batched reads: a DataLoader (aiodataloader) per kind of read.

    What the requests of one turn of the event loop ask for is read in one database call
    (one connection, one greenlet), dispatched after they all arrived, so each answer still
    reflects every commit made before its request: the runs and task details asked for by
    any number of requests in one statement each (`id = ANY(:ids)` / `IN`), and equal list
    pages once. Each distinct document of a batch is built and rendered once, and its bytes
    answer every request that asked for it. Under 100 concurrent clients a round trip and
    SQLAlchemy's work per statement were most of a request's CPU; batched, they are shared
    (bench/read_cpu.py).
    """

    MAX_BATCH = 100  # ids or pages per database call: bounds one statement's work

    def __init__(self, engine: AsyncEngine) -> None:
        ref = weakref.ref(engine)  # the loaders are kept per engine: no cycle through it
        loop = asyncio.get_running_loop()

        def loader(
            read: Callable[[Connection, list[Any]], dict[Any, Any]],
            document: Callable[[Any], Any],
        ) -> DataLoader[Any, _Body]:
            async def load(keys: list[Any]) -> list[_Body]:
                engine = ref()
                assert engine is not None, "a read on a disposed engine"
                unique = list(dict.fromkeys(keys))
                found = await read_async(engine, lambda conn: read(conn, unique))
                bodies = {
                    k: v if isinstance(v, Exception) else render(document(v))
                    for k, v in found.items()
                }
                return [bodies[k] for k in keys]

            return DataLoader(load, cache=False, max_batch_size=self.MAX_BATCH, loop=loop)

        self.runs = loader(_read_runs, run_document)
        self.task_details = loader(_read_task_details, _task_detail)
        self.run_pages = loader(_read_run_pages, _run_page)
        self.task_pages = loader(_read_task_pages, _task_page)


_LOADERS: WeakKeyDictionary[AsyncEngine, _Loaders] = WeakKeyDictionary()


def _loaders(engine: AsyncEngine) -> _Loaders:
    loaders = _LOADERS.get(engine)
    if loaders is None:
        loaders = _LOADERS[engine] = _Loaders(engine)
    return loaders


# Reads of a batch's distinct keys: key -> row(s), or the error for that key alone.


def _read_runs(conn: Connection, ids: list[int]) -> dict[int, Row | Exception]:
    found = run_store.read_runs_by_id(conn, ids, columns=RUN_COLUMNS)
    return {i: found.get(i) or NotFound(f"no run {i}") for i in ids}


def _read_task_details(conn: Connection, ids: list[int]) -> dict[int, Row | Exception]:
    found = task_store.read_task_details(
        conn,
        ids,
        columns=TASK_COLUMNS,
        instance_columns=_INSTANCE_COLUMNS,
        score_columns=_SCORE_COLUMNS,
        generation_columns=_GENERATION_COLUMNS,
    )
    return {i: found.get(i) or NotFound(f"no task {i}") for i in ids}


_Page = tuple[list[Row], str | None]


def _read_pages(
    keys: list[_PageKey], read: Callable[[_PageKey], _Page]
) -> dict[_PageKey, _Page | Exception]:
    pages: dict[_PageKey, _Page | Exception] = {}
    for key in keys:
        try:
            pages[key] = read(key)
        except InvalidInput as exc:  # a bad cursor fails its own requests alone
            pages[key] = exc
    return pages


def _read_run_pages(conn: Connection, keys: list[_PageKey]) -> dict[_PageKey, Any]:
    def read(key: _PageKey) -> _Page:
        equal, _, _, _, cursor, limit = key
        return run_store.read_runs(
            conn, columns=RUN_COLUMNS, equal=dict(equal), cursor=cursor, limit=limit
        )

    return _read_pages(keys, read)


def _read_task_pages(conn: Connection, keys: list[_PageKey]) -> dict[_PageKey, Any]:
    def read(key: _PageKey) -> _Page:
        equal, min_score, max_score, contains, cursor, limit = key
        return task_store.read_tasks(
            conn,
            columns=TASK_COLUMNS,
            equal=dict(equal),
            min_score=min_score,
            cursor=cursor,
            limit=limit,
            max_score=max_score,
            contains=contains,
        )

    return _read_pages(keys, read)


def _run_page(page: _Page) -> dict[str, Any]:
    rows, next_cursor = page
    return {"items": [run_document(r) for r in rows], "next_cursor": next_cursor}


def _task_page(page: _Page) -> dict[str, Any]:
    rows, next_cursor = page
    return {"items": rows, "next_cursor": next_cursor}


def _task_detail(row: Row) -> dict[str, Any]:
    generations = {g["id"]: g for g in row["generations"]}
    return task_detail_document(
        row, row["instances"], row["scores"], generations, row["nearest_instruction"]
    )


async def _body(loader: DataLoader[Any, _Body], key: Any) -> bytes:
    # A loaded Exception is raised by the future, not returned.
    return cast(bytes, await loader.load(key))


async def run(engine: AsyncEngine, run_id: int) -> bytes:
    """GET /v1/runs/{id}, rendered. Raises NotFound."""
    return await _body(_loaders(engine).runs, run_id)


async def runs(engine: AsyncEngine, q: RunQuery) -> bytes:
    """GET /v1/runs, rendered. Raises InvalidInput for a bad cursor."""
    equal = tuple((n, v) for n, v in (("status", q.status), ("kind", q.kind)) if v is not None)
    # An empty cursor is the first page.
    return await _body(
        _loaders(engine).run_pages, (equal, None, None, None, q.cursor or None, q.limit)
    )


async def tasks(engine: AsyncEngine, q: TaskQuery) -> bytes:
    """GET /v1/tasks, rendered. Raises InvalidInput for a bad cursor, or a score bound without
    scorer."""
    if (q.min_score is not None or q.max_score is not None) and not q.scorer:
        raise InvalidInput("min_score and max_score need scorer: which score to compare")
    equal = tuple((n, getattr(q, n)) for n in _TASK_EQUALS if getattr(q, n) is not None)
    min_score = (q.scorer, q.min_score) if q.min_score is not None and q.scorer else None
    max_score = (q.scorer, q.max_score) if q.max_score is not None and q.scorer else None
    key = (equal, min_score, max_score, q.q, q.cursor or None, q.limit)
    return await _body(_loaders(engine).task_pages, key)


async def task(engine: AsyncEngine, task_id: int) -> bytes:
    """GET /v1/tasks/{id}, rendered. Raises NotFound."""
    return await _body(_loaders(engine).task_details, task_id)
