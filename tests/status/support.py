"""Small readers shared by the status tests: what a responder or an auditor would look at."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.clock import FakeClock
from slackbot.config import Playbooks
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, RunbookExecution, TimelineEvent, Timer
from slackbot.incidents import reminders
from slackbot.sources.ingest import IngestService
from tests.factories import outbox, parsed, result


def ingest_one(
    engine: Engine, playbooks: Playbooks, clock: FakeClock, scenario: str = "BID-001", *, run_id: str = "9187"
) -> int:
    """One failure (BID-* suggests algorithm_regression), or a recurrence of it with a new run id."""
    report = parsed(result(scenario, "TENANT-001"), run_id=run_id)
    outcome = IngestService(playbooks, clock).ingest_report(engine, report)
    (item,) = outcome.incidents
    assert item.id is not None
    return int(item.id)


def card_posted(engine: Engine, playbooks: Playbooks, clock: FakeClock, incident_id: int) -> None:
    """What the card delivery does once Slack took the card: record its ts, arm the reminder."""
    with session_scope(engine) as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        incident.card_ts = "1795000000.000100"
        session.add(incident)
        interval = playbooks.get(incident.playbook).policy.status_update_every
        reminders.arm_first(session, incident_id, clock.now(), interval)


def incident(engine: Engine, incident_id: int) -> Incident:
    with Session(engine) as session:
        found = session.get(Incident, incident_id)
        assert found is not None
        return found


def timeline(engine: Engine, incident_id: int, kind: str | None = None) -> list[TimelineEvent]:
    with Session(engine) as session:
        query = select(TimelineEvent).where(TimelineEvent.incident_id == incident_id)
        if kind is not None:
            query = query.where(TimelineEvent.kind == kind)
        return list(session.exec(query.order_by(col(TimelineEvent.id))))


def thread_templates(engine: Engine, incident_id: int) -> list[str]:
    return [str(o.payload.get("template")) for o in outbox(engine, "thread_post", incident_id)]


def reminder_timer(engine: Engine, incident_id: int) -> Timer | None:
    with Session(engine) as session:
        return session.exec(
            select(Timer).where(Timer.subject == f"incident:{incident_id}", Timer.kind == "reminder")
        ).first()


def executions(engine: Engine, incident_id: int) -> list[RunbookExecution]:
    with Session(engine) as session:
        query = select(RunbookExecution).where(RunbookExecution.incident_id == incident_id)
        return list(session.exec(query.order_by(col(RunbookExecution.id))))
