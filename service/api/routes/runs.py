"""/v1/runs: create, list, show with progress, events, report, cancel, pause, resume."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse

from service.api import reads
from service.api.deps import (
    DatabaseDep,
    QueryModel,
    ReadKey,
    RunId,
    SettingsDep,
    WriteKey,
    read,
)
from service.api.errors import KEYED, error_responses
from service.api.idempotency import IdempotencyKey, idempotent
from service.api.reads import RUN_COLUMNS, json_response, row_of, run_document
from service.api.schemas import (
    Page,
    PreferencePairOut,
    PreferencePairQuery,
    RunEventOut,
    RunOut,
    RunQuery,
)
from service.reports.compute import build_run_report
from service.reports.schema import RunReport
from service.runs.access import authorize_backend
from service.runs.config import RunConfig, config_sha256
from service.runs.estimate import RunEstimate, estimate_run
from service.storage import runs as run_store
from service.storage.db import Session
from service.storage.keys import has_scope
from service.storage.models import Run
from service.storage.preference import comparison_page
from service.storage.seeds import get_seed_set

router = APIRouter(prefix="/v1/runs", tags=["runs"], responses=error_responses(*KEYED))
ACTION = error_responses(404, 409, 422)


def run_out(run: Run) -> RunOut:
    """The run document of a run held as an ORM row (routes that just changed it)."""
    return RunOut.model_validate(run_document(row_of(run, RUN_COLUMNS)))


@router.post(
    "",
    status_code=202,
    response_model=RunOut,
    responses={
        200: {
            "model": RunEstimate,
            "description": "With dry_run=true: the run's expected tokens, time and cost from "
            "the measured yield of earlier runs; nothing is stored.",
        },
        **error_responses(400, 404, 409, 413, 422),
    },
)
def create(
    config: RunConfig,
    database: DatabaseDep,
    settings: SettingsDep,
    key: WriteKey,
    idempotency_key: IdempotencyKey = None,
    dry_run: Annotated[
        bool,
        Query(
            description="Estimate instead of queueing: tokens, seconds and cost from earlier "
            "runs with the same model and templates (basis same_templates, then none, when "
            "there are none); nothing is stored and no Idempotency-Key is claimed."
        ),
    ] = False,
) -> JSONResponse:
    """Queue a bootstrap run; a worker picks it up. Same Idempotency-Key, same answer."""
    authorize_backend(config, settings, is_admin=has_scope(key.principal.scopes, "admin"))
    if dry_run:
        with database.sessions() as session:
            get_seed_set(session, name=config.seed_set)  # the same 404 as a real run
            estimate = estimate_run(session, config)
        return JSONResponse(estimate.model_dump(mode="json"), status_code=200)
    body = config.model_dump(mode="json")
    request_hash = config_sha256(body)

    def create_in(session: Session) -> Callable[[], tuple[dict[str, Any], int]]:
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
        return lambda: (out, 202)

    return idempotent(
        database,
        api_key_id=key.principal.id,
        route="runs.create",
        key=idempotency_key,
        request_hash=request_hash,
        create=create_in,
    )


RUN_QUERY = QueryModel(RunQuery)


@router.get(
    "", response_model=Page[RunOut], responses=error_responses(422), openapi_extra=RUN_QUERY.openapi
)
async def list_runs(caller: ReadKey, query: Annotated[RunQuery, Depends(RUN_QUERY)]) -> Response:
    """Runs in id order; pass `next_cursor` back as `cursor` for the next page."""
    return json_response(await reads.runs(caller.engine, query))


@router.get("/{run_id}", response_model=RunOut, responses=error_responses(404, 422))
async def show(run_id: RunId, caller: ReadKey) -> Response:
    return json_response(await reads.run(caller.engine, run_id))


@router.get(
    "/{run_id}/events",
    response_model=list[RunEventOut],
    responses=error_responses(404, 422),
)
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


PAIR_QUERY = QueryModel(PreferencePairQuery)


@router.get(
    "/{run_id}/preference-pairs",
    response_model=Page[PreferencePairOut],
    responses=error_responses(404, 422),
    openapi_extra=PAIR_QUERY.openapi,
)
async def preference_pairs(
    run_id: RunId,
    database: DatabaseDep,
    _: ReadKey,
    query: Annotated[PreferencePairQuery, Depends(PAIR_QUERY)],
) -> Page[PreferencePairOut]:
    """A preference run's judged comparisons in id order (the kept pairs unless `outcome`
    says otherwise), each with both responses, both orders' preferences and every judge
    reading; pass `next_cursor` back as `cursor` for the next page. Another method's run has
    none."""
    outcome = None if query.outcome == "all" else query.outcome

    def page(session: Session) -> Page[PreferencePairOut]:
        run_store.get_run(session, run_id)
        rows, cursor = comparison_page(
            session, run_id, outcome=outcome, cursor=query.cursor or None, limit=query.limit
        )
        items = [
            PreferencePairOut.model_validate({**asdict(r), "generators": list(r.generators)})
            for r in rows
        ]
        return Page[PreferencePairOut](items=items, next_cursor=cursor)

    return await read(database, page)


@router.get("/{run_id}/report", response_model=RunReport, responses=error_responses(404, 422))
async def report(run_id: RunId, database: DatabaseDep, _: ReadKey) -> RunReport:
    """The run's report, per iteration and cumulative, computed from its stored rows: yield by
    stage and rule, diversity, the collapse radar, the judge audit and both refusal rates."""
    return await read(database, lambda session: build_run_report(session, run_id))


def _act(action: str, run_id: int, database: DatabaseDep) -> RunOut:
    with database.transaction() as session:
        return run_out(run_store.change_status(session, run_id, action))


@router.post("/{run_id}/cancel", response_model=RunOut, responses=ACTION)
def cancel(run_id: RunId, database: DatabaseDep, _: WriteKey) -> RunOut:
    """Stop the run for good; a batch in flight is still stored."""
    return _act("cancel", run_id, database)


@router.post("/{run_id}/pause", response_model=RunOut, responses=ACTION)
def pause(run_id: RunId, database: DatabaseDep, _: WriteKey) -> RunOut:
    """Stop after the batch in flight; resume continues from there."""
    return _act("pause", run_id, database)


@router.post("/{run_id}/resume", response_model=RunOut, responses=ACTION)
def resume(run_id: RunId, database: DatabaseDep, _: WriteKey) -> RunOut:
    return _act("resume", run_id, database)
