"""preference_comparisons: the judge's mode and fractional preferences; dpo training runs

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 04:30:00

A pair can now be judged from the judge's label probabilities (``judge_mode`` ``logprob``),
whose signed preference for response 1 is a real number in [-3, 3] (``3 * (p(A) - p(B)) /
(p(A) + p(B))``) rather than the text rubric's integer strength: ``forward`` and ``backward``
become floats. Rows written before are text-mode judgements.

``training_runs`` records dpo runs too: ``method`` (sft, dpo), ``preference_run_id`` (the run
whose exported pairs a dpo run trained on) and no dataset version for those.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("preference_comparisons") as batch:
        batch.add_column(
            sa.Column("judge_mode", sa.String(length=20), nullable=False, server_default="text")
        )
        batch.alter_column("forward", existing_type=sa.Integer(), type_=sa.Float())
        batch.alter_column("backward", existing_type=sa.Integer(), type_=sa.Float())
    with op.batch_alter_table("training_runs") as batch:
        batch.add_column(
            sa.Column("method", sa.String(length=10), nullable=False, server_default="sft")
        )
        batch.add_column(sa.Column("preference_run_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_training_runs_preference_run_id_runs", "runs", ["preference_run_id"], ["id"]
        )
        batch.create_index("ix_training_runs_preference_run_id", ["preference_run_id"])
        batch.alter_column("dataset_version_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("training_runs") as batch:
        batch.alter_column("dataset_version_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_index("ix_training_runs_preference_run_id")
        batch.drop_constraint("fk_training_runs_preference_run_id_runs", type_="foreignkey")
        batch.drop_column("preference_run_id")
        batch.drop_column("method")
    with op.batch_alter_table("preference_comparisons") as batch:
        batch.alter_column("backward", existing_type=sa.Float(), type_=sa.Integer())
        batch.alter_column("forward", existing_type=sa.Float(), type_=sa.Integer())
        batch.drop_column("judge_mode")
