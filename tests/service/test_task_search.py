"""Instruction search (`/v1/tasks?q=`): one meaning on SQLite and PostgreSQL, from the index.

Seed tasks imported over REST are searched over REST: a case-insensitive substring in any
script, `%`, `_`, `*`, quotes and backslashes literal, on both paths SQLite takes (an FTS5
trigram phrase from 3 characters, a scan below). The index follows inserts, edits and deletes,
and is what the database uses (tests/migrations: it indexes the tasks stored before it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, event, update

from service.storage.db import Database
from service.storage.models import Instance, Task
from service.storage.tasks import read_tasks
from tests.service.api_client import ApiHarness, api_harness

INSTRUCTIONS = [
    "Write a short poem about the OCEAN at night.",
    "写一首关于大海的诗。",
    "Переведите этот текст на английский.",
    "ΣΟΦΙΑ means wisdom: explain the word.",
    "Spend 100% of budget_total on one item.",
    'He said "hi" and *left*.',
    "Split C:\\temp\\new into its parts.",
    "Count the letters in tot and aXb.",
]


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[ApiHarness]:
    with api_harness(db_url, tmp_path) as harness:
        lines = [
            json.dumps(
                {
                    "id": f"t{i}",
                    "name": f"n{i}",
                    "instruction": text,
                    "instances": [{"input": "", "output": "ok"}],
                }
            )
            for i, text in enumerate(INSTRUCTIONS)
        ]
        made = harness.client.post(
            "/v1/seed-sets?name=search", content="\n".join(lines), headers=harness.headers()
        )
        assert made.status_code == 201, made.text
        yield harness


def found(api: ApiHarness, q: str) -> list[str]:
    """The instructions `/v1/tasks?q=` finds, in id order."""
    answer = api.client.get("/v1/tasks", params={"q": q}, headers=api.headers("read"))
    assert answer.status_code == 200, answer.text
    return [t["instruction"] for t in answer.json()["items"]]


OCEAN, SEA, RUSSIAN, GREEK, BUDGET, QUOTED, PATH, _ = INSTRUCTIONS

# (q, what it finds): 1-2 character queries take SQLite's scan, longer ones its FTS5 phrase.
CASES = [
    ("ocean AT", [OCEAN]),
    ("OCEAN", [OCEAN]),
    ("ean a", [OCEAN]),  # inside words, across a space
    ("关于大海", [SEA]),
    ("大海", [SEA]),
    ("诗", [SEA]),
    ("ПЕРЕВЕДИТЕ", [RUSSIAN]),
    ("ТЕ", [RUSSIAN]),  # Cyrillic upper case, too short for the index
    ("σοφια", [GREEK]),
    ("σο", [GREEK]),
    ("100%", [BUDGET]),
    ("%", [BUDGET]),
    ("_", [BUDGET]),
    ("t_t", [BUDGET]),  # not "tot": `_` is no wildcard
    ("a%b", []),  # not "aXb"
    ('"hi"', [QUOTED]),
    ("*left*", [QUOTED]),
    ('"', [QUOTED]),
    ("\\", [PATH]),
    ("C:\\temp\\new", [PATH]),
    ("nowhere at all", []),
    ("海的诗x", []),
]


def test_search_is_one_case_insensitive_literal_substring_everywhere(api: ApiHarness) -> None:
    for q, expected in CASES:
        assert found(api, q) == expected, q


def _ids(database: Database, q: str) -> list[int]:
    with database.engine.connect() as conn:
        rows, _ = read_tasks(
            conn, columns=("id",), equal={}, min_score=None, cursor=None, limit=50, contains=q
        )
    return [r["id"] for r in rows]


def test_the_index_follows_inserts_edits_and_deletes(api: ApiHarness) -> None:
    database = api.database
    ocean = _ids(database, "ocean")
    assert len(ocean) == 1
    with database.transaction() as s:
        s.execute(
            update(Task).where(Task.id == ocean[0]).values(instruction="Describe a quiet lake.")
        )
    assert _ids(database, "ocean") == []
    assert _ids(database, "quiet lake") == ocean
    assert _ids(database, "湖") == []
    with database.transaction() as s:
        s.execute(delete(Instance).where(Instance.task_id == ocean[0]))
        s.execute(delete(Task).where(Task.id == ocean[0]))
    assert _ids(database, "quiet lake") == []
    assert found(api, "quiet") == []


def _plan(database: Database, q: str) -> str:
    """The database's plan for the page read that searches `q` (the statement it ran)."""
    seen: list[tuple[str, Any]] = []
    with database.engine.connect() as conn:

        @event.listens_for(conn, "before_cursor_execute")
        def keep(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
            seen.append((statement, parameters))

        read_tasks(
            conn, columns=("id",), equal={}, min_score=None, cursor=None, limit=50, contains=q
        )
        event.remove(conn, "before_cursor_execute", keep)
        statement, parameters = seen[-1]
        if conn.dialect.name == "postgresql":
            # Eight rows are cheaper to scan than to look up: ask whether the index can serve.
            conn.exec_driver_sql("SET enable_seqscan = off")
            rows = conn.exec_driver_sql(f"EXPLAIN {statement}", parameters).all()
        else:
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
    return "\n".join(str(r[-1]) for r in rows)


def test_the_search_reads_the_index(api: ApiHarness) -> None:
    plan = _plan(api.database, "wisdom")
    if api.database.dialect == "postgresql":
        assert "ix_tasks_instruction_trgm" in plan, plan
        assert "ix_tasks_instruction_trgm" in _plan(api.database, "关于大海"), "CJK trigrams"
    else:
        assert "VIRTUAL TABLE INDEX" in plan and "tasks_fts" in plan, plan
