"""A checklist's state: each step's latest result and which checklist is the live one."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.config import Playbooks
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, OutboxItem, RunbookExecution
from slackbot.domain.effects import EffectKind
from slackbot.slack.checklist import ChecklistView

Results = dict[tuple[str, int, int], RunbookExecution]


def latest_results(session: Session, incident_id: int) -> Results:
    """Each step's latest execution (what the checklist shows), keyed like ``Step.key``."""
    rows = session.exec(
        select(RunbookExecution)
        .where(RunbookExecution.incident_id == incident_id)
        .order_by(col(RunbookExecution.at), col(RunbookExecution.id))
    )
    return {(r.runbook, r.step_index, r.runbook_version): r for r in rows}


def newest_checklist(session: Session, incident_id: int) -> str | None:
    """The key of the incident's newest checklist: the live one (older ones are superseded)."""
    query = (
        select(OutboxItem.dedup_key)
        .where(OutboxItem.incident_id == incident_id, OutboxItem.kind == EffectKind.CHECKLIST.value)
        .order_by(col(OutboxItem.id).desc())
        .limit(1)
    )
    return session.exec(query).first()


def load_checklist_view(
    engine: Engine, playbooks: Playbooks, incident_id: int, key: str, failure_class: str
) -> ChecklistView | None:
    """The incident, its steps' latest results and its newest checklist: the renderer's input."""
    with session_scope(engine) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            return None
        return ChecklistView(
            playbook=playbooks.get(incident.playbook),
            incident=incident,
            key=key,
            failure_class=failure_class,
            results=latest_results(session, incident_id),
            newest=newest_checklist(session, incident_id),
        )
