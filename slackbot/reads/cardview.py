"""Gathering everything the card shows about one incident (the input of ``render_card``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.config import Playbooks
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, Occurrence, Run, Timer
from slackbot.domain.states import TimerKind, TimerState
from slackbot.slack.card import CardView, PendingAction

EVIDENCE_LIMIT = 500
LOG_LIMIT = 600  # the tail of the failing command's log shown on the card


def load_card_view(engine: Engine, playbooks: Playbooks, incident_id: int) -> CardView | None:
    with session_scope(engine) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            return None
        return card_view(session, playbooks, incident)


def card_view(session: Session, playbooks: Playbooks, incident: Incident) -> CardView:
    assert incident.id is not None
    run = session.get(Run, incident.last_run_pk) if incident.last_run_pk else None
    latest = session.exec(
        select(Occurrence.command, Occurrence.detail)
        .where(Occurrence.incident_id == incident.id, col(Occurrence.command).is_not(None))
        .order_by(col(Occurrence.id).desc())
        .limit(1)
    ).first()
    return CardView(
        playbook=playbooks.get(incident.playbook),
        incident=incident,
        run=run,
        evidence=_evidence(session, incident.id),
        pending=pending_actions(session, playbooks, incident),
        command=latest[0] if latest else None,
        log=(latest[1] or "")[-LOG_LIMIT:] if latest else "",
    )


def _evidence(session: Session, incident_id: int) -> list[dict[str, Any]]:
    evidence: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    rows = session.exec(
        select(Occurrence.evidence)
        .where(Occurrence.incident_id == incident_id)
        .order_by(col(Occurrence.id).desc())
        .limit(50)
    )
    for items in rows:
        for item in items or []:
            key = (str(item.get("kind")), str(item.get("path")))
            if key not in seen and len(evidence) < EVIDENCE_LIMIT:
                seen.add(key)
                evidence.append(item)
    return evidence


def pending_actions(session: Session, playbooks: Playbooks, incident: Incident) -> list[PendingAction]:
    """What the bot will do unless someone acts first: PagerDuty's ``pending_actions``, shown."""
    playbook = playbooks.get(incident.playbook)
    timers = session.exec(
        select(Timer)
        .where(Timer.incident_id == incident.id, Timer.state == TimerState.PENDING.value)
        .order_by(col(Timer.due_at))
    )
    actions = []
    for timer in timers:
        if timer.kind == TimerKind.CLASSIFY:
            found = playbook.target("escalation", incident.owning_class)
            who = found.target.describe() if found else "nobody (no escalation target configured)"
            actions.append(PendingAction(f"escalates to {who}", timer.due_at))
        elif timer.kind == TimerKind.REMINDER:
            actions.append(PendingAction("asks for a status update", timer.due_at))
    return actions
