"""preference_comparisons: every judged pair of sampled responses of a preference run

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 01:00:00

A run of method ``preference`` samples k responses per prompt (stored as the prompt task's
instances) and judges every pair in both orders, at full and at equal length. Each pair is a
row with both signed preferences, the outcome (kept, tie, inconsistent, unparsed,
below_margin), the chosen response of a kept pair, the length-only flag and every judge
reply as read; the report's bias figures and the DPO export read these rows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "preference_comparisons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("response_1_id", sa.Integer(), nullable=False),
        sa.Column("response_2_id", sa.Integer(), nullable=False),
        sa.Column("forward", sa.Integer(), nullable=True),
        sa.Column("backward", sa.Integer(), nullable=True),
        sa.Column("length_controlled", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("chosen_instance_id", sa.Integer(), nullable=True),
        sa.Column("margin", sa.Float(), nullable=True),
        sa.Column("length_only", sa.Boolean(), nullable=False),
        sa.Column("judge_model", sa.String(length=1000), nullable=False),
        sa.Column("rubric_version", sa.String(length=20), nullable=False),
        sa.Column("rubric_sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "replies",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_preference_comparisons_run_id_runs")
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_preference_comparisons_task_id_tasks")
        ),
        sa.ForeignKeyConstraint(
            ["response_1_id"],
            ["instances.id"],
            name=op.f("fk_preference_comparisons_response_1_id_instances"),
        ),
        sa.ForeignKeyConstraint(
            ["response_2_id"],
            ["instances.id"],
            name=op.f("fk_preference_comparisons_response_2_id_instances"),
        ),
        sa.ForeignKeyConstraint(
            ["chosen_instance_id"],
            ["instances.id"],
            name=op.f("fk_preference_comparisons_chosen_instance_id_instances"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_preference_comparisons")),
    )
    op.create_index(
        "ix_preference_comparisons_run_id", "preference_comparisons", ["run_id"], unique=False
    )
    op.create_index(
        "ix_preference_comparisons_task_id", "preference_comparisons", ["task_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_preference_comparisons_task_id", table_name="preference_comparisons")
    op.drop_index("ix_preference_comparisons_run_id", table_name="preference_comparisons")
    op.drop_table("preference_comparisons")
