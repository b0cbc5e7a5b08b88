"""dataset_versions: a lease per export job (owner, expiry, heartbeat) and status `queued`

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 10:00:00

Exports used to run as API background tasks: a killed API left its version `building` forever.
An export is now a job that a worker (or the API, for a small one) builds under a lease; an
expired lease makes the version claimable again. Versions left `building` by the old code have
no lease, so they become claimable as they are and the next worker rebuilds them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("lease_owner", "lease_expires_at", "heartbeat_at")


def upgrade() -> None:
    # Plain ADD COLUMN on both backends (no batch copy on SQLite: views read this table).
    op.add_column("dataset_versions", sa.Column("lease_owner", sa.String(200), nullable=True))
    timestamp = sa.DateTime(timezone=True)
    op.add_column("dataset_versions", sa.Column("lease_expires_at", timestamp, nullable=True))
    op.add_column("dataset_versions", sa.Column("heartbeat_at", timestamp, nullable=True))
    op.create_index(
        "ix_dataset_versions_status_lease", "dataset_versions", ["status", "lease_expires_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_dataset_versions_status_lease", table_name="dataset_versions")
    # SQLite >= 3.35 drops a column in place, which keeps the views intact.
    for column in reversed(_COLUMNS):
        op.execute(f"ALTER TABLE dataset_versions DROP COLUMN {column}")
