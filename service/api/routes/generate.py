"""/v1/generate: one iteration as a "batch" run that a worker claims; the API waits a bound.

The API process never loads a model: the batch run is queued (in the Idempotency-Key's own
transaction) for `instructforge worker`, which claims it with a lease like any run, and the
request waits up to `INSTRUCTFORGE_GENERATE_WAIT_SECONDS` for it. Done in time: 200 with the
tasks; not yet: 202 with the run to poll. Either answer is kept for retries with the same key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from generators.config import BootstrapConfig
from service.api.deps import DatabaseDep, SettingsDep, WriteKey
from service.api.errors import KEYED, error_responses
from service.api.idempotency import IdempotencyKey, idempotent
from service.api.routes.tasks import details_for
from service.api.schemas import GenerateRequest, GenerateResponse
from service.errors import InvalidInput, RefusedTooBig, ServiceError
from service.runs.access import authorize_backend
from service.runs.config import RunConfig, config_sha256
from service.statuses import RunStatus
from service.storage import runs as run_store
from service.storage.db import Database, Session
from service.storage.keys import has_scope
from service.storage.models import Run
from service.storage.seeds import get_seed_set
from service.storage.tasks import batch_result

router = APIRouter(tags=["generate"], responses=error_responses(*KEYED))
POLL_SECONDS = 0.1


class GenerateAccepted(BaseModel):
    """The batch run is queued or running: poll the run, then read its tasks."""

    run_id: int
    status: RunStatus = Field(description="`queued` (no worker has claimed it yet) or `running`.")
    poll: str = Field(description="The run's URL: GET it until its status is `completed`.")
    tasks: str = Field(description="The URL of the run's tasks once it is completed.")


class GenerationFailed(ServiceError):
    """The worker could not run the batch (the backend failed); the run keeps the error."""

    code = "generation_failed"
    status_code = 503


@router.post(
    "/v1/generate",
    response_model=GenerateResponse,
    responses={
        **error_responses(400, 404, 409, 413, 422, 503),
        202: {"model": GenerateAccepted, "description": "Not done within the wait bound."},
    },
)
def generate(
    body: GenerateRequest,
    database: DatabaseDep,
    settings: SettingsDep,
    key: WriteKey,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Queue one bootstrap iteration on a seed set for a worker, and wait for it a while.

    Answers 200 with the new tasks and their verdicts if a worker finished the batch within
    `INSTRUCTFORGE_GENERATE_WAIT_SECONDS`, else 202 with the batch run to poll
    (`GET /v1/runs/{run_id}`, then `GET /v1/tasks?run_id=...`). Bounded by
    `INSTRUCTFORGE_GENERATE_MAX_PROMPTS`; bigger jobs belong in `POST /v1/runs`.
    """
    if body.prompts > settings.generate_max_prompts:
        raise RefusedTooBig(
            f"{body.prompts} prompts is more than one batch may do "
            f"(limit {settings.generate_max_prompts}); create a run with POST /v1/runs instead"
        )
    request_hash = config_sha256(body.model_dump(mode="json"))
    if body.backend not in (None, "vllm", "openai", "transformers"):
        raise InvalidInput("backend: one of vllm, openai, transformers")
    config = RunConfig(
        seed_set=body.seed_set,
        backend=body.backend or settings.default_backend,
        model=body.model or settings.default_model,
        bootstrap=BootstrapConfig(prompts_per_iteration=body.prompts),
        target_tasks=body.prompts * 20,
        max_iterations=1,
        seed=body.seed,
    )
    # Before anything is stored: a model that cannot load is a 422, not a failed run.
    authorize_backend(config, settings, is_admin=has_scope(key.principal.scopes, "admin"))

    def enqueue(session: Session) -> Callable[[], tuple[dict[str, Any], int]]:
        run_id = _enqueue_batch(session, config)
        return lambda: _await_batch(database, run_id, settings.generate_wait_seconds)

    return idempotent(
        database,
        api_key_id=key.principal.id,
        route="generate",
        key=idempotency_key,
        request_hash=request_hash,
        create=enqueue,
    )


def _enqueue_batch(session: Session, config: RunConfig) -> int:
    """Queue the batch run in the caller's transaction (the Idempotency-Key's)."""
    seed_set = get_seed_set(session, name=config.seed_set)
    return run_store.create_run(
        session,
        seed_set_id=seed_set.id,
        config=config.model_dump(mode="json"),
        config_hash=config.config_hash(),
        policy_version=config.policy_version,
        target_tasks=config.target_tasks,
        kind="batch",
    ).id


def _await_batch(database: Database, run_id: int, wait_s: float) -> tuple[dict[str, Any], int]:
    """Poll the batch run until it ends or `wait_s` passes; the answer and its status code.

    Raises:
        GenerationFailed: the worker failed the run (503, with the run's error).
    """
    deadline = time.monotonic() + wait_s
    while True:
        with database.sessions() as session:
            run = run_store.get_run(session, run_id)
            status, error = run.status, run.error
            if status == RunStatus.COMPLETED:
                return _result(session, run), 200
        if status == RunStatus.FAILED:
            raise GenerationFailed(f"batch run {run_id} failed: {error or 'no reason recorded'}")
        if time.monotonic() >= deadline:
            accepted = GenerateAccepted(
                run_id=run_id,
                status=status,
                poll=f"/v1/runs/{run_id}",
                tasks=f"/v1/tasks?run_id={run_id}",
            )
            return accepted.model_dump(mode="json"), 202
        time.sleep(POLL_SECONDS)


def _result(session: Session, run: Run) -> dict[str, Any]:
    done = batch_result(session, run.id)
    tasks = details_for(session, done.task_ids)
    response = GenerateResponse(run_id=run.id, tasks=tasks, parse_failures=done.parse_failures)
    return response.model_dump(mode="json")
