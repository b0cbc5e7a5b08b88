"""api_keys.viewer_logout_at: a viewer logout ends the key's sessions on the server

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 05:50:00

The viewer's session cookie is signed, not stored: deleting it in the browser left a copy
(another tab's, a stolen one) valid until it expired. A logout now records its time on the key;
a session issued before that time is over.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("viewer_logout_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("viewer_logout_at")
