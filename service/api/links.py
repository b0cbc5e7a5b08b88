"""OpenAPI links: which response value feeds which next request (create -> read/act).

FastAPI emits no links, so the document alone did not say that the ``id`` of
``POST /v1/runs`` is the ``run_id`` of ``GET /v1/runs/{run_id}`` and of its actions. The table
below says it, once, for every create -> read/act sequence; :func:`install_links` adds it to
the generated document. Clients and stateful fuzzers (schemathesis' state machine) follow
them. Each link names its source and target as ``"METHOD /path"`` and maps the target's
parameters to OpenAPI runtime expressions (``$response.body#/id``, ``$request.path.name``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from fastapi import FastAPI


class Link(NamedTuple):
    source: str  # "POST /v1/runs"
    statuses: tuple[str, ...]  # the source's responses that carry the values
    target: str  # "GET /v1/runs/{run_id}"
    parameters: dict[str, str]  # target parameter -> runtime expression


def _run_links(source: str, statuses: tuple[str, ...], run_id: str) -> list[Link]:
    """A run's reads and actions, from a response that names the run."""
    targets = [
        "GET /v1/runs/{run_id}",
        "GET /v1/runs/{run_id}/events",
        "GET /v1/runs/{run_id}/report",
        "POST /v1/runs/{run_id}/pause",
        "POST /v1/runs/{run_id}/resume",
        "POST /v1/runs/{run_id}/cancel",
    ]
    links = [Link(source, statuses, t, {"run_id": run_id}) for t in targets]
    return [*links, Link(source, statuses, "GET /v1/tasks", {"run_id": run_id})]


_ITEM_ID = "$response.body#/items/0/id"
_NAME = {"name": "$response.body#/name"}
_SEEDS = ("200", "201")  # a repeated upload answers 200 with the set it already has
_VERSION = {"name": "$request.path.name", "version": "$response.body#/version"}
_LISTED_VERSION = {"name": "$request.path.name", "version": "$response.body#/0/version"}

LINKS: list[Link] = [
    *_run_links("POST /v1/runs", ("202",), "$response.body#/id"),
    *_run_links("GET /v1/runs", ("200",), _ITEM_ID),
    *_run_links("POST /v1/generate", ("200", "202"), "$response.body#/run_id"),
    Link("GET /v1/tasks", ("200",), "GET /v1/tasks/{task_id}", {"task_id": _ITEM_ID}),
    Link("POST /v1/seed-sets", _SEEDS, "GET /v1/seed-sets/{name}", _NAME),
    Link("POST /v1/seed-sets", _SEEDS, "GET /v1/tasks", {"seed_set_id": "$response.body#/id"}),
    Link("POST /v1/eval-sets", ("201",), "GET /v1/eval-sets/{name}", _NAME),
    *[
        Link("POST /v1/datasets/{name}/versions", ("201", "202"), target, _VERSION)
        for target in (
            "GET /v1/datasets/{name}/versions/{version}",
            "GET /v1/datasets/{name}/versions/{version}/manifest",
        )
    ],
    Link(
        "POST /v1/datasets/{name}/versions",
        ("201", "202"),
        "GET /v1/datasets/{name}/versions",
        {"name": "$request.path.name"},
    ),
    Link(
        "GET /v1/datasets/{name}/versions",
        ("200",),
        "GET /v1/datasets/{name}/versions/{version}",
        _LISTED_VERSION,
    ),
]


def _operation(spec: dict[str, Any], label: str) -> dict[str, Any]:
    method, path = label.split(" ", 1)
    return spec["paths"][path][method.lower()]  # type: ignore[no-any-return]


def add_links(spec: dict[str, Any], links: list[Link] = LINKS) -> dict[str, Any]:
    """Add ``links`` to the responses of an OpenAPI document, in place; return it.

    Each link is named after its target's operationId.

    Raises:
        KeyError: a link names an operation, status or parameter the document lacks (a route
            renamed without its links: caught by the links test, never silently dropped).
    """
    for link in links:
        target = _operation(spec, link.target)
        names = {p["name"] for p in target.get("parameters", [])}
        missing = set(link.parameters) - names
        if missing:
            raise KeyError(f"{link.target} has no parameters {sorted(missing)}")
        for status in link.statuses:
            response = _operation(spec, link.source)["responses"][status]
            response.setdefault("links", {})[target["operationId"]] = {
                "operationId": target["operationId"],
                "parameters": dict(link.parameters),
            }
    return spec


def install_links(app: FastAPI) -> None:
    """Serve the app's OpenAPI document with :data:`LINKS` added (built once, then cached)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_links(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
