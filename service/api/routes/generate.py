"""/v1/generate: one iteration now, synchronously, stored with provenance as a "batch" run."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from generators.backends.base import Backend
from generators.config import BootstrapConfig
from service.api.deps import DatabaseDep, SettingsDep, WriteKey
from service.api.idempotency import IdempotencyKey, idempotent
from service.api.routes.tasks import details_for
from service.api.schemas import GenerateRequest, GenerateResponse
from service.errors import InvalidInput, RefusedTooBig
from service.runs.config import RunConfig, check_backend, config_sha256
from service.runs.pipeline import make_run_backend, open_pipeline
from service.settings import Settings
from service.storage import runs as run_store
from service.storage.iterations import commit_iteration
from service.storage.models import Run
from service.storage.seeds import get_seed_set

router = APIRouter(tags=["generate"])


class BackendPool:
    """The API process's inference backends, one per (backend, model), used one call at a time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._backends: dict[str, Backend] = {}
        self.lock = threading.Lock()

    def get(self, config: RunConfig) -> Backend:
        key = f"{config.backend}|{config.model}"
        if key not in self._backends:
            self._backends[key] = make_run_backend(config, self.settings)
        return self._backends[key]

    def close_all(self) -> None:
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()


@router.post("/v1/generate", response_model=GenerateResponse)
def generate(
    request: Request,
    body: GenerateRequest,
    database: DatabaseDep,
    settings: SettingsDep,
    key: WriteKey,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Run one bootstrap iteration on a seed set and return the new tasks with their verdicts.

    Bounded by `INSTRUCTFORGE_GENERATE_MAX_PROMPTS`; bigger jobs belong in `POST /v1/runs`.
    """
    if body.prompts > settings.generate_max_prompts:
        raise RefusedTooBig(
            f"{body.prompts} prompts is more than one synchronous call may do "
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
    check_backend(config, settings)
    return idempotent(
        database,
        api_key_id=key.id,
        route="generate",
        key=idempotency_key,
        request_hash=request_hash,
        create=lambda session: _start_batch(
            session, config, database, settings, request.app.state.backends
        ),
    )


def _start_batch(
    session: Session,
    config: RunConfig,
    database: DatabaseDep,
    settings: Settings,
    pool: BackendPool,
) -> Callable[[], tuple[dict[str, object], int]]:
    """Create the batch run in the caller's transaction; the returned call runs it."""
    owner = f"api:{os.getpid()}:{threading.get_ident()}"
    seed_set = get_seed_set(session, name=config.seed_set)
    run = run_store.create_run(
        session,
        seed_set_id=seed_set.id,
        config=config.model_dump(mode="json"),
        config_hash=config.config_hash(),
        policy_version=config.policy_version,
        target_tasks=config.target_tasks,
        kind="batch",
        status="running",
    )
    run.lease_owner = owner
    session.flush()
    return lambda: (_run_batch(run, owner, config, database, settings, pool), 200)


def _run_batch(
    run: Run,
    owner: str,
    config: RunConfig,
    database: DatabaseDep,
    settings: Settings,
    pool: BackendPool,
) -> dict[str, object]:
    try:
        with pool.lock:
            pipeline = open_pipeline(database, run.id, settings=settings, backend_for=pool.get)
            outcome = pipeline.step(1)
        with database.transaction() as session:
            stored = commit_iteration(
                session, run=run, owner=owner, lease_seconds=settings.lease_seconds, outcome=outcome
            )
            run_store.release_lease(session, run_id=run.id, owner=owner, status="completed")
    except BaseException as exc:
        with database.transaction() as session:
            run_store.release_lease(session, run_id=run.id, owner=owner, status="failed")
            run_store.add_event(session, run.id, "failed", f"{type(exc).__name__}: {exc}"[:4000])
        raise
    with database.sessions() as session:
        tasks = details_for(session, [tid for tid, _ in stored])
    failures = [
        {
            "generation_id": f.generation_id,
            "stage": f.stage,
            "reason": f.reason,
            "excerpt": f.excerpt[:500],
        }
        for f in outcome.result.parse_failures
    ]
    return GenerateResponse(run_id=run.id, tasks=tasks, parse_failures=failures).model_dump(
        mode="json"
    )
