"""read indexes: ix_incidents_created covers /triage stats' columns

``/triage stats`` reads a month of incidents (7,500 of 100,000 in bench/history.py) by a range of
ix_incidents_created, then each row from the table for its class, times, status and channel. With
those columns in the index the range is all it reads. Its leading columns stay (created_at, id),
so /api/incidents pages newest first by it as before.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 17:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


COVERING = [
    "created_at",
    "id",
    "failure_class",
    "status",
    "contract_violation",
    "classified_at",
    "acknowledged_at",
    "resolved_at",
    "channel",
]


def upgrade() -> None:
    op.drop_index("ix_incidents_created", table_name="incidents")
    op.create_index("ix_incidents_created", "incidents", COVERING)


def downgrade() -> None:
    op.drop_index("ix_incidents_created", table_name="incidents")
    op.create_index("ix_incidents_created", "incidents", ["created_at", "id"])
