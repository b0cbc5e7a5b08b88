"""The OpenAPI links lead somewhere: each one, followed by hand over real HTTP, on both databases.

For every link in ``service/api/links.py`` (but those from ``/v1/generate``, which needs a
worker), the source request is made, the link's runtime expressions are evaluated against it
as the OpenAPI spec defines them, and the target request must succeed: 2xx, or 409 for a run
action the run's state forbids (cancel after cancel). A link to a wrong field, or an
expression that evaluates to nothing, fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.api.links import LINKS, Link, add_links
from tests.conftest import shared_data
from tests.service.api_client import ApiHarness, api_harness

SEEDS = shared_data("self_instruct_seed_tasks.jsonl").read_bytes()
EVAL = b'{"id": "e1", "instruction": "Name a prime number."}\n'

# How to make each source request, in the order made (what a later one uses comes first):
# (method, url, request kwargs, path parameters).
SOURCES: dict[str, tuple[str, str, dict[str, Any], dict[str, str]]] = {
    "POST /v1/seed-sets": ("POST", "/v1/seed-sets?name=si", {"content": SEEDS}, {}),
    "POST /v1/eval-sets": ("POST", "/v1/eval-sets?name=ev", {"content": EVAL}, {}),
    "POST /v1/runs": ("POST", "/v1/runs", {"json": {"seed_set": "si"}}, {}),
    "GET /v1/runs": ("GET", "/v1/runs", {}, {}),
    "GET /v1/tasks": ("GET", "/v1/tasks", {}, {}),
    "POST /v1/datasets/{name}/versions": ("POST", "/v1/datasets/ds/versions", {}, {"name": "ds"}),
    "GET /v1/datasets/{name}/versions": ("GET", "/v1/datasets/ds/versions", {}, {"name": "ds"}),
}


def evaluate(expression: str, body: Any, path: dict[str, str]) -> Any:
    """An OpenAPI runtime expression: ``$response.body#/json/pointer`` or ``$request.path.x``."""
    if expression.startswith("$request.path."):
        return path[expression.removeprefix("$request.path.")]
    pointer = expression.removeprefix("$response.body#")
    value = body
    for token in pointer.split("/")[1:]:
        value = value[int(token)] if isinstance(value, list) else value[token]
    return value


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[ApiHarness]:
    with api_harness(db_url, tmp_path) as harness:
        yield harness


def test_every_link_names_real_operations_and_parameters() -> None:
    from service.app import create_app
    from service.settings import Settings

    spec = create_app(Settings(database_url="sqlite:///:memory:")).openapi()
    links = spec["paths"]["/v1/runs"]["post"]["responses"]["202"]["links"]
    assert links["pause_v1_runs__run_id__pause_post"]["parameters"] == {
        "run_id": "$response.body#/id"
    }
    with pytest.raises(KeyError):
        add_links(spec, [Link("POST /v1/runs", ("202",), "GET /v1/runs/{id}", {"id": "x"})])
    with pytest.raises(KeyError, match="no parameters"):
        add_links(spec, [Link("POST /v1/runs", ("202",), "GET /v1/runs/{run_id}", {"id": "x"})])


def test_following_each_link_by_hand_succeeds(api: ApiHarness) -> None:
    headers = api.headers("write")
    followed = 0
    for source in SOURCES:  # in order: the seed set and eval set first, then what uses them
        method, url, kwargs, path = SOURCES[source]
        r = api.client.request(method, url, headers=headers, **kwargs)
        assert r.status_code < 300, (source, r.text)
        for link in (lk for lk in LINKS if lk.source == source):
            if str(r.status_code) not in link.statuses:
                continue
            values = {k: evaluate(e, r.json(), path) for k, e in link.parameters.items()}
            target_method, target_path = link.target.split(" ", 1)
            query = {k: v for k, v in values.items() if "{" + k + "}" not in target_path}
            target_url = target_path.format(**values)
            t = api.client.request(target_method, target_url, params=query, headers=headers)
            allowed = (409,) if target_method == "POST" else ()
            assert t.status_code < 300 or t.status_code in allowed, (link, t.text)
            followed += 1
    sources = {lk.source for lk in LINKS} - {"POST /v1/generate"}
    assert sources <= set(SOURCES)
    assert followed == sum(1 for lk in LINKS if lk.source in SOURCES)
