"""The hot read routes' documents: runs and tasks, list and show, read on the driver itself.

Each document is built as plain dicts from rows of service.storage.read_statements (which
select exactly the columns the response schema names) and rendered by orjson in one call. The
pydantic models in service.api.schemas stay the contract (OpenAPI, and tests check every
document against them); validating rows we wrote ourselves again on every read cost more than
the rest of a request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

import orjson
from aiodataloader import DataLoader
from cachetools import LRUCache
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
from service.storage import runs as run_store
from service.storage.read_statements import GENERATION_IDS, ReadStatements
from service.storage.readers import Reader, Row, Statement
from service.storage.tasks import decode_cursor, encode_cursor

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
_KEY_COLUMNS = ("id", "name", "scopes", "revoked_at")
# Task filters compared for equality, in the order statements are built.
_TASK_EQUALS = ("run_id", "seed_set_id", "status", "reject_rule", "origin", "is_classification")


def run_document(run: Mapping[str, Any]) -> dict[str, Any]:
    """A run with its progress figures, all from the run's own row (one consistent read)."""
    elapsed = run["wall_seconds"] or None
    accepted, target = run["accepted_count"], run["target_tasks"]
    tokens = run["prompt_tokens"] + run["completion_tokens"]
    per_min = accepted / elapsed * 60 if elapsed else None
    eta = max(target - accepted, 0) / per_min * 60 if per_min else None
    if run["status"] in run_store.TERMINAL:
        eta = 0.0 if run["status"] == "completed" else None
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
    for column in GENERATION_IDS:
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
    return orjson.dumps(document, option=orjson.OPT_UTC_Z)


def json_response(document: Any) -> Response:
    """`document` (or its bytes, already rendered) as an application/json response."""
    body = document if isinstance(document, bytes) else render(document)
    return Response(body, media_type="application/json")


def _page(rows: list[Row], limit: int) -> dict[str, Any]:
    more = len(rows) > limit
    return {
        "items": rows[:limit],
        "next_cursor": encode_cursor(rows[limit - 1]["id"]) if more else None,
    }


@dataclass
class _Loaders:
    """One event loop's batching of the reads (a DataLoader belongs to its loop)."""

    runs: DataLoader[int, Row]
    task_details: DataLoader[int, dict[str, Any]]
    run_pages: DataLoader[RunQuery, list[Row]]
    task_pages: DataLoader[TaskQuery, list[Row]]
    api_keys: DataLoader[str, Row | None]


class ApiReads:
    """The documents of GET /v1/runs[/{id}] and /v1/tasks[/{id}].

    Requests that arrive together read together. Each kind of read goes through a DataLoader
    (aiodataloader): the runs, task details, list pages and API keys asked for in one turn of
    the event loop are read in one database call, dispatched after they all arrived, so every
    answer still reflects each commit made before its request came in. On PostgreSQL, runs and task
    details take one statement for any number of ids (`id = ANY(:ids)`) and equal list pages
    one statement between them; on SQLite every statement of the batch runs in one
    worker-thread hop. Under 100 concurrent clients this turns ~50 database round trips per
    turn into a few, and the CPU they cost (the driver, the event loop, the server's backends)
    was most of a request's.

    A task's detail is kept, rendered, in a per-process LRU cache of `cache_bytes`: a task and
    every row of its provenance are written in the one transaction that makes the task visible
    and never change afterwards, so a cached detail is never stale. Runs and lists change as
    runs work and are always read afresh.
    """

    MAX_BATCH = 100  # ids or pages per database call: bounds one statement's work

    def __init__(self, reader: Reader, *, cache_bytes: int = 0) -> None:
        self.reader = reader
        self.statements = ReadStatements(reader.dialect)
        self.task_cache: LRUCache[int, bytes] | None = (
            LRUCache(maxsize=cache_bytes, getsizeof=len) if cache_bytes > 0 else None
        )
        self._loaders: WeakKeyDictionary[asyncio.AbstractEventLoop, _Loaders] = WeakKeyDictionary()

    def _here(self) -> _Loaders:
        loop = asyncio.get_running_loop()
        loaders = self._loaders.get(loop)
        if loaders is None:

            def loader(batch: Any) -> DataLoader[Any, Any]:
                return DataLoader(batch, cache=False, max_batch_size=self.MAX_BATCH, loop=loop)

            loaders = self._loaders[loop] = _Loaders(
                runs=loader(self._load_runs),
                task_details=loader(self._load_task_details),
                run_pages=loader(self._load_run_pages),
                task_pages=loader(self._load_task_pages),
                api_keys=loader(self._load_api_keys),
            )
        return loaders

    async def run(self, run_id: int) -> dict[str, Any]:
        return run_document(await self._here().runs.load(run_id))

    async def runs(self, q: RunQuery) -> dict[str, Any]:
        if q.cursor:
            decode_cursor(q.cursor)  # a bad cursor fails this request alone
        page = _page(await self._here().run_pages.load(q), q.limit)
        page["items"] = [run_document(r) for r in page["items"]]
        return page

    async def tasks(self, q: TaskQuery) -> dict[str, Any]:
        if q.min_score is not None and not q.scorer:
            raise InvalidInput("min_score needs scorer: which score to compare")
        if q.cursor:
            decode_cursor(q.cursor)
        return _page(await self._here().task_pages.load(q), q.limit)

    async def task(self, task_id: int) -> bytes:
        """The task's detail document, rendered."""
        if self.task_cache is not None and (hit := self.task_cache.get(task_id)) is not None:
            return hit
        body = render(await self._here().task_details.load(task_id))
        if self.task_cache is not None and len(body) <= self.task_cache.maxsize:
            self.task_cache[task_id] = body
        return body

    async def api_key(self, key_hash: str) -> Row | None:
        """The API key stored with this hash (`id`, `name`, `scopes`, `revoked_at`), or None."""
        return await self._here().api_keys.load(key_hash)

    # Batch functions: one value per key, in order; a NotFound for a missing id.

    async def _load_api_keys(self, hashes: list[str]) -> list[Row | None]:
        unique = list(dict.fromkeys(hashes))
        query = self.statements.api_key(_KEY_COLUMNS)
        results = await self.reader.fetch(*((query, {"key_hash": h}) for h in unique))
        found = {h: rows[0] if rows else None for h, rows in zip(unique, results, strict=True)}
        return [found[h] for h in hashes]

    async def _load_runs(self, ids: list[int]) -> list[Row | Exception]:
        s, unique = self.statements, list(dict.fromkeys(ids))
        if s.reads_many_at_once:
            (rows,) = await self.reader.fetch((s.runs_by_id(RUN_COLUMNS), {"ids": unique}))
        else:
            results = await self.reader.fetch(
                *((s.run(RUN_COLUMNS), {"run_id": i}) for i in unique)
            )
            rows = [row for result in results for row in result]
        found = {row["id"]: row for row in rows}
        return [found.get(i) or NotFound(f"no run {i}") for i in ids]

    async def _load_task_details(self, ids: list[int]) -> list[dict[str, Any] | Exception]:
        s, unique = self.statements, list(dict.fromkeys(ids))
        found: dict[int, dict[str, Any]] = {}
        if s.reads_many_at_once:
            query = s.task_details_by_id(
                TASK_COLUMNS, _INSTANCE_COLUMNS, _SCORE_COLUMNS, _GENERATION_COLUMNS
            )
            (tasks,) = await self.reader.fetch((query, {"ids": unique}))
            for task in tasks:
                found[task["id"]] = _detail(
                    task, task["instances"], task["scores"], task["generations"]
                )
        else:
            per_task = (
                s.task(TASK_COLUMNS),
                s.instances(_INSTANCE_COLUMNS),
                s.scores(_SCORE_COLUMNS),
                s.generations(_GENERATION_COLUMNS),
            )
            results = await self.reader.fetch(
                *((query, {"task_id": i}) for i in unique for query in per_task)
            )
            for k in range(0, len(results), len(per_task)):
                tasks, instances, scores, generations = results[k : k + len(per_task)]
                if tasks:
                    found[tasks[0]["id"]] = _detail(tasks[0], instances, scores, generations)
        return [found.get(i) or NotFound(f"no task {i}") for i in ids]

    async def _load_run_pages(self, queries: list[RunQuery]) -> list[list[Row]]:
        return await self._load_pages(queries, self._run_page)

    async def _load_task_pages(self, queries: list[TaskQuery]) -> list[list[Row]]:
        return await self._load_pages(queries, self._task_page)

    async def _load_pages(
        self, queries: list[Any], statement: Callable[[Any], Statement]
    ) -> list[list[Row]]:
        unique = list(dict.fromkeys(queries))
        results = await self.reader.fetch(*(statement(q) for q in unique))
        pages = dict(zip(unique, results, strict=True))
        return [pages[q] for q in queries]

    def _run_page(self, q: RunQuery) -> Statement:
        values: dict[str, Any] = {"limit": q.limit + 1}
        given = {n: v for n, v in (("status", q.status), ("kind", q.kind)) if v is not None}
        values.update(given)
        if q.cursor:
            values["after"] = decode_cursor(q.cursor)
        return self.statements.run_page(RUN_COLUMNS, tuple(given), after=bool(q.cursor)), values

    def _task_page(self, q: TaskQuery) -> Statement:
        values: dict[str, Any] = {"limit": q.limit + 1}
        filters = tuple(n for n in _TASK_EQUALS if getattr(q, n) is not None)
        values.update({n: getattr(q, n) for n in filters})
        min_score = q.min_score is not None
        if min_score:
            values.update(scorer=q.scorer, min_score=q.min_score)
        if q.cursor:
            values["after"] = decode_cursor(q.cursor)
        query = self.statements.task_page(TASK_COLUMNS, filters, min_score, after=bool(q.cursor))
        return query, values


def _detail(
    task: Row, instances: list[Row], scores: list[Row], generations: list[Row]
) -> dict[str, Any]:
    return task_detail_document(
        task, instances, scores, {g["id"]: g for g in generations}, task["nearest_instruction"]
    )
