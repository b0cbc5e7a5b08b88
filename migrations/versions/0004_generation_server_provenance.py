"""generations: which server and API answered, the messages sent, the model's revision, dtype

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 10:00:00

The openai backend now speaks /v1/chat/completions too and spreads requests over a fleet of
servers; a generation records which server and endpoint answered and, on the chat API, the
messages sent (the server applied the chat template). ``model_revision`` is what the server
reports about its weights; ``dtype`` the precision an in-process engine ran in (dtype=auto).
Rows written before hold empty strings and no messages.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TEXT_COLUMNS = (
    ("model_revision", sa.Text()),
    ("dtype", sa.String(length=20)),
    ("server", sa.Text()),
    ("endpoint", sa.String(length=20)),
)


def upgrade() -> None:
    json_type = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    # Plain ADD COLUMN on both backends (no batch copy on SQLite: views read this table).
    for name, type_ in TEXT_COLUMNS:
        op.add_column(
            "generations", sa.Column(name, type_, server_default=sa.text("''"), nullable=False)
        )
    op.add_column("generations", sa.Column("messages", json_type, nullable=True))


def downgrade() -> None:
    # SQLite >= 3.35 drops a column in place, which keeps the views over `generations` intact.
    for name in ("messages", *(name for name, _ in reversed(TEXT_COLUMNS))):
        op.execute(f"ALTER TABLE generations DROP COLUMN {name}")
