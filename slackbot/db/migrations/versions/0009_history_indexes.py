"""history at scale: indexes for the read paths with 100,000 incidents and 1,000,000 occurrences

``/api/incidents`` pages newest first over every incident (and over one class); ``/triage stats``
reads a window of recent incidents and asks, per incident, whether it was reclassified. Without
these, each of them reads whole tables (bench/history.py, docs/benchmarks.md).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 12:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_incidents_created", "incidents", ["created_at", "id"])
    op.create_index("ix_incidents_class_created", "incidents", ["failure_class", "created_at"])
    op.create_index("ix_timeline_incident_kind", "timeline", ["incident_id", "kind"])


def downgrade() -> None:
    op.drop_index("ix_timeline_incident_kind", table_name="timeline")
    op.drop_index("ix_incidents_class_created", table_name="incidents")
    op.drop_index("ix_incidents_created", table_name="incidents")
