"""runs.rejected_by_rule: per-rule rejection counters kept with the other run counters

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 14:40:00

Run progress used to count rejections with a GROUP BY over the run's tasks on every read, a
cost that grows with the run. The worker now adds each iteration's rejections by rule to this
column in the transaction that writes the tasks, so it always equals the rows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json_type = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    # Plain ADD COLUMN on both backends (no batch copy on SQLite: views read this table).
    op.add_column(
        "runs",
        sa.Column("rejected_by_rule", json_type, server_default=sa.text("'{}'"), nullable=False),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT run_id, COALESCE(reject_rule, 'unknown'), COUNT(*) FROM tasks "
            "WHERE status = 'rejected' AND run_id IS NOT NULL GROUP BY run_id, reject_rule"
        )
    )
    counts: dict[int, dict[str, int]] = {}
    for run_id, rule, n in rows:
        bucket = counts.setdefault(run_id, {})
        bucket[rule] = bucket.get(rule, 0) + n  # a NULL rule and 'unknown' share a bucket
    runs = sa.table("runs", sa.column("id", sa.Integer), sa.column("rejected_by_rule", json_type))
    for run_id, by_rule in counts.items():
        bind.execute(runs.update().where(runs.c.id == run_id).values(rejected_by_rule=by_rule))


def downgrade() -> None:
    # SQLite >= 3.35 drops a column in place, which keeps the views over `runs` intact.
    op.execute("ALTER TABLE runs DROP COLUMN rejected_by_rule")
