"""Flakes with a lease: classifying a failure as a flake gives its fix an owner and a due date from
the playbook; still open at the due date, it escalates once (a durable timer, under a fake clock,
on SQLite and a real PostgreSQL). What we look at is what people would see: timeline rows, the
thread posts and pages queued, the incident's lease, the timers left."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.clock import FakeClock, as_utc
from slackbot.config import Playbooks
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, TimelineEvent, Timer
from slackbot.domain.changes import Actor, Classify, Resolve
from slackbot.incidents import beads
from slackbot.incidents.core import IncidentCore
from slackbot.incidents.effects import Effects
from slackbot.incidents.timers import TimerService
from slackbot.sources.ingest import IngestService
from tests.factories import outbox, parsed, result

RESPONDER = Actor("U0CAROL", "command")
LEADS_ONCALL = "U0GRACE"  # @triage-leads: the flake class's escalation target
FLAKE = result("ADV-002", "IDEMP-003", message="found 2 duplicate notifications")
WEEK = timedelta(days=7)  # integration-triage's lease: owner (the concurrency owners), due 7d


def ingest(engine: Engine, playbooks: Playbooks, clock: FakeClock, run_id: str = "9187") -> int:
    outcome = IngestService(playbooks, clock).ingest_report(engine, parsed(FLAKE, run_id=run_id))
    (incident,) = outcome.incidents
    assert incident.id is not None
    return incident.id


def timeline(engine: Engine, kind: str, incident_id: int) -> list[TimelineEvent]:
    with Session(engine) as session:
        query = select(TimelineEvent).where(TimelineEvent.kind == kind, TimelineEvent.incident_id == incident_id)
        return list(session.exec(query.order_by(col(TimelineEvent.id))))


def incident(engine: Engine, incident_id: int) -> Incident:
    with Session(engine) as session:
        found = session.get(Incident, incident_id)
        assert found is not None
        return found


def lease_timer(engine: Engine, incident_id: int) -> Timer | None:
    with Session(engine) as session:
        query = select(Timer).where(Timer.subject == f"incident:{incident_id}", Timer.kind == "lease")
        return session.exec(query).first()


def due(engine: Engine, incident_id: int) -> datetime:
    lease = incident(engine, incident_id).lease
    assert lease is not None
    return as_utc(datetime.fromisoformat(lease["due"]))


def overdue_pages(engine: Engine, incident_id: int) -> list[tuple[str, str]]:
    """(kind, who) of every part of the overdue page: the thread post, DMs."""
    parts = [
        ("thread", str(o.payload.get("note")))
        for o in outbox(engine, "thread_post", incident_id)
        if o.payload.get("reason") == "lease_overdue"
    ]
    parts += [
        ("dm", str(o.payload["user"]))
        for o in outbox(engine, "dm", incident_id)
        if o.payload["reason"] == "lease_overdue"
    ]
    return parts


def a_flake(engine: Engine, playbooks: Playbooks, clock: FakeClock) -> tuple[IncidentCore, int]:
    """A failure seen once and classified as a flake now: the lease starts."""
    core = IncidentCore(playbooks, clock)
    iid = ingest(engine, playbooks, clock)
    core.run(engine, iid, RESPONDER, Classify("flake"))
    return core, iid


def file_bead(engine: Engine, playbooks: Playbooks, clock: FakeClock, incident_id: int) -> None:
    """What the bead delivery does when bd answers (resolving a flake needs its bead)."""
    with session_scope(engine) as session:
        found = session.get(Incident, incident_id)
        assert found is not None
        effects = Effects(now=clock.now())
        beads.filed(session, playbooks.get(found.playbook), found, effects, "tb-1", None, "bd")
        effects.flush(session)


def test_a_flake_gets_a_lease_and_escalates_once_when_it_runs_out(
    playbooks: Playbooks, engine: Engine, clock: FakeClock
) -> None:
    granted = clock.now()
    _, iid = a_flake(engine, playbooks, clock)

    assert due(engine, iid) == granted + WEEK
    (leased,) = timeline(engine, "leased", iid)
    assert "Flake lease: @concurrency-owners until" in leased.message and "escalates to @triage-leads" in leased.message
    assert len(outbox(engine, "bead_file", iid)) == 1  # the flake's bead, filed carrying the lease

    # A fresh service, as after a restart: the due time lives in the database, not in a process.
    clock.advance(WEEK - timedelta(milliseconds=1))
    TimerService(playbooks, clock).fire_due(engine, "bot-1")
    assert timeline(engine, "lease_overdue", iid) == [] and overdue_pages(engine, iid) == []

    clock.advance(timedelta(milliseconds=1))
    TimerService(playbooks, clock).fire_due(engine, "bot-1")
    TimerService(playbooks, clock).fire_due(engine, "bot-2")  # a second replica finds nothing to do
    clock.advance(WEEK)
    TimerService(playbooks, clock).fire_due(engine, "bot-1")

    (overdue,) = timeline(engine, "lease_overdue", iid)
    assert overdue.source == "timer"
    assert "the lease of @concurrency-owners ran out at" in overdue.message and "@triage-leads" in overdue.message
    (thread, dm) = overdue_pages(engine, iid)
    assert thread[0] == "thread" and "still open" in thread[1]
    assert dm == ("dm", LEADS_ONCALL)
    (paged,) = [p for p in timeline(engine, "paged", iid) if "lease_overdue" in p.message]
    assert "@triage-leads" in paged.message
    lease = incident(engine, iid).lease
    assert lease is not None and lease["escalated"]
    timer = lease_timer(engine, iid)
    assert timer is not None and timer.state == "fired"


def test_resolving_the_flake_ends_its_lease(playbooks: Playbooks, engine: Engine, clock: FakeClock) -> None:
    core, iid = a_flake(engine, playbooks, clock)
    file_bead(engine, playbooks, clock, iid)
    clock.advance(timedelta(days=2))
    core.run(engine, iid, RESPONDER, Resolve("made the retry idempotent with a dedupe key"))
    timer = lease_timer(engine, iid)
    assert timer is not None and timer.state == "cancelled"

    clock.advance(WEEK)
    TimerService(playbooks, clock).fire_due(engine, "bot-1")
    assert timeline(engine, "lease_overdue", iid) == [] and overdue_pages(engine, iid) == []


def test_a_recurrence_does_not_restart_the_lease(playbooks: Playbooks, engine: Engine, clock: FakeClock) -> None:
    _, iid = a_flake(engine, playbooks, clock)
    first_due = due(engine, iid)

    clock.advance(timedelta(days=3))
    assert ingest(engine, playbooks, clock, run_id="9300") == iid  # seen again: the same incident
    assert incident(engine, iid).occurrence_count == 2
    assert due(engine, iid) == first_due and len(timeline(engine, "leased", iid)) == 1

    clock.advance(WEEK - timedelta(days=3))  # the original due date, not three days later
    TimerService(playbooks, clock).fire_due(engine, "bot-1")
    assert len(timeline(engine, "lease_overdue", iid)) == 1


def test_reclassifying_pauses_the_lease_and_classifying_back_does_not_buy_time(
    playbooks: Playbooks, sqlite_engine: Engine, clock: FakeClock
) -> None:
    engine = sqlite_engine
    core, iid = a_flake(engine, playbooks, clock)
    first_due = due(engine, iid)

    clock.advance(timedelta(days=1))
    core.run(engine, iid, RESPONDER, Classify("infra_ci"))  # not a flake after all
    (paused,) = timeline(engine, "lease_ended", iid)
    assert "paused" in paused.message
    clock.advance(WEEK)
    TimerService(playbooks, clock).fire_due(engine, "bot-1")
    assert timeline(engine, "lease_overdue", iid) == []

    core.run(engine, iid, RESPONDER, Classify("flake"))  # a flake again, past the first due date
    assert due(engine, iid) == first_due and len(timeline(engine, "leased", iid)) == 1
    TimerService(playbooks, clock).fire_due(engine, "bot-1")
    assert len(timeline(engine, "lease_overdue", iid)) == 1


def test_a_resolved_flake_that_reopens_runs_on_its_old_lease(
    playbooks: Playbooks, sqlite_engine: Engine, clock: FakeClock
) -> None:
    engine = sqlite_engine
    core, iid = a_flake(engine, playbooks, clock)
    file_bead(engine, playbooks, clock, iid)
    core.run(engine, iid, RESPONDER, Resolve("serialised the writes"))
    clock.advance(timedelta(days=2))
    ingest(engine, playbooks, clock, run_id="9400")  # recurs within reopens_within (7d): reopened
    assert incident(engine, iid).status == "open"

    clock.advance(WEEK - timedelta(days=2))
    TimerService(playbooks, clock).fire_due(engine, "bot-1")
    assert len(timeline(engine, "lease_overdue", iid)) == 1
