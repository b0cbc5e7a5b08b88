"""tasks: the parent task and the operation of an evolved task (Evol-Instruct lineage)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 21:00:00

A run of method ``evol`` grows each task from a pool task by one operation (add constraints,
deepen, ..., in-breadth); the task records its parent and the operation, so a lineage and its
depth can be read back (``service.storage.lineage``). Other tasks hold NULL in both.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


FK_NAME = "fk_tasks_parent_task_id_tasks"


def upgrade() -> None:
    # Plain ADD COLUMN on both backends (no batch copy on SQLite: views read this table).
    # SQLite takes a foreign key only inside the column definition, which alembic cannot emit.
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            f"ALTER TABLE tasks ADD COLUMN parent_task_id INTEGER "
            f"CONSTRAINT {FK_NAME} REFERENCES tasks (id)"
        )
    else:
        op.add_column("tasks", sa.Column("parent_task_id", sa.Integer(), nullable=True))
        op.create_foreign_key(FK_NAME, "tasks", "tasks", ["parent_task_id"], ["id"])
    op.add_column("tasks", sa.Column("operation", sa.String(length=30), nullable=True))
    op.create_index("ix_tasks_parent_task_id", "tasks", ["parent_task_id"])


def downgrade() -> None:
    # SQLite >= 3.35 drops a column in place, which keeps the views intact.
    op.drop_index("ix_tasks_parent_task_id", table_name="tasks")
    op.drop_column("tasks", "operation")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(FK_NAME, "tasks", type_="foreignkey")
    op.drop_column("tasks", "parent_task_id")
