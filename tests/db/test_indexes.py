"""Reads whose cost must not grow with what piles up: each is answered from an index in order."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.db.models import TimelineEvent


def plan(engine: Engine, query: object) -> str:
    sql = str(query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]
    with Session(engine) as session:
        rows = session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + sql)
        return " | ".join(str(row[-1]) for row in rows)


def test_an_incidents_timeline_in_the_order_written_needs_no_sort(sqlite_engine: Engine) -> None:
    """A card storm leaves one incident with tens of thousands of timeline rows: its first rows in
    the order written (the record's excerpt, the postmortem) must not sort all of them first."""
    query = select(TimelineEvent).where(TimelineEvent.incident_id == 7).order_by(col(TimelineEvent.id)).limit(20)
    found = plan(sqlite_engine, query)
    assert "ix_timeline_incident_id" in found and "TEMP B-TREE" not in found, found
