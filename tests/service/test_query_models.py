"""The list routes read their query string with QueryModel, not FastAPI's `Query()` model
reading: the same documented parameters, the same values and the same 422s.

Each case is asked of the real route and of a one-route app declaring the model the standard
way (`Annotated[model, Query()]`); both apps answer errors through the service's handlers.
"""

# No `from __future__ import annotations`: the test apps' annotations name a local model.
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Query
from fastapi.testclient import TestClient
from pydantic import BaseModel

from service.api.deps import QueryModel, query_parameters
from service.api.errors import install_error_handlers
from service.api.schemas import RunQuery, TaskQuery
from tests.service.api_client import ApiHarness, api_harness

ROUTES: dict[str, type[BaseModel]] = {"/v1/runs": RunQuery, "/v1/tasks": TaskQuery}
QUERIES = [
    "",
    "limit=1",
    "limit=2&limit=3",  # a repeated parameter: the last counts
    "limit=0",
    "limit=501",
    "limit=abc",
    "limit=",
    "cursor=" + "x" * 201,
    "status=running",
    "status=nonsense",
    "kind=batch",
    "kind=other",
    "run_id=0",
    "run_id=2147483648",
    "is_classification=true",
    "is_classification=maybe",
    "min_score=1e10&scorer=a",
    "scorer=Bad-Name",
    "q=",
    "unknown=1",
]


def _standard_app(model: type[BaseModel]) -> FastAPI:
    """The model read as FastAPI reads a query model, echoing what it read."""
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/")
    async def echo(query: Annotated[model, Query()]) -> dict[str, Any]:  # type: ignore[valid-type]
        return dict(query.model_dump(mode="json"))  # type: ignore[attr-defined]

    return app


def _ours(model: type[BaseModel]) -> FastAPI:
    """The model read by QueryModel, echoing what it read."""
    app = FastAPI()
    install_error_handlers(app)
    read = QueryModel(model)

    @app.get("/", openapi_extra=read.openapi)
    async def echo(query: Annotated[model, Depends(read)]) -> dict[str, Any]:  # type: ignore[valid-type]
        return dict(query.model_dump(mode="json"))  # type: ignore[attr-defined]

    return app


@pytest.mark.parametrize("model", list(ROUTES.values()), ids=lambda m: m.__name__)
def test_values_and_errors_match_fastapis_own_reading(model: type[BaseModel]) -> None:
    with TestClient(_standard_app(model)) as standard, TestClient(_ours(model)) as ours:
        assert standard.get("/?limit=7").json()["limit"] == 7  # the model was read
        for query in QUERIES:
            expected, got = standard.get(f"/?{query}"), ours.get(f"/?{query}")
            assert (got.status_code, got.json()) == (expected.status_code, expected.json()), query


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[ApiHarness]:
    with api_harness(db_url, tmp_path) as harness:
        yield harness


def test_the_api_documents_and_answers_them_as_fastapi_would(api: ApiHarness) -> None:
    document = api.client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    for path, model in ROUTES.items():
        parameters = document["paths"][path]["get"]["parameters"]
        assert parameters == query_parameters(model)
        assert [p["name"] for p in parameters] == list(model.model_fields)
        # Every schema a parameter names is in the API's own document.
        for ref in _refs(parameters):
            assert ref.removeprefix("#/components/schemas/") in schemas, ref
        with TestClient(_standard_app(model)) as standard:
            for query in ("limit=0", "limit=abc", "status=nonsense"):
                got = api.client.get(f"{path}?{query}", headers=api.headers("read"))
                expected = standard.get(f"/?{query}")
                assert got.status_code == expected.status_code == 422, (path, query)
                assert got.json() == expected.json(), (path, query)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)
