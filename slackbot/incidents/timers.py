"""Firing durable timers exactly once, across restarts and replicas.

The database holds every due time; the scheduler only asks, every tick, which timers are due. A
batch of due timers is fired in one transaction that (1) selects them, (2) claims them with one
conditional UPDATE that matches each row's id *and token* while it is still ``pending``, and (3)
writes their effects (timeline rows, pages, card redraws, the next level's timer). If anything
fails, nothing happened and every timer in the batch is still due; if replicas race, each row is
claimed by exactly one UPDATE. A cancelled or re-armed timer has a new token, so a firing decided
on an old reading does nothing.

On PostgreSQL the batch is selected ``FOR UPDATE SKIP LOCKED`` and its incidents are locked the
same way, so replicas split the due timers between them instead of queueing on each other, and a
firing never waits for a lock while it holds one (no deadlock with a responder classifying the
same incident: a timer whose incident is busy simply waits for the next tick). On SQLite the
transaction takes the write lock at BEGIN, which serialises firings just as well.

Batching is what makes a backlog cheap: after a restart thousands of overdue timers fire in a few
transactions, and ``fire_due`` keeps taking batches until nothing is due.
"""

from __future__ import annotations

import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import bindparam, tuple_, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from slackbot.clock import Clock
from slackbot.config import Playbooks
from slackbot.config.durations import human_duration
from slackbot.db.engine import OutageLog, is_sqlite, session_scope
from slackbot.db.models import Incident, Timer
from slackbot.domain.effects import Event
from slackbot.domain.states import IncidentStatus, TimerKind, TimerState
from slackbot.incidents import digests, leases, reminders
from slackbot.incidents.effects import Effects, table, utc
from slackbot.incidents.paging import enqueue_page, targets_for
from slackbot.incidents.state import redraw
from slackbot.reads.snapshot import read_session

log = logging.getLogger(__name__)

BATCH = 500  # timers per transaction: big enough for a backlog, small enough to hold locks briefly
MAX_BATCHES = 100  # per call, so one call under a flood of due timers still returns


# Built once (the scheduler asks every tick, the simulation at every virtual moment a timer is
# due): building them cost more than SQLite spent answering.
_TIMERS = table(Timer)
_DUE = (
    sa_select(
        _TIMERS.c.id,
        _TIMERS.c.token,
        _TIMERS.c.kind,
        _TIMERS.c.subject,
        _TIMERS.c.incident_id,
        _TIMERS.c.step,
        _TIMERS.c.due_at,
    )
    .where(_TIMERS.c.state == TimerState.PENDING.value, _TIMERS.c.due_at <= bindparam("now"))
    .order_by(_TIMERS.c.due_at, _TIMERS.c.id)
    .limit(bindparam("limit"))
)
_CLAIM = (
    update(_TIMERS)
    .where(
        _TIMERS.c.id.in_(bindparam("ids", expanding=True)),  # the primary key finds the rows
        tuple_(_TIMERS.c.id, _TIMERS.c.token).in_(bindparam("pairs", expanding=True)),
        _TIMERS.c.state == TimerState.PENDING.value,
    )
    .values(state=TimerState.FIRED.value, fired_at=bindparam("fired_at"), fired_by=bindparam("worker"))
    .returning(_TIMERS.c.id)
)
_REARM = (
    update(_TIMERS)
    .where(_TIMERS.c.id.in_(bindparam("ids", expanding=True)))
    .values(
        due_at=bindparam("due_at"),
        token=bindparam("token"),
        step=_TIMERS.c.step + 1,
        state=TimerState.PENDING.value,
        fired_at=None,
        fired_by=None,
    )
)
_INCIDENTS = select(Incident).where(col(Incident.id).in_(bindparam("ids", expanding=True)))


@dataclass(frozen=True)
class DueTimer:
    """A due timer as read inside the firing transaction (the token is what the claim checks)."""

    id: int
    token: str
    kind: str
    subject: str
    incident_id: int | None
    step: int
    due_at: datetime


@dataclass
class FireResult:
    fired: int = 0  # claimed and applied by this caller
    stale: int = 0  # read as due, but fired elsewhere, cancelled or re-armed before the claim
    deferred: int = 0  # its incident was busy (locked by a change in progress): next tick
    ids: list[int] = field(default_factory=list)
    late: list[tuple[str, float]] = field(default_factory=list)  # (kind, seconds past due) per fired timer

    def add(self, other: FireResult) -> None:
        self.fired += other.fired
        self.stale += other.stale
        self.deferred += other.deferred
        self.ids.extend(other.ids)
        self.late.extend(other.late)


class TimerService:
    def __init__(self, playbooks: Playbooks, clock: Clock) -> None:
        self.playbooks = playbooks
        self.clock = clock
        # Ticks come four times a second: an outage of minutes says so twice, not once per tick.
        self._outage = OutageLog(log, "firing timers")

    # -- firing -----------------------------------------------------------------------------------

    def fire_due(
        self,
        engine: Engine,
        worker: str,
        *,
        limit: int = BATCH,
        max_batches: int = MAX_BATCHES,
        parallel: int | None = None,
    ) -> FireResult:
        """Fire every timer that is due now, a batch per transaction, until none is left (or only
        timers whose incidents are busy). Safe to call from many threads and replicas at once.

        On PostgreSQL two batches run side by side by default (``parallel``): SKIP LOCKED gives
        them disjoint timers, and while one waits for the server the other builds its effects,
        which is what brings a restart's backlog of 10,000 under the 5 s target. SQLite writes
        one transaction at a time, so there it is one."""
        lanes = parallel or (2 if engine.dialect.name == "postgresql" else 1)
        if lanes == 1:
            return self._drain(engine, worker, limit, max_batches)
        total = FireResult()
        with ThreadPoolExecutor(lanes, thread_name_prefix="timers") as pool:
            drains = [pool.submit(self._drain, engine, worker, limit, max_batches) for _ in range(lanes)]
            for drain in drains:
                total.add(drain.result())
        return total

    def _drain(self, engine: Engine, worker: str, limit: int, max_batches: int) -> FireResult:
        total = FireResult()
        for _ in range(max_batches):
            try:
                batch = self.fire_batch(engine, worker, limit=limit)
            except OperationalError as exc:  # a lock timeout or a dropped connection: still due
                self._outage.failed(exc, "firing timers failed")
                break
            self._outage.succeeded()
            total.add(batch)
            if batch.fired == 0 or batch.fired + batch.stale + batch.deferred < limit:
                break
        return total

    def fire_batch(self, engine: Engine, worker: str, *, limit: int = BATCH) -> FireResult:
        """One transaction: read up to ``limit`` due timers, claim them, apply their effects."""
        now = self.clock.now()
        if is_sqlite(engine):
            # Looked for in a snapshot first: this runs four times a second, and on SQLite a
            # transaction that may write takes the database's one write lock at its BEGIN. An
            # ingest or a click's change that met it waited for SQLite's busy handler (1 ms, then
            # 2, 5, 10...) for a lock that, with nothing due, was never needed.
            with read_session(engine) as session:
                if not self.due(session, now, 1):
                    return FireResult()
        with session_scope(engine) as session:
            due = self.due(session, now, limit)
            if not due:
                return FireResult()
            incidents = self._lock_incidents(session, {t.incident_id for t in due if t.incident_id is not None})
            ready = [t for t in due if t.incident_id is None or t.incident_id in incidents]
            claimed = set(self.claim(session, [(t.id, t.token) for t in ready], now, worker))
            fired = [t for t in ready if t.id in claimed]
            self._apply(session, fired, incidents, now, worker)
            return FireResult(
                fired=len(fired),
                stale=len(ready) - len(fired),
                deferred=len(due) - len(ready),
                ids=[t.id for t in fired],
                late=[(t.kind, (utc(now) - utc(t.due_at)).total_seconds()) for t in fired],
            )

    @staticmethod
    def due(session: Session, now: datetime, limit: int) -> list[DueTimer]:
        """Pending timers due by ``now``, oldest first. On PostgreSQL the rows are locked and rows
        another replica holds are skipped, so concurrent firings take disjoint batches."""
        query = _DUE
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return [
            DueTimer(int(r[0] or 0), r[1], r[2], r[3], r[4], int(r[5]), r[6])
            for r in session.execute(query, {"now": utc(now), "limit": limit})
        ]

    @staticmethod
    def claim(session: Session, timers: list[tuple[int, str]], now: datetime, worker: str) -> list[int]:
        """Mark timers fired, but only those still pending *with the token we read*; returns the
        ids this transaction won. Everything else was fired, cancelled or re-armed meanwhile."""
        if not timers:
            return []
        won: list[int] = []
        for start in range(0, len(timers), BATCH):
            chunk = timers[start : start + BATCH]
            result = session.execute(
                _CLAIM,
                {"ids": [timer_id for timer_id, _ in chunk], "pairs": chunk, "fired_at": utc(now), "worker": worker},
            )
            won.extend(int(row[0]) for row in result)
        return won

    @staticmethod
    def _lock_incidents(session: Session, ids: set[int]) -> dict[int, Incident]:
        """The incidents the timers act on. On PostgreSQL they are locked, skipping any that a
        responder's change holds right now (that timer fires on the next tick, after the change,
        and sees its result: e.g. a classification that cancelled it)."""
        if not ids:
            return {}
        query = _INCIDENTS
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = session.exec(query, params={"ids": sorted(ids)})
        return {incident.id: incident for incident in rows if incident.id is not None}

    # -- effects ----------------------------------------------------------------------------------

    def _apply(
        self, session: Session, fired: list[DueTimer], incidents: dict[int, Incident], now: datetime, worker: str
    ) -> None:
        effects = Effects(now=now)
        # timers that go on: classification to its next level, a reminder to the next one
        rearm: dict[timedelta, list[int]] = {}
        for timer in fired:
            if timer.kind == TimerKind.DIGEST:  # a channel's weekly digest, no incident
                digests.fire(session, self.playbooks, timer.id, timer.subject, now, worker, effects)
                continue
            incident = incidents.get(timer.incident_id) if timer.incident_id is not None else None
            if incident is None:
                continue
            if timer.kind == TimerKind.CLASSIFY:
                repeat = self._classification_overdue(timer, incident, now, effects)
                if repeat is not None:
                    rearm.setdefault(repeat, []).append(timer.id)
            elif timer.kind == TimerKind.REMINDER:
                playbook = self.playbooks.get(incident.playbook)
                repeat = reminders.remind(playbook, incident, now, effects, step=timer.step, token=timer.token)
                if repeat is not None:
                    rearm.setdefault(repeat, []).append(timer.id)
            elif timer.kind == TimerKind.LEASE:
                leases.overdue(self.playbooks.get(incident.playbook), incident, now, effects)
        session.flush()  # the incident changes, before the effects that describe them
        # One statement per interval. The next level counts from now, not from the missed due
        # time: after an outage the levels still come repeat_every apart, not all at once. One
        # fresh token serves the whole batch: what matters is that each differs from the old.
        for repeat_every, ids in rearm.items():
            for start in range(0, len(ids), BATCH):
                session.execute(
                    _REARM,
                    {"ids": ids[start : start + BATCH], "due_at": utc(now + repeat_every), "token": uuid.uuid4().hex},
                )
        effects.flush(session)

    def _classification_overdue(
        self, timer: DueTimer, incident: Incident, now: datetime, effects: Effects
    ) -> timedelta | None:
        """The timed rule (seed 001's 20 minutes): nobody classified in time, so escalate. Returns
        when the next level is due, or None when this was the last (or nothing was due)."""
        playbook = self.playbooks.get(incident.playbook)
        policy = playbook.policy.escalation
        within = playbook.policy.classify_within
        if incident.status != IncidentStatus.OPEN or incident.failure_class is not None or policy is None:
            return None  # classified or resolved meanwhile (a late timer does nothing), or no rule
        step = timer.step
        level = policy.levels[min(step, len(policy.levels) - 1)]
        incident.escalation_level = step + 1
        incident.revision += 1
        incident.updated_at = utc(now)
        effects.record(
            Event.ESCALATED,
            f"Not classified within {human_duration(within) if within else 'the time set'}: escalation level "
            f"{step + 1}" + (f" ({level.note})" if level.note else ""),
            incident_id=incident.id,
            source="timer",
            data={"level": step + 1, "notify": list(level.notify), "timer": timer.id},
        )
        enqueue_page(
            effects,
            incident,
            targets_for(playbook, incident, list(level.notify)),
            reason="unclassified",
            step=str(step + 1),
        )
        redraw(incident, effects)
        return policy.repeat_every if step + 1 < len(policy.levels) + policy.max_repeats else None
