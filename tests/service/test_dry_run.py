"""`POST /v1/runs?dry_run=true`: an estimate from earlier runs' measured yield; nothing stored.

Through the real ASGI app on SQLite and PostgreSQL; the earlier run is worked by the real worker
on scripted replies (its counters are what the estimate reads).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from service.cli import default_seed_path
from service.runs.config import RunConfig
from service.seed_files import parse_seed_file
from service.storage.models import IdempotencyRecord, Run, RunEvent
from service.storage.seeds import import_seed_set
from tests.service.api_client import ApiHarness, api_harness
from tests.service.scripted_run import batches, queued_run, worker


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[ApiHarness]:
    with api_harness(db_url, tmp_path) as harness:
        yield harness


def rows(api: ApiHarness) -> tuple[int, int, int]:
    with api.database.sessions() as s:
        return tuple(  # type: ignore[return-value]
            s.scalar(select(func.count()).select_from(table)) or 0
            for table in (Run, RunEvent, IdempotencyRecord)
        )


def dry_run(api: ApiHarness, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    before = rows(api)
    r = api.client.post("/v1/runs?dry_run=true", json=body, headers={**api.headers(), **headers})
    assert r.status_code == 200, r.text
    assert rows(api) == before  # nothing stored, not even the Idempotency-Key
    return r.json()


def earlier_run(api: ApiHarness) -> Run:
    config = RunConfig(seed_set="default", target_tasks=5, bootstrap={"prompts_per_iteration": 1})
    run_id = queued_run(api.database, config)
    worker(api.database, batches(2, 3)).run_forever(once=True)
    with api.database.sessions() as s:
        run = s.get(Run, run_id)
        assert run is not None and run.accepted_count == 5 and run.iteration == 2
        return run


def test_estimate_from_the_same_model_and_templates(api: ApiHarness) -> None:
    run = earlier_run(api)
    per_accepted = (run.prompt_tokens + run.completion_tokens) / 5
    body = {"seed_set": "default", "target_tasks": 40}
    got = dry_run(api, body, **{"Idempotency-Key": "k1"})
    assert got["basis"] == "same_model_and_templates" and got["measured_runs"] == [run.id]
    assert got["measured_accepted"] == 5
    assert (got["stops_at"], got["accepted"]) == ("target_tasks", 40)
    assert got["prompt_tokens"] == pytest.approx(40 * run.prompt_tokens / 5)
    assert got["completion_tokens"] == pytest.approx(40 * run.completion_tokens / 5)
    assert got["tokens"] == pytest.approx(40 * per_accepted)
    assert got["iterations"] == pytest.approx(40 * 2 / 5)
    assert got["wall_seconds"] == pytest.approx(40 * run.wall_seconds / 5)
    assert got["cost"] is got["currency"] is got["cost_per_accepted"] is None
    # The same key then queues the real run: the dry run claimed nothing.
    real = api.client.post(
        "/v1/runs", json=body, headers={**api.headers(), "Idempotency-Key": "k1"}
    )
    assert real.status_code == 202 and real.json()["target_tasks"] == 40

    # Budgets: the first limit expected to be reached, and the money at the model's price.
    price = {"prompt_per_million": 3.0, "completion_per_million": 15.0}
    priced = dry_run(
        api,
        {
            **body,
            "budgets": {
                "max_tokens": int(per_accepted * 10),
                "max_cost": 1e6,
                "currency": "EUR",
                "prices": {"smollm2-135m": price},
            },
        },
    )
    assert priced["stops_at"] == "token_budget"
    assert priced["accepted"] == pytest.approx(int(per_accepted * 10) / per_accepted)
    money = (run.prompt_tokens * 3.0 + run.completion_tokens * 15.0) / 1e6 / 5
    assert priced["cost_per_accepted"] == pytest.approx(money) and priced["currency"] == "EUR"
    assert priced["cost"] == pytest.approx(priced["accepted"] * money)
    capped = dry_run(api, {**body, "max_iterations": 4})
    assert (capped["stops_at"], capped["accepted"]) == ("max_iterations", pytest.approx(10))


def test_fallbacks_other_model_then_none(api: ApiHarness) -> None:
    run = earlier_run(api)
    other = dry_run(api, {"seed_set": "default", "backend": "vllm"})
    assert other["basis"] == "same_templates" and other["measured_runs"] == [run.id]
    assert other["tokens_per_accepted"] == pytest.approx(
        (run.prompt_tokens + run.completion_tokens) / 5
    )
    # The classification-only variant renders another instruction template: no basis.
    none = dry_run(api, {"seed_set": "default", "bootstrap": {"classification_only": True}})
    assert none["basis"] == "none" and none["measured_runs"] == []
    assert none["stops_at"] is none["tokens"] is none["cost"] is None


def test_empty_database_unknown_seed_set_and_openapi(api: ApiHarness) -> None:
    r = api.client.post("/v1/runs?dry_run=true", json={"seed_set": "nope"}, headers=api.headers())
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    bad = api.client.post(
        "/v1/runs?dry_run=true",
        json={"seed_set": "x", "budgets": {"max_cost": 1}},
        headers=api.headers(),
    )
    assert bad.status_code == 422
    assert rows(api)[0] == 0
    with api.database.transaction() as s:
        import_seed_set(
            s, name="default", seed_file=parse_seed_file(default_seed_path().read_bytes())
        )
    empty = dry_run(api, {"seed_set": "default", "target_tasks": 7})
    assert (empty["basis"], empty["measured_runs"], empty["target_tasks"]) == ("none", [], 7)
    assert empty["accepted"] is empty["tokens"] is empty["wall_seconds"] is None
    spec = api.client.get("/openapi.json").json()["paths"]["/v1/runs"]["post"]
    assert any(p["name"] == "dry_run" for p in spec["parameters"])
    assert spec["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/RunEstimate"
    )
