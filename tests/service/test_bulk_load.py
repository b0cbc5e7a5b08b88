"""service.storage.bulk on both databases: rows with their own ids go in (COPY on PostgreSQL,
executemany on SQLite), defaults and JSON as the ORM would store them, ids handed out later do
not collide, run counters match the tasks, and the API reads the result."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from service.storage.bulk import analyze, insert_rows, next_id, recount_runs
from service.storage.models import Instance, Run, Score, Task
from service.storage.runs import create_run
from tests.service.api_client import api_harness


def test_bulk_rows_read_back_like_worker_rows(db_url: str, tmp_path: Path) -> None:
    with api_harness(db_url, tmp_path) as api:
        made = api.client.post(
            "/v1/seed-sets?name=s",
            content='{"id": "a", "name": "a", "instruction": "Say hi.", '
            '"instances": [{"input": "", "output": "hi"}]}',
            headers=api.headers(),
        )
        assert made.status_code == 201, made.text
        database = api.database
        with database.transaction() as s:
            run_id = create_run(
                s,
                seed_set_id=made.json()["id"],
                config={},
                config_hash="0" * 64,
                policy_version="v1",
                target_tasks=10,
            ).id
        with database.engine.begin() as conn:
            first, first_instance = next_id(conn, Task), next_id(conn, Instance)
            tasks = [
                {
                    "id": first + i,
                    "origin": "machine",
                    "seed_set_id": made.json()["id"],
                    "run_id": run_id,
                    "iteration": 1,
                    "instruction": f"Name {i} rivers, «{i}» 河流.",
                    "status": "rejected" if i == 2 else "accepted",
                    "reject_rule": "near_duplicate" if i == 2 else None,
                    "nearest_task_id": first if i == 2 else None,
                }
                for i in range(3)
            ]
            insert_rows(conn, Task, tasks)
            insert_rows(
                conn,
                Instance,
                [
                    {"id": first_instance + i, "task_id": first + i, "idx": 0, "input": "",
                     "output": "x"}
                    for i in range(3)
                ],
            )  # fmt: skip
            insert_rows(
                conn,
                Score,
                [
                    {
                        "task_id": first,
                        "instance_id": first_instance,
                        "scorer": "refusal",
                        "scorer_version": "2",
                        "value": 0.25,
                        "details": {"why": ["ok"]},
                    }
                ],
            )
            recount_runs(conn, [run_id])
        with database.engine.connect() as conn:
            analyze(conn)
        with database.transaction() as s:
            score = s.scalars(select(Score)).one()
            assert score.details == {"why": ["ok"]} and score.value == 0.25
            assert score.created_at.tzinfo is not None
            assert (datetime.now(UTC) - score.created_at).total_seconds() < 600
            run = s.get(Run, run_id)
            assert run is not None
            assert (run.generated_count, run.accepted_count, run.rejected_count) == (3, 2, 1)
            assert run.rejected_by_rule == {"near_duplicate": 1}
            # Ids handed out after the load follow it (PostgreSQL: the sequence was moved on).
            later = Task(
                origin="seed", seed_set_id=made.json()["id"], instruction="x", status="accepted"
            )
            s.add(later)
            s.flush()
            assert later.id == first + 3
        rejected = api.client.get(
            "/v1/tasks?reject_rule=near_duplicate&q=河流", headers=api.headers("read")
        ).json()["items"]
        assert [t["id"] for t in rejected] == [first + 2]
        detail = api.client.get(f"/v1/tasks/{first + 2}", headers=api.headers("read")).json()
        assert detail["nearest"]["id"] == first
        assert [i["output"] for i in detail["instances"]] == ["x"]
