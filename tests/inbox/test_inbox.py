"""The inbox applies each recorded Slack request exactly once, in arrival order per incident, on
SQLite and PostgreSQL, from any replica; refusals are answered, redeliveries recorded once."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.engine import Engine

from slackbot.clock import FakeClock
from slackbot.config import Playbooks
from slackbot.db.engine import make_engine
from slackbot.domain.changes import Classify, SetSeverity
from slackbot.inbox import Applied
from tests.inbox.helpers import CLASSES, Told, classified, drain, inbox_for, open_incidents, request, rows


def test_a_burst_is_applied_once_each_in_arrival_order_per_incident(
    engine: Engine, playbooks: Playbooks, clock: FakeClock
) -> None:
    first, second = open_incidents(engine, playbooks, clock, 2)
    inbox = inbox_for(engine, playbooks, clock)
    wanted = [request(n, first if n % 2 else second, Classify(CLASSES[(n // 2) % 2])) for n in range(40)]

    async def burst() -> None:
        # recorded concurrently, as Bolt's listeners do (group commits), then one redelivered
        await asyncio.gather(*(inbox.record(r) for r in wanted))
        await inbox.record(wanted[5])
        await drain(inbox)

    asyncio.run(burst())
    recorded = rows(engine)
    assert [r.request_key for r in recorded] == [r.key for r in wanted]  # arrival order, the redelivery once
    assert {r.state for r in recorded} == {"done"}
    for incident_id in (first, second):
        timeline = classified(engine, incident_id)
        assert len(timeline) == 20  # every click alternates the class: every one is a change
        expected = [CLASSES[(n // 2) % 2] for n in range(40) if (n % 2 == 1) == (incident_id == first)]
        assert timeline == expected, timeline


def test_a_refused_request_is_answered_and_the_others_stand(
    engine: Engine, playbooks: Playbooks, clock: FakeClock
) -> None:
    [incident_id] = open_incidents(engine, playbooks, clock, 1)
    inbox = inbox_for(engine, playbooks, clock, responders={"U0CAROL"})
    told = inbox.answer
    assert isinstance(told, Told)

    async def clicks() -> None:
        await inbox.record(request(1, incident_id, Classify(CLASSES[0])))
        await inbox.record(request(2, incident_id, Classify("no such class <!channel>")))
        await inbox.record(request(3, incident_id, SetSeverity("high"), user="U0MALLORY"))
        await inbox.record(request(4, incident_id, Classify(CLASSES[1])))
        await drain(inbox)
        await inbox.answers.close()

    asyncio.run(clicks())
    assert [(r.request_key.split(":")[1], r.state) for r in rows(engine)] == [
        ("T1", "done"),
        ("T2", "refused"),
        ("T3", "refused"),
        ("T4", "done"),
    ]
    assert classified(engine, incident_id) == list(CLASSES)
    by_url = dict(told.answers)
    assert by_url["https://r/2"].startswith("⚠️ ") and "&lt;!channel&gt;" in by_url["https://r/2"]
    assert by_url["https://r/3"] == "⛔ Only responders (@oncall) can change incidents; nothing was changed."
    assert set(by_url) == {"https://r/2", "https://r/3"}  # applied clicks show on the card, not in a reply


def test_what_one_process_recorded_another_applies(engine: Engine, playbooks: Playbooks, clock: FakeClock) -> None:
    """A process recorded (and so acked) and died before applying: the next one to look applies it."""
    [incident_id] = open_incidents(engine, playbooks, clock, 1)
    gone = inbox_for(engine, playbooks, clock)
    asyncio.run(gone.record(request(1, incident_id, Classify(CLASSES[0]))))
    successor = inbox_for(make_engine(str(engine.url.render_as_string(hide_password=False))), playbooks, clock)

    async def start() -> None:
        stop = asyncio.Event()
        running = asyncio.create_task(successor.run(stop))
        deadline = asyncio.get_running_loop().time() + 10
        while rows(engine)[0].state == "pending" and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        stop.set()
        await running

    asyncio.run(start())
    assert rows(engine)[0].state == "done"
    assert len(classified(engine, incident_id)) == 1


def test_two_replicas_apply_each_request_once_in_order(engine: Engine, playbooks: Playbooks, clock: FakeClock) -> None:
    incidents = open_incidents(engine, playbooks, clock, 3)
    url = engine.url.render_as_string(hide_password=False)
    replicas = [inbox_for(make_engine(url), playbooks, clock) for _ in range(2)]
    wanted = [request(n, incidents[n % 3], Classify(CLASSES[(n // 3) % 2])) for n in range(60)]

    async def both() -> None:
        for n, r in enumerate(wanted):  # one after the other: this is their arrival order
            await replicas[n % 2].record(r)
        await asyncio.gather(*(drain(replica) for replica in replicas))
        await asyncio.gather(*(drain(replica) for replica in replicas))  # what a skipped lock left

    asyncio.run(both())
    assert {r.state for r in rows(engine)} == {"done"}
    for k, incident_id in enumerate(incidents):
        expected = [CLASSES[(n // 3) % 2] for n in range(60) if n % 3 == k]
        timeline = classified(engine, incident_id)
        assert timeline == expected, timeline


def test_settled_requests_are_pruned_after_a_week_and_pending_ones_never(
    engine: Engine, playbooks: Playbooks, clock: FakeClock
) -> None:
    [incident_id] = open_incidents(engine, playbooks, clock, 1)
    inbox = inbox_for(engine, playbooks, clock)

    async def clicks() -> None:
        await inbox.record(request(1, incident_id, Classify(CLASSES[0])))
        await drain(inbox)
        await inbox.record(request(2, incident_id, Classify(CLASSES[1])))  # recorded, not applied

    asyncio.run(clicks())
    clock.advance(timedelta(days=6))
    assert inbox.prune() == 0
    clock.advance(timedelta(days=2))
    assert inbox.prune() == 1
    assert [(r.request_key.split(":")[1], r.state) for r in rows(engine)] == [("T2", "pending")]


def test_an_outcome_is_read_while_another_transaction_holds_the_write_lock(
    engine: Engine, playbooks: Playbooks, clock: FakeClock
) -> None:
    """A modal waiting for what became of its request reads the row in a snapshot: on SQLite it does
    not queue for the one write lock behind an ingest's long transaction (nor hold up the acks)."""
    [incident_id] = open_incidents(engine, playbooks, clock, 1)
    applier = inbox_for(engine, playbooks, clock)
    asker = inbox_for(make_engine(engine.url.render_as_string(hide_password=False)), playbooks, clock)
    wanted = request(1, incident_id, Classify(CLASSES[0]))

    async def scenario() -> tuple[Applied | None, float]:
        await applier.record(wanted)
        await drain(applier)
        with engine.connect() as writer:  # BEGIN IMMEDIATE on SQLite: the write lock, held meanwhile
            writer.execute(text("UPDATE incidents SET revision = revision WHERE id = :id"), {"id": incident_id})
            started = time.monotonic()
            try:
                # the asker applied nothing itself: it finds the outcome in the row
                return await asyncio.wait_for(asker.outcome(wanted.key, timeout=5.0), 3.0), time.monotonic() - started
            finally:
                writer.rollback()

    found, took = asyncio.run(scenario())
    assert found is not None and found.state == "done" and found.changed
    assert took < 2.0, f"the outcome waited {took:.1f} s"
