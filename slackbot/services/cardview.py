"""Gathering everything the card shows about one incident (the input of ``render_card``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.config.models import FailureClass, Runbook
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, Occurrence, Run, Timer
from slackbot.slack.card import CardView, PendingAction

EVIDENCE_LIMIT = 500


def load_card_view(engine: Engine, runbook: Runbook, incident_id: int) -> CardView | None:
    with session_scope(engine) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            return None
        run = session.get(Run, incident.last_run_pk) if incident.last_run_pk else None
        return CardView(
            incident=incident,
            run=run,
            evidence=_evidence(session, incident_id),
            pending=pending_actions(session, runbook, incident),
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


def pending_actions(session: Session, runbook: Runbook, incident: Incident) -> list[PendingAction]:
    """What the bot will do unless someone acts first: PagerDuty's ``pending_actions``, shown."""
    timers = session.exec(
        select(Timer).where(Timer.incident_id == incident.id, Timer.state == "pending").order_by(col(Timer.due_at))
    )
    actions = []
    for timer in timers:
        if timer.kind == "classify":
            actions.append(PendingAction(f"escalates to {escalation_target(runbook, incident)}", timer.due_at))
        elif timer.kind == "escalation":
            actions.append(PendingAction(f"escalation level {timer.step + 1}", timer.due_at))
        elif timer.kind == "reminder":
            actions.append(PendingAction("asks for a status update", timer.due_at))
    return actions


def escalation_target(runbook: Runbook, incident: Incident) -> str:
    key = incident.failure_class or incident.suggested_class
    if key:
        return runbook.routing.route(FailureClass(key)).escalation.describe()
    return runbook.routing.release_maintainer.describe()
