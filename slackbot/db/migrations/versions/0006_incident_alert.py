"""incident alert: an Alertmanager incident keeps its alert as last notified, for its card

The card of an alert shows its labels, summary, value, status and the silence and dashboard links;
only the alert's notification has them. Incidents from other sources, and alert incidents opened
before this revision, have none (their card shows what the incident row has).

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-06 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("alert", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("alert")
