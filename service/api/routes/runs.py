"""/v1/runs: create, list, show with progress, events, cancel, pause, resume."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.api.deps import DatabaseDep, ReadKey, RunId, SettingsDep, WriteKey, read
from service.api.idempotency import IdempotencyKey, idempotent
from service.api.schemas import Page, Progress, RunEventOut, RunOut
from service.run_config import RunConfig, config_sha256
from service.run_settings import validate_run_config
from service.storage import runs as run_store
from service.storage.models import Run
from service.storage.seeds import get_seed_set
from service.storage.tasks import page_by_id

router = APIRouter(prefix="/v1/runs", tags=["runs"])


def run_out(run: Run) -> RunOut:
    """A run with its progress figures, all from the run's own row (one consistent read)."""
    elapsed = run.wall_seconds or None
    tokens = run.prompt_tokens + run.completion_tokens
    per_min = run.accepted_count / elapsed * 60 if elapsed else None
    remaining = max(run.target_tasks - run.accepted_count, 0)
    eta = remaining / per_min * 60 if per_min else None
    if run.status in run_store.TERMINAL:
        eta = 0.0 if run.status == "completed" else None
    progress = Progress(
        generated=run.generated_count,
        accepted=run.accepted_count,
        rejected=run.rejected_count,
        parse_failures=run.parse_failure_count,
        rejected_by_rule=run.rejected_by_rule,
        prompt_tokens=run.prompt_tokens,
        completion_tokens=run.completion_tokens,
        tokens_per_s=tokens / run.inference_seconds if run.inference_seconds else None,
        accepted_per_min=per_min,
        eta_s=eta,
        fraction_done=min(run.accepted_count / run.target_tasks, 1.0),
    )
    return RunOut(
        id=run.id,
        kind=run.kind,
        status=run.status,
        seed_set_id=run.seed_set_id,
        target_tasks=run.target_tasks,
        iteration=run.iteration,
        config=run.config,
        config_hash=run.config_hash,
        policy_version=run.policy_version,
        lease_owner=run.lease_owner,
        heartbeat_at=run.heartbeat_at,
        error=run.error,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        progress=progress,
    )


@router.post("", status_code=202, response_model=RunOut)
def create(
    config: RunConfig,
    database: DatabaseDep,
    settings: SettingsDep,
    key: WriteKey,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Queue a bootstrap run; a worker picks it up. Same Idempotency-Key, same answer."""
    validate_run_config(config, settings)
    body = config.model_dump(mode="json")
    request_hash = config_sha256(body)

    def produce() -> tuple[dict[str, Any], int]:
        with database.transaction() as session:
            seed_set = get_seed_set(session, name=config.seed_set)
            run = run_store.create_run(
                session,
                seed_set_id=seed_set.id,
                config=body,
                config_hash=config.config_hash(),
                policy_version=config.policy_version,
                target_tasks=config.target_tasks,
            )
            out = run_out(run).model_dump(mode="json")
        return out, 202

    return idempotent(
        database,
        api_key_id=key.id,
        route="runs.create",
        key=idempotency_key,
        request_hash=request_hash,
        produce=produce,
    )


@router.get("", response_model=Page[RunOut])
async def list_runs(
    database: DatabaseDep,
    _: ReadKey,
    status: Literal["queued", "running", "paused", "completed", "cancelled", "failed"]
    | None = None,
    kind: Literal["bootstrap", "batch"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[RunOut]:
    stmt = select(Run)
    if status:
        stmt = stmt.where(Run.status == status)
    if kind:
        stmt = stmt.where(Run.kind == kind)

    def query(session: Session) -> Page[RunOut]:
        rows, nxt = page_by_id(session, stmt, Run.id, limit=limit, cursor=cursor)
        return Page[RunOut](items=[run_out(r) for r in rows], next_cursor=nxt)

    return await read(database, query)


@router.get("/{run_id}", response_model=RunOut)
async def show(run_id: RunId, database: DatabaseDep, _: ReadKey) -> RunOut:
    return await read(database, lambda session: run_out(run_store.get_run(session, run_id)))


@router.get("/{run_id}/events", response_model=list[RunEventOut])
async def events(
    run_id: RunId,
    database: DatabaseDep,
    _: ReadKey,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[RunEventOut]:
    def query(session: Session) -> list[RunEventOut]:
        run_store.get_run(session, run_id)
        return [
            RunEventOut.model_validate(e) for e in run_store.recent_events(session, run_id, limit)
        ]

    return await read(database, query)


def _act(action: str, run_id: int, database: DatabaseDep) -> RunOut:
    with database.transaction() as session:
        return run_out(run_store.change_status(session, run_id, action))


@router.post("/{run_id}/cancel", response_model=RunOut)
def cancel(run_id: RunId, database: DatabaseDep, _: WriteKey) -> RunOut:
    """Stop the run for good; a batch in flight is still stored."""
    return _act("cancel", run_id, database)


@router.post("/{run_id}/pause", response_model=RunOut)
def pause(run_id: RunId, database: DatabaseDep, _: WriteKey) -> RunOut:
    """Stop after the batch in flight; resume continues from there."""
    return _act("pause", run_id, database)


@router.post("/{run_id}/resume", response_model=RunOut)
def resume(run_id: RunId, database: DatabaseDep, _: WriteKey) -> RunOut:
    return _act("resume", run_id, database)
