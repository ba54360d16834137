"""test history and suggestions: every result a run carried, the suggestion's confidence, suspects

``run_results`` keeps one packed row per report (slackbot/history): the outcome of every test it
carried, passes included, so the bot can tell a flake (failed and passed on one sha) from a
regression (failing since one change). Incidents gain the suggestion's confidence and the suspect
changes between the last green and the first failing sha, and the votes behind the suggestion (so
the suspect changes, which arrive later, join them). Incidents opened before this revision
have neither (their card shows the suggestion without a confidence).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 12:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("content_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("repository", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("branch", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("sha", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("results", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("outcomes", sa.LargeBinary(), nullable=False),
        sa.Column("recorded_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["run_pk"], ["runs.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_pk", "content_key", name="uq_run_results_content"),
    )
    op.create_index("ix_run_results_run_pk", "run_results", ["run_pk"], unique=False)
    op.create_index("ix_run_results_branch", "run_results", ["repository", "branch", "id"], unique=False)
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("suggested_confidence", sa.Float(), nullable=True))
        batch.add_column(sa.Column("suggestion_votes", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("suspects", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("suspects")
        batch.drop_column("suggestion_votes")
        batch.drop_column("suggested_confidence")
    op.drop_index("ix_run_results_branch", table_name="run_results")
    op.drop_index("ix_run_results_run_pk", table_name="run_results")
    op.drop_table("run_results")
