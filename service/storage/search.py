"""Search in task instructions: an indexed, case-insensitive substring match on both databases.

What `q` promises (REST `/v1/tasks?q=`, the viewer's search box): the tasks whose instruction
contains the text, letters compared by their Unicode lower case, in any script (Chinese,
Cyrillic, ... with spaces or none), with `%`, `_`, `*`, `"` and backslashes meaning themselves.
A substring, not words: that is what finds text in unspaced scripts.

The index behind it (migration 0007):

* PostgreSQL: a GIN trigram index (pg_trgm's `gin_trgm_ops`) on `tasks.instruction`, which
  serves `ILIKE '%text%'` directly. Trigrams are taken from letters and digits of the
  database's LC_CTYPE (C.UTF-8 and the usual UTF-8 locales classify CJK, Cyrillic, ... as
  letters; a database in the plain C locale still answers right, from a scan).
* SQLite: an FTS5 table with the trigram tokenizer (SQLite >= 3.34), kept in step with `tasks`
  by triggers; a text of 3 or more characters is an FTS5 phrase of its trigrams, which is the
  substring, case folded by FTS5's Unicode folding. FTS5 cannot look up shorter text: 1-2
  characters (a one-character Chinese word) scan the table, lower-cased by Python
  (`INSTR_LOWER`, a function registered on every connection: SQLite's own lower() folds ASCII
  alone).

Both folds are Unicode's simple lower-case mapping; letters whose lower case is longer than
one character (Turkish dotted I) may differ between the two databases.

The index's objects live outside the ORM models (`Base.metadata`); `is_search_object` tells
schema comparisons (Alembic autogenerate, tests) to leave them alone
(`include_in_comparison`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import DDL, Integer, bindparam, event, func, literal_column, select, table
from sqlalchemy import column as sql_column
from sqlalchemy.sql.elements import ColumnElement

from service.storage.models import Task

PG_TRGM_INDEX = "ix_tasks_instruction_trgm"
SQLITE_FTS = "tasks_fts"
FTS_MIN_CHARS = 3  # the trigram tokenizer indexes 3-character runs
INSTR_LOWER = "if_instr_lower"

# Migration 0007 holds a copy of this text (a migration never changes after it ships).
PG_DDL = (
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    f"CREATE INDEX {PG_TRGM_INDEX} ON tasks USING gin (instruction gin_trgm_ops)",
)
SQLITE_DDL = (
    # External content: the text stays in `tasks`; FTS5 keeps only the trigram index.
    f"CREATE VIRTUAL TABLE {SQLITE_FTS} USING fts5(instruction, content='tasks', "
    "content_rowid='id', tokenize='trigram')",
    f"CREATE TRIGGER {SQLITE_FTS}_ai AFTER INSERT ON tasks BEGIN "
    f"INSERT INTO {SQLITE_FTS}(rowid, instruction) VALUES (new.id, new.instruction); END",
    f"CREATE TRIGGER {SQLITE_FTS}_ad AFTER DELETE ON tasks BEGIN "
    f"INSERT INTO {SQLITE_FTS}({SQLITE_FTS}, rowid, instruction) "
    "VALUES ('delete', old.id, old.instruction); END",
    f"CREATE TRIGGER {SQLITE_FTS}_au AFTER UPDATE OF instruction ON tasks BEGIN "
    f"INSERT INTO {SQLITE_FTS}({SQLITE_FTS}, rowid, instruction) "
    "VALUES ('delete', old.id, old.instruction); "
    f"INSERT INTO {SQLITE_FTS}(rowid, instruction) VALUES (new.id, new.instruction); END",
)

_fts = table(SQLITE_FTS, sql_column("rowid", Integer))

# A schema made by create_all (tests of an in-memory database) gets the index too.
for _dialect, _statements in (("postgresql", PG_DDL), ("sqlite", SQLITE_DDL)):
    for _statement in _statements:
        _ddl = DDL(_statement)  # type: ignore[no-untyped-call]
        event.listen(Task.__table__, "after_create", _ddl.execute_if(dialect=_dialect))


def like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own `%`, `_` and backslashes literal."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def fts_phrase(text: str) -> str:
    """`text` as one FTS5 phrase (every character literal: quotes doubled inside)."""
    return '"' + text.replace('"', '""') + '"'


def search_kind(text: str, dialect: str) -> str:
    """How `text` is looked up on `dialect`: "like" (PostgreSQL, trigram index), "fts"
    (SQLite, 3+ characters) or "scan" (SQLite, 1-2 characters)."""
    if dialect == "postgresql":
        return "like"
    return "fts" if len(text) >= FTS_MIN_CHARS else "scan"


def search_values(text: str, kind: str) -> dict[str, Any]:
    """The bind values of `instruction_contains(kind, ...)` for `text`."""
    if kind == "like":
        return {"contains": like_pattern(text)}
    if kind == "fts":
        return {"contains": fts_phrase(text)}
    return {"contains": text.lower()}


def instruction_contains(kind: str, instruction: Any, task_id: Any) -> ColumnElement[bool]:
    """The condition `instruction` (a column) contains the bind parameter `contains`
    (`search_values`), for a search of `kind` (`search_kind`); `task_id` is its row's id."""
    needle: Any = bindparam("contains")
    if kind == "like":
        return instruction.ilike(needle, escape="\\")  # type: ignore[no-any-return]
    if kind == "fts":
        matching = select(_fts.c.rowid).where(literal_column(SQLITE_FTS).op("MATCH")(needle))
        return task_id.in_(matching)  # type: ignore[no-any-return]
    return func.instr(getattr(func, INSTR_LOWER)(instruction), needle) > 0


def _lower(text: str | None) -> str | None:
    return None if text is None else text.lower()


def register_sqlite_functions(dbapi_connection: Any) -> None:
    """Register INSTR_LOWER (Python's Unicode `str.lower`) on a new SQLite connection."""
    dbapi_connection.create_function(INSTR_LOWER, 1, _lower, deterministic=True)


def is_search_object(name: str | None, type_: str) -> bool:
    """Whether a reflected schema object is the search index's (not in the ORM models)."""
    if name is None:
        return False
    if type_ == "index":
        return name == PG_TRGM_INDEX
    return type_ == "table" and (name == SQLITE_FTS or name.startswith(f"{SQLITE_FTS}_"))


def include_in_comparison(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Alembic's `include_object` hook: compare everything but the search index's objects,
    which exist in the database alone."""
    return not (reflected and compare_to is None and is_search_object(name, type_))
