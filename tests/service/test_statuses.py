"""Run, task and dataset version statuses: one StrEnum each, the same strings in the database,
on the wire and in OpenAPI (as enums)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text

from service.app import create_app
from service.export import ExportSpec
from service.settings import Settings
from service.statuses import TERMINAL_RUN_STATUSES, RunStatus, TaskStatus, VersionStatus
from service.storage.db import Database
from service.storage.models import SeedSet
from service.storage.runs import change_status, create_run, release_lease

SPEC = create_app(Settings(database_url="sqlite:///:memory:")).openapi()
RUN_WIRE = ["queued", "running", "paused", "completed", "cancelled", "failed"]
TASK_WIRE = ["accepted", "rejected"]
VERSION_WIRE = ["queued", "building", "ready", "failed"]


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a `$ref` (or a one-branch `anyOf` with null) to the named component."""
    for branch in schema.get("anyOf", [schema]):
        if "$ref" in branch:
            return SPEC["components"]["schemas"][branch["$ref"].rsplit("/", 1)[1]]
    return schema


def test_wire_values_are_the_stored_strings() -> None:
    assert [s.value for s in RunStatus] == RUN_WIRE
    assert [s.value for s in TaskStatus] == TASK_WIRE
    assert [s.value for s in VersionStatus] == VERSION_WIRE
    assert {s for s in RunStatus if s.terminal} == TERMINAL_RUN_STATUSES
    assert {str(s) for s in TERMINAL_RUN_STATUSES} == {"completed", "cancelled", "failed"}
    # A StrEnum member is its string: in f-strings, JSON and as a dict key.
    assert f"{RunStatus.PAUSED}" == "paused" and json.dumps([TaskStatus.REJECTED]) == '["rejected"]'
    assert {"running": 1}[RunStatus.RUNNING] == 1


@pytest.mark.parametrize(
    ("component", "field", "values"),
    [
        ("RunOut", "status", RUN_WIRE),
        ("TaskOut", "status", TASK_WIRE),
        ("InstanceOut", "status", TASK_WIRE),
        ("GenerateAccepted", "status", RUN_WIRE),
        ("RunReport", "status", RUN_WIRE),
        ("ExportSpec", "statuses", TASK_WIRE),
        ("VersionOut", "status", VERSION_WIRE),
    ],
)
def test_openapi_lists_the_statuses_as_enums(component: str, field: str, values: list[str]) -> None:
    prop = SPEC["components"]["schemas"][component]["properties"][field]
    assert _resolve(prop.get("items", prop))["enum"] == values


@pytest.mark.parametrize(("path", "values"), [("/v1/runs", RUN_WIRE), ("/v1/tasks", TASK_WIRE)])
def test_list_filters_take_the_statuses(path: str, values: list[str]) -> None:
    params = SPEC["paths"][path]["get"]["parameters"]
    (status,) = [p for p in params if p["name"] == "status"]
    assert _resolve(status["schema"])["enum"] == values


def test_export_spec_refuses_an_unknown_task_status() -> None:
    assert ExportSpec(statuses=["rejected", "accepted"]).canonical()["statuses"] == TASK_WIRE
    with pytest.raises(ValueError, match="statuses"):
        ExportSpec(statuses=["accepted", "maybe"])  # type: ignore[list-item]


def test_stored_statuses_are_plain_wire_strings(database: Database) -> None:
    with database.transaction() as s:
        seed_set = SeedSet(name="s", content_hash="a" * 64, source_format="alpaca", task_count=0)
        s.add(seed_set)
        s.flush()
        run = create_run(
            s,
            seed_set_id=seed_set.id,
            config={},
            config_hash="c" * 64,
            policy_version="p",
            target_tasks=1,
        )
        run_id = run.id
    with database.transaction() as s:
        assert change_status(s, run_id, "pause").status == RunStatus.PAUSED
        change_status(s, run_id, "resume")
    with database.transaction() as s:
        s.execute(
            text("UPDATE runs SET status = 'running', lease_owner = 'w' WHERE id = :i"),
            {"i": run_id},
        )
        release_lease(s, run_id=run_id, owner="w", status=RunStatus.FAILED, error="boom")
    with database.sessions() as s:
        status, error, finished = s.execute(
            text("SELECT status, error, finished_at FROM runs WHERE id = :i"), {"i": run_id}
        ).one()
        events = s.execute(
            text("SELECT data FROM run_events WHERE run_id = :i AND kind = 'pause'"), {"i": run_id}
        ).scalar_one()
    assert (type(status), status, error) == (str, "failed", "boom") and finished is not None
    data = events if isinstance(events, dict) else json.loads(events)
    assert data == {"old_status": "queued", "new_status": "paused"}
