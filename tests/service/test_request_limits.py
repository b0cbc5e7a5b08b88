"""Bodies over the limit, duplicated multipart parts and /readyz's disclosure, over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.storage.db import Database
from tests.conftest import shared_data
from tests.service.api_client import ApiHarness, api_harness

SEEDS = shared_data("self_instruct_seed_tasks.jsonl").read_bytes()
LIMIT = 100_000


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[ApiHarness]:
    with api_harness(db_url, tmp_path, max_request_bytes=LIMIT) as harness:
        yield harness


def _chunks(total: int, size: int = 16_384) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        sent += n
        yield b" " * n


@pytest.mark.parametrize(
    ("path", "content_type", "size"),
    [
        ("/v1/seed-sets?name=big", "application/x-ndjson", LIMIT + 1),
        ("/v1/seed-sets?name=big", "application/x-ndjson", 5 * LIMIT),
        ("/v1/runs", "application/json", LIMIT + 1),
        ("/v1/datasets/d/versions", "application/json", 3 * LIMIT),
        ("/v1/eval-sets?name=big", "application/x-ndjson", 2 * LIMIT),
        ("/v1/seed-sets?name=big", "multipart/form-data; boundary=xyz", 2 * LIMIT),
    ],
)
def test_chunked_body_over_the_limit_is_413(
    api: ApiHarness, path: str, content_type: str, size: int
) -> None:
    headers = {**api.headers("admin"), "Content-Type": content_type}
    r = api.client.post(path, content=_chunks(size), headers=headers)
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert r.status_code == 413, r.text
    assert r.json()["code"] == "too_large"


def test_chunked_body_under_the_limit_is_read(api: ApiHarness) -> None:
    small = SEEDS[: SEEDS.index(b"\n", 50_000) + 1]
    r = api.client.post(
        "/v1/seed-sets?name=ok",
        content=iter([small[:30_000], small[30_000:]]),
        headers={**api.headers(), "Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 201, r.text


def test_multipart_with_two_file_parts_is_refused(api: ApiHarness) -> None:
    part = SEEDS[: SEEDS.index(b"\n") + 1]
    r = api.client.post(
        "/v1/seed-sets?name=two",
        files=[("file", ("a.jsonl", part)), ("file", ("b.jsonl", part))],
        headers=api.headers(),
    )
    assert r.status_code == 422 and "2 `file` parts" in r.json()["message"]
    listed = api.client.get("/v1/seed-sets", headers=api.headers("read")).json()
    assert listed == []


def test_readyz_reveals_details_to_admin_keys_only(api: ApiHarness) -> None:
    assert api.client.get("/readyz").json() == {"status": "ready"}
    assert api.client.get("/readyz", headers=api.headers("read")).json() == {"status": "ready"}
    admin = api.client.get("/readyz", headers=api.headers("admin")).json()
    assert admin["status"] == "ready" and admin["revision"]


def test_readyz_when_the_database_is_down_names_no_host(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    url = "postgresql+psycopg://postgres@127.0.0.1:1/secret_db_name"
    settings = Settings(database_url=url, data_dir=tmp_path, datasets_dir=tmp_path / "d")
    database = Database(url)
    try:
        with TestClient(create_app(settings, database=database)) as client:
            for headers in ({}, {"Authorization": "Bearer not-a-key"}):
                r = client.get("/readyz", headers=headers)
                assert r.status_code == 503
                assert r.json()["code"] == "db_unreachable"
                assert "127.0.0.1" not in r.text and "secret_db_name" not in r.text
    finally:
        database.dispose()
