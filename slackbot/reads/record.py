"""What an incident's record (its defect bead) is made of, read from the database."""

from __future__ import annotations

from sqlmodel import Session, col, select

from slackbot.config import Playbook
from slackbot.db.models import Incident, Occurrence, Run, TimelineEvent
from slackbot.documents.record import TIMELINE_EXCERPT, RecordInputs, default_expected

LOG_EXCERPT = 3000


def record_inputs(
    session: Session,
    playbook: Playbook,
    incident: Incident,
    *,
    expected: str | None = None,
    observed: str | None = None,
) -> RecordInputs:
    run = session.get(Run, incident.last_run_pk) if incident.last_run_pk else None
    latest = session.exec(
        select(Occurrence).where(Occurrence.incident_id == incident.id).order_by(col(Occurrence.id).desc())
    ).first()
    timeline = session.exec(
        select(TimelineEvent)
        .where(TimelineEvent.incident_id == incident.id)
        .order_by(col(TimelineEvent.id))  # as written: replicas' clocks may disagree (runtime.timeline)
        .limit(TIMELINE_EXCERPT)
    ).all()
    return RecordInputs(
        playbook=playbook,
        incident=incident,
        run=run,
        expected=expected or default_expected(playbook, incident),
        observed=observed or ((latest.message if latest else None) or incident.symptom)[:3000],
        command=latest.command if latest else None,
        log=(latest.detail or "")[-LOG_EXCERPT:] if latest else "",
        timeline=list(timeline),
    )


def record_defaults(session: Session, playbook: Playbook, incident: Incident) -> tuple[str, str]:
    """Prefilled expected/observed for the File bead modal."""
    inputs = record_inputs(session, playbook, incident)
    return inputs.expected, inputs.observed
