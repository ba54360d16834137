"""outbox: index rows by incident, kind and state

A change looks for a card redraw already queued for its incident, and checklists look up the
newest one; with only an index on incident_id both scanned every row the incident ever had.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 23:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The new index leads with incident_id, so it serves the old one's lookups too.
    op.create_index("ix_outbox_incident_kind_state", "outbox", ["incident_id", "kind", "state"], unique=False)
    op.drop_index("ix_outbox_incident_id", table_name="outbox")


def downgrade() -> None:
    op.create_index("ix_outbox_incident_id", "outbox", ["incident_id"], unique=False)
    op.drop_index("ix_outbox_incident_kind_state", table_name="outbox")
