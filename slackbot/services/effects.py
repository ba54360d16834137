"""Writing side effects and audit rows inside the caller's transaction.

Nothing here talks to Slack, PagerDuty or bd: it only records *that* something must happen
(outbox rows), *when* something must be checked (timers) and *what* happened (timeline rows).
Delivery and firing run after commit elsewhere, so a rolled-back change leaves no effect behind.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, update
from sqlmodel import Session, SQLModel, select

from slackbot.db.models import OutboxItem, TimelineEvent, Timer

BOT_ACTOR = "triagebot"


def table(model: type[SQLModel]) -> Table:
    """Core table for bulk inserts. The ORM's bulk insert splits a batch wherever rows differ in
    which columns are None, which turns thousands of rows into thousands of statements; Core
    renders every column for every row and sends one executemany."""
    result: Table = model.__table__  # type: ignore[attr-defined]
    return result


def utc(value: datetime) -> datetime:
    """Every stored time is timezone-aware UTC (SQLModel's UTCDateTime refuses naive values, and
    a naive value is taken to be UTC already)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass
class Effects:
    """Collects rows during one unit of work and writes them in bulk (ingest adds thousands)."""

    now: datetime
    timeline: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    timers: list[dict[str, Any]] = field(default_factory=list)

    def record(
        self,
        kind: str,
        message: str,
        *,
        incident_id: int | None = None,
        run_pk: int | None = None,
        actor: str = BOT_ACTOR,
        source: str = "system",
        data: dict[str, Any] | None = None,
    ) -> None:
        self.timeline.append(
            {
                "incident_id": incident_id,
                "run_pk": run_pk,
                "at": utc(self.now),
                "actor": actor,
                "source": source,
                "kind": kind,
                "message": message,
                "data": data or {},
            }
        )

    def enqueue(
        self,
        kind: str,
        dedup_key: str,
        payload: dict[str, Any] | None = None,
        *,
        incident_id: int | None = None,
        lane: str = "default",
        not_before: datetime | None = None,
    ) -> None:
        self.outbox.append(
            {
                "kind": kind,
                "dedup_key": dedup_key,
                "incident_id": incident_id,
                "lane": lane,
                "payload": payload or {},
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": utc(not_before or self.now),
                "result": {},
                "created_at": utc(self.now),
            }
        )

    def new_timer(self, *, subject: str, kind: str, due_at: datetime, incident_id: int | None = None) -> None:
        """A timer for a subject that has none yet (a new incident): inserted in bulk on flush."""
        self.timers.append(
            {
                "subject": subject,
                "kind": kind,
                "incident_id": incident_id,
                "due_at": utc(due_at),
                "token": uuid.uuid4().hex,
                "state": "pending",
                "step": 0,
            }
        )

    def flush(self, session: Session) -> None:
        if self.timers:
            session.execute(table(Timer).insert(), self.timers)
            self.timers = []
        if self.timeline:
            session.execute(table(TimelineEvent).insert(), self.timeline)
            self.timeline = []
        if self.outbox:
            existing = _existing_keys(session, [row["dedup_key"] for row in self.outbox])
            fresh = {row["dedup_key"]: row for row in self.outbox if row["dedup_key"] not in existing}
            if fresh:
                session.execute(table(OutboxItem).insert(), list(fresh.values()))
            self.outbox = []


def _existing_keys(session: Session, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        found.update(session.scalars(select(OutboxItem.dedup_key).where(OutboxItem.dedup_key.in_(chunk))))  # type: ignore[attr-defined]
    return found


def arm_timer(
    session: Session,
    *,
    subject: str,
    kind: str,
    due_at: datetime,
    incident_id: int | None = None,
    step: int = 0,
) -> str:
    """Create or re-arm the (subject, kind) timer with a fresh token; the old token goes stale."""
    token = uuid.uuid4().hex
    timer = session.exec(select(Timer).where(Timer.subject == subject, Timer.kind == kind)).first()
    if timer is None:
        session.add(
            Timer(
                subject=subject,
                kind=kind,
                incident_id=incident_id,
                due_at=utc(due_at),
                token=token,
                step=step,
            )
        )
    else:
        timer.due_at = utc(due_at)
        timer.token = token
        timer.state = "pending"
        timer.step = step
        timer.fired_at = None
        timer.fired_by = None
        session.add(timer)
    return token


def cancel_timer(session: Session, *, subject: str, kind: str) -> bool:
    result = session.execute(
        update(Timer)
        .where(Timer.subject == subject, Timer.kind == kind, Timer.state == "pending")  # type: ignore[arg-type]
        .values(state="cancelled", token=uuid.uuid4().hex)
    )
    return bool(getattr(result, "rowcount", 0))
