"""tasks: an index for searching instructions (case-insensitive substring, any script)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 01:00:00

`/v1/tasks?q=` and the viewer's search scanned every instruction. PostgreSQL gets a GIN
trigram index (pg_trgm, a trusted extension: the database owner may create it) that serves
`ILIKE '%text%'`; SQLite an FTS5 table with the trigram tokenizer over `tasks.instruction`
(external content: the text is not stored twice), kept in step by triggers and filled from
the tasks already there. `service.storage.search` holds the queries and says what `q` means.

SQLite: a later migration that rebuilds `tasks` in batch mode (copy and move) drops these
triggers with the old table and must create them again.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Copies of service.storage.search.PG_DDL and SQLITE_DDL as they were at this revision.
PG_UP = (
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_tasks_instruction_trgm ON tasks USING gin (instruction gin_trgm_ops)",
)
SQLITE_UP = (
    "CREATE VIRTUAL TABLE tasks_fts USING fts5(instruction, content='tasks', "
    "content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER tasks_fts_ai AFTER INSERT ON tasks BEGIN "
    "INSERT INTO tasks_fts(rowid, instruction) VALUES (new.id, new.instruction); END",
    "CREATE TRIGGER tasks_fts_ad AFTER DELETE ON tasks BEGIN "
    "INSERT INTO tasks_fts(tasks_fts, rowid, instruction) "
    "VALUES ('delete', old.id, old.instruction); END",
    "CREATE TRIGGER tasks_fts_au AFTER UPDATE OF instruction ON tasks BEGIN "
    "INSERT INTO tasks_fts(tasks_fts, rowid, instruction) "
    "VALUES ('delete', old.id, old.instruction); "
    "INSERT INTO tasks_fts(rowid, instruction) VALUES (new.id, new.instruction); END",
    # Index the tasks stored before this revision.
    "INSERT INTO tasks_fts(tasks_fts) VALUES ('rebuild')",
)


def upgrade() -> None:
    statements = PG_UP if op.get_bind().dialect.name == "postgresql" else SQLITE_UP
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # pg_trgm stays: other objects of the database may use it.
        op.execute("DROP INDEX IF EXISTS ix_tasks_instruction_trgm")
        return
    for trigger in ("tasks_fts_ai", "tasks_fts_ad", "tasks_fts_au"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS tasks_fts")
