"""What a postmortem is made of, gathered from the audit trail: the incident, its runs and
occurrences, its timeline and runbook executions, and how far the same runs reached."""

from __future__ import annotations

from sqlmodel import Session, col, func, select

from slackbot.config import Playbook
from slackbot.db.models import Incident, Occurrence, Run, RunbookExecution, TimelineEvent
from slackbot.documents.postmortem import PostmortemInputs


def postmortem_inputs(session: Session, playbook: Playbook, incident: Incident, now: object) -> PostmortemInputs:
    assert incident.id is not None
    timeline = list(
        session.exec(
            select(TimelineEvent)
            .where(TimelineEvent.incident_id == incident.id)
            .order_by(col(TimelineEvent.id))  # as written: replicas' clocks may disagree (runtime.timeline)
        )
    )
    occurrences = list(
        session.exec(select(Occurrence).where(Occurrence.incident_id == incident.id).order_by(col(Occurrence.id)))
    )
    run_pks = sorted({o.run_pk for o in occurrences} | {p for p in (incident.first_run_pk,) if p})
    runs = list(session.exec(select(Run).where(col(Run.id).in_(run_pks)).order_by(col(Run.id)))) if run_pks else []
    executions = list(
        session.exec(
            select(RunbookExecution)
            .where(RunbookExecution.incident_id == incident.id)
            .order_by(col(RunbookExecution.at), col(RunbookExecution.id))
        )
    )
    # Blast radius beyond this card: other failures the same runs reported.
    siblings = 0
    if run_pks:
        siblings = int(
            session.exec(
                select(func.count(func.distinct(Occurrence.incident_id))).where(
                    col(Occurrence.run_pk).in_(run_pks), Occurrence.incident_id != incident.id
                )
            ).one()
        )
    return PostmortemInputs(playbook, incident, timeline, occurrences, runs, executions, siblings, now)  # type: ignore[arg-type]
