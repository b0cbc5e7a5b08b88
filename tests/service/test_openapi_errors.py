"""The OpenAPI document lists every error each operation can answer, in the `{code, message}` shape.

Read from the served document; then real error responses (SQLite, through the app) are checked
against their operation's documented statuses, so the list cannot drift from behaviour.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.app import create_app
from service.settings import Settings
from tests.service.api_client import ApiHarness, api_harness

SPEC = create_app(Settings(database_url="sqlite:///:memory:")).openapi()
OPERATIONS = [
    pytest.param(path, method, op, id=f"{method.upper()} {path}")
    for path, item in SPEC["paths"].items()
    for method, op in item.items()
]
ERROR_REF = "#/components/schemas/ErrorOut"


def _error_schema(op: dict[str, Any], status: int) -> str | None:
    response = op["responses"].get(str(status))
    if response is None:
        return None
    return response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")


@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS)
def test_every_operation_documents_its_errors(path: str, method: str, op: dict) -> None:
    needs_key = "health" not in op.get("tags", [])
    expected = set()
    if needs_key:
        expected |= {401, 403, 503}
    if op.get("parameters") or op.get("requestBody"):
        expected.add(422)
    if re.search(r"\{[a-z_]+\}$", path) and method == "get":
        expected.add(404)  # a show route: the thing named may not exist
    if op.get("requestBody") and method == "post":
        expected.add(413)
    for status in expected:
        assert _error_schema(op, status) == ERROR_REF, (status, op["responses"].keys())
    for status, response in op["responses"].items():
        if status.startswith(("4", "5")) and (path, status) != ("/readyz", "503"):
            assert _error_schema(op, int(status)) == ERROR_REF, status
            assert response["description"], status


def test_error_schema_is_code_and_message() -> None:
    schema = SPEC["components"]["schemas"]["ErrorOut"]
    assert set(schema["required"]) == {"code", "message"}


@pytest.fixture
def api(sqlite_template: Path, tmp_path: Path) -> Iterator[ApiHarness]:
    # An empty migrated database is enough: the errors are about absence and shape.
    shutil.copyfile(sqlite_template, tmp_path / "test.db")
    with api_harness(f"sqlite:///{tmp_path / 'test.db'}", tmp_path, max_request_bytes=2048) as h:
        yield h


def _operation(method: str, url: str) -> dict[str, Any]:
    path = url.split("?", 1)[0]
    for template, item in SPEC["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return item[method.lower()]
    raise AssertionError(f"no operation for {method} {url}")


REAL_ERRORS = [
    ("GET", "/v1/runs", None, {}, 401),
    ("POST", "/v1/runs", "read", {"json": {"seed_set": "x"}}, 403),
    ("POST", "/v1/runs", "write", {"json": {"seed_set": "x", "model": "/etc"}}, 403),
    ("POST", "/v1/runs", "write", {"json": {"seed_set": "missing"}}, 404),
    ("POST", "/v1/runs", "write", {"json": {"seed_set": 5}}, 422),
    ("POST", "/v1/runs", "write", {"content": b"[" * 500 + b"]" * 500}, 422),
    ("POST", "/v1/runs", "write", {"content": b"{" + b" " * 4096 + b"}"}, 413),
    ("GET", "/v1/runs/99", "read", {}, 404),
    ("POST", "/v1/runs/99/pause", "write", {}, 404),
    ("GET", "/v1/tasks/0", "read", {}, 422),
    ("GET", "/v1/seed-sets/nope", "read", {}, 404),
    ("GET", "/v1/eval-sets/nope", "read", {}, 404),
    ("POST", "/v1/eval-sets?name=e", "write", {"content": b"x"}, 422),
    ("GET", "/v1/datasets/d/versions/1", "read", {}, 404),
    ("GET", "/v1/datasets/d/versions/1/files/x", "read", {}, 404),
    ("GET", "/v1/datasets/d/diff?from=1&to=2", "read", {}, 404),
    ("POST", "/v1/generate", "write", {"json": {"seed_set": "s", "prompts": 999}}, 422),
]


@pytest.mark.parametrize(
    ("method", "url", "scope", "kwargs", "status"),
    [pytest.param(*case, id=f"{case[0]} {case[1]} {case[4]}") for case in REAL_ERRORS],
)
def test_real_errors_are_documented(
    api: ApiHarness, method: str, url: str, scope: str | None, kwargs: dict, status: int
) -> None:
    headers = {**(api.headers(scope) if scope else {}), "Content-Type": "application/json"}
    r = api.client.request(method, url, headers=headers, **kwargs)
    assert r.status_code == status, r.text
    assert set(r.json()) >= {"code", "message"}
    assert str(status) in _operation(method, url)["responses"]
