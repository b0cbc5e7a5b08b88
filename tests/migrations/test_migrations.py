"""Every revision upgrades and downgrades cleanly, and the migrated schema equals the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from service.storage import migrate
from service.storage.models import Base
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
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
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
