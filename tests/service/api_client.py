"""A real HTTP client over the ASGI app (no server process), with keys of each scope."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
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


async def asgi_get(app: FastAPI, target: str, headers: Mapping[str, str]) -> tuple[int, bytes]:
    """One GET of `target` (path and query) straight through the ASGI app: (status, body).

    No client machinery runs before the app, so requests started together reach the app in
    the same turn of the event loop, and CPU measured around it is the app's (bench/read_cpu.py).
    """
    bare, _, query = target.partition("?")
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
    return sent[0]["status"], body
