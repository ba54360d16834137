"""past index: the team's past read from a partial covering index

Every ingest that opens incidents reads the playbook's 500 newest incidents that people classified
(slackbot/suggest/past.py). Without an index that read walked the table newest first past every
unclassified incident: all of them in a database nobody has classified in yet, 2 ms there and
5 ms with 100,000 incidents, for each 1,000-result report. ix_incidents_past holds only the
classified ones and the columns read.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAST_WHERE = "class_source = 'human' AND failure_class IS NOT NULL"  # = slackbot.db.models.PAST_WHERE


def upgrade() -> None:
    op.create_index(
        "ix_incidents_past",
        "incidents",
        ["playbook", "id", "failure_class", "suggested_class", "symptom", "class_source"],
        sqlite_where=sa.text(PAST_WHERE),
        postgresql_where=sa.text(PAST_WHERE),
    )


def downgrade() -> None:
    op.drop_index("ix_incidents_past", table_name="incidents")
