"""Exactly-once under concurrent retries, and honest status transitions, on both databases.

Real HTTP through the app, many requests in flight at once (the app's sync routes run on its
thread pool, so they reach the database concurrently).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from service.storage.models import DatasetVersion, IdempotencyRecord, Run
from tests.conftest import shared_data
from tests.service.api_client import ApiHarness, api_harness

SEEDS = shared_data("self_instruct_seed_tasks.jsonl").read_bytes()
PARALLEL = 50


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[ApiHarness]:
    with api_harness(db_url, tmp_path, max_request_bytes=2_000_000) as harness:
        r = harness.client.post(
            "/v1/seed-sets?name=si",
            content=SEEDS,
            headers={**harness.headers(), "Content-Type": "application/x-ndjson"},
        )
        assert r.status_code == 201, r.text
        yield harness


def _together(n: int, call: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(call, range(n)))


def _count(api: ApiHarness, model: Any) -> int:
    with api.database.sessions() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_same_key_runs_create_exactly_one(api: ApiHarness) -> None:
    body = {"seed_set": "si", "target_tasks": 5, "prompts_per_iteration": 2}
    headers = {**api.headers(), "Idempotency-Key": "one-run"}
    answers = _together(PARALLEL, lambda _: api.client.post("/v1/runs", json=body, headers=headers))
    assert {r.status_code for r in answers} == {202}, {r.text for r in answers}
    assert len({r.content for r in answers}) == 1  # byte-identical answers
    assert _count(api, Run) == 1
    assert _count(api, IdempotencyRecord) == 1


def test_same_key_versions_create_exactly_one(api: ApiHarness) -> None:
    headers = {**api.headers(), "Idempotency-Key": "one-version"}
    answers = _together(
        PARALLEL, lambda _: api.client.post("/v1/datasets/d/versions", json={}, headers=headers)
    )
    assert {r.status_code for r in answers} == {201}, {r.text for r in answers}
    assert len({r.content for r in answers}) == 1
    assert _count(api, DatasetVersion) == 1


def test_same_key_other_body_is_refused_while_the_first_is_kept(api: ApiHarness) -> None:
    headers = {**api.headers(), "Idempotency-Key": "k"}

    def call(i: int) -> httpx.Response:
        body = {"seed_set": "si", "target_tasks": 5 + i % 2}
        return api.client.post("/v1/runs", json=body, headers=headers)

    answers = _together(20, call)
    ok = [r for r in answers if r.status_code == 202]
    refused = [r for r in answers if r.status_code == 422]
    assert len(ok) + len(refused) == 20 and ok and refused
    assert {r.json()["code"] for r in refused} == {"idempotency_key_reused"}
    assert len({r.json()["id"] for r in ok}) == 1
    assert _count(api, Run) == 1


def test_keys_are_per_api_key_and_per_route(api: ApiHarness) -> None:
    body = {"seed_set": "si", "target_tasks": 5}
    same = {"Idempotency-Key": "shared"}
    a = api.client.post("/v1/runs", json=body, headers={**api.headers("write"), **same})
    b = api.client.post("/v1/runs", json=body, headers={**api.headers("admin"), **same})
    c = api.client.post(
        "/v1/datasets/d/versions", json={}, headers={**api.headers("write"), **same}
    )
    assert (a.status_code, b.status_code, c.status_code) == (202, 202, 201)
    assert a.json()["id"] != b.json()["id"]


def test_concurrent_exports_without_key_get_consecutive_versions(api: ApiHarness) -> None:
    n = 8
    answers = _together(
        n, lambda _: api.client.post("/v1/datasets/d/versions", json={}, headers=api.headers())
    )
    assert [r.status_code for r in answers] == [201] * n, [r.text for r in answers]
    assert sorted(r.json()["version"] for r in answers) == list(range(1, n + 1))


def test_concurrent_first_exports_of_new_datasets(api: ApiHarness) -> None:
    answers = _together(
        6,
        lambda i: api.client.post(
            f"/v1/datasets/new{i % 2}/versions", json={}, headers=api.headers()
        ),
    )
    assert [r.status_code for r in answers] == [201] * 6, [r.text for r in answers]
    by_name: dict[str, list[int]] = {}
    for r in answers:
        by_name.setdefault(r.json()["dataset"], []).append(r.json()["version"])
    assert {k: sorted(v) for k, v in by_name.items()} == {"new0": [1, 2, 3], "new1": [1, 2, 3]}


ACTIONS = ("pause", "resume", "cancel")


@pytest.mark.parametrize("rounds", [3])
def test_racing_transitions_log_only_what_happened(api: ApiHarness, rounds: int) -> None:
    created = api.client.post(
        "/v1/runs", json={"seed_set": "si", "target_tasks": 5}, headers=api.headers()
    )
    rid = created.json()["id"]
    won: list[tuple[str, str]] = []
    for _ in range(rounds):
        answers = _together(
            30,
            lambda i: api.client.post(f"/v1/runs/{rid}/{ACTIONS[i % 2]}", headers=api.headers()),
        )
        for r in answers:
            assert r.status_code in (200, 409), r.text
            if r.status_code == 409:
                assert r.json()["code"] == "conflict"
                assert "it is " in r.json()["message"]
            else:
                won.append(("ok", r.json()["status"]))
    events = api.client.get(f"/v1/runs/{rid}/events?limit=500", headers=api.headers("read")).json()
    changes = [e for e in reversed(events) if e["kind"] in ACTIONS]
    assert len(changes) == len(won)  # one event per request that changed the run
    status = "queued"
    for event in changes:  # each event's old status is the one the run really had
        assert event["data"]["old_status"] == status, changes
        status = event["data"]["new_status"]
    final = api.client.get(f"/v1/runs/{rid}", headers=api.headers("read")).json()["status"]
    assert final == status


def test_cancel_racing_pause_on_a_queued_run(api: ApiHarness) -> None:
    created = api.client.post(
        "/v1/runs", json={"seed_set": "si", "target_tasks": 5}, headers=api.headers()
    )
    rid = created.json()["id"]
    answers = _together(
        20,
        lambda i: api.client.post(
            f"/v1/runs/{rid}/{('pause', 'cancel')[i % 2]}", headers=api.headers()
        ),
    )
    winners = [r for r in answers if r.status_code == 200]
    # queued -> paused -> cancelled at most: two changes, every other request loses with 409
    assert 1 <= len(winners) <= 2
    assert all(r.status_code == 409 for r in answers if r not in winners)


def test_same_key_generate_queues_exactly_one_batch(db_url: str, tmp_path: Path) -> None:
    # No worker runs here: every request waits out the bound and answers 202 with the one run.
    with api_harness(db_url, tmp_path, generate_wait_seconds=0.5) as api:
        r = api.client.post(
            "/v1/seed-sets?name=si",
            content=SEEDS,
            headers={**api.headers(), "Content-Type": "application/x-ndjson"},
        )
        assert r.status_code == 201, r.text
        headers = {**api.headers(), "Idempotency-Key": "one-batch"}
        answers = _together(
            PARALLEL,
            lambda _: api.client.post(
                "/v1/generate", json={"seed_set": "si", "prompts": 2}, headers=headers
            ),
        )
        assert {r.status_code for r in answers} == {202}, {r.text for r in answers}
        assert len({r.content for r in answers}) == 1
        assert _count(api, Run) == 1
