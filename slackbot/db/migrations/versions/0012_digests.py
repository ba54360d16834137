"""weekly digests: which channel's digest of which week was scheduled

One row per channel and week, written in the same transaction as the digest's outbox rows; the
unique (channel, week_start) is what keeps a second replica, a restart or a re-armed timer from
posting a week's digest twice.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 14:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "digests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("week_start", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("week_end", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("scheduled_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "week_start", name="uq_digests_channel_week"),
    )


def downgrade() -> None:
    op.drop_table("digests")
