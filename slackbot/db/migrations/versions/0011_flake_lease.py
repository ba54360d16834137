"""flakes with a lease: owner and due date of a flake's fix

``incidents.lease`` keeps the lease granted when an incident is first classified as a flake (the
owning role and class, the due time, when it escalated). Its expiry is a durable timer of kind
``lease``; the timers table needs no change.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 14:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("lease", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("lease")
