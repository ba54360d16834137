"""validation by evidence: the green runs that validate a fix

After the playbook's milestone that starts validation (``fix_merged``), an incident awaits its
test's next green runs on its branch: ``validation_scope`` says where ("repository\\nbranch", NULL
when nothing is awaited, so an ingest finds the few incidents on its own branch by one indexed
lookup), ``validation`` keeps the progress the card shows (the runs counted, the run that
interrupted the count). The runs' links end in the record as the milestone's proof.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 14:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("validation_scope", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(sa.Column("validation", sa.JSON(), nullable=True))
    op.create_index("ix_incidents_validation_scope", "incidents", ["validation_scope"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_incidents_validation_scope", table_name="incidents")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("validation")
        batch.drop_column("validation_scope")
