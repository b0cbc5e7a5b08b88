"""POST /v1/generate queues a batch run for a worker and waits a bound: 200 done, 202 poll.

The worker here answers with a scripted backend: these tests are about the route's contract,
the queue and the stored rows, not inference (tests/e2e has the real model).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select

from generators.backends.base import Backend
from generators.backends.scripted import ScriptedBackend
from service.runs.config import RunConfig
from service.runs.worker import Worker
from service.settings import Settings
from service.storage.models import Run, Task
from tests.service.api_client import ApiHarness, api_harness
from tests.service.scripted_run import reply
from tests.service.test_export import import_seeds

REPO_ROOT = Path(__file__).resolve().parents[2]


def scripted(config: RunConfig, settings: Settings) -> Backend:
    return ScriptedBackend(reply)


@contextmanager
def worker_thread(api: ApiHarness, factory: object = scripted) -> Iterator[Worker]:
    settings = Settings(database_url=api.database.url, poll_seconds=0.05)
    worker = Worker(settings=settings, database=api.database, backend_factory=factory)  # type: ignore[arg-type]
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop_requested.set()
        thread.join(timeout=30)


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[ApiHarness]:
    with api_harness(db_url, tmp_path, generate_wait_seconds=20) as harness:
        import_seeds(harness.database)
        yield harness


def test_done_within_the_bound_answers_200_with_the_tasks(api: ApiHarness) -> None:
    headers = {**api.headers(), "Idempotency-Key": "g-1"}
    with worker_thread(api):
        first = api.client.post("/v1/generate", json={"seed_set": "default"}, headers=headers)
        again = api.client.post("/v1/generate", json={"seed_set": "default"}, headers=headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert [t["instruction"] for t in body["tasks"]] == [
        "Write a short poem about the ocean at night.",
        "Write a short poem about the ocean at night!",
        "Draw a picture of a cat.",
        "List three ways to save water at home.",
    ]
    assert [t["status"] for t in body["tasks"]] == ["accepted", "rejected", "rejected", "accepted"]
    assert (again.status_code, again.content) == (200, first.content)  # a retry: same answer
    with api.database.sessions() as s:
        runs = s.scalars(select(Run)).all()
        assert [(r.kind, r.status, r.iteration) for r in runs] == [("batch", "completed", 1)]
        machine = select(func.count()).select_from(Task).where(Task.run_id == runs[0].id)
        assert runs[0].generated_count == 4 == s.scalar(machine)


def test_not_done_within_the_bound_answers_202_with_the_run_to_poll(
    db_url: str, tmp_path: Path
) -> None:
    with api_harness(db_url, tmp_path, generate_wait_seconds=0) as api:
        import_seeds(api.database)
        headers = {**api.headers(), "Idempotency-Key": "g-2"}
        body = {"seed_set": "default", "prompts": 2, "seed": 7}
        first = api.client.post("/v1/generate", json=body, headers=headers)
        assert first.status_code == 202, first.text
        run_id = first.json()["run_id"]
        assert first.json() == {
            "run_id": run_id,
            "status": "queued",
            "poll": f"/v1/runs/{run_id}",
            "tasks": f"/v1/tasks?run_id={run_id}",
        }
        again = api.client.post("/v1/generate", json=body, headers=headers)
        assert (again.status_code, again.content) == (202, first.content)
        settings = Settings(database_url=db_url)
        Worker(settings=settings, database=api.database, backend_factory=scripted).run_forever(
            once=True
        )
        run = api.client.get(first.json()["poll"], headers=api.headers("read")).json()
        assert (run["kind"], run["status"]) == ("batch", "completed")
        tasks = api.client.get(first.json()["tasks"], headers=api.headers("read")).json()
        assert len(tasks["items"]) == 8  # two prompts, four tasks each
        with api.database.sessions() as s:  # the retry made no second run
            assert s.scalar(select(func.count()).select_from(Run)) == 1


def test_a_failed_batch_answers_503_with_the_reason_and_keeps_the_run(api: ApiHarness) -> None:
    def broken(config: RunConfig, settings: Settings) -> Backend:
        raise OSError(f"no model at {config.model}")

    with worker_thread(api, broken):
        answer = api.client.post(
            "/v1/generate", json={"seed_set": "default"}, headers=api.headers()
        )
    # The configured model passes the API's access check; it is the worker that fails it.
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "generation_failed"
    assert "no model at " in answer.json()["message"]
    with api.database.sessions() as s:
        run = s.scalars(select(Run)).one()
        assert (run.kind, run.status, run.lease_owner) == ("batch", "failed", None)


def test_an_unknown_seed_set_creates_nothing(api: ApiHarness) -> None:
    answer = api.client.post("/v1/generate", json={"seed_set": "nope"}, headers=api.headers())
    assert answer.status_code == 404
    with api.database.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Run)) == 0


API_PROCESS = """
import json, sys
import generators.backends as backends

def refuse(*args, **kwargs):
    raise AssertionError("the API process constructed a backend")

backends.make_backend = refuse
from fastapi.testclient import TestClient
from service.app import create_app
from service.settings import Settings
from service.storage import migrate
from service.storage.db import Database
from service.storage.keys import create_api_key
from tests.service.test_export import import_seeds

url = sys.argv[1]
migrate.upgrade(url)
database = Database(url)
import_seeds(database)
with database.transaction() as s:
    _, key = create_api_key(s, name="w", scopes=["read", "write"])
settings = Settings(database_url=url, generate_wait_seconds=0.5)
with TestClient(create_app(settings, database=database)) as client:
    answers = [
        client.post(
            "/v1/generate", json={"seed_set": "default", **body},
            headers={"Authorization": f"Bearer {key}"},
        ).status_code
        for body in ({}, {"backend": "transformers", "prompts": 3}, {"model": "smollm2-135m"})
    ]
loaded = sorted(
    m for m in sys.modules
    if m.split(".")[0] in ("torch", "transformers", "vllm", "gguf", "openai")
    # the Backend protocol (type hints) is no backend, the fleet module only parses the base
    # URLs the access check compares, and the options module holds the pydantic types a run's
    # backend_options are checked against; the implementations are backends
    or (
        m.startswith("generators.backends.")
        and m.rsplit(".", 1)[1] not in ("base", "fleet", "options")
    )
)
print(json.dumps({"answers": answers, "loaded": loaded}))
"""


def test_the_api_process_never_loads_a_model(tmp_path: Path) -> None:
    # A fresh interpreter: this test process may have imported torch for other tests.
    url = f"sqlite:///{tmp_path / 'api.db'}"
    done = subprocess.run(
        [sys.executable, "-c", API_PROCESS, url],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"answers": [202, 202, 202], "loaded": []}
