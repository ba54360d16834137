"""Status reminders: an open incident whose thread goes quiet asks its people for an update.

One durable timer per open incident (subject ``incident:<id>``, kind ``reminder``), the same
machinery as the 20-minute rule, so reminders survive restarts and fire once across replicas.

- It is armed when the card is first posted: the thread exists from then on, so "quiet" is
  measured from the moment people could have written in it (an incident whose card is still
  waiting in the outbox is not yet anybody's silence).
- Every change to the incident pushes it back to ``now + policy.status_update_every``: a
  responder's action, a checklist click, a recurrence, a human reply in the thread. All of them go
  through ``push_back`` (or ``push_back_many`` for a bulk ingest), the one place that re-arms.
- When it fires on an open incident it posts the reminder (assignee, else the owner group) and
  re-arms itself, further out each time nobody answers (``repeat_after``); resolving cancels it,
  and a late firing on a resolved incident does nothing.
- A playbook without ``status_update_every`` sends no reminders.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from slackbot.config import Playbook
from slackbot.config.durations import format_duration
from slackbot.db.models import Incident, Timer
from slackbot.domain.effects import EffectKind, Event, Key
from slackbot.domain.states import IncidentStatus, TimerKind, TimerState, timer_subject
from slackbot.incidents.effects import Effects, arm_timer, utc

KIND = TimerKind.REMINDER


def push_back(session: Session, incident: Incident, now: datetime, interval: timedelta | None) -> None:
    """Thread activity on an open incident: the next reminder is one quiet interval from now.

    Re-arming gives the timer a fresh token, so a firing that was already under way for the old
    due time does nothing. Creates the timer when it is missing (an incident from before reminders
    existed), so every open incident that sees activity gets reminders from then on.
    """
    if incident.status != IncidentStatus.OPEN or incident.id is None or interval is None:
        return  # resolved, or the playbook sends no reminders
    arm_timer(session, subject=timer_subject(incident.id), kind=KIND, due_at=now + interval, incident_id=incident.id)


def push_back_many(session: Session, incident_ids: Sequence[int], now: datetime, interval: timedelta | None) -> None:
    """``push_back`` for a bulk ingest: one UPDATE per 500 incidents instead of a read and a write
    each. Only pending timers move (a resolved incident's cancelled timer stays cancelled)."""
    if interval is None:
        return
    ids = sorted(set(incident_ids))
    token = uuid.uuid4().hex  # a fresh token: firings that read the old one are stale
    for start in range(0, len(ids), 500):
        chunk = [timer_subject(i) for i in ids[start : start + 500]]
        session.execute(
            update(Timer)
            .where(
                col(Timer.subject).in_(chunk),
                col(Timer.kind) == KIND.value,
                col(Timer.state) == TimerState.PENDING.value,
            )
            .values(due_at=utc(now + interval), token=token, step=0)
        )


def arm_first(session: Session, incident_id: int, now: datetime, interval: timedelta | None) -> None:
    """The card was just posted: start measuring the thread's silence, unless a change already did."""
    query = select(Timer.id).where(Timer.subject == timer_subject(incident_id), Timer.kind == KIND.value)
    exists = session.exec(query).first()
    if exists is not None:
        return
    incident = session.get(Incident, incident_id)
    if incident is not None:
        push_back(session, incident, now, interval)


def remind(
    playbook: Playbook, incident: Incident, now: datetime, effects: Effects, *, step: int, token: str
) -> timedelta | None:
    """The timer fired (claimed exactly once by the timer firing): ask for an update. Returns how
    long until the next reminder; the firing batch re-arms the timer (one UPDATE for the batch,
    as for the escalation levels, instead of a read and a write per reminder)."""
    interval = playbook.policy.status_update_every
    if incident.status != IncidentStatus.OPEN or incident.id is None or interval is None:
        return None  # resolved meanwhile (resolving cancelled the timer: a late firing), or no reminders
    quiet = format_duration(interval)
    asked = incident.assignee or playbook.owner_target(incident.owning_class).describe()
    effects.record(
        Event.REMINDED,
        f"Thread quiet for {quiet}: asked {asked} for a status update",
        incident_id=incident.id,
        source="timer",
        data={"asked": asked, "quiet": quiet, "reminder": step + 1},
    )
    # The token is new on every arming, so each reminder is its own post (never deduplicated away).
    effects.enqueue(
        EffectKind.THREAD_POST,
        Key.reminder(incident.id, token),
        {"template": "reminder", "quiet": quiet, "count": step + 1},
        incident_id=incident.id,
        lane=incident.channel,
    )
    # The card shows when the next reminder is due: redraw it.
    incident.revision += 1
    effects.enqueue(
        EffectKind.CARD, Key.card(incident.id, incident.revision), incident_id=incident.id, lane=incident.channel
    )
    return repeat_after(interval, step + 1)


def repeat_after(interval: timedelta, unanswered: int) -> timedelta:
    """When to ask again after ``unanswered`` reminders nobody answered: one interval after the
    first, then twice as long each time, at most a day apart (never sooner than the interval).

    Asking every interval for ever buries an unattended thread: the 14-day founder-absence
    simulation (``triagebot simulate``) posted about 170 hourly reminders into each thread nobody
    read. Any activity (``push_back``) starts over at one interval.
    """
    return min(interval * 2 ** min(max(unanswered - 1, 0), 16), max(interval, timedelta(days=1)))


def thread_reply(
    session: Session, channel: str, thread_ts: str, now: datetime, interval_of: Callable[[Incident], timedelta | None]
) -> bool:
    """A person wrote in an incident's thread: that is the update the reminder would ask for.
    True when the message was in an open incident's thread (and its reminder moved back)."""
    query = select(Incident).where(
        Incident.channel == channel, Incident.card_ts == thread_ts, Incident.status == IncidentStatus.OPEN.value
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()  # incident before timer, the lock order of every change
    incident = session.exec(query).first()
    if incident is None:
        return False
    interval = interval_of(incident)
    if interval is None:
        return False  # the playbook sends no reminders: nothing to move back, nothing to redraw
    push_back(session, incident, now, interval)
    # The card shows when the next reminder is due; redraws queued in a burst collapse into one.
    incident.revision += 1
    session.add(incident)
    effects = Effects(now=now)
    effects.enqueue(
        EffectKind.CARD, Key.card(incident.id or 0, incident.revision), incident_id=incident.id, lane=incident.channel
    )
    effects.flush(session)
    return True
