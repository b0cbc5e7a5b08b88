"""task_embeddings: each pool task's sentence embedding, stored once per embedding model

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 21:00:00

The embedding near-duplicate rule embedded the whole pool (seeds and accepted tasks) at every
claim of a run. A task's vector is now stored with the encoder's model id (name, version or
weights' fingerprint, encoding version) when it is first computed, and read back at the next
claim. Existing tasks have no row: they are embedded at their run's next claim and stored then.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "task_embeddings",
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("dimension", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_task_embeddings_task_id_tasks")
        ),
        sa.PrimaryKeyConstraint("task_id", "model", name=op.f("pk_task_embeddings")),
    )


def downgrade() -> None:
    op.drop_table("task_embeddings")
