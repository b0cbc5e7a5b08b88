"""The hot reads (runs and tasks, list and show) answer what the ORM and the schemas say.

Those routes read plain rows on SQLAlchemy's asyncio engine and render their JSON without
pydantic. So here every document they serve, for a run committed through the real iteration
code (tasks with instances, scores, generation calls and a nearest duplicate), is checked
against the response schema and against the ORM-built document of the same rows, on SQLite and
PostgreSQL; concurrent reads beyond the pool's size each get their own document; the pool
survives the server dropping its connections; an in-memory SQLite database serves them too.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import Engine, event, inspect, select

from bench.databases import pg_database, pg_url
from generators.config import BootstrapConfig
from service.api.routes.runs import run_out
from service.api.routes.tasks import task_detail
from service.api.schemas import Page, RunOut, TaskDetail, TaskOut
from service.app import create_app
from service.runs.config import RunConfig
from service.settings import Settings
from service.storage.db import Database
from service.storage.iterations import commit_iteration
from service.storage.keys import create_api_key
from service.storage.models import Base, Score, Task
from service.storage.runs import get_run
from service.storage.tasks import task_provenance
from tests.service.api_client import ApiHarness, api_harness, asgi_get
from tests.service.scripted_run import claimed_run, scripted_pipeline


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[ApiHarness]:
    with api_harness(db_url, tmp_path) as harness:
        yield harness


def _one_iteration(api: ApiHarness) -> int:
    config = RunConfig(
        seed_set="default", bootstrap=BootstrapConfig(prompts_per_iteration=1), target_tasks=5
    )
    run_id = claimed_run(api.database, config)
    run, pipeline = scripted_pipeline(api.database, run_id, config)
    outcome = pipeline.step(1)
    with api.database.transaction() as s:
        commit_iteration(s, run=run, owner="me", lease_seconds=60, outcome=outcome)
    return run_id


def _as_schema(model: type[BaseModel], document: Any) -> Any:
    """The document as the schema would render it: same keys, same JSON values."""
    return model.model_validate(document).model_dump(mode="json")


def test_documents_match_the_schema_and_the_orm(api: ApiHarness) -> None:
    run_id = _one_iteration(api)
    h = api.headers("read")

    run_doc = api.client.get(f"/v1/runs/{run_id}", headers=h).json()
    with api.database.sessions() as s:
        assert run_doc == run_out(get_run(s, run_id)).model_dump(mode="json")
    assert run_doc == _as_schema(RunOut, run_doc)
    assert run_doc["progress"]["rejected_by_rule"] == {
        "unsuitable_keyword": 1,
        "near_duplicate": 1,
    }

    runs = api.client.get("/v1/runs", headers=h).json()
    assert runs == _as_schema(Page[RunOut], runs) and runs["items"] == [run_doc]

    listed = api.client.get(f"/v1/tasks?run_id={run_id}&limit=2", headers=h).json()
    assert listed == _as_schema(Page[TaskOut], listed)
    rest = api.client.get(
        f"/v1/tasks?run_id={run_id}&cursor={listed['next_cursor']}", headers=h
    ).json()
    assert rest["next_cursor"] is None
    tasks = listed["items"] + rest["items"]
    with api.database.sessions() as s:
        rows = list(s.scalars(select(Task).where(Task.run_id == run_id).order_by(Task.id)))
        assert tasks == [TaskOut.model_validate(t).model_dump(mode="json") for t in rows]
        details = {
            t.id: task_detail(task_provenance(s, t.id)).model_dump(mode="json") for t in rows
        }

    for task_id, expected in details.items():
        doc = api.client.get(f"/v1/tasks/{task_id}", headers=h).json()
        assert doc == expected and doc == _as_schema(TaskDetail, doc)
    # The iteration's provenance is all there: the generation call, instances and scores of
    # the accepted poem, and the near-duplicate's pointer to it.
    poem = next(d for d in details.values() if d["instruction"].endswith("night."))
    dup = next(d for d in details.values() if d["instruction"].endswith("night!"))
    assert poem["generation"]["stage"] and poem["instances"] and poem["scores"]
    assert dup["nearest"] == {
        "id": poem["id"],
        "instruction": poem["instruction"],
        "similarity": dup["similarity"],
    }


def test_missing_rows_and_bad_cursors(api: ApiHarness) -> None:
    h = api.headers("read")
    for path in ("/v1/runs/12345", "/v1/tasks/12345"):
        r = api.client.get(path, headers=h)
        assert r.status_code == 404 and r.json()["code"] == "not_found"
    for route in ("runs", "tasks"):
        bad = api.client.get(f"/v1/{route}?cursor=bm90LWEtY3Vyc29y", headers=h)
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_input"
        # An empty cursor is no cursor: the first page.
        first = api.client.get(f"/v1/{route}?cursor=", headers=h)
        assert first.status_code == 200
        assert first.json() == api.client.get(f"/v1/{route}", headers=h).json()
    r = api.client.get("/v1/tasks?min_score=0.5", headers=h)
    assert r.status_code == 422 and r.json()["code"] == "invalid_input"


@pytest.fixture
def pg_api(pg_template: str, tmp_path: Path) -> Iterator[tuple[ApiHarness, str]]:
    with (
        pg_database("if_reads", template=pg_template, migrate=False) as url,
        api_harness(url, tmp_path, api_read_connections=3) as harness,
    ):
        yield harness, url.rsplit("/", 1)[1]


@pytest.mark.postgres
def test_reads_survive_the_server_closing_their_connections(
    pg_api: tuple[ApiHarness, str],
) -> None:
    api, name = pg_api
    run_id = _one_iteration(api)
    h = api.headers("read")
    paths = [f"/v1/runs/{run_id}", "/v1/tasks?limit=1", "/v1/runs"] * 3

    def kill_every_connection() -> int:
        # What a PostgreSQL restart or an idle-connection timeout does to pooled connections.
        with psycopg.connect(pg_url(name).replace("+psycopg", ""), autocommit=True) as conn:
            killed = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
        return killed[0] if killed else 0

    async def scenario() -> tuple[list[tuple[int, Any]], int, list[tuple[int, Any]]]:
        app = create_app(api.client.app.state.settings, database=api.database)  # type: ignore[attr-defined]
        async with app.router.lifespan_context(app):
            before = await asyncio.gather(*(_get(app, p, h) for p in paths))  # pool filled
            killed = kill_every_connection()
            after = [await _get(app, p, h) for p in paths]  # every dead one is met
            return before, killed, after

    before, killed, after = asyncio.run(scenario())
    assert killed >= 3  # the asyncio engine's pool of 3, and the sync engine's
    assert after == before and {status for status, _ in after} == {200}


async def _get(app: FastAPI, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    status, body = await asgi_get(app, path, headers)
    return status, json.loads(body)


async def _concurrently(
    app: FastAPI, paths: list[str], headers: dict[str, str]
) -> list[tuple[int, Any]]:
    async with app.router.lifespan_context(app):
        return await asyncio.gather(*(_get(app, p, headers) for p in paths))


def test_concurrent_reads_wait_for_the_pools_connections(pg_api: tuple[ApiHarness, str]) -> None:
    """More requests at once than the asyncio engine has connections (3 here): each waits for
    one and gets its own document, on one event loop."""
    api, _ = pg_api
    for _ in range(2):
        run_id = _one_iteration(api)
    h = api.headers("read")
    task_ids = [t["id"] for t in api.client.get("/v1/tasks", headers=h).json()["items"]]
    paths = [f"/v1/tasks/{t}" for t in task_ids] + ["/v1/tasks/987654"]
    paths += [f"/v1/runs/{run_id}", f"/v1/runs/{run_id - 1}", "/v1/runs/987654"]
    paths += ["/v1/runs", "/v1/runs?limit=1", "/v1/tasks?limit=2", f"/v1/tasks?run_id={run_id}"]
    paths *= 4
    one_by_one = [api.client.get(p, headers=h) for p in paths]
    # Every request's key looked up too: key checks take connections of the same pool.
    update = {"api_key_cache_seconds": 0}
    settings = api.client.app.state.settings.model_copy(update=update)  # type: ignore[attr-defined]
    app = create_app(settings, database=api.database)
    together = asyncio.run(_concurrently(app, paths, h))
    assert len(paths) > 3 * 10
    assert together == [(r.status_code, r.json()) for r in one_by_one]
    assert [status for status, _ in together].count(404) == 2 * 4


def test_in_memory_sqlite_serves_authenticated_routes(tmp_path: Path) -> None:
    """One in-memory database for the writer's thread, the route threads and the event loop's
    reads (a plain `:memory:` connection each sees a database of its own)."""
    database = Database("sqlite:///:memory:")
    try:
        Base.metadata.create_all(database.engine)
        with database.transaction() as s:
            _, key = create_api_key(s, name="r", scopes=["read"])
        h = {"Authorization": f"Bearer {key}"}
        settings = Settings(database_url="sqlite:///:memory:", data_dir=tmp_path)
        with TestClient(create_app(settings, database=database)) as client:
            assert client.get("/v1/runs", headers=h).json() == {"items": [], "next_cursor": None}
            assert client.get("/v1/tasks/1", headers=h).json()["code"] == "not_found"
            assert client.get("/v1/seed-sets", headers=h).json() == []  # a route on a thread
            assert client.get("/v1/runs", headers={"Authorization": "Bearer x"}).status_code == 401
        # Two databases made from the same URL are two databases.
        other = Database("sqlite:///:memory:")
        try:
            assert other.url != database.url
            assert not inspect(other.engine).get_table_names()
        finally:
            other.dispose()
    finally:
        database.dispose()


def _metric_values(text: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def test_metrics_sum_the_runs_counters(api: ApiHarness) -> None:
    """/metrics shows what the runs' own progress shows, summed over every run."""
    h = api.headers("read")
    run_ids = [_one_iteration(api), _one_iteration(api)]
    progress = [api.client.get(f"/v1/runs/{r}", headers=h).json()["progress"] for r in run_ids]
    metrics = _metric_values(api.client.get("/metrics").text)

    def total(key: str) -> int:
        return sum(p[key] for p in progress)

    assert metrics['instructforge_runs{status="running"}'] == 2
    assert metrics['instructforge_machine_tasks{rule="",status="accepted"}'] == total("accepted")
    for rule in ("unsuitable_keyword", "near_duplicate"):
        rejected = sum(p["rejected_by_rule"][rule] for p in progress)
        assert (
            metrics[f'instructforge_machine_tasks{{rule="{rule}",status="rejected"}}'] == rejected
        )
    assert metrics['instructforge_tokens{kind="prompt"}'] == total("prompt_tokens") > 0
    assert metrics['instructforge_tokens{kind="completion"}'] == total("completion_tokens") > 0
    assert metrics["instructforge_parse_failures"] == total("parse_failures")


def test_task_detail_keeps_every_value_exact(api: ApiHarness) -> None:
    """The detail's provenance comes back as JSON the database builds (json_agg on PostgreSQL,
    json_group_array on SQLite): doubles to the last bit, booleans as booleans, stored JSON
    nested (not a string of it), NULLs as null, text in any script, against the ORM's rows."""
    run_id = _one_iteration(api)
    doubles = [0.1 + 0.2, 1 / 3, 1e-300, 123456789.12345678, -2.5e-7, 2.0, None]
    with api.database.transaction() as s:
        task = s.scalars(select(Task).where(Task.run_id == run_id).order_by(Task.id)).first()
        assert task is not None
        p = task_provenance(s, task.id)
        assert p.generation is not None and p.instances and p.scores
        task.similarity = 0.7000000000000001
        p.generation.latency_s = 1 / 7
        p.generation.chat_wrapped = not p.generation.chat_wrapped
        p.generation.messages = None
        p.generation.sampling = {"temperature": 0.1 + 0.7, "stop": ["\u2028", "终"]}
        p.instances[0].output = 'line\u2028sep \u0085 \U0001f600 "quoted" \\ tab\t'
        for value in doubles:
            s.add(
                Score(
                    task_id=task.id, instance_id=p.instances[0].id, scorer="probe",
                    scorer_version="1", value=value, details={"v": value, "ok": value is None},
                )
            )  # fmt: skip
        task_id = task.id
    with api.database.sessions() as s:
        expected = task_detail(task_provenance(s, task_id)).model_dump(mode="json")
    doc = api.client.get(f"/v1/tasks/{task_id}", headers=api.headers("read")).json()
    assert doc == expected
    probes = [sc for sc in doc["scores"] if sc["scorer"] == "probe"]
    assert [sc["value"] for sc in probes] == doubles  # in id order, bit for bit
    assert all(type(sc["details"]["ok"]) is bool for sc in probes)
    assert type(doc["generation"]["chat_wrapped"]) is bool
    assert doc["generation"]["messages"] is None


def test_reads_that_arrive_together_share_one_statement(api: ApiHarness) -> None:
    """Concurrent reads (found and missing runs and tasks, equal and different pages, a bad
    cursor among good ones) answer exactly as one-by-one reads, while the runs and the task
    details of one turn of the event loop are each read by one statement, and equal pages
    once."""
    for _ in range(2):
        run_id = _one_iteration(api)
    h = api.headers("read")
    tasks = api.client.get(f"/v1/tasks?run_id={run_id}", headers=h).json()["items"]
    task_ids = [t["id"] for t in tasks] + [1, 2]  # machine tasks and seeds
    assert len(task_ids) > 3
    paths = [f"/v1/tasks/{t}" for t in task_ids] + ["/v1/tasks/987654"]
    paths += [f"/v1/runs/{run_id}", f"/v1/runs/{run_id - 1}", "/v1/runs/987654"]
    paths += ["/v1/runs", "/v1/runs?limit=1", "/v1/tasks?limit=2", f"/v1/tasks?run_id={run_id}"]
    paths += ["/v1/tasks?cursor=bm90LWEtY3Vyc29y", "/v1/runs?cursor=bm90LWEtY3Vyc29y"]
    paths *= 3
    one_by_one = [api.client.get(p, headers=h) for p in paths]
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if conn.dialect.is_async:
            statements.append(statement)

    async def together() -> list[tuple[int, Any]]:
        app = create_app(api.client.app.state.settings, database=api.database)  # type: ignore[attr-defined]
        async with app.router.lifespan_context(app):
            await _get(app, "/v1/runs", h)  # the key is checked once, then remembered
            statements.clear()
            return await asyncio.gather(*(_get(app, p, h) for p in paths))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        answers = asyncio.run(together())
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    assert answers == [(r.status_code, r.json()) for r in one_by_one]
    assert [status for status, _ in answers].count(404) == 2 * 3
    assert [status for status, _ in answers].count(422) == 2 * 3
    details = [s for s in statements if "nearest_instruction" in s]
    pages = [s for s in statements if "LIMIT" in s.upper()]
    runs_by_id = [s for s in statements if "FROM runs" in s and s not in pages]
    assert len(details) == 1 and len(runs_by_id) == 1  # a batch holds up to 100 reads
    # Four distinct good pages, each read once for its three requests (bad cursors read none).
    assert len(pages) == 4 and len(statements) == 6
