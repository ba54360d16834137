"""The 20-minute rule and its escalation levels, fired by ``TimerService`` under a fake clock, on
SQLite and on a real PostgreSQL. What we count is what a responder would see: timeline rows,
pages queued (thread post, DM, PagerDuty) and timers left pending."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from datetime import timedelta

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.clock import FakeClock
from slackbot.config import Playbook, Playbooks
from slackbot.db.engine import make_engine, session_scope
from slackbot.db.migrate import upgrade
from slackbot.db.models import Incident, TimelineEvent, Timer
from slackbot.domain.changes import Actor, Classify, Resolve, SetSeverity
from slackbot.domain.states import TimerKind
from slackbot.incidents.core import IncidentCore
from slackbot.incidents.effects import arm_timer, cancel_timer
from slackbot.incidents.timers import TimerService
from slackbot.outbox.paging_deliveries import PagingDeliveries
from slackbot.sources.ingest import IngestService
from tests.factories import outbox, parsed, result
from tests.pgserver import PostgresServer

RESPONDER = Actor("U0CAROL", "command")
LEADS_ONCALL = "U0GRACE"  # @triage-leads: the escalation target of every class
RELEASE_MAINTAINER = "U0FRANK"


def ingest(
    engine: Engine, playbooks: Playbooks, clock: FakeClock, count: int = 1, *, run_id: str = "9187"
) -> list[int]:
    """``count`` distinct unclassified failures (BID-* suggests algorithm_regression)."""
    results = [result(f"BID-{n:03d}", "TENANT-001") for n in range(1, count + 1)]
    outcome = IngestService(playbooks, clock).ingest_report(engine, parsed(*results, run_id=run_id))
    return sorted(int(i.id) for i in outcome.incidents if i.id is not None)


def timeline(engine: Engine, kind: str, incident_id: int | None = None) -> list[TimelineEvent]:
    with Session(engine) as session:
        query = select(TimelineEvent).where(TimelineEvent.kind == kind)
        if incident_id is not None:
            query = query.where(TimelineEvent.incident_id == incident_id)
        return list(session.exec(query.order_by(col(TimelineEvent.id))))


def pages(engine: Engine, incident_id: int) -> list[tuple[str, str, str]]:
    """(kind, who, step) of every page part queued for the incident: DMs and PagerDuty triggers."""
    parts = []
    for item in outbox(engine, "dm", incident_id) + outbox(engine, "pagerduty", incident_id):
        who = item.payload.get("user") or item.payload.get("role")
        parts.append((item.kind, str(who), str(item.payload["step"])))
    return sorted(parts)


def classify_timer(engine: Engine, incident_id: int) -> Timer:
    with Session(engine) as session:
        timer = session.exec(
            select(Timer).where(Timer.subject == f"incident:{incident_id}", Timer.kind == "classify")
        ).one()
        return timer


def incident(engine: Engine, incident_id: int) -> Incident:
    with Session(engine) as session:
        found = session.get(Incident, incident_id)
        assert found is not None
        return found


def test_the_20_minute_rule_fires_once_at_the_deadline_and_not_before(
    playbooks: Playbooks, engine: Engine, runbook: Playbook, clock: FakeClock
) -> None:
    timers = TimerService(playbooks, clock)
    (iid,) = ingest(engine, playbooks, clock)
    deadline = incident(engine, iid).classify_deadline

    clock.advance(runbook.policy.classify_within - timedelta(seconds=1))
    assert timers.fire_due(engine, "bot-1").fired == 0
    assert timeline(engine, "escalated") == [] and outbox(engine, "dm") == []

    clock.advance(timedelta(seconds=1))  # exactly the deadline
    assert clock.now() == deadline.replace(tzinfo=clock.now().tzinfo)
    assert timers.fire_due(engine, "bot-1").fired == 1
    assert timers.fire_due(engine, "bot-2").fired == 0  # a second replica finds nothing left
    clock.advance(timedelta(minutes=1))
    assert timers.fire_due(engine, "bot-1").fired == 0

    (escalated,) = timeline(engine, "escalated", iid)
    assert escalated.source == "timer" and "Not classified within 20 minutes: escalation level 1" in escalated.message
    assert incident(engine, iid).escalation_level == 1
    # Level 1 pages the escalation target of the suggested owner: mentioned in the thread, DMed.
    (thread,) = [o for o in outbox(engine, "thread_post", iid) if o.payload.get("template") == "paged"]
    assert thread.payload["reason"] == "unclassified" and thread.payload["targets"] == [
        {"role": "escalation", "class": "algorithm_regression"}
    ]
    assert pages(engine, iid) == [("dm", LEADS_ONCALL, "1")]
    (paged,) = timeline(engine, "paged", iid)
    assert "@triage-leads" in paged.message
    # The routing decision that chose that target is on the timeline with its reason.
    (routed,) = timeline(engine, "routed", iid)
    assert "algorithm_regression because scenario prefix BID-* is usually algorithm_regression" in routed.message
    fired = classify_timer(engine, iid)
    assert fired.step == 1 and fired.state == "pending"  # re-armed for the next level


def test_a_tick_with_nothing_due_does_not_wait_for_the_write_lock(
    playbooks: Playbooks, sqlite_engine: Engine, clock: FakeClock
) -> None:
    """The scheduler looks for due timers four times a second. On SQLite an ingest holds the one
    write lock for its whole transaction: a tick that found nothing due must neither queue behind
    it nor, taking the lock itself, make the next ingest wait."""
    timers = TimerService(playbooks, clock)
    (iid,) = ingest(sqlite_engine, playbooks, clock)
    answered: list[int] = []
    with sqlite_engine.connect() as writer:  # BEGIN IMMEDIATE: the write lock, held meanwhile
        writer.execute(text("UPDATE incidents SET revision = revision WHERE id = :id"), {"id": iid})
        tick = threading.Thread(target=lambda: answered.append(timers.fire_due(sqlite_engine, "bot-1").fired))
        tick.start()
        tick.join(timeout=2.0)
        assert answered == [0], "the tick waited for the write lock with nothing due"
        writer.rollback()
    clock.advance(timedelta(minutes=20))  # once one is due, the tick takes the lock and fires it
    assert timers.fire_due(sqlite_engine, "bot-1").fired == 1


def test_levels_repeat_every_interval_then_stop(
    playbooks: Playbooks, engine: Engine, runbook: Playbook, clock: FakeClock
) -> None:
    policy = runbook.policy.escalation
    assert (len(policy.levels), policy.repeat_every, policy.max_repeats) == (2, timedelta(minutes=10), 3)
    timers = TimerService(playbooks, clock)
    (iid,) = ingest(engine, playbooks, clock)

    clock.advance(runbook.policy.classify_within)
    assert timers.fire_due(engine, "bot").fired == 1
    after_first = clock.now()
    assert classify_timer(engine, iid).due_at.replace(tzinfo=None) == (after_first + policy.repeat_every).replace(
        tzinfo=None
    )
    clock.advance(policy.repeat_every - timedelta(seconds=1))
    assert timers.fire_due(engine, "bot").fired == 0  # the next level waits its full interval
    for _ in range(len(policy.levels) + policy.max_repeats - 1):
        clock.advance(policy.repeat_every)
        assert timers.fire_due(engine, "bot").fired == 1
    clock.advance(timedelta(days=1))
    assert timers.fire_due(engine, "bot").fired == 0  # max_repeats reached: the bot stops paging

    levels = [e.data["level"] for e in timeline(engine, "escalated", iid)]
    assert levels == [1, 2, 3, 4, 5]
    assert incident(engine, iid).escalation_level == 5
    assert classify_timer(engine, iid).state == "fired"
    # Level 2 (and its repeats) adds the release maintainer, by DM and PagerDuty (it has a key).
    assert pages(engine, iid) == sorted(
        [("dm", LEADS_ONCALL, str(level)) for level in range(1, 6)]
        + [("dm", RELEASE_MAINTAINER, str(level)) for level in range(2, 6)]
        + [("pagerduty", "release_maintainer", str(level)) for level in range(2, 6)]
    )


def test_classifying_stops_the_escalation_and_reclassifying_does_not_restart_it(
    playbooks: Playbooks, engine: Engine, runbook: Playbook, clock: FakeClock
) -> None:
    timers = TimerService(playbooks, clock)
    early, late = ingest(engine, playbooks, clock, 2)
    incidents = IncidentCore(playbooks, clock)
    incidents.run(engine, early, RESPONDER, Classify("infra"))  # in time
    clock.advance(runbook.policy.classify_within)
    assert timers.fire_due(engine, "bot").fired == 1  # only the unclassified one
    incidents.run(engine, late, RESPONDER, Classify("algorithm"))  # after level 1
    assert classify_timer(engine, late).state == "cancelled"

    clock.advance(runbook.policy.escalation.repeat_every * 2)
    incidents.run(engine, late, RESPONDER, Classify("schema"))  # reclassified
    incidents.run(engine, early, RESPONDER, Classify("flake"))
    clock.advance(timedelta(days=1))
    timers.fire_due(engine, "bot")  # (only the quiet-thread reminders the changes armed are due)

    assert timeline(engine, "escalated", early) == []
    assert [e.data["level"] for e in timeline(engine, "escalated", late)] == [1]
    assert classify_timer(engine, early).state == classify_timer(engine, late).state == "cancelled"


def test_resolving_stops_the_escalation(
    playbooks: Playbooks, engine: Engine, runbook: Playbook, clock: FakeClock
) -> None:
    timers = TimerService(playbooks, clock)
    (iid,) = ingest(engine, playbooks, clock)
    clock.advance(runbook.policy.classify_within)
    assert timers.fire_due(engine, "bot").fired == 1
    IncidentCore(playbooks, clock).run(engine, iid, RESPONDER, Resolve("fixture reset between runs"))
    clock.advance(timedelta(days=1))
    assert timers.fire_due(engine, "bot").fired == 0
    assert [e.data["level"] for e in timeline(engine, "escalated", iid)] == [1]
    assert classify_timer(engine, iid).state == "cancelled"


def test_a_stale_token_does_nothing(playbooks: Playbooks, engine: Engine, runbook: Playbook, clock: FakeClock) -> None:
    timers = TimerService(playbooks, clock)
    rearmed, cancelled = ingest(engine, playbooks, clock, 2)
    clock.advance(runbook.policy.classify_within)
    # A firing decided on an old reading: both timers were due when read...
    with session_scope(engine) as session:
        seen = [(t.id, t.token) for t in TimerService.due(session, clock.now(), 10)]
    assert len(seen) == 2
    # ...then one was re-armed (new token, later) and the other cancelled before the claim.
    with session_scope(engine) as session:
        arm_timer(
            session,
            subject=f"incident:{rearmed}",
            kind=TimerKind.CLASSIFY,
            due_at=clock.now() + timedelta(minutes=5),
            incident_id=rearmed,
        )
        cancel_timer(session, subject=f"incident:{cancelled}", kind=TimerKind.CLASSIFY)
    with session_scope(engine) as session:
        assert TimerService.claim(session, seen, clock.now(), "late-replica") == []
    assert timers.fire_due(engine, "bot").fired == 0
    assert timeline(engine, "escalated") == [] and outbox(engine, "dm") == []

    clock.advance(timedelta(minutes=5))  # the re-armed timer fires at its new time, once
    assert timers.fire_due(engine, "bot").fired == 1
    assert timers.fire_due(engine, "bot").fired == 0
    assert [e.incident_id for e in timeline(engine, "escalated")] == [rearmed]


def test_overdue_timers_fire_exactly_once_on_the_first_call(
    playbooks: Playbooks, engine: Engine, runbook: Playbook, clock: FakeClock
) -> None:
    """The bot was down for three hours: every missed deadline escalates once, at level 1, and
    the next levels come repeat_every apart from now (no burst of five levels at once)."""
    ids = ingest(engine, playbooks, clock, 120)
    clock.advance(timedelta(hours=3))
    timers = TimerService(playbooks, clock)
    first = timers.fire_due(engine, "restarted", limit=50)  # several batches in one call
    assert first.fired == 120 and sorted(first.ids) == sorted(classify_timer(engine, i).id or 0 for i in ids)
    assert timers.fire_due(engine, "restarted").fired == 0
    assert TimerService(playbooks, clock).fire_due(engine, "other-replica").fired == 0
    escalated = Counter(e.incident_id for e in timeline(engine, "escalated"))
    assert escalated == dict.fromkeys(ids, 1)
    assert {e.data["level"] for e in timeline(engine, "escalated")} == {1}
    assert Counter(o.incident_id for o in outbox(engine, "dm")) == dict.fromkeys(ids, 1)
    nxt = clock.now() + runbook.policy.escalation.repeat_every
    assert {classify_timer(engine, i).due_at.replace(tzinfo=None) for i in ids} == {nxt.replace(tzinfo=None)}


def test_concurrent_firings_fire_each_due_timer_exactly_once(
    playbooks: Playbooks, engine: Engine, runbook: Playbook, clock: FakeClock
) -> None:
    """Eight replicas' schedulers wake at the same moment; small batches make them interleave."""
    ids = ingest(engine, playbooks, clock, 200)
    clock.advance(runbook.policy.classify_within)
    timers = TimerService(playbooks, clock)
    start = threading.Barrier(8)
    results: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def replica(name: str) -> None:
        try:
            start.wait()
            results[name] = timers.fire_due(engine, name, limit=7).ids
        except BaseException as exc:  # surfaced below: a deadlock or lock error is a failure
            errors.append(exc)

    threads = [threading.Thread(target=replica, args=(f"replica-{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    everything = [timer_id for fired in results.values() for timer_id in fired]
    assert len(everything) == len(set(everything)) == 200  # each timer claimed by exactly one replica
    with Session(engine) as session:
        assert session.exec(select(Timer).where(Timer.state == "pending", col(Timer.due_at) <= clock.now())).all() == []
    # The effects, which no unique key protects, happened once per incident.
    assert Counter(e.incident_id for e in timeline(engine, "escalated")) == dict.fromkeys(ids, 1)
    assert Counter(e.incident_id for e in timeline(engine, "paged")) == dict.fromkeys(ids, 1)
    assert Counter(o.incident_id for o in outbox(engine, "dm")) == dict.fromkeys(ids, 1)
    assert {incident(engine, i).escalation_level for i in ids} == {1}


def test_a_timer_whose_incident_is_being_changed_waits_and_then_sees_the_change(
    playbooks: Playbooks, postgres: PostgresServer, runbook: Playbook, clock: FakeClock
) -> None:
    """PostgreSQL: a responder's classification holds the incident row when the timer comes due.
    The firing skips it instead of waiting (no deadlock, no page racing the classification) and
    the next tick finds the timer cancelled: no page after the classification."""
    engine = make_engine(postgres.create_database("timers_busy"))
    upgrade(engine)
    try:
        (iid,) = ingest(engine, playbooks, clock)
        clock.advance(runbook.policy.classify_within)
        timers = TimerService(playbooks, clock)
        with session_scope(engine) as session:
            # The responder's transaction has locked the incident and is deciding...
            session.exec(select(Incident).where(Incident.id == iid).with_for_update()).one()
            busy = timers.fire_due(engine, "bot")
            assert busy.fired == 0 and busy.deferred >= 1  # (each of the parallel batches may see it)
            # ...classifies (which also cancels the timer row, still uncommitted)...
            IncidentCore(playbooks, clock).apply(session, iid, RESPONDER, Classify("infra"))
            assert timers.fire_due(engine, "bot").fired == 0
        # ...and commits: the timer is cancelled, nothing fires after the classification.
        assert timers.fire_due(engine, "bot").fired == 0
        assert timeline(engine, "escalated") == [] and outbox(engine, "dm") == []
        assert classify_timer(engine, iid).state == "cancelled"
    finally:
        engine.dispose()


def test_sev1_pages_the_release_maintainer_at_once(
    playbooks: Playbooks, engine: Engine, runbook: Playbook, clock: FakeClock
) -> None:
    (iid,) = ingest(engine, playbooks, clock)
    IncidentCore(playbooks, clock).run(engine, iid, RESPONDER, SetSeverity("SEV-1"))
    # No timer involved: the pages are queued in the same transaction as the severity change.
    assert pages(engine, iid) == sorted(
        [
            ("dm", RELEASE_MAINTAINER, "SEV-1"),
            ("pagerduty", "release_maintainer", "SEV-1"),
            ("dm", "U0CAROL", "SEV-1"),  # the owner's on-call (algorithm_regression, suggested)
            ("pagerduty", "owner", "SEV-1"),
        ]
    )
    (paged,) = timeline(engine, "paged", iid)
    assert paged.data["reason"] == "severity" and "@frank (release maintainer)" in paged.message


@pytest.mark.parametrize("change", ["classify", "resolve"])
def test_pages_queued_before_a_change_are_dropped_at_delivery(
    playbooks: Playbooks, engine: Engine, runbook: Playbook, clock: FakeClock, change: str
) -> None:
    """The escalation page waits in the outbox (Slack paced, PagerDuty retrying) and meanwhile
    someone classifies or resolves: it must not go out (OnCall #4654, #4760)."""
    (iid,) = ingest(engine, playbooks, clock)
    clock.advance(runbook.policy.classify_within + runbook.policy.escalation.repeat_every)
    timers = TimerService(playbooks, clock)
    timers.fire_due(engine, "bot")
    clock.advance(runbook.policy.escalation.repeat_every)
    timers.fire_due(engine, "bot")  # level 2: a DM and a PagerDuty trigger for the release maintainer
    incidents = IncidentCore(playbooks, clock)
    incidents.run(engine, iid, RESPONDER, SetSeverity("SEV-2"))  # a severity page, not unclassified
    if change == "classify":
        incidents.run(engine, iid, RESPONDER, Classify("algorithm"))
    else:
        incidents.run(engine, iid, RESPONDER, Resolve("reverted the scoring change"))

    unreachable = "http://127.0.0.1:9/"  # nothing listens: any real delivery attempt would fail
    paging = PagingDeliveries(
        engine,
        AsyncWebClient(token="xoxb-none", base_url=unreachable + "api/"),
        playbooks,
        pagerduty_url=unreachable,
        public_url="http://127.0.0.1:3000",
    )
    escalation_pages = [
        o for o in outbox(engine, "dm", iid) + outbox(engine, "pagerduty", iid) if o.payload["reason"] == "unclassified"
    ]
    assert len(escalation_pages) == 4  # level 1 DM; level 2 DMs to both and the release maintainer's trigger
    for item in escalation_pages:
        handler = paging.dm if item.kind == "dm" else paging.pagerduty
        assert asyncio.run(handler(item)) == {"skipped": "no longer needed (classified or resolved)"}
    severity_pages = [o for o in outbox(engine, "dm", iid) if o.payload["reason"] == "severity"]
    assert severity_pages, "SEV-2 pages the owner"
    current = incident(engine, iid)
    # A severity page is about the severity, not the classification: still wanted after classify.
    assert PagingDeliveries.still_wanted(current, severity_pages[0].payload) is (change == "classify")
