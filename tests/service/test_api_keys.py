"""API keys: revocation through the CLI, and how long the API may still accept a revoked key."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from service.cli import app
from service.settings import get_settings
from service.storage.db import Database
from service.storage.keys import hash_key
from service.storage.models import ApiKey
from tests.service.api_client import api_harness


def _key_id(harness_db: Database, plaintext: str) -> int:
    with harness_db.sessions() as session:
        key_id = session.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_key(plaintext)))
        assert key_id is not None
        return key_id


@pytest.fixture
def cli_db(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("INSTRUCTFORGE_DATABASE_URL", db_url)
    monkeypatch.setenv("INSTRUCTFORGE_API_KEY_CACHE_SECONDS", "0.5")
    get_settings.cache_clear()
    yield db_url
    get_settings.cache_clear()


def test_revoked_key_is_refused_once_the_cache_lapses(cli_db: str, tmp_path: Path) -> None:
    with api_harness(cli_db, tmp_path, api_key_cache_seconds=0.5) as api:
        assert api.client.get("/v1/runs", headers=api.headers("read")).status_code == 200
        key_id = _key_id(api.database, api.keys["read"])
        revoked = CliRunner().invoke(app, ["keys", "revoke", str(key_id)])
        assert revoked.exit_code == 0, revoked.output
        assert "within 0.5 s" in revoked.output
        listing = CliRunner().invoke(app, ["keys", "list"])
        assert f"{key_id}\tread\t" in listing.output and "revoked" in listing.output
        time.sleep(0.6)
        refused = api.client.get("/v1/runs", headers=api.headers("read"))
        assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
        # Other keys are untouched.
        assert api.client.get("/v1/runs", headers=api.headers("write")).status_code == 200


def test_without_cache_revocation_is_immediate(db_url: str, tmp_path: Path) -> None:
    with api_harness(db_url, tmp_path, api_key_cache_seconds=0) as api:
        assert api.client.get("/v1/tasks", headers=api.headers("admin")).status_code == 200
        from service.storage.keys import revoke_api_key

        with api.database.transaction() as session:
            assert revoke_api_key(session, _key_id(api.database, api.keys["admin"]))
        assert api.client.get("/v1/tasks", headers=api.headers("admin")).status_code == 401


def test_revoking_an_unknown_key_fails_cleanly(cli_db: str) -> None:
    result = CliRunner().invoke(app, ["keys", "revoke", "999"])
    assert result.exit_code == 1 and "no API key with id 999" in result.output
