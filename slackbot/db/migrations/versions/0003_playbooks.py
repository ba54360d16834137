"""playbooks: an incident knows its playbook, its flags and its record; the timed rule is optional

Existing incidents were opened under the one runbook there was, which is now the
``integration-triage`` playbook: they keep their class, severity and history, and read as before.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(
            sa.Column(
                "playbook", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default="integration-triage"
            )
        )
        batch.add_column(sa.Column("severity_source", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(sa.Column("flags", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("record", sa.JSON(), nullable=False, server_default="{}"))
        # A playbook without a timed escalation rule has no classification deadline.
        batch.alter_column("classify_deadline", existing_type=sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
    with op.batch_alter_table("occurrences") as batch:
        batch.add_column(sa.Column("command", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("occurrences") as batch:
        batch.drop_column("command")
    with op.batch_alter_table("incidents") as batch:
        batch.alter_column("classify_deadline", existing_type=sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False)
        batch.drop_column("record")
        batch.drop_column("flags")
        batch.drop_column("severity_source")
        batch.drop_column("playbook")
