"""Every revision upgrades and downgrades cleanly, and the migrated schema equals the models."""

from __future__ import annotations

import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from service.storage import migrate
from service.storage.db import Database
from service.storage.models import Base
from service.storage.search import include_in_comparison
from service.storage.tasks import read_tasks
from service.storage.views import ALL_VIEWS


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{'pg' if request.param == 'postgres' else 'sqlite'}_empty_url")


def _revisions(url: str) -> list[str]:
    script = ScriptDirectory.from_config(migrate.alembic_config(url))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def test_each_revision_up_and_down(empty_url: str) -> None:
    revisions = _revisions(empty_url)
    assert revisions, "no migrations found"
    for rev in revisions:
        migrate.upgrade(empty_url, rev)
        migrate.downgrade(empty_url, "-1")
        migrate.upgrade(empty_url, rev)
    engine = create_engine(empty_url)
    try:
        assert migrate.current_revision(engine) == revisions[-1]
    finally:
        engine.dispose()
    migrate.downgrade(empty_url, "base")
    engine = create_engine(empty_url)
    try:
        names = set(inspect(engine).get_table_names()) - {"alembic_version"}
        assert names == set()
        assert not set(inspect(engine).get_view_names()) & set(ALL_VIEWS)
    finally:
        engine.dispose()


def test_migrated_schema_equals_models(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    engine = create_engine(empty_url)
    try:
        with engine.connect() as conn:
            opts = {"compare_type": True, "include_object": include_in_comparison}
            ctx = MigrationContext.configure(conn, opts=opts)
            diff = compare_metadata(ctx, Base.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
        assert set(ALL_VIEWS) <= set(inspect(engine).get_view_names())
    finally:
        engine.dispose()


def test_views_answer_on_empty_database(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    engine = create_engine(empty_url)
    try:
        with engine.connect() as conn:
            for name in ALL_VIEWS:
                assert conn.exec_driver_sql(f"SELECT * FROM {name}").fetchall() == []
    finally:
        engine.dispose()


def test_0002_backfills_rejections_by_rule_and_downgrades(empty_url: str) -> None:
    migrate.upgrade(empty_url, "0001")
    engine = create_engine(empty_url)
    now = "2026-01-01 00:00:00"
    counters = ", ".join(["0"] * 8)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO seed_sets (id, name, content_hash, source_format, task_count, "
                f"created_at) VALUES (1, 's', 'h', 'self_instruct', 0, '{now}')"
            )
            for run_id in (1, 2):
                conn.exec_driver_sql(
                    "INSERT INTO runs (id, kind, seed_set_id, status, config, config_hash, "
                    "policy_version, target_tasks, iteration, generated_count, accepted_count, "
                    "rejected_count, parse_failure_count, prompt_tokens, completion_tokens, "
                    "inference_seconds, wall_seconds, created_at) VALUES "
                    f"({run_id}, 'bootstrap', 1, 'running', '{{}}', 'h', 'v1', 10, 0, {counters}, "
                    f"'{now}')"
                )
            rows = [(1, "rejected", "near_duplicate")] * 3 + [(1, "rejected", "length")]
            rows += [(1, "accepted", None), (1, "rejected", None)]
            for i, (run_id, status, rule) in enumerate(rows, start=1):
                rule_sql = f"'{rule}'" if rule else "NULL"
                conn.exec_driver_sql(
                    "INSERT INTO tasks (id, origin, seed_set_id, run_id, instruction, status, "
                    f"reject_rule, created_at) VALUES ({i}, 'machine', 1, {run_id}, 'task {i}', "
                    f"'{status}', {rule_sql}, '{now}')"
                )
        migrate.upgrade(empty_url, "0002")
        with engine.connect() as conn:
            got = dict(conn.exec_driver_sql("SELECT id, rejected_by_rule FROM runs").all())
        decoded = {k: json.loads(v) if isinstance(v, str) else v for k, v in got.items()}
        assert decoded == {1: {"near_duplicate": 3, "length": 1, "unknown": 1}, 2: {}}
        migrate.downgrade(empty_url, "0001")
        engine.dispose()
        assert "rejected_by_rule" not in {c["name"] for c in inspect(engine).get_columns("runs")}
        with engine.connect() as conn:
            assert len(conn.exec_driver_sql("SELECT * FROM v_run_summary").all()) == 2
    finally:
        engine.dispose()


def test_0007_indexes_the_tasks_stored_before_it(empty_url: str) -> None:
    migrate.upgrade(empty_url, "0006")
    engine = create_engine(empty_url)
    now = "2026-01-01 00:00:00"
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO seed_sets (id, name, content_hash, source_format, task_count, "
                f"created_at) VALUES (1, 's', 'h', 'self_instruct', 1, '{now}')"
            )
            conn.exec_driver_sql(
                "INSERT INTO tasks (id, origin, seed_set_id, instruction, status, created_at) "
                f"VALUES (1, 'seed', 1, 'Name three rivers of Европа.', 'accepted', '{now}')"
            )
    finally:
        engine.dispose()
    migrate.upgrade(empty_url)
    database = Database(empty_url)

    def ids(q: str) -> list[int]:
        with database.engine.connect() as conn:
            rows, _ = read_tasks(
                conn, columns=("id",), equal={}, min_score=None, cursor=None, limit=9, contains=q
            )
        return [r["id"] for r in rows]

    try:
        assert ids("RIVERS") == [1]  # the index's path (3+ characters)
        assert ids("ЕВРОПА") == [1]
        migrate.downgrade(empty_url, "0006")
        migrate.upgrade(empty_url)
        assert ids("three") == [1]
    finally:
        database.dispose()
