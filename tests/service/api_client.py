"""A real HTTP client over the ASGI app (no server process), with keys of each scope."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from service.storage.db import Database
from service.storage.keys import create_api_key


@dataclass
class ApiHarness:
    client: TestClient
    database: Database
    keys: dict[str, str]

    def headers(self, scope: str = "write") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}


@contextmanager
def api_harness(db_url: str, tmp_path: Path, **overrides: object) -> Iterator[ApiHarness]:
    settings = Settings(
        database_url=db_url,
        data_dir=tmp_path,
        datasets_dir=tmp_path / "datasets",
        models_dir=tmp_path / "models",
        model_cache_dir=Path("data/model-cache").resolve(),
        **overrides,  # type: ignore[arg-type]
    )
    database = Database(db_url)
    keys = {}
    with database.transaction() as session:
        for scopes in (["read"], ["read", "write"], ["admin"]):
            _, plaintext = create_api_key(session, name="-".join(scopes), scopes=scopes)
            keys[scopes[-1]] = plaintext
    try:
        with TestClient(create_app(settings, database=database)) as client:
            yield ApiHarness(client, database, keys)
    finally:
        database.dispose()
