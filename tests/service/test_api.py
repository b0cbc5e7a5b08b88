"""Every route through the real ASGI app, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.storage.models import Instance, Score, Task
from tests.conftest import shared_data
from tests.service.api_client import ApiHarness, api_harness

SEEDS = shared_data("self_instruct_seed_tasks.jsonl").read_bytes()


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[ApiHarness]:
    with api_harness(db_url, tmp_path, max_request_bytes=2_000_000) as harness:
        yield harness


def _upload(api: ApiHarness, name: str = "si", data: bytes = SEEDS) -> dict:
    r = api.client.post(
        f"/v1/seed-sets?name={name}",
        content=data,
        headers={**api.headers(), "Content-Type": "application/x-ndjson"},
    )
    assert r.status_code in (200, 201), r.text
    return r.json()


def test_health_ready_metrics_need_no_key(api: ApiHarness) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    _upload(api)
    metrics = api.client.get("/metrics")
    assert metrics.status_code == 200
    assert "instructforge_runs" in metrics.text


@pytest.mark.parametrize("path", ["/v1/seed-sets", "/v1/runs", "/v1/tasks"])
def test_auth_failures(api: ApiHarness, path: str) -> None:
    missing = api.client.get(path)
    assert missing.status_code == 401 and missing.json()["code"] == "unauthorized"
    wrong = api.client.get(path, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert api.client.get(path, headers=api.headers("read")).status_code == 200


def test_read_key_cannot_write(api: ApiHarness) -> None:
    r = api.client.post("/v1/seed-sets?name=x", content=SEEDS, headers=api.headers("read"))
    assert r.status_code == 403 and r.json()["code"] == "forbidden"


def test_seed_set_upload_raw_and_multipart(api: ApiHarness) -> None:
    created = _upload(api)
    assert created["created"] is True and created["task_count"] == 175
    again = _upload(api)
    assert again["created"] is False
    r = api.client.post(
        "/v1/seed-sets?name=multi", files={"file": ("s.jsonl", SEEDS)}, headers=api.headers()
    )
    assert r.status_code == 201 and r.json()["task_count"] == 175
    listed = api.client.get("/v1/seed-sets", headers=api.headers("read")).json()
    assert [s["name"] for s in listed] == ["si", "multi"]
    shown = api.client.get("/v1/seed-sets/si", headers=api.headers("read"))
    assert shown.json()["content_hash"] == created["content_hash"]
    assert api.client.get("/v1/seed-sets/nope", headers=api.headers("read")).status_code == 404


def test_seed_set_bad_line_names_line_and_writes_nothing(api: ApiHarness) -> None:
    lines = SEEDS.decode().splitlines()
    lines[4] = '{"id": "x", "name": "y", "instruction": "z z z z", "instances": []}'
    r = api.client.post(
        "/v1/seed-sets?name=bad", content="\n".join(lines).encode(), headers=api.headers()
    )
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_file" and "line 5" in r.json()["message"]
    assert api.client.get("/v1/seed-sets", headers=api.headers("read")).json() == []


def test_body_size_limit(api: ApiHarness) -> None:
    r = api.client.post("/v1/seed-sets?name=big", content=b"x" * 2_000_001, headers=api.headers())
    assert r.status_code == 413 and r.json()["code"] == "too_large"


def test_run_lifecycle_and_idempotency(api: ApiHarness) -> None:
    _upload(api)
    body = {"seed_set": "si", "target_tasks": 5, "prompts_per_iteration": 2}
    headers = {**api.headers(), "Idempotency-Key": "abc"}
    first = api.client.post("/v1/runs", json=body, headers=headers)
    assert first.status_code == 202, first.text
    run = first.json()
    assert run["status"] == "queued" and len(run["config_hash"]) == 64
    assert run["progress"]["accepted"] == 0 and run["progress"]["fraction_done"] == 0
    retry = api.client.post("/v1/runs", json=body, headers=headers)
    assert retry.status_code == 202 and retry.json()["id"] == run["id"]
    clash = api.client.post("/v1/runs", json={**body, "target_tasks": 6}, headers=headers)
    assert clash.status_code == 422 and clash.json()["code"] == "idempotency_key_reused"
    listed = api.client.get("/v1/runs", headers=api.headers("read")).json()
    assert [r["id"] for r in listed["items"]] == [run["id"]]
    rid = run["id"]
    assert (
        api.client.post(f"/v1/runs/{rid}/pause", headers=api.headers()).json()["status"] == "paused"
    )
    assert api.client.post(f"/v1/runs/{rid}/pause", headers=api.headers()).status_code == 409
    assert (
        api.client.post(f"/v1/runs/{rid}/resume", headers=api.headers()).json()["status"]
        == "queued"
    )
    assert (
        api.client.post(f"/v1/runs/{rid}/cancel", headers=api.headers()).json()["status"]
        == "cancelled"
    )
    assert api.client.post(f"/v1/runs/{rid}/resume", headers=api.headers()).status_code == 409
    events = api.client.get(f"/v1/runs/{rid}/events", headers=api.headers("read")).json()
    assert [e["kind"] for e in events][:3] == ["cancel", "resume", "pause"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"seed_set": "si", "target_tasks": 0}, "target_tasks"),
        ({"seed_set": "si", "backend": "gpt"}, "backend"),
        ({"seed_set": "si", "unknown": 1}, "unknown"),
        (
            {
                "seed_set": "si",
                "instruction_sampling": {"temperature": -1, "top_p": 1, "max_tokens": 5},
            },
            "temperature",
        ),
    ],
)
def test_run_validation_errors(api: ApiHarness, body: dict, field: str) -> None:
    r = api.client.post("/v1/runs", json=body, headers=api.headers())
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    assert field in r.text


def test_run_unknown_seed_set_and_bad_rule(api: ApiHarness) -> None:
    r = api.client.post("/v1/runs", json={"seed_set": "nope"}, headers=api.headers())
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    _upload(api)
    r = api.client.post(
        "/v1/runs",
        json={"seed_set": "si", "filters": {"disabled_rules": ["x"]}},
        headers=api.headers(),
    )
    assert r.status_code == 422 and "unknown rules" in r.json()["message"]


def test_absurd_ids_and_cursors_are_422_not_500(api: ApiHarness) -> None:
    h = api.headers("read")
    assert api.client.get("/v1/runs/99999999999999", headers=h).status_code == 422
    assert api.client.get("/v1/tasks/0", headers=h).status_code == 422
    assert api.client.get("/v1/tasks?cursor=%%%", headers=h).status_code == 422
    assert api.client.get("/v1/seed-sets/a%00b", headers=h).status_code in (404, 422)


def _add_machine_tasks(api: ApiHarness, seed_set_id: int, n: int) -> list[int]:
    ids = []
    with api.database.transaction() as s:
        for i in range(n):
            t = Task(
                origin="machine",
                seed_set_id=seed_set_id,
                instruction=f"Machine task {i}",
                is_classification=i % 2 == 0,
                status="accepted" if i % 3 else "rejected",
                reject_rule=None if i % 3 else "near_duplicate",
            )
            s.add(t)
            s.flush()
            inst = Instance(task_id=t.id, idx=0, input="", output=f"out {i}")
            s.add(inst)
            s.flush()
            s.add(
                Score(
                    task_id=t.id,
                    instance_id=inst.id,
                    scorer="heuristic_quality",
                    scorer_version="1",
                    value=i / n,
                    details={},
                )
            )
            ids.append(t.id)
    return ids


def test_tasks_filters_and_pagination(api: ApiHarness) -> None:
    sid = _upload(api)["id"]
    _add_machine_tasks(api, sid, 30)
    h = api.headers("read")
    seen, cursor = [], None
    while True:
        url = "/v1/tasks?origin=machine&limit=7" + (f"&cursor={cursor}" if cursor else "")
        page = api.client.get(url, headers=h).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 30 and seen == sorted(set(seen))
    rejected = api.client.get("/v1/tasks?status=rejected&reject_rule=near_duplicate", headers=h)
    assert len(rejected.json()["items"]) == 10
    cls = api.client.get("/v1/tasks?origin=machine&is_classification=true&limit=500", headers=h)
    assert len(cls.json()["items"]) == 15
    scored = api.client.get("/v1/tasks?scorer=heuristic_quality&min_score=0.5", headers=h)
    assert len(scored.json()["items"]) == 15
    no_scorer = api.client.get("/v1/tasks?min_score=0.5", headers=h)
    assert no_scorer.status_code == 422
    seeds = api.client.get("/v1/tasks?origin=seed&limit=500", headers=h).json()["items"]
    assert len(seeds) == 175


def test_task_provenance(api: ApiHarness) -> None:
    sid = _upload(api)["id"]
    tid = _add_machine_tasks(api, sid, 3)[1]
    detail = api.client.get(f"/v1/tasks/{tid}", headers=api.headers("read")).json()
    assert detail["instances"][0]["output"] == "out 1"
    assert detail["scores"][0]["scorer"] == "heuristic_quality"
    assert detail["generation"] is None
    assert api.client.get("/v1/tasks/99999", headers=api.headers("read")).status_code == 404


def test_openapi_is_served(api: ApiHarness) -> None:
    spec = api.client.get("/openapi.json").json()
    assert "/v1/runs/{run_id}/pause" in spec["paths"]
    json.dumps(spec)
