"""/v1/datasets over HTTP: create (in the request or by a worker), list, manifest, diff."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api.routes import datasets as datasets_routes
from service.app import create_app
from service.runs.worker import Worker
from service.settings import Settings
from service.storage.db import Database
from service.storage.keys import create_api_key
from tests.service.test_export import Factory, import_seeds


@pytest.fixture
def client(database: Database, db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(database_url=db_url, datasets_dir=tmp_path / "datasets")
    with TestClient(create_app(settings, database=database)) as test_client:
        yield test_client


def _key(database: Database, *scopes: str) -> dict[str, str]:
    with database.transaction() as s:
        _, plaintext = create_api_key(s, name="test", scopes=list(scopes))
    return {"Authorization": f"Bearer {plaintext}"}


def test_create_then_read_everything(client: TestClient, database: Database) -> None:
    import_seeds(database)
    rw = _key(database, "read", "write")
    created = client.post("/v1/datasets/demo/versions", json={"validation_ratio": 0.2}, headers=rw)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["version"], body["status"]) == (1, "ready")
    assert body["counts"]["tasks"] == 69

    listed = client.get("/v1/datasets", headers=rw).json()
    assert [(d["name"], d["versions"], d["latest_ready"]) for d in listed] == [("demo", 1, 1)]
    assert client.get("/v1/datasets/demo/versions", headers=rw).json()[0]["id"] == body["id"]
    assert client.get("/v1/datasets/demo/versions/1", headers=rw).json() == body

    manifest = client.get("/v1/datasets/demo/versions/1/manifest", headers=rw).json()
    assert manifest["content_hash"] == body["content_hash"]
    entry = manifest["files"]["train.messages.jsonl"]

    url = "/v1/datasets/demo/versions/1/files/train.messages.jsonl"
    full = client.get(url, headers=rw)
    assert full.status_code == 200
    assert hashlib.sha256(full.content).hexdigest() == entry["sha256"]
    assert full.headers["etag"] == f'"{entry["sha256"]}"'
    assert full.headers["content-type"] == "application/x-ndjson"
    assert len(full.text.splitlines()) == entry["rows"]

    part = client.get(url, headers={**rw, "Range": "bytes=10-109"})
    assert part.status_code == 206
    assert part.content == full.content[10:110]
    assert part.headers["content-range"] == f"bytes 10-109/{entry['bytes']}"
    cached = client.get(url, headers={**rw, "If-None-Match": f'"{entry["sha256"]}"'})
    assert cached.status_code == 304

    raw_manifest = client.get("/v1/datasets/demo/versions/1/files/manifest.json", headers=rw)
    assert raw_manifest.json() == manifest
    for bad in ("nope.jsonl", "..%2Fmanifest.json", "%2E%2E"):
        missing = client.get(f"/v1/datasets/demo/versions/1/files/{bad}", headers=rw)
        assert missing.status_code == 404, bad


def test_large_exports_are_queued_for_a_worker(
    client: TestClient, database: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import_seeds(database)
    monkeypatch.setattr(datasets_routes, "SYNC_TASK_LIMIT", 10)
    rw = _key(database, "read", "write")
    accepted = client.post("/v1/datasets/big/versions", headers=rw)
    assert accepted.status_code == 202
    assert accepted.json()["status"] == "queued" and accepted.json()["lease_owner"] is None
    # Nothing builds it in the API process: it waits for a worker.
    assert client.get("/v1/datasets/big/versions/1", headers=rw).json()["status"] == "queued"
    settings = Settings(database_url=database.url, datasets_dir=tmp_path / "datasets")
    Worker(settings=settings, database=database).run_forever(once=True)
    shown = client.get("/v1/datasets/big/versions/1", headers=rw).json()
    assert shown["status"] == "ready" and shown["content_hash"]
    assert shown["lease_owner"] is None and shown["lease_expires_at"] is None
    forced = client.post("/v1/datasets/big/versions?wait=true", headers=rw)
    assert forced.status_code == 201 and forced.json()["content_hash"] == shown["content_hash"]


def test_diff_between_versions(client: TestClient, database: Database) -> None:
    rw = _key(database, "read", "write")
    with database.transaction() as s:
        f = Factory(s)
        run = f.run()
        first = [f.task(f"First batch task {i}.", run=run).id for i in range(4)]
    assert client.post("/v1/datasets/d/versions", headers=rw).status_code == 201
    with database.transaction() as s:
        f = Factory(s)
        later = [f.task(f"Second batch task {i}.", run=f.run()).id for i in range(3)]
    spec = {"include_seeds": True}
    assert client.post("/v1/datasets/d/versions", json=spec, headers=rw).status_code == 201
    d = client.get("/v1/datasets/d/diff?from=1&to=2", headers=rw).json()
    assert d["added"] == sorted(later) and d["removed"] == []
    assert (d["added_total"], d["removed_total"], d["unchanged_total"]) == (3, 0, len(first))
    back = client.get("/v1/datasets/d/diff?from=2&to=1&limit=1", headers=rw).json()
    assert back["removed"] == sorted(later)[:1] and back["removed_total"] == 3


def test_errors_are_json_with_codes(client: TestClient, database: Database) -> None:
    import_seeds(database)
    read_only = _key(database, "read")
    rw = _key(database, "read", "write")
    assert client.get("/v1/datasets").status_code == 401
    assert client.post("/v1/datasets/x/versions", headers=read_only).status_code == 403
    unknown = client.post("/v1/datasets/x/versions", json={"eval_sets": ["nope"]}, headers=rw)
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
    bad = client.post("/v1/datasets/x/versions", json={"formats": ["parquet"]}, headers=rw)
    assert bad.status_code == 422
    assert client.post("/v1/datasets/-x/versions", headers=rw).status_code == 422
    assert client.get("/v1/datasets/x/versions", headers=rw).json()["code"] == "not_found"
    assert client.get("/v1/datasets/x/versions/1/manifest", headers=rw).status_code == 404


def test_idempotency_key_replays_the_first_answer(client: TestClient, database: Database) -> None:
    import_seeds(database)
    rw = {**_key(database, "read", "write"), "Idempotency-Key": "export-1"}
    first = client.post("/v1/datasets/i/versions", headers=rw)
    again = client.post("/v1/datasets/i/versions", headers=rw)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert len(client.get("/v1/datasets/i/versions", headers=rw).json()) == 1
    other = client.post("/v1/datasets/i/versions", json={"split_seed": 3}, headers=rw)
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
