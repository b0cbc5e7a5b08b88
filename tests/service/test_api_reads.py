"""The hot reads (runs and tasks, list and show) answer what the ORM and the schemas say.

Those routes read on the database driver itself, in batches, and render their JSON without
pydantic; well-formed requests are answered ahead of FastAPI's routing. So here every document
they serve, for a run committed through the real iteration code (tasks with instances, scores,
generation calls and a nearest duplicate), is checked against the response schema and against
the ORM-built document of the same rows, on SQLite and PostgreSQL, with and without the fast
path; the fast path answers every request byte for byte as the routes do; concurrent reads
share database calls and still get their own documents. The PostgreSQL reader's pool also
survives the server dropping its connections.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import select

from generators.config import BootstrapConfig
from service.api.routes.runs import run_out
from service.api.routes.tasks import task_detail
from service.api.schemas import Page, RunOut, TaskDetail, TaskOut
from service.app import create_app
from service.runs.config import RunConfig
from service.storage.iterations import commit_iteration
from service.storage.models import Task
from service.storage.runs import get_run
from service.storage.tasks import task_provenance
from tests.conftest import _admin, _pg_url
from tests.service.api_client import ApiHarness, api_harness
from tests.service.scripted_run import claimed_run, scripted_pipeline


@pytest.fixture(params=[True, False], ids=["fast", "routed"])
def api(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ApiHarness]:
    """The API with its fast read path (the default) and without it (every request routed)."""
    with api_harness(db_url, tmp_path, api_fast_reads=request.param) as harness:
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
    bad = api.client.get("/v1/runs?cursor=bm90LWEtY3Vyc29y", headers=h)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_input"


@pytest.fixture
def pg_api(pg_template: str, tmp_path: Path) -> Iterator[tuple[ApiHarness, str]]:
    name = f"if_reads_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    try:
        with api_harness(_pg_url(name), tmp_path, api_read_connections=3) as harness:
            yield harness, name
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_reads_survive_the_server_closing_their_connections(
    pg_api: tuple[ApiHarness, str],
) -> None:
    api, name = pg_api
    run_id = _one_iteration(api)
    h = api.headers("read")
    assert api.client.get(f"/v1/runs/{run_id}", headers=h).status_code == 200
    # What a PostgreSQL restart or an idle-connection timeout does to a pooled connection.
    with psycopg.connect(_pg_url(name).replace("+psycopg", ""), autocommit=True) as conn:
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert killed is not None and killed[0] >= 3
    for _ in range(5):  # more reads than the pool holds connections: each dead one is met
        r = api.client.get(f"/v1/runs/{run_id}", headers=h)
        assert r.status_code == 200, r.text


def test_task_cache_keeps_details_not_absences(api: ApiHarness) -> None:
    h = api.headers("read")
    _one_iteration(api)
    tasks = api.client.get("/v1/tasks?limit=500", headers=h).json()["items"]
    next_id = max(t["id"] for t in tasks) + 1
    assert api.client.get(f"/v1/tasks/{next_id}", headers=h).status_code == 404
    _one_iteration(api)  # writes the task with that id (and more)
    first = api.client.get(f"/v1/tasks/{next_id}", headers=h)
    assert first.status_code == 200 and first.json()["id"] == next_id
    cache = api.client.app.state.reads.task_cache  # type: ignore[attr-defined]
    assert cache is not None and next_id in cache
    assert api.client.get(f"/v1/tasks/{next_id}", headers=h).content == first.content


def _odd_requests(
    run_id: int, task_id: int, keys: dict[str, str]
) -> list[tuple[str, str, dict[str, str]]]:
    """(method, path, headers): the plain reads and the requests the fast path must leave to
    the routes, or answer exactly as they do."""
    read = {"Authorization": f"Bearer {keys['read']}"}
    paths = [
        f"/v1/runs/{run_id}",
        f"/v1/runs/{run_id}?limit=abc",
        "/v1/runs/987654",
        "/v1/runs/0",
        "/v1/runs/007",
        "/v1/runs/abc",
        "/v1/runs/99999999999999999999",
        "/v1/runs/",
        "/v1/runs",
        "/v1/runs?limit=1",
        "/v1/runs?limit=0",
        "/v1/runs?limit=abc",
        "/v1/runs?limit=1&limit=2",
        "/v1/runs?status=running",
        "/v1/runs?status=bogus",
        "/v1/runs?status=",
        "/v1/runs?kind=batch&unknown=1",
        "/v1/runs?cursor=bm90LWEtY3Vyc29y",
        "/v1/tasks",
        f"/v1/tasks?run_id={run_id}&limit=2",
        "/v1/tasks?run_id=0",
        "/v1/tasks?min_score=0.5",
        "/v1/tasks?min_score=0.5&scorer=heuristic_quality",
        "/v1/tasks?is_classification=true&status=accepted",
        "/v1/tasks?is_classification=maybe",
        f"/v1/tasks/{task_id}",
        "/v1/tasks/987654",
        "/v1/tasks/-1",
    ]
    requests = [("GET", p, read) for p in paths]
    for headers in (
        {},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {keys['read']}"},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": f"bearer {keys['admin']}"},
        {"Authorization": f"Bearer {keys['write']}"},
        {**read, "Content-Length": "3"},
    ):
        requests += [("GET", f"/v1/runs/{run_id}", headers), ("GET", "/v1/tasks", headers)]
    requests += [("HEAD", f"/v1/runs/{run_id}", read), ("POST", "/v1/runs", read)]
    return requests


def test_the_fast_path_answers_as_the_routes_do(db_url: str, tmp_path: Path) -> None:
    with (
        api_harness(db_url, tmp_path, api_fast_reads=True) as fast,
        api_harness(db_url, tmp_path, api_fast_reads=False) as routed,
    ):
        run_id = _one_iteration(fast)
        task_id = fast.client.get("/v1/tasks", headers=fast.headers("read")).json()["items"][0][
            "id"
        ]
        for method, path, headers in _odd_requests(run_id, task_id, fast.keys):
            body = b"abc" if "Content-Length" in headers else None
            a = fast.client.request(
                method, path, headers=headers, content=body, follow_redirects=False
            )
            b = routed.client.request(
                method, path, headers=headers, content=body, follow_redirects=False
            )
            seen = (method, path, headers)
            assert (a.status_code, a.content) == (b.status_code, b.content), seen
            for name in ("content-type", "content-length", "www-authenticate", "location"):
                assert a.headers.get(name) == b.headers.get(name), (seen, name)


async def _get(app: FastAPI, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    """One GET straight through the ASGI app: no client machinery awaits before the app runs,
    so requests started together reach the app in the same turn of the event loop."""
    bare, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": bare,
        "raw_path": bare.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("api", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


async def _concurrently(
    app: FastAPI, paths: list[str], headers: dict[str, str], calls: list[int]
) -> list[tuple[int, Any]]:
    async with app.router.lifespan_context(app):
        await _get(app, "/v1/runs", headers)  # the key is verified (and remembered) here
        calls.clear()
        return await asyncio.gather(*(_get(app, p, headers) for p in paths))


def test_concurrent_reads_share_database_calls(api: ApiHarness) -> None:
    for _ in range(3):
        run_id = _one_iteration(api)
    h = api.headers("read")
    task_ids = [t["id"] for t in api.client.get("/v1/tasks", headers=h).json()["items"]]
    paths = [f"/v1/tasks/{t}" for t in task_ids] + ["/v1/tasks/987654"]
    paths += [f"/v1/runs/{run_id}", f"/v1/runs/{run_id - 1}", "/v1/runs/987654"]
    paths += ["/v1/runs", "/v1/runs", "/v1/runs?limit=1", "/v1/tasks?limit=2", "/v1/tasks?limit=2"]
    one_by_one = [api.client.get(p, headers=h) for p in paths]

    # No task cache, and every request's key looked up: concurrent lookups of one key share
    # a call too (a remembered key expiring under load made each request in flight ask).
    update = {"api_task_cache_mb": 0, "api_key_cache_seconds": 0}
    settings = api.client.app.state.settings.model_copy(update=update)  # type: ignore[attr-defined]
    app = create_app(settings, database=api.database)
    reader = app.state.reads.reader
    calls: list[int] = []
    fetch = reader.fetch

    async def counted(*statements: Any) -> Any:
        calls.append(len(statements))
        return await fetch(*statements)

    reader.fetch = counted
    together = asyncio.run(_concurrently(app, paths, h, calls))
    assert together == [(r.status_code, r.json()) for r in one_by_one]
    assert [status for status, _ in together].count(404) == 2
    # One call per kind of read: the key, task details, runs, run pages, task pages.
    assert len(calls) == 5, calls
