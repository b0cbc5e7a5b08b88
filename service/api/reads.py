"""The hot read routes' documents: runs and tasks, list and show, read on the asyncio engine.

Each document is built as plain dicts from storage rows of exactly the columns the response
schema names and rendered by orjson in one call. The pydantic models in service.api.schemas
stay the contract (OpenAPI, and tests check every document against them); validating rows we
wrote ourselves again on every read cost more than the rest of a request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from service.api.schemas import (
    GenerationOut,
    InstanceOut,
    RunOut,
    RunQuery,
    ScoreOut,
    TaskOut,
    TaskQuery,
)
from service.errors import InvalidInput
from service.storage import runs as run_store
from service.storage import tasks as task_store
from service.storage.db import read_async
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


def json_response(document: Any) -> Response:
    """`document` as an application/json response, datetimes in UTC with a `Z`."""
    return Response(orjson.dumps(document, option=orjson.OPT_UTC_Z), media_type="application/json")


def _page(rows: list[Row], next_cursor: str | None) -> dict[str, Any]:
    return {"items": rows, "next_cursor": next_cursor}


async def run(engine: AsyncEngine, run_id: int) -> dict[str, Any]:
    """GET /v1/runs/{id}. Raises NotFound."""
    row = await read_async(engine, lambda c: run_store.read_run(c, run_id, columns=RUN_COLUMNS))
    return run_document(row)


async def runs(engine: AsyncEngine, q: RunQuery) -> dict[str, Any]:
    """GET /v1/runs. Raises InvalidInput for a bad cursor."""
    equal = {n: v for n, v in (("status", q.status), ("kind", q.kind)) if v is not None}
    rows, next_cursor = await read_async(
        engine,
        lambda c: run_store.read_runs(
            c, columns=RUN_COLUMNS, equal=equal, cursor=q.cursor or None, limit=q.limit
        ),
    )
    return _page([run_document(r) for r in rows], next_cursor)


async def tasks(engine: AsyncEngine, q: TaskQuery) -> dict[str, Any]:
    """GET /v1/tasks. Raises InvalidInput for a bad cursor, or a score bound without scorer."""
    if (q.min_score is not None or q.max_score is not None) and not q.scorer:
        raise InvalidInput("min_score and max_score need scorer: which score to compare")
    equal = {n: getattr(q, n) for n in _TASK_EQUALS if getattr(q, n) is not None}
    min_score = (q.scorer, q.min_score) if q.min_score is not None and q.scorer else None
    max_score = (q.scorer, q.max_score) if q.max_score is not None and q.scorer else None
    rows, next_cursor = await read_async(
        engine,
        lambda c: task_store.read_tasks(
            c,
            columns=TASK_COLUMNS,
            equal=equal,
            min_score=min_score,
            cursor=q.cursor or None,  # an empty cursor is the first page
            limit=q.limit,
            max_score=max_score,
            contains=q.q,
        ),
    )
    return _page(rows, next_cursor)


async def task(engine: AsyncEngine, task_id: int) -> dict[str, Any]:
    """GET /v1/tasks/{id}. Raises NotFound."""
    rows = await read_async(
        engine,
        lambda c: task_store.read_task_detail(
            c,
            task_id,
            columns=TASK_COLUMNS,
            instance_columns=_INSTANCE_COLUMNS,
            score_columns=_SCORE_COLUMNS,
            generation_columns=_GENERATION_COLUMNS,
        ),
    )
    return task_detail_document(
        rows.task, rows.instances, rows.scores, rows.generations, rows.task["nearest_instruction"]
    )
