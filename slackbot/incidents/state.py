"""Reading an incident for a change, and the one place a change is made visible.

Every transition ends in ``changed``: the revision goes up (the card shows the latest), the card
redraw and the optional thread post are queued, and the quiet-thread reminder moves back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from slackbot.config import Playbook
from slackbot.db.models import Incident
from slackbot.domain.changes import Actor, IncidentError
from slackbot.domain.effects import EffectKind, Event, Key
from slackbot.domain.states import IncidentStatus
from slackbot.incidents import reminders
from slackbot.incidents.effects import Effects, utc


def load_for_change(session: Session, incident_id: int) -> Incident:
    """The incident, locked on PostgreSQL: every change takes the incident's lock first (the lock
    order that keeps changes, timers and ingest free of deadlocks)."""
    # ``get`` rather than a select: it answers from the session when the transaction already holds
    # the incident (an inbox batch applies several clicks in one), and on PostgreSQL the lock
    # makes it ask the database every time.
    lock = session.get_bind().dialect.name == "postgresql"
    incident = session.get(Incident, incident_id, with_for_update=True if lock else None)
    if incident is None:
        raise IncidentError(f"no incident INC-{incident_id}")
    return incident


def require_open(incident: Incident) -> None:
    if incident.status == IncidentStatus.RESOLVED:
        raise IncidentError(f"{incident.key} is resolved; a new failure opens a new incident")


def changed(
    session: Session,
    playbook: Playbook,
    incident: Incident,
    effects: Effects,
    *,
    thread: dict[str, Any] | None = None,
    remind: bool = True,
    not_before: datetime | None = None,
) -> None:
    """Bump the revision, queue the redraw and (optionally) a thread post. Every change is activity
    on the incident, so the quiet-thread reminder moves back one interval (``remind=False`` when
    the caller moves many at once, as an ingest does)."""
    assert incident.id is not None
    incident.revision += 1
    incident.updated_at = utc(effects.now)
    if incident not in session:  # adding a loaded row again walks its relationships for nothing
        session.add(incident)
    if remind:
        session.flush()
        reminders.push_back(session, incident, effects.now, playbook.policy.status_update_every)
    if thread is not None:
        effects.enqueue(
            EffectKind.THREAD_POST,
            Key.thread(incident.id, incident.revision),
            thread,
            incident_id=incident.id,
            lane=incident.channel,
            not_before=not_before,
        )
    redraw(incident, effects)


def redraw(incident: Incident, effects: Effects) -> None:
    """Queue a card redraw for the incident's current revision (queued redraws collapse into one)."""
    assert incident.id is not None
    effects.enqueue(
        EffectKind.CARD, Key.card(incident.id, incident.revision), incident_id=incident.id, lane=incident.channel
    )


@dataclass
class Turn:
    """One change in progress: the transaction it is written in, the incident and the playbook
    whose words apply, who asked, and the effects collected so far."""

    session: Session
    playbook: Playbook
    incident: Incident
    actor: Actor
    effects: Effects

    @property
    def id(self) -> int:
        assert self.incident.id is not None
        return self.incident.id

    @property
    def key(self) -> str:
        return self.incident.key

    def record(self, kind: Event, message: str, **data: Any) -> None:
        """A timeline row in the asker's name."""
        self.effects.record(
            kind, message, incident_id=self.id, actor=self.actor.user_id, source=self.actor.source, data=data
        )

    def changed(self, template: str | None = None, *, not_before: datetime | None = None, **post: Any) -> None:
        """``changed`` for this turn, with a thread post from ``template`` when given (due at
        ``not_before``, or at once)."""
        thread = {"template": template, "actor": self.actor.user_id, **post} if template else None
        changed(self.session, self.playbook, self.incident, self.effects, thread=thread, not_before=not_before)
