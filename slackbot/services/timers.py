"""Firing durable timers exactly once, across restarts and replicas.

The database holds every due time. Firing a timer is one transaction that (1) locks the incident
row, (2) claims the timer with a conditional UPDATE that checks its state and token, and (3)
writes the timer's effects (timeline, pages, card redraw, the next level's timer). If any step
fails, nothing happened and the timer is still due; if two replicas race, exactly one UPDATE
matches. A cancelled or re-armed timer has a new token, so a stale firing does nothing.
Locking the incident before the timer gives every transaction the same lock order (classifying
also locks incident, then timer), so PostgreSQL never deadlocks between them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from slackbot.clock import Clock
from slackbot.config.models import Runbook
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, Timer
from slackbot.services.effects import Effects, arm_timer, utc
from slackbot.services.paging import enqueue_page, targets_for

log = logging.getLogger(__name__)


@dataclass
class FireResult:
    fired: int = 0
    stale: int = 0


class TimerService:
    def __init__(self, runbook: Runbook, clock: Clock) -> None:
        self.runbook = runbook
        self.clock = clock

    def due(self, engine: Engine, now: datetime, limit: int) -> list[tuple[int, str, int | None]]:
        with session_scope(engine) as session:
            rows = session.exec(
                select(Timer.id, Timer.token, Timer.incident_id)
                .where(Timer.state == "pending", col(Timer.due_at) <= utc(now))
                .order_by(col(Timer.due_at))
                .limit(limit)
            )
            return [(int(r[0] or 0), str(r[1]), r[2]) for r in rows]

    def fire_due(self, engine: Engine, worker: str, *, limit: int = 500) -> FireResult:
        """Fire every timer that is due now. Safe to call from many replicas at once."""
        now = self.clock.now()
        result = FireResult()
        for timer_id, token, incident_id in self.due(engine, now, limit):
            try:
                with session_scope(engine) as session:
                    fired = self._fire_one(session, timer_id, token, incident_id, now, worker)
            except OperationalError as exc:  # lock timeout / serialization: another replica has it
                log.info("timer %s skipped this round: %s", timer_id, exc)
                fired = False
            if fired:
                result.fired += 1
            else:
                result.stale += 1
        return result

    def _fire_one(
        self, session: Session, timer_id: int, token: str, incident_id: int | None, now: datetime, worker: str
    ) -> bool:
        postgres = session.get_bind().dialect.name == "postgresql"
        incident = None
        if incident_id is not None:
            query = select(Incident).where(Incident.id == incident_id)
            if postgres:
                query = query.with_for_update()
            incident = session.exec(query).first()
        claimed = session.execute(
            update(Timer)
            .where(col(Timer.id) == timer_id, col(Timer.token) == token, col(Timer.state) == "pending")
            .values(state="fired", fired_at=utc(now), fired_by=worker)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            return False  # fired elsewhere, cancelled, or re-armed since we looked
        timer = session.get(Timer, timer_id)
        assert timer is not None
        if timer.kind == "classify" and incident is not None:
            self._classification_overdue(session, timer, incident, now)
        return True

    def _classification_overdue(self, session: Session, timer: Timer, incident: Incident, now: datetime) -> None:
        """The 20-minute rule: nobody classified in time, so escalate and arm the next level."""
        if incident.status != "open" or incident.failure_class is not None:
            return  # classified or resolved meanwhile: a late timer does nothing
        policy = self.runbook.policy.escalation
        step = timer.step
        level = policy.levels[min(step, len(policy.levels) - 1)]
        effects = Effects(now=now)
        incident.escalation_level = step + 1
        incident.revision += 1
        incident.updated_at = utc(now)
        session.add(incident)
        minutes = int(self.runbook.policy.classify_within.total_seconds() // 60)
        effects.record(
            "escalated",
            f"Not classified within {minutes} min: escalation level {step + 1}"
            + (f" ({level.note})" if level.note else ""),
            incident_id=incident.id,
            source="timer",
            data={"level": step + 1, "notify": list(level.notify)},
        )
        enqueue_page(
            effects,
            self.runbook,
            incident,
            targets_for(self.runbook, incident, list(level.notify)),
            reason="unclassified",
            step=str(step + 1),
        )
        effects.enqueue(
            "card", f"card:{incident.id}:{incident.revision}", incident_id=incident.id, lane=incident.channel
        )
        if step + 1 < len(policy.levels) + policy.max_repeats:
            arm_timer(
                session,
                subject=timer.subject,
                kind="classify",
                due_at=now + policy.repeat_every,
                incident_id=incident.id,
                step=step + 1,
            )
        effects.flush(session)
