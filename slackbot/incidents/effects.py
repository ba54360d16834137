"""Writing side effects and audit rows inside the caller's transaction.

Nothing here talks to Slack, PagerDuty or bd: it only records *that* something must happen
(outbox rows), *when* something must be checked (timers) and *what* happened (timeline rows).
Delivery and firing run after commit elsewhere, so a rolled-back change leaves no effect behind.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, bindparam, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel

from slackbot.db.bulk import insert_many
from slackbot.db.models import OutboxItem, TimelineEvent, Timer
from slackbot.domain.effects import EffectKind, Event, Lane
from slackbot.domain.states import DeliveryState, TimerKind, TimerState

BOT_ACTOR = "triagebot"


def table(model: type[SQLModel]) -> Table:
    """Core table for bulk inserts. The ORM's bulk insert splits a batch wherever rows differ in
    which columns are None, which turns thousands of rows into thousands of statements; Core
    renders every column for every row and sends one executemany."""
    result: Table = model.__table__  # type: ignore[attr-defined]
    return result


# Plain strings for the rows an ingest writes by the thousand (an enum's ``.value`` is a lookup).
_DELIVERY_PENDING = DeliveryState.PENDING.value
_TIMER_PENDING = TimerState.PENDING.value


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

    def __post_init__(self) -> None:
        self.now = utc(self.now)  # converted once: an ingest stamps thousands of rows with it

    def record(
        self,
        kind: Event,
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
                "at": self.now,
                "actor": actor,
                "source": source,
                "kind": str(kind),
                "message": message,
                "data": data or {},
            }
        )

    def enqueue(
        self,
        kind: EffectKind,
        dedup_key: str,
        payload: dict[str, Any] | None = None,
        *,
        incident_id: int | None = None,
        lane: str = Lane.DEFAULT,
        not_before: datetime | None = None,
    ) -> None:
        self.outbox.append(
            {
                "kind": str(kind),
                "dedup_key": dedup_key,
                "incident_id": incident_id,
                "lane": lane,
                "payload": payload or {},
                "state": _DELIVERY_PENDING,
                "attempts": 0,
                "next_attempt_at": utc(not_before) if not_before else self.now,
                "result": {},
                "created_at": self.now,
            }
        )

    def new_timer(self, *, subject: str, kind: TimerKind, due_at: datetime, incident_id: int | None = None) -> None:
        """A timer for a subject that has none yet (a new incident): inserted in bulk on flush."""
        self.timers.append(
            {
                "subject": subject,
                "kind": str(kind),
                "incident_id": incident_id,
                "due_at": utc(due_at),
                # 128 random bits as uuid4().hex gives them, at a fifth of its cost (one per new incident)
                "token": os.urandom(16).hex(),
                "state": _TIMER_PENDING,
                "step": 0,
            }
        )

    def flush(self, session: Session) -> None:
        if self.timers:
            insert_many(session, table(Timer), self.timers)
            self.timers = []
        if self.timeline:
            insert_many(session, table(TimelineEvent), self.timeline)
            self.timeline = []
        if self.outbox:
            rows = _without_queued_cards(session, list({row["dedup_key"]: row for row in self.outbox}.values()))
            # An effect already queued under the same key (a retried webhook, a replayed
            # delivery) is not queued twice: the unique dedup key decides, in one statement.
            insert_many(session, table(OutboxItem), rows, skip_conflicts_on="dedup_key")
            self.outbox = []


# Built once: every flush that redraws a card asks (each timer firing, each delivery that
# changes an incident), and building the statement cost more than SQLite spent answering it.
_OUTBOX = table(OutboxItem)
_QUEUED_CARDS = sa_select(_OUTBOX.c.incident_id).where(
    _OUTBOX.c.kind == EffectKind.CARD.value,
    _OUTBOX.c.state == DeliveryState.PENDING.value,
    _OUTBOX.c.incident_id.in_(bindparam("ids", expanding=True)),
)
_QUEUED_CARDS_LOCKED = _QUEUED_CARDS.with_for_update()


def _without_queued_cards(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop card redraws for incidents whose card already has one queued.

    A card is a pure function of the incident, drawn when it is delivered, so the queued redraw
    will show this change too: a burst of changes costs one card edit, and the queued row keeps
    its place in the channel's lane (the first one posts the card, which the thread posts behind it
    wait for). The queued rows are locked on PostgreSQL so a worker cannot claim and draw one
    before this transaction commits (its claim skips locked rows and takes it next time).
    """
    card = EffectKind.CARD.value
    cards = [row for row in rows if row["kind"] == card and row["incident_id"] is not None]
    if not cards:
        return rows
    ids = sorted({int(row["incident_id"]) for row in cards})
    queued: set[int] = set()
    query = _QUEUED_CARDS_LOCKED if session.get_bind().dialect.name == "postgresql" else _QUEUED_CARDS
    connection = session.connection()
    for start in range(0, len(ids), 500):
        result = connection.execute(query, {"ids": ids[start : start + 500]})
        queued.update(int(i) for (i,) in result if i is not None)
    kept = []
    for row in rows:
        if row["kind"] == card and row["incident_id"] is not None:
            if row["incident_id"] in queued:
                continue
            queued.add(row["incident_id"])  # one new redraw per incident per flush
        kept.append(row)
    return kept


# Built once, like the queued-card check: a reclassification cancels two timers and re-arms one,
# and building these statements through the ORM cost more than SQLite spent running them.
_TIMERS = table(Timer)
_REARM = (
    update(_TIMERS)
    .where(_TIMERS.c.subject == bindparam("subject_"), _TIMERS.c.kind == bindparam("kind_"))
    .values(
        due_at=bindparam("due_"),
        token=bindparam("token_"),
        state=_TIMER_PENDING,
        step=bindparam("step_"),
        fired_at=None,
        fired_by=None,
    )
)
_CANCEL = (
    update(_TIMERS)
    .where(
        _TIMERS.c.subject == bindparam("subject_"),
        _TIMERS.c.kind == bindparam("kind_"),
        _TIMERS.c.state == _TIMER_PENDING,
    )
    .values(state=TimerState.CANCELLED.value, token=bindparam("token_"))
)


def arm_timer(
    session: Session,
    *,
    subject: str,
    kind: TimerKind,
    due_at: datetime,
    incident_id: int | None = None,
    step: int = 0,
) -> str:
    """Create or re-arm the (subject, kind) timer with a fresh token; the old token goes stale.
    Plain statements on the session's connection: no caller holds a Timer object it changes (the
    timer service reads timers as rows), so nothing in the session can overwrite them."""
    token = uuid.uuid4().hex
    connection = session.connection()
    due = utc(due_at)
    params = {"subject_": subject, "kind_": kind.value, "due_": due, "token_": token, "step_": step}
    if not connection.execute(_REARM, params).rowcount:
        row = {"subject": subject, "kind": kind.value, "incident_id": incident_id, "due_at": due, "token": token}
        insert_many(session, _TIMERS, [row | {"state": _TIMER_PENDING, "step": step}])
    return token


def cancel_timer(session: Session, *, subject: str, kind: TimerKind) -> bool:
    params = {"subject_": subject, "kind_": kind.value, "token_": uuid.uuid4().hex}
    return bool(session.connection().execute(_CANCEL, params).rowcount)
